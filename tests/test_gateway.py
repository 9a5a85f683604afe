"""The public web gateway: sessions it issues itself, limits, headers, health, and faults."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import ipaddress
import json
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

import knowledge
from gateway import handlers
from gateway.app import SERVER_OPTIONS, Config, Gateway
from gateway.offers import Offers
from gateway.ratelimit import RateLimiter, client_address, networks
from gateway.sessions import COOKIE, sign, verify
from knowledge import shapes
from knowledge.emergency import emergency_line
from knowledge.helplines import default_helplines
from navigator import stack
from navigator.stack import free_port
from settings import ROOT, Settings, SettingsError

pytestmark = pytest.mark.servers  # starts servers or loads a model: not in make check


def _fake_rasa(replies: list[dict[str, Any]], seen: list[dict[str, Any]]) -> web.Application:
    """A stand-in that speaks the REST channel's protocol, for the gateway's own checks."""

    async def webhook(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response(replies)

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", webhook)
    return app


def _with_gateway(config: Config, body: Any) -> Any:
    async def run() -> Any:
        async with TestClient(TestServer(Gateway(config).app)) as client:
            return await body(client)

    return asyncio.run(run())


def _with_fake_rasa(body: Any, replies: list[dict[str, Any]] | None = None, **config: Any):
    seen: list[dict[str, Any]] = []

    async def run() -> Any:
        default = [{"text": "hi"}]
        async with TestServer(_fake_rasa(default if replies is None else replies, seen)) as rasa:
            gateway = Gateway(Config(rasa_urls=(str(rasa.make_url("")).rstrip("/"),), **config))
            async with TestClient(TestServer(gateway.app)) as client:
                return await body(client, seen)

    return asyncio.run(run())


def test_signed_ids_cannot_be_forged() -> None:
    secret = b"k" * 32
    value = sign(secret, "web-abc")
    assert verify(secret, value) == "web-abc"
    assert verify(secret, "web-abc") is None
    assert verify(secret, value[:-1] + ("A" if value[-1] != "A" else "B")) is None
    assert verify(b"other" * 8, value) is None
    session_id, issued, mac = value.split(".")
    assert verify(secret, f"{session_id}.{int(issued, 16) + 1:x}.{mac}") is None


@pytest.mark.parametrize("cookie", ['"web-caf\u00e9.1.x"', '"\\351.1.x"', '"\u2603"',
                                    "web-caf\u00e9.1.x", '"caf\u00e9.x"'])
def test_a_non_ascii_cookie_is_a_bad_cookie_not_an_error(
        cookie: str, caplog: pytest.LogCaptureFixture) -> None:
    """Quoted values may carry any character (or an octal escape): a new conversation, no
    500 and no traceback in the log."""

    async def body(client: TestClient, seen: list) -> None:
        r = await client.post("/api/chat", json={"message": "hello"},
                              headers={"Cookie": f"{COOKIE}={cookie}"})
        assert r.status == 200 and COOKIE in r.headers.get("Set-Cookie", "")
        assert seen and seen[0]["sender"].isascii()

    with caplog.at_level("WARNING"):
        _with_fake_rasa(body)
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info] == []


def test_the_gateway_issues_the_id_and_ignores_client_chosen_ones() -> None:
    async def body(client: TestClient, seen: list) -> None:
        r = await client.post("/api/chat", json={"message": "hello", "sender": "victim"})
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        r = await client.post("/api/chat", json={"message": "again"})
        assert "Set-Cookie" not in r.headers  # the same conversation continues
        assert seen[0]["sender"] == seen[1]["sender"] != "victim"
        forged = f"{seen[0]['sender']}.{int(time.time()):x}.forged"
        client.session.cookie_jar.update_cookies({COOKIE: forged})
        r = await client.post("/api/chat", json={"message": "let me in"})
        assert seen[2]["sender"] not in (seen[0]["sender"], "victim")
        assert "Set-Cookie" in r.headers
        assert all(m["sender"].startswith("web-") for m in seen)

    _with_fake_rasa(body)


def _cookie_value(response: Any, name: str = COOKIE) -> str:
    return response.cookies[name].value


def test_a_weak_cookie_secret_stops_the_gateway_with_a_clear_error() -> None:
    import subprocess
    import sys

    for weak in ("hunter2", "a" * 64, "correct horse battery staple", "0123456789abcdef" * 4,
                 f"{secrets.token_urlsafe(32)},short"):
        with pytest.raises(SettingsError, match="at least 32 random bytes") as err:
            Settings.from_env({"NAVIGATOR_WEB_SECRET": weak})
        assert weak not in str(err.value)  # never quotes the secret
    strong = [secrets.token_urlsafe(32), secrets.token_hex(32)]
    settings = Settings.from_env({"NAVIGATOR_WEB_SECRET": ", ".join(strong)})
    assert len(settings.web_keys) == 2 and all(len(k) >= 32 for k in settings.web_keys)
    run = subprocess.run([sys.executable, "-m", "gateway", "--port", str(free_port())],
                         cwd=ROOT, env={"NAVIGATOR_WEB_SECRET": "hunter2", "PATH": "/usr/bin"},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "NAVIGATOR_WEB_SECRET" in run.stderr and "Traceback" not in run.stderr
    assert "hunter2" not in run.stderr


def test_a_signed_cookie_never_names_an_sms_conversation_and_keys_rotate() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)

    async def body(client: TestClient, seen: list) -> None:
        for value in (sign(new, "+15551234567"), sign(new, "whatsapp:+15551234567")):
            r = await client.post("/api/chat", json={"message": "hi"},
                                  cookies={COOKIE: value})
            assert seen[-1]["sender"].startswith("web-") and "Set-Cookie" in r.headers
        r = await client.post("/api/chat", json={"message": "hi"},
                              cookies={COOKIE: sign(old, "web-rotated")})
        assert seen[-1]["sender"] == "web-rotated" and "Set-Cookie" not in r.headers
        r = await client.post("/api/chat", json={"message": "hi"},
                              cookies={COOKIE: sign(b"x" * 32, "web-rotated")})
        assert seen[-1]["sender"] != "web-rotated"
        assert verify(new, _cookie_value(r))  # new cookies are signed with the first key

    _with_fake_rasa(body, secret=new, old_secrets=(old,))


def test_ids_expire_and_start_over_revokes_the_old_one() -> None:
    secret = secrets.token_bytes(32)

    async def body(client: TestClient, seen: list) -> None:
        stale = sign(secret, "web-stale", issued=time.time() - 3601)
        await client.post("/api/chat", json={"message": "hi"}, cookies={COOKIE: stale})
        assert seen[-1]["sender"] != "web-stale"
        first = await client.post("/api/chat", json={"message": "hi"},
                                  cookies={COOKIE: sign(secret, "web-mine")})
        assert seen[-1]["sender"] == "web-mine" and first.status == 200
        restart = await client.post("/api/restart", cookies={COOKIE: sign(secret, "web-mine")})
        assert "Max-Age=3600" in restart.headers["Set-Cookie"]
        # a copy of the old cookie (another tab, a stolen one) no longer opens it
        await client.post("/api/chat", json={"message": "hi"},
                          cookies={COOKIE: sign(secret, "web-mine")})
        assert seen[-1]["sender"] not in ("web-mine", "web-stale")

    _with_fake_rasa(body, secret=secret, session_lifetime=3600.0)


def test_secure_cookies_get_the_host_prefix_and_hsts() -> None:
    async def secure(client: TestClient, seen: list) -> None:
        r = await client.post("/api/chat", json={"message": "hi"})
        cookie = r.headers["Set-Cookie"]
        assert cookie.startswith("__Host-pcn_session=")
        assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
        page = await client.get("/")
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000"

    async def plain(client: TestClient, seen: list) -> None:
        r = await client.post("/api/chat", json={"message": "hi"})
        assert r.headers["Set-Cookie"].startswith("pcn_session=")
        assert "Strict-Transport-Security" not in r.headers

    _with_fake_rasa(secure, secure_cookies=True)
    _with_fake_rasa(plain)


def test_intent_payloads_pass_only_when_the_assistant_offered_them_here() -> None:
    """Typed "/human_handoff" is sent as text; a button's "/..." payload passes as it is, but
    only in the conversation it was offered in."""
    more = '/faq_more{"faq_id": "what_is_hospice"}'
    buttons = [{"title": "Tell me more", "payload": more}, {"title": "Hi", "payload": "hi"}]

    async def body(client: TestClient, seen: list) -> None:
        for typed in (more, "/human_handoff", "// /restart", "hello"):  # more: not yet offered
            assert (await client.post("/api/chat", json={"message": typed})).status == 200
        assert [m["message"] for m in seen] == [
            'faq_more{"faq_id": "what_is_hospice"}', "human_handoff", "restart", "hello"]
        assert (await client.post("/api/chat", json={"message": more})).status == 200
        assert seen[-1]["message"] == more  # offered in this conversation: a button press
        r = await client.post("/api/chat", json={"message": " / "})
        assert r.status == 400 and (await r.json())["error"] == "no_message"
        client.session.cookie_jar.clear()  # another person cannot send it
        await client.post("/api/chat", json={"message": more})
        assert seen[-1]["message"] == more[1:] and seen[-1]["sender"] != seen[0]["sender"]

    _with_fake_rasa(body, replies=[{"text": "answer", "buttons": buttons}])


def test_a_reply_with_parts_reaches_the_widget_as_one_message_field_by_field() -> None:
    """Rasa's REST channel sends a reply's text and buttons, then its parts as a custom
    message: the widget gets one message whose parts replace the plain text; unknown fields
    and wrong types never pass; the welcome's payloads and a card's payload are accepted."""
    detail = '/provider_detail{"ordinal":"1"}'
    card = {"n": 1, "name": "Horizon Hospice", "tel": "tel:+13127332233", "phone": "(312) 733-2233",
            "map": "https://www.google.com/maps/search/?api=1&query=x", "detail": detail,
            "onclick": "alert(1)", "distance": "about 2 miles", "kind": None,
            "address": "833 W Chicago Ave, Chicago, IL 60622", "miles": ["not", "a", "number"]}
    reply = {"text": "Hospices near 60614, nearest first:", "cards": [card], "after": "From CMS.",
             "sources": [{"title": "CMS: Hospice", "short": "CMS", "url": "https://cms.gov/",
                          "script": "x"}], "labels": {"call": "Call", "bad": 3}}
    plain = shapes.plain_text(reply)
    # with buttons Rasa's REST channel sends the plain text whole; without, one message per
    # paragraph: either way the parts replace it
    replies = [{"text": plain, "buttons": [{"title": "Show more", "payload": "/provider_more"}]},
               {"custom": {"reply": reply}}, {"text": "A second message"},
               *({"text": p} for p in plain.split("\n\n")), {"custom": {"reply": reply}}]

    async def body(client: TestClient, seen: list) -> None:
        welcome = handlers.WELCOME.buttons[0].payload
        r = await client.post("/api/chat", json={"message": welcome})
        assert seen[-1]["message"] == welcome  # offered by the welcome, before any turn
        messages = (await r.json())["messages"]
        assert len(messages) == 3 and messages[1] == {"text": "A second message", "buttons": []}
        assert {**messages[2], "buttons": messages[0]["buttons"]} == messages[0]
        first = messages[0]
        assert first["text"] == reply["text"] and first["after"] == "From CMS."
        assert first["buttons"] == [{"title": "Show more", "payload": "/provider_more"}]
        assert first["cards"] == [{k: card[k] for k in ("n", "name", "tel", "phone", "map",
                                                        "detail", "distance", "address")}]
        assert first["sources"] == [{"title": "CMS: Hospice", "short": "CMS",
                                     "url": "https://cms.gov/"}]
        assert first["labels"] == {"call": "Call"}
        await client.post("/api/chat", json={"message": detail})
        assert seen[-1]["message"] == detail  # a card's "More about this one" was offered

    _with_fake_rasa(body, replies=replies)


def test_offered_payloads_are_bounded() -> None:
    offers = Offers(per_conversation=3, conversations=2)

    async def run() -> None:
        await offers.remember("a", ["/one", "/two", "plain", "/three", "/four"])
        assert not await offers.offered("a", "/one") and await offers.offered("a", "/four")
        assert not await offers.offered("a", "plain")
        await offers.remember("b", ["/x"])
        await offers.remember("c", ["/y"])
        assert not await offers.offered("a", "/four")  # the least recently used went
        assert await offers.offered("c", "/y")

    asyncio.run(run())


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": b"hello", "headers": {"Content-Type": "text/plain"}}, 415, "not_json"),
        ({"data": b"{nope", "headers": {"Content-Type": "application/json"}}, 400, "bad_json"),
        ({"json": {"message": "   "}}, 400, "no_message"),
        ({"json": {"message": 42}}, 400, "no_message"),
        ({"json": ["message"]}, 400, "no_message"),
        ({"json": {"message": "x" * 1001}}, 413, "too_long"),
        ({"data": b"{\"message\": \"" + b"x" * 5000 + b"\"}",
          "headers": {"Content-Type": "application/json"}}, 413, "too_large"),
        ({"data": b"[" * 3000 + b"]" * 3000, "headers": {"Content-Type": "application/json"}},
         413, "too_large"),
        ({"data": b"\xff\xfe{}", "headers": {"Content-Type": "application/json"}}, 400,
         "bad_json"),
    ],
)
def test_bad_requests_get_clear_json_errors(kwargs: dict, status: int, code: str) -> None:
    async def body(client: TestClient, seen: list) -> None:
        r = await client.post("/api/chat", **kwargs)
        assert r.status == status
        data = await r.json()
        assert data["error"] == code and data["message"]
        assert not seen  # nothing reached the assistant

    _with_fake_rasa(body)


def test_fast_senders_are_slowed_down_with_retry_after() -> None:
    async def body(client: TestClient, seen: list) -> None:
        statuses = [(await client.post("/api/chat", json={"message": f"m{i}"})).status
                    for i in range(4)]
        assert statuses == [200, 200, 200, 429]
        r = await client.post("/api/chat", json={"message": "again"})
        assert int(r.headers["Retry-After"]) >= 1
        assert (await r.json())["error"] == "rate_limited"

    _with_fake_rasa(body, session_rate=(3, 60.0))


def test_people_behind_a_trusted_proxy_get_their_own_address_limit() -> None:
    """Behind the ingress every request comes from the proxy: with the proxy trusted, each
    person has their own bucket; untrusted, a forged X-Forwarded-For changes nothing."""

    async def statuses(client: TestClient, who: str, n: int) -> list[int]:
        return [(await client.post("/api/chat", json={"message": "hi"}, headers={
            "X-Forwarded-For": f"{who}, 127.0.0.1"})).status for _ in range(n)]

    async def trusted(client: TestClient, seen: list) -> None:
        assert await statuses(client, "198.51.100.1", 3) == [200, 200, 429]
        assert await statuses(client, "198.51.100.2", 2) == [200, 200]  # someone else
        r = await client.post("/api/chat", json={"message": "hi"},
                              headers={"Forwarded": 'for="[2001:db8::7]:4711";proto=https'})
        assert r.status == 200

    async def untrusted(client: TestClient, seen: list) -> None:
        assert await statuses(client, "198.51.100.1", 2) == [200, 200]
        assert await statuses(client, "198.51.100.2", 1) == [429]  # forged: one bucket

    _with_fake_rasa(trusted, address_rate=(2, 60.0), trusted_proxies=("127.0.0.0/8",))
    _with_fake_rasa(untrusted, address_rate=(2, 60.0))


@pytest.mark.parametrize(("peer", "headers", "client"), [
    ("203.0.113.9", {"X-Forwarded-For": "198.51.100.1"}, "203.0.113.9"),  # peer not trusted
    ("10.0.0.2", {"X-Forwarded-For": "198.51.100.1, 10.0.0.3"}, "198.51.100.1"),
    ("10.0.0.2", {"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}, "198.51.100.1"),  # forged left
    ("10.0.0.2", {"X-Forwarded-For": "198.51.100.1:5555"}, "198.51.100.1"),
    ("10.0.0.2", {"X-Forwarded-For": "unknown"}, "10.0.0.2"),
    ("10.0.0.2", {"X-Forwarded-For": "6.6.6.6, nonsense, 10.0.0.3"}, "10.0.0.3"),
    ("10.0.0.2", {}, "10.0.0.2"),
    ("10.0.0.2", {"Forwarded": "for=198.51.100.1;proto=https, for=10.0.0.3"}, "198.51.100.1"),
    ("10.0.0.2", {"Forwarded": 'For="[2001:db8::1]:80"'}, "2001:db8::1"),
    ("10.0.0.2", {"Forwarded": "for=_hidden"}, "10.0.0.2"),
    ("10.0.0.2", {"Forwarded": "for=6.6.6.6", "X-Forwarded-For": "198.51.100.1"},
     "198.51.100.1"),  # X-Forwarded-For first: a proxy that sets it leaves Forwarded alone
    ("::ffff:10.0.0.2", {"X-Forwarded-For": "198.51.100.1"}, "198.51.100.1"),
])
def test_the_client_address_comes_from_trusted_proxies_only(peer: str, headers: dict,
                                                           client: str) -> None:
    assert client_address(peer, headers, networks(["10.0.0.0/8"])) == client


def test_new_conversations_are_limited_per_address() -> None:
    """Without a cookie every request would start a conversation and escape the
    per-conversation limit: starting them is limited per address; going on is not."""

    async def body(client: TestClient, seen: list) -> None:
        for _ in range(3):
            assert (await client.post("/api/chat", json={"message": "hi"})).status == 200
            client.session.cookie_jar.clear()
        r = await client.post("/api/chat", json={"message": "hi"})
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        assert (await client.post("/api/restart")).status == 429
        assert len(seen) == 3

    async def going_on(client: TestClient, seen: list) -> None:
        statuses = [(await client.post("/api/chat", json={"message": f"m{i}"})).status
                    for i in range(5)]
        assert statuses == [200] * 5

    _with_fake_rasa(body, new_conversation_rate=(3, 60.0))
    _with_fake_rasa(going_on, new_conversation_rate=(1, 60.0))


def test_rate_limiter_forgets_old_hits() -> None:
    limiter = RateLimiter(2, 0.05)
    assert limiter.check("a") == 0 and limiter.check("a") == 0 and limiter.check("a") > 0
    asyncio.run(asyncio.sleep(0.06))
    assert limiter.check("a") == 0


def test_rasa_down_gets_503_with_a_kind_message_and_health_says_so() -> None:
    dead = f"http://127.0.0.1:{free_port()}"

    async def body(client: TestClient) -> None:
        r = await client.post("/api/chat", json={"message": "hello"})
        assert r.status == 503
        assert "isn't available right now" in (await r.json())["message"]
        h = await client.get("/healthz")
        assert h.status == 503
        assert (await h.json())["rasa"] == "down"

    _with_gateway(Config(rasa_urls=(dead,), actions_url=dead), body)


def test_every_response_carries_strict_security_headers() -> None:
    async def body(client: TestClient, seen: list) -> None:
        for r in (await client.get("/"), await client.post("/api/chat", json={"message": "x"}),
                  await client.get("/static/widget.js"), await client.get("/nope")):
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["X-Frame-Options"] == "DENY"
        api = await client.post("/api/chat", json={"message": "x"})
        assert api.headers["Cache-Control"] == "no-store"

    _with_fake_rasa(body)


PERSONAL = ("Zebediah Quux", "555-867-5309", "zeb.quux@example.org", "12 Elm Street")


def test_personal_details_never_reach_the_logs(servers: stack.Stack) -> None:
    async def run() -> None:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as client:
            base = servers.web_url.rstrip("/")
            for text in (f"My name is {PERSONAL[0]}, call me on {PERSONAL[1]} or "
                         f"{PERSONAL[2]}. I live at {PERSONAL[3]}. Does medicare pay?",
                         f"find a hospice near {PERSONAL[3]} 60614"):
                r = await client.post(base + "/api/chat", json={"message": text})
                assert r.status == 200

    asyncio.run(run())
    logs = {p.name: p.read_text(errors="replace")
            for p in servers.var_dir.glob("*.log")}
    assert {"rasa.log", "actions.log", "web.log"} <= set(logs)
    leaks = [(name, item) for name, text in logs.items() for item in PERSONAL if item in text]
    assert leaks == []


def test_real_assistant_through_the_gateway(servers: stack.Stack,
                                            kb: knowledge.KnowledgeBase) -> None:
    async def run() -> None:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as client:
            base = servers.web_url.rstrip("/")
            page = await client.get(base + "/")
            assert page.status == 200 and "/static/widget.js" in await page.text()
            r = await client.post(base + "/api/chat",
                                  json={"message": "who pays for palliative care?"})
            messages = (await r.json())["messages"]
            answer = kb.get("who_pays_palliative").text("answer", "en", "US")
            assert messages[0]["text"].startswith(answer[:80])
            assert messages[0]["sources"] and all(
                s["url"].startswith("https://") and s["short"] for s in messages[0]["sources"])
            assert "Source:" not in messages[0]["text"]  # the widget draws the sources
            more = await client.post(base + "/api/chat", json={"message": "tell me more"})
            longer = kb.get("who_pays_palliative").text("more", "en", "US") or answer
            assert (await more.json())["messages"][0]["text"].startswith(longer[:60])
            health = await client.get(base + "/healthz")
            assert health.status == 200
            assert await health.json() == {"status": "ok", "rasa": "ok", "actions": "ok",
                                           "database": "ok"}
            await client.post(base + "/api/restart")
            fresh = await client.post(base + "/api/chat", json={"message": "tell me more"})
            text = json.dumps(await fresh.json())
            assert longer[:60] not in text  # a new conversation has no last answer

    asyncio.run(run())


def test_the_access_log_has_paths_only_and_the_server_header_no_version(
        caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        async with TestServer(_fake_rasa([{"text": "hi"}], [])) as rasa:
            config = Config(rasa_urls=(str(rasa.make_url("")).rstrip("/"),))
            server = TestServer(Gateway(config).app)
            await server.start_server(**SERVER_OPTIONS)  # as python -m gateway serves it
            async with TestClient(server) as client:
                for r in (await client.get("/?email=zeb.quux%40example.org"),
                          await client.post("/api/chat?phone=5558675309",
                                            json={"message": "hi"}),
                          await client.get("/static/nope?x=12+Elm+Street")):
                    assert r.headers["Server"] == "navigator"
                reader, writer = await asyncio.open_connection(server.host, server.port)
                writer.write(b"NOT HTTP AT ALL\r\n\r\n")  # answered by aiohttp itself
                head = (await reader.read(4096)).decode("latin-1")
                writer.close()
                assert head.split(" ")[1] == "400" and "aiohttp" not in head.lower()

    with caplog.at_level("INFO", logger="aiohttp.access"):
        asyncio.run(run())
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"
             and "/webhooks/rest/" not in r.getMessage()]  # not the stand-in Rasa's lines
    assert len(lines) >= 3
    assert '"GET /" 200' in lines[0] and '"POST /api/chat" 200' in lines[1]
    assert not [line for line in lines if "?" in line or "example" in line or "555" in line
                or "127.0.0.1" in line]


def test_health_is_probed_at_most_once_every_few_seconds() -> None:
    hits: list[str] = []

    async def root(_request: web.Request) -> web.Response:
        hits.append("rasa")
        return web.json_response({"status": "ok"})

    async def run() -> None:
        rasa = web.Application()
        rasa.router.add_get("/", root)
        rasa.router.add_get("/health", root)  # the action server's, here the same server
        async with TestServer(rasa) as server:
            url = str(server.make_url("")).rstrip("/")
            config = Config(rasa_urls=(url,), actions_url=url, health_cache=0.5)
            async with TestClient(TestServer(Gateway(config).app)) as client:
                answers = await asyncio.gather(*(client.get("/healthz") for _ in range(20)))
                assert {r.status for r in answers} == {503}  # no directory database here
                for _ in range(5):
                    assert (await client.get("/healthz")).status == 503
                assert len(hits) == 2  # one probe of Rasa and one of actions for 25 calls
                await asyncio.sleep(0.6)
                await client.get("/healthz")
                assert len(hits) == 4

    asyncio.run(run())


def test_silence_from_a_dead_action_server_becomes_a_kind_apology() -> None:
    dead = f"http://127.0.0.1:{free_port()}"

    async def body(client: TestClient, seen: list) -> None:
        r = await client.post("/api/chat", json={"message": "what is hospice?"})
        messages = (await r.json())["messages"]
        assert r.status == 200 and len(messages) == 1
        text = messages[0]["text"]
        assert "couldn't answer" in text and "call 0800 000 0000" in text and "911" in text

    _with_fake_rasa(body, replies=[], actions_url=dead, human_contact="call 0800 000 0000")


def test_deliberate_silence_stays_silent_when_the_action_server_is_up() -> None:
    async def run() -> None:
        async def health(_request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        actions = web.Application()
        actions.router.add_get("/health", health)
        async with TestServer(actions) as up:
            url = str(up.make_url("")).rstrip("/")

            async def body(client: TestClient, seen: list) -> None:
                r = await client.post("/api/chat", json={"message": "hello?"})
                assert (await r.json())["messages"] == []  # e.g. handed over to a person

            seen: list = []
            async with TestServer(_fake_rasa([], seen)) as rasa:
                gateway = Gateway(Config(rasa_urls=(str(rasa.make_url("")).rstrip("/"),),
                                         actions_url=url))
                async with TestClient(TestServer(gateway.app)) as client:
                    await body(client, seen)

    asyncio.run(run())


def test_servers_die_mid_conversation_and_it_carries_on(trained_model: Path,
                                                       tmp_path: Path) -> None:
    """With the real servers: the action server dies and comes back, then Rasa restarts in
    the middle of a provider search; the same conversation carries on each time."""
    import http.cookiejar
    import urllib.request

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def chat(url: str, text: str) -> list[dict[str, Any]]:
        request = urllib.request.Request(url + "api/chat", json.dumps({"message": text}).encode(),
                                         {"Content-Type": "application/json"})
        with opener.open(request, timeout=60) as response:
            assert response.status == 200
            return json.loads(response.read())["messages"]

    with stack.running(trained_model, rasa_port=free_port(), actions_port=free_port(),
                       web_port=free_port(), var_dir=tmp_path, log_dir=tmp_path,
                       tracker_db=tmp_path / "tracker.db") as running:
        assert chat(running.web_url, "what is hospice?")[0]["sources"]  # an answer came
        stack.stop_process(running.processes["action"])
        down = chat(running.web_url, "who pays for hospice?")
        assert "couldn't answer" in down[0]["text"] and "911" in down[0]["text"]
        running.spawn("action")
        running.wait_ready(names=["action"])
        back = chat(running.web_url, "tell me more")  # the same conversation resumes
        assert back and "couldn't answer" not in back[0]["text"]

        assert "Where should I look?" in chat(running.web_url, "find hospice care near me")[0][
            "text"]
        running.restart("Rasa")  # a new Rasa process: the form's state is in the tracker
        results = chat(running.web_url, "60614")
        assert results[0]["text"].startswith("Hospices near 60614")
        assert [c["n"] for c in results[0]["cards"]] == [1, 2, 3]
        assert all(c["tel"].startswith("tel:+1") for c in results[0]["cards"])


def test_turns_go_round_robin_and_skip_an_instance_that_is_down() -> None:
    """Several Rasa instances: each turn goes to the next; a refused connection is not lost."""

    async def run() -> tuple[list[str], list[dict], list[dict]]:
        seen_a: list[dict[str, Any]] = []
        seen_b: list[dict[str, Any]] = []
        async with TestServer(_fake_rasa([{"text": "a"}], seen_a)) as a, \
                TestServer(_fake_rasa([{"text": "b"}], seen_b)) as b:
            dead = f"http://127.0.0.1:{free_port()}"
            urls = (str(a.make_url("")).rstrip("/"), dead, str(b.make_url("")).rstrip("/"))
            async with TestClient(TestServer(Gateway(Config(rasa_urls=urls)).app)) as client:
                answered = []
                for n in range(6):
                    r = await client.post("/api/chat", json={"message": f"turn {n}"})
                    assert r.status == 200
                    answered.append((await r.json())["messages"][0]["text"])
        return answered, seen_a, seen_b

    answered, seen_a, seen_b = asyncio.run(run())
    assert answered == ["a", "b", "b", "a", "b", "b"]  # a, (dead →) b, b, a, (dead →) b, b
    sent = sorted(m["message"] for m in seen_a + seen_b)
    assert sent == [f"turn {n}" for n in range(6)]  # each turn delivered exactly once
    assert len({m["sender"] for m in seen_a + seen_b}) == 1  # one conversation throughout


# --- the emergency numbers: only in knowledge/helplines.yml ----------------------------------


def test_the_emergency_line_comes_from_helplines_yml() -> None:
    helplines = default_helplines()
    line = emergency_line()
    assert line["numbers"] == [
        {"region": region, "label": by_kind["emergency"]["label"],
         "tel": by_kind["emergency"]["tel"]} for region, by_kind in helplines.numbers.items()]
    assert line["text"] == "In an emergency call 911 (US) or 999 (UK)."  # today's file
    numbers = {region: {**by_kind, "emergency": {"label": f"11{n}", "tel": f"11{n}"}}
               for n, (region, by_kind) in enumerate(helplines.numbers.items())}
    other = emergency_line(dataclasses.replace(helplines, numbers=numbers))
    assert other["text"] == "In an emergency call 110 (US) or 111 (UK)."
    assert [n["tel"] for n in other["numbers"]] == ["110", "111"]
    for text in (handlers.UNAVAILABLE, handlers.apology(None), handlers.apology("call x")):
        assert text.endswith(line["text"])


def test_the_widget_config_and_the_demo_page_carry_the_numbers_from_helplines_yml() -> None:
    async def body(client: TestClient, seen: list) -> None:
        r = await client.get("/api/config")
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
        config = await r.json()
        assert config["emergency"] == emergency_line()
        welcome = shapes.welcome()
        assert config["welcome"] == {"text": welcome.text, "buttons": [
            {"title": b.title, "payload": b.payload} for b in welcome.buttons]}
        page = await client.get("/")
        assert page.status == 200 and page.content_type == "text/html"
        text = await page.text()
        assert f"<p>{html.escape(emergency_line()['text'])}</p>" in text
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert not seen

    _with_fake_rasa(body)


def test_no_help_line_number_is_written_into_the_gateway() -> None:
    files = [*(ROOT / "gateway").rglob("*.py"), *(ROOT / "gateway" / "static").glob("*.js"),
             *(ROOT / "gateway" / "static").glob("*.html")]
    assert len(files) >= 8
    written = [f.name for f in files
               if re.search(r"(?<!\d)(911|999)(?!\d)", f.read_text(encoding="utf-8"))]
    assert written == []


# --- one public port: the gateway; Rasa and the action server private (issue 14) -------------

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = secrets.token_hex(16)  # made up per run: no secret in any file
TWILIO_NUMBER = "+15550001111"
TWILIO_PUBLIC_URL = "https://chat.example.org/webhooks/twilio/webhook"
API_TOKEN = secrets.token_hex(16)


class TwilioApi:
    """Twilio's Messages API on 127.0.0.1 (a real HTTP server), recording what it is sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.loop = asyncio.new_event_loop()
        self.port = free_port()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.ready = threading.Event()

    def _serve(self) -> None:
        async def create(request: web.Request) -> web.Response:
            form = await request.post()
            self.messages.append({k: str(v) for k, v in form.items()})
            return web.json_response({"sid": "SM" + "0" * 32, "status": "queued"}, status=201)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", create)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> TwilioApi:
        self.thread.start()
        assert self.ready.wait(30)
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)

    def wait_for(self, number: str, timeout: float = 60) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = [m for m in self.messages if m.get("To") == number]
            if sent:
                return sent
            time.sleep(0.2)
        return []


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi() as api:
        yield api


@pytest.fixture(scope="module")
def published(trained_model: Path, tmp_path_factory: pytest.TempPathFactory,
              twilio_api: TwilioApi) -> Iterator[stack.Stack]:
    """The stack as an operator publishes it: the gateway on every interface, Twilio on,
    Rasa's HTTP API on with a token."""
    var = tmp_path_factory.mktemp("published")
    env = {"NAVIGATOR_TWILIO_ACCOUNT_SID": TWILIO_SID,
           "NAVIGATOR_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
           "NAVIGATOR_TWILIO_NUMBER": TWILIO_NUMBER,
           "NAVIGATOR_TWILIO_PUBLIC_URL": TWILIO_PUBLIC_URL,
           "NAVIGATOR_TWILIO_API_BASE": f"http://127.0.0.1:{twilio_api.port}",
           "NAVIGATOR_VAR_DIR": str(var)}
    with stack.running(trained_model, rasa_port=free_port(), actions_port=free_port(),
                       web_port=free_port(), gateway_host="0.0.0.0", var_dir=var,
                       tracker_db=var / "tracker.db", log_dir=var, extra_env=env,
                       api_token=API_TOKEN) as running:
        yield running


def _listening(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (/proc/net/tcp, tcp6)."""
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # 32-bit words, each little-endian
            found.add(str(ipaddress.ip_address(
                b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))))
    return found


def _outside_address() -> str | None:
    """This machine's address on its main network interface (not loopback), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


def _reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:
        return False


def _twilio_post(url: str, fields: dict[str, str], signature: str | None,
                 data: bytes | None = None, chunked: bool = False) -> tuple[int, str, str]:
    body = urllib.parse.urlencode(fields).encode() if data is None else data
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Host": "chat.example.org", "X-Forwarded-Proto": "https"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    payload: Any = iter([body[i:i + 8192] for i in range(0, len(body), 8192)]) if chunked \
        else body
    request = urllib.request.Request(url, payload, headers)
    try:
        with urllib.request.urlopen(request, timeout=90) as reply:
            return reply.status, reply.read().decode(), reply.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers.get("Content-Type", "")


def test_only_the_gateway_is_public_and_twilio_comes_through_it(
        published: stack.Stack, twilio_api: TwilioApi) -> None:
    """Published on 0.0.0.0, the gateway is the only server bound outside loopback; a signed
    Twilio webhook sent to the gateway reaches the real assistant, a forged one is refused."""
    assert _listening(published.web_port) == {"0.0.0.0"}
    for port in (*published.rasa_ports, published.actions_port):
        assert _listening(port) == {"127.0.0.1"}, port
    outside = _outside_address()
    if outside:  # seen from the network: the gateway answers, Rasa and actions do not
        assert _reachable(outside, published.web_port)
        assert not _reachable(outside, published.rasa_port)
        assert not _reachable(outside, published.actions_port)

    webhook = f"{published.web_url}webhooks/twilio/webhook"
    number = f"+1555{secrets.randbelow(10**7):07d}"
    fields = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": TWILIO_SID,
              "From": number, "To": TWILIO_NUMBER, "Body": "what is hospice?", "NumMedia": "0"}
    signed = RequestValidator(TWILIO_TOKEN).compute_signature(TWILIO_PUBLIC_URL, fields)
    forged = RequestValidator("not-the-token").compute_signature(TWILIO_PUBLIC_URL, fields)
    for signature in (forged, None, signed[::-1]):
        status, answer, _ = _twilio_post(webhook, fields, signature)
        assert status == 403, (status, answer)
    assert twilio_api.wait_for(number, timeout=3) == []
    status, answer, content_type = _twilio_post(webhook, fields, signed)
    assert (status, content_type.split(";")[0]) == (200, "text/xml")
    assert answer.endswith("<Response/>")  # the channel's TwiML, passed back as it is
    replies = twilio_api.wait_for(number)
    assert replies and "Source:" in " ".join(m["Body"] for m in replies)


def test_twilio_bodies_over_the_channels_limit_are_refused_at_the_gateway(
        published: stack.Stack) -> None:
    webhook = f"{published.web_url}webhooks/twilio/webhook"
    fields = {"From": "+15550002222", "To": TWILIO_NUMBER, "Body": "x" * (65 * 1024)}
    signed = RequestValidator(TWILIO_TOKEN).compute_signature(TWILIO_PUBLIC_URL, fields)
    for chunked in (False, True):  # with a Content-Length, and without one
        status, answer, _ = _twilio_post(webhook, fields, signed, chunked=chunked)
        assert (status, answer) == (413, "Request body too large.\n")


def test_the_twilio_webhook_is_forwarded_byte_for_byte_and_capped() -> None:
    """What Rasa's channel receives: the same body, signature, Host and scheme; nothing over
    the limit, and no cookie or other header."""
    got: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((await request.read(), dict(request.headers)))
        return web.Response(text="<Response/>", content_type="text/xml")

    async def run() -> None:
        rasa = web.Application()
        rasa.router.add_post("/webhooks/twilio/webhook", hook)
        async with TestServer(rasa) as server:
            config = Config(rasa_urls=(str(server.make_url("")).rstrip("/"),))
            async with TestClient(TestServer(Gateway(config).app)) as client:
                body = b"Body=caf%C3%A9+%26+more&From=%2B15550003333"
                headers = {"Content-Type": "application/x-www-form-urlencoded",
                           "X-Twilio-Signature": "c2lnbmF0dXJl", "Host": "chat.example.org",
                           "X-Forwarded-Proto": "https", "Cookie": "pcn_session=x"}
                r = await client.post("/webhooks/twilio/webhook", data=body, headers=headers)
                assert (r.status, await r.text()) == (200, "<Response/>")
                assert r.content_type == "text/xml"
                big = b"Body=" + b"x" * handlers.TWILIO_MAX_BODY_BYTES
                r = await client.post("/webhooks/twilio/webhook", data=big, headers=headers)
                assert r.status == 413
        assert len(got) == 1
        sent, seen = got[0]
        assert sent == body
        assert {k: seen.get(k) for k in ("X-Twilio-Signature", "Host", "X-Forwarded-Proto",
                                          "Content-Type", "Cookie")} == {
            "X-Twilio-Signature": "c2lnbmF0dXJl", "Host": "chat.example.org",
            "X-Forwarded-Proto": "https", "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": None}

    asyncio.run(run())


def test_rasa_and_the_action_server_never_listen_on_a_public_address() -> None:
    with pytest.raises(SettingsError, match="NAVIGATOR_HOST is no longer used"):
        Settings.from_env({"NAVIGATOR_HOST": "0.0.0.0"})
    for bad in ("0.0.0.0", "::", "8.8.8.8", "example.org"):
        with pytest.raises(SettingsError, match="NAVIGATOR_PRIVATE_HOST"):
            Settings.from_env({"NAVIGATOR_PRIVATE_HOST": bad})
        with pytest.raises(stack.StackError):
            stack.check_private_host(bad)
    assert Settings.from_env({}).private_host == "127.0.0.1"
    assert Settings.from_env({}).gateway_host == "127.0.0.1"
    assert Settings.from_env({"NAVIGATOR_PRIVATE_HOST": "10.0.0.5"}).private_host == "10.0.0.5"
    assert stack.check_private_host("127.0.0.1") is None
    warning = stack.check_private_host("10.0.0.5")
    assert warning and warning.startswith("WARNING") and "never be reachable" in warning


def test_the_rasa_api_token_is_not_in_the_process_list(published: stack.Stack) -> None:
    """Any user of the machine can read every command line (/proc/*/cmdline); the token
    reaches Rasa through its environment instead, and the API still wants it."""
    in_cmdline = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if API_TOKEN.encode() in cmdline.read_bytes():
                in_cmdline.append(cmdline.parent.name)
        except OSError:
            continue  # gone meanwhile
    assert in_cmdline == []
    status = f"http://{published.host}:{published.rasa_port}/status"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(status, timeout=30)
    assert refused.value.code == 401
    with urllib.request.urlopen(f"{status}?token={API_TOKEN}", timeout=30) as answer:
        assert answer.status == 200


def test_the_api_is_never_switched_on_without_a_token() -> None:
    from bot.rasa_main import with_api_token

    run = ["run", "--enable-api", "--port", "5005"]
    assert with_api_token(run, "t0k3n") == [*run, "--auth-token", "t0k3n"]
    assert with_api_token(["run"], "t0k3n") == ["run"]  # no API asked for: no token added
    with pytest.raises(SystemExit, match="NAVIGATOR_RASA_API_TOKEN"):
        with_api_token(run, None)


def test_the_gateway_runs_from_its_own_environment_with_the_newest_aiohttp(
        published: stack.Stack) -> None:
    """`make run` starts the public gateway with .venv-gateway's interpreter, where aiohttp is
    the version frozen in gateway/constraints.txt (newer than Rasa allows) and Rasa is absent."""
    import subprocess

    import aiohttp

    cmdline = Path(f"/proc/{published.processes['web'].pid}/cmdline").read_bytes()
    assert cmdline.split(b"\0")[0].decode() == str(stack.GATEWAY_PYTHON)
    pinned = re.search(r"^aiohttp==(\S+)$", (ROOT / "gateway" / "constraints.txt").read_text(),
                       re.M)
    assert pinned
    probe = subprocess.run(
        [str(stack.GATEWAY_PYTHON), "-c", "import aiohttp, importlib.util; "
         "print(aiohttp.__version__, importlib.util.find_spec('rasa') is None)"],
        capture_output=True, text=True, timeout=60, check=True)
    assert probe.stdout.split() == [pinned.group(1), "True"]

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", text)[:3])

    assert version(pinned.group(1)) > version(aiohttp.__version__)  # .venv: Rasa pins <3.10


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private Redis server (Debian's redis-server). Not optional: a missing one fails."""
    from navigator import redisserver

    try:
        with redisserver.temporary_server() as url:
            yield url
    except redisserver.RedisUnavailable as err:
        pytest.fail(str(err))


def test_replicas_share_offered_buttons_and_revoked_ids_through_redis(redis_url: str) -> None:
    """With NAVIGATOR_WEB_RATE_LIMIT_URL a button offered by one replica may be pressed on
    another, and an id given up on one is refused by the other."""
    more = '/tell_me_more{"faq_id":"what_is_hospice"}'
    secret = secrets.token_bytes(32)

    async def run() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        replies = [{"text": "answer", "buttons": [{"title": "More", "payload": more}]}]
        async with TestServer(_fake_rasa(replies, seen)) as rasa:
            config = Config(rasa_urls=(str(rasa.make_url("")).rstrip("/"),), secret=secret,
                            rate_limit_url=redis_url)
            async with TestClient(TestServer(Gateway(config).app)) as one, \
                    TestClient(TestServer(Gateway(config).app)) as two:
                cookie = {COOKIE: sign(secret, "web-shared")}
                await one.post("/api/chat", json={"message": "hello"}, cookies=cookie)
                await two.post("/api/chat", json={"message": more}, cookies=cookie)
                await one.post("/api/restart", cookies=cookie)
                await two.post("/api/chat", json={"message": "still me?"}, cookies=cookie)
        return seen

    seen = asyncio.run(run())
    assert [m["message"] for m in seen] == ["hello", more, "still me?"]
    assert [m["sender"] for m in seen[:2]] == ["web-shared", "web-shared"]
    assert seen[2]["sender"] != "web-shared"
