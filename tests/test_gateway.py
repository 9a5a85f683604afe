"""The public web gateway: sessions it issues itself, limits, headers, health, and faults."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestClient, TestServer

import knowledge
from gateway import handlers
from gateway.app import Config, Gateway
from gateway.ratelimit import RateLimiter
from gateway.sessions import COOKIE, sign, verify
from knowledge.emergency import emergency_line
from knowledge.helplines import default_helplines
from navigator import stack
from navigator.stack import free_port
from settings import ROOT

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
    value = sign(secret, "abc")
    assert verify(secret, value) == "abc"
    assert verify(secret, "abc") is None
    assert verify(secret, value[:-1] + ("A" if value[-1] != "A" else "B")) is None
    assert verify(b"other" * 8, value) is None


def test_the_gateway_issues_the_id_and_ignores_client_chosen_ones() -> None:
    async def body(client: TestClient, seen: list) -> None:
        r = await client.post("/api/chat", json={"message": "hello", "sender": "victim"})
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        r = await client.post("/api/chat", json={"message": "again"})
        assert "Set-Cookie" not in r.headers  # the same conversation continues
        assert seen[0]["sender"] == seen[1]["sender"] != "victim"
        client.session.cookie_jar.update_cookies({COOKIE: f"{seen[0]['sender']}.forged"})
        r = await client.post("/api/chat", json={"message": "let me in"})
        assert seen[2]["sender"] not in (seen[0]["sender"], "victim")
        assert "Set-Cookie" in r.headers

    _with_fake_rasa(body)


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
        assert "Source:" in chat(running.web_url, "what is hospice?")[0]["text"]
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
        results = "\n".join(m["text"] for m in chat(running.web_url, "60614"))
        assert "\n1. " in results and "tel:+1" in results


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
        assert await r.json() == {"emergency": emergency_line()}
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
