"""Generated hostile input (Hypothesis) through the web gateway and the Twilio webhook.

Huge, empty, binary, malformed JSON, deep nesting, control characters, emoji, right-to-left
text, SQL and template injection, HTML/script. The gateway runs as `make run` runs it
(``python -m gateway`` from .venv-gateway, the newest aiohttp); the Twilio channel runs in
process. Both talk to local stand-ins on ONE long-lived event loop (a background thread): a
Rasa REST webhook that echoes each message back (so injection strings make the round trip)
and a Twilio REST API that accepts everything (no network). No input gets a 5xx or a
traceback, the service still answers afterwards, and what the page receives is JSON (never
HTML) with strict headers; the widget renders text with textContent (covered in a real
browser by tests/test_browser.py).

Runs are reproducible (``derandomize=True``) and use no example database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import subprocess
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import ClientSession, DummyCookieJar, web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDictProxy, MultiDict
from rasa.core.channels.channel import UserMessage
from twilio.request_validator import RequestValidator

from bot.channels import twilio as twilio_module
from bot.channels.twilio import EMPTY_TWIML, HELP_TEXT, TwilioChannel, TwilioConfig
from gateway.handlers import CARD_FIELDS, MAX_MESSAGE_CHARS, SAFE_VALUES, STATIC
from gateway.middlewares import CSP
from gateway.offers import as_text
from gateway.sessions import COOKIE, sign
from navigator.stack import GATEWAY_PYTHON, free_port, stop_process, wait_http
from settings import ROOT

pytestmark = pytest.mark.servers  # starts servers or loads a model: not in make check

T = TypeVar("T")

GATEWAY_EXAMPLES = 1100  # one request each: >= 1,000 through the gateway
TWILIO_EXAMPLES = 600  # one webhook each: >= 500 through the Twilio channel
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
)


class LoopThread:
    """One event loop for every example, running in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.close()


# --- hostile text ----------------------------------------------------------------------------

HOSTILE = [
    # SQL injection
    "'; DROP TABLE events;--", "' OR '1'='1", "\" OR 1=1 --", "admin'--",
    "1' UNION SELECT sqlite_version(), NULL--", "1; DELETE FROM providers WHERE 1=1; --",
    "Robert'); DROP TABLE Students;--", "' AND SLEEP(5)--", "%' OR 1=1 --",
    # template / expression injection
    "{{7*7}}", "${7*7}", "<%= 7*7 %>", "#{7*7}", "{{constructor.constructor('alert(1)')()}}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{x}}{% endfor %}",
    "{{ self.__init__.__globals__ }}", "[% 7*7 %]", "@(7*7)", "{7*7}", "%{7*7}",
    # HTML / script
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)",
    "<svg onload=alert(1)>", "\"><script>alert(document.cookie)</script>",
    "</script><script>alert(1)</script>", "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<a href=\"javascript:alert(1)\">click</a>", "<body onload=alert(1)>", "&lt;b&gt;hi&lt;/b&gt;",
    "<style>*{display:none}</style>", "<!--", "]]>", "<math><mtext><table><mglyph><style>",
    "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    # Rasa commands, paths, shells, headers, odd values
    "/restart", "/session_start", "/greet{\"name\": \"<script>\"}", "/faq", "/nlu_fallback",
    "../../etc/passwd", "..\\..\\windows\\win.ini", "$(reboot)", "`id`", "| cat /etc/passwd",
    "\r\nSet-Cookie: pcn_session=x", "%0d%0aSet-Cookie: x=1", "%00", "__proto__",
    "{\"message\": \"nested\"}", "NaN", "null", "undefined", "true", "0", "-1", "1e309",
    "STOP", "HELP", "START", "YES", "1", "#2",
]
EXOTIC = [  # multi-code-point sequences and invisible characters
    "👨‍👩‍👧‍👦", "👍🏽", "🏳️‍🌈", "🇺🇸", "❤️", "é", "ﷺ", "𒐫", "Z̷̡̧a̵l̸g̶o̴",
    "\u200b", "\u200c", "\u200d", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff", "\u00ad",
    "\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200f", "\u061c",
    "مرحبا، أريد معلومات عن الرعاية التلطيفية", "שלום, מה זה הוספיס?", "\u202eevil\u202c.exe",
]

CONTROL = st.one_of(st.characters(min_codepoint=0, max_codepoint=0x1F),
                    st.characters(min_codepoint=0x7F, max_codepoint=0x9F))
EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
RTL = st.one_of(st.characters(min_codepoint=0x0590, max_codepoint=0x06FF),
                st.characters(min_codepoint=0xFB1D, max_codepoint=0xFDFF))
SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)  # only reachable through JSON \u escapes


def _alphabet(surrogates: bool) -> st.SearchStrategy[str]:
    parts = [CONTROL, EMOJI, RTL, st.characters(codec="utf-8"),
             st.sampled_from(" \t\n\r<>&\"'{}$%;\\/")]
    return st.one_of(*parts, SURROGATE) if surrogates else st.one_of(*parts)


def _texts(surrogates: bool) -> st.SearchStrategy[str]:
    alphabet = _alphabet(surrogates)
    piece = st.one_of(st.sampled_from(HOSTILE), st.sampled_from(EXOTIC),
                      st.text(alphabet=alphabet, max_size=12))
    return st.one_of(
        st.text(),
        st.text(alphabet=alphabet, max_size=200),
        st.sampled_from(HOSTILE),
        st.sampled_from(EXOTIC),
        st.lists(piece, min_size=1, max_size=6).map("".join),
        # long: around the gateway's 1,000-character limit
        st.tuples(st.text(alphabet=alphabet, min_size=1, max_size=6), st.integers(900, 1200))
        .map(lambda t: (t[0] * (t[1] // len(t[0]) + 1))[:t[1]]),
    )


MESSAGES = _texts(surrogates=True)
FORM_TEXTS = _texts(surrogates=False)  # a URL-encoded form cannot carry a lone surrogate

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), MESSAGES),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)

JSON_TYPES = ["application/json", "application/json; charset=utf-8",
              "application/json; charset=latin-1", "Application/JSON", "application/json;",
              "application/json; boundary=--x"]
OTHER_TYPES = ["text/plain", "text/html", "application/x-www-form-urlencoded",
               "multipart/form-data; boundary=xyz", "application/octet-stream", "application/xml",
               "application/jsonx", "json", "*/*", "", "application/javascript", "image/png"]
PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
CONTENT_TYPES = st.one_of(st.sampled_from(JSON_TYPES), st.sampled_from(OTHER_TYPES), st.none(),
                          st.text(alphabet=PRINTABLE_ASCII, max_size=40))


def _repeat_to(unit: bytes, size: int) -> bytes:
    return (unit * (size // max(len(unit), 1) + 1))[:size]


HUGE_BYTES = st.one_of(
    st.tuples(st.integers(0, 2**32), st.integers(4000, 20_000))
    .map(lambda t: random.Random(t[0]).randbytes(t[1])),
    st.tuples(st.binary(min_size=1, max_size=32), st.integers(4000, 20_000))
    .map(lambda t: _repeat_to(*t)),
    st.integers(4000, 20_000).map(lambda n: b'{"message": "' + b"A" * n + b'"}'),
)
RAW_BODIES = st.one_of(st.just(b""), st.binary(max_size=600), HUGE_BYTES)
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
            b"\x80", b"\xf8\x88\x80\x80\x80", b"\xc3", b"\xef\xbb"]
MALFORMED = [
    b"", b" ", b"{", b"}", b"[", b"{nope", b'{"message": "hi"', b'{"message": hi}',
    b"{'message': 'hi'}", b'{"message": "hi",}', b'{"message" "hi"}', b"null", b"NaN",
    b"Infinity", b"-Infinity", b'{"message": NaN}', b'\xef\xbb\xbf{"message": "hi"}',
    b'{"message": "\\ud800"}', b'{"message": "\\udfff\\ud800"}', b'{"message": "\\x41"}',
    b'{"message": "\\u00"}', b'{"message": "a\x00b"}', b'{"message": "a\nb"}',
    b'{"message": "hi"} trailing', b'{"message": "hi"}{"message": "hi"}', b"[]", b"{}", b'""',
    b'"message"', b'{"message": true}', b'{"message": ["hi"]}', b'{"message": {"text": "hi"}}',
    b'{"message": "hi", "message": null}', b'{"message": null, "message": "hi"}', b"\x00" * 10,
    '{"message": "hi"}'.encode("utf-16"), '{"message": "hi"}'.encode("utf-32"), b"1" * 4000,
    b"1e999999", b"-0", b'{"__proto__": {"message": "x"}}', b'{"message": "\\u0000"}',
    b'{"message": "' + b"\\u0000" * 600 + b'"}', b'{"message": "\\t\\n\\r "}',
    b'{"message": "' + b"\\ud83d\\ude00" * 300 + b'"}',
]


@st.composite
def message_documents(draw: st.DrawFn) -> bytes:
    """``{"message": <hostile text>}`` with stray extra keys, ASCII-escaped or raw UTF-8."""
    doc = draw(st.dictionaries(st.sampled_from(["sender", "metadata", "input_channel", "x"]),
                               JSON_VALUES, max_size=3))
    doc["message"] = draw(MESSAGES)
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8


@st.composite
def wrong_documents(draw: st.DrawFn) -> bytes:
    """Valid JSON of every other shape: "message" of the wrong type, or no object at all."""
    doc = draw(st.one_of(JSON_VALUES, st.fixed_dictionaries({"message": JSON_VALUES})))
    return json.dumps(doc).encode()


@st.composite
def deep_documents(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 3000))
    kind = draw(st.sampled_from(["lists", "dicts", "in_message", "beside_message", "unclosed"]))
    if kind == "lists":
        text = "[" * depth + "]" * depth
    elif kind == "dicts":
        text = '{"a":' * depth + "1" + "}" * depth
    elif kind == "in_message":
        text = '{"message": ' + "[" * depth + '"hi"' + "]" * depth + "}"
    elif kind == "beside_message":
        text = '{"message": "hi", "x": ' + '{"a":' * depth + "null" + "}" * depth + "}"
    else:
        text = '{"message": "hi", "x": ' + "[{" * depth
    return text.encode()


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """A valid message document, truncated or with bytes inserted or overwritten."""
    raw = json.dumps({"message": draw(FORM_TEXTS)}, ensure_ascii=draw(st.booleans())).encode()
    at = draw(st.integers(0, len(raw)))
    noise = draw(st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(BAD_UTF8)))
    how = draw(st.sampled_from(["truncate", "insert", "overwrite"]))
    if how == "truncate":
        return raw[:at]
    if how == "insert":
        return raw[:at] + noise + raw[at:]
    return raw[:at] + noise + raw[at + len(noise):]


@st.composite
def bad_utf8_documents(draw: st.DrawFn) -> bytes:
    """Invalid UTF-8 inside the message string."""
    before = draw(FORM_TEXTS).encode("utf-8").replace(b'"', b"").replace(b"\\", b"")
    return b'{"message": "' + before + draw(st.sampled_from(BAD_UTF8)) + b'"}'


CHAT_BODIES = {
    "raw": RAW_BODIES,
    "message": message_documents(),
    "wrong_type": wrong_documents(),
    "deep": deep_documents(),
    "malformed": st.sampled_from(MALFORMED),
    "mutated": mutated_documents(),
    "bad_utf8": bad_utf8_documents(),
}
CHAT_KINDS = sorted(CHAT_BODIES) + ["message"] * 4  # mostly well-formed hostile messages

# --- the gateway -----------------------------------------------------------------------------

SESSION_IDS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                      min_size=22, max_size=22)
SECRET = hashlib.sha256(b"fuzz").digest()  # 32 bytes, as NAVIGATOR_WEB_SECRET must be


def _cookies() -> st.SearchStrategy[str | None]:
    """No cookie, a valid signed id, a forged one, printable garbage, or a quoted value with
    any character or octal escape (it parses to non-ASCII text)."""
    quoted = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60)
    return st.one_of(
        st.none(),
        SESSION_IDS.map(lambda sid: f"{COOKIE}={sign(SECRET, 'web-' + sid)}"),
        SESSION_IDS.map(lambda sid: f"{COOKIE}={sign(SECRET, sid)}"),  # not a web id
        SESSION_IDS.map(lambda sid: f"{COOKIE}=web-{sid}.{int(time.time()):x}.forged"),
        st.text(alphabet=PRINTABLE_ASCII, max_size=150).map(lambda v: f"{COOKIE}={v}"),
        st.text(alphabet=PRINTABLE_ASCII, max_size=150),
        quoted.map(lambda v: f'{COOKIE}="{v}.x"'),
        SESSION_IDS.map(lambda sid: f'{COOKIE}="\\351{sid}.x"'),
    )


@dataclass(frozen=True)
class Call:
    """One generated HTTP request to the gateway."""

    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = None
    cookie: str | None = None
    chunked: bool = False
    shape: str = "echo"  # what the stand-in Rasa answers with
    kind: str = "other"
    encoding: str | None = None  # a Content-Encoding header (sent on its own connection)


SHAPES = ["echo", "echo", "echo", "buttons", "cards", "reply", "custom_list", "image",
          "nothing", "null_text", "many", "junk_items"]


def _replies(shape: str, sender: str, text: str) -> list[Any]:
    """Odd but valid REST-channel answers, each carrying the message back."""
    me = {"recipient_id": sender}
    return {
        "echo": [{**me, "text": text}],
        "buttons": [{**me, "text": text, "buttons": [
            {"title": text, "payload": "/choose"}, {"payload": text}, {"title": 7, "payload": 1}]}],
        "cards": [{**me, "custom": {"cards": [{"name": text, "phone": text,
                                               "url": "javascript:alert(1)"}]}},
                  {**me, "text": text}],
        "reply": [{**me, "text": text}, {**me, "custom": {"reply": {
            "text": text, "after": [text], "labels": [text],
            "cards": [{"name": text, "tel": text, "map": "javascript:alert(1)", "detail": None,
                       "n": True, "onclick": text}, text, None],
            "sources": [{"title": text, "url": {"x": text}}, 7]}}}],
        "custom_list": [{**me, "custom": [text, {"text": text}]}, {**me, "text": text}],
        "image": [{**me, "image": "https://example.org/x.png"}, {**me, "text": text}],
        "nothing": [],
        "null_text": [{**me, "text": None, "buttons": None, "custom": None}, {**me, "text": ""}],
        "many": [{**me, "text": text}] * 20,
        "junk_items": ["string", 5, None, [], {**me, "text": text}],
    }[shape]


@st.composite
def chat_calls(draw: st.DrawFn) -> Call:
    kind = draw(st.sampled_from(CHAT_KINDS))
    body = draw(CHAT_BODIES[kind])
    if kind == "raw" or draw(st.integers(0, 9)) == 0:
        content_type = draw(CONTENT_TYPES)
    else:  # mostly declared JSON, so that the body itself is what gets tested
        content_type = draw(st.sampled_from(JSON_TYPES))
    return Call("POST", "/api/chat", body, content_type, draw(_cookies()), draw(st.booleans()),
                draw(st.sampled_from(SHAPES)), kind)


SEGMENTS = st.text(max_size=30).map(lambda s: urllib.parse.quote(s, safe=""))
PATHS = st.one_of(
    st.sampled_from(["/api/chat", "/api/restart", "/api/", "/api", "/api/chat/", "/api/CHAT",
                     "/api/%2e%2e/chat", "/api/chat%00", "/static/", "/static/widget.js",
                     "/static/../app.py", "/static/%2e%2e/gateway.py",
                     "/static/%2e%2e%2f%2e%2e%2fpyproject.toml", "/static/index.html", "/",
                     "/index.html", "/api/chat?message=%3Cscript%3E", "/webhooks/rest/webhook"]),
    SEGMENTS.map(lambda s: "/api/" + s),
    SEGMENTS.map(lambda s: "/static/" + s),
    SEGMENTS.map(lambda s: "/" + s),
).filter(lambda p: "healthz" not in p.lower())  # health probes a database: not fuzzed here


@st.composite
def other_calls(draw: st.DrawFn) -> Call:
    """Every method on odd paths, and /api/restart with anything at all."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    body = None if method in ("GET", "HEAD") else draw(st.one_of(st.none(), RAW_BODIES))
    return Call(method, draw(PATHS), body, draw(CONTENT_TYPES) if body is not None else None,
                draw(_cookies()))


GATEWAY_CALLS = st.one_of(chat_calls(), chat_calls(), chat_calls(), other_calls())


@dataclass
class FakeRasa:
    """Rasa's REST webhook, answering with the message it was sent in the chosen shape."""

    shape: str = "echo"
    seen: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self.webhook)
        app.router.add_get("/health", self.health)  # also the action server's health check
        return app

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def webhook(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.seen.append(data)
        return web.json_response(_replies(self.shape, data["sender"], data["message"]))


@dataclass
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    path: str


@dataclass
class GatewayUnderTest:
    loop: LoopThread
    rasa: FakeRasa
    client: ClientSession
    log: Path
    sent: int = 0

    def send(self, call: Call) -> Response:
        self.rasa.shape = call.shape
        self.sent += 1
        return self.loop.run(self._send(call))

    async def _send(self, call: Call) -> Response:
        headers: dict[str, str] = {}
        skip: list[str] = []
        if call.content_type is None:
            skip.append("Content-Type")
        else:
            headers["Content-Type"] = call.content_type
        if call.cookie is not None:
            headers["Cookie"] = call.cookie
        if call.encoding is not None:
            headers["Content-Encoding"] = call.encoding
            headers["Connection"] = "close"
        data: Any = call.body
        if call.chunked and call.body is not None:
            data = _chunks(call.body)
        async with self.client.request(call.method, call.path, data=data, headers=headers,
                                       skip_auto_headers=skip) as r:
            return Response(r.status, r.headers, await r.read(), r.url.path)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 1000):
        yield body[start:start + 1000]


@pytest.fixture(scope="module")
def gateway(loop: LoopThread, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[GatewayUnderTest]:
    """The gateway as `make run` starts it: ``python -m gateway`` from .venv-gateway (the
    newest aiohttp, which is what faces people), in front of the stand-in Rasa."""
    if not GATEWAY_PYTHON.exists():
        pytest.fail(f"{GATEWAY_PYTHON} is missing: run `make gateway-venv`")
    rasa = FakeRasa()
    rasa_server = TestServer(rasa.app())
    loop.run(rasa_server.start_server())
    url = str(rasa_server.make_url("")).rstrip("/")
    var = tmp_path_factory.mktemp("fuzz-gateway")
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "NAVIGATOR_VAR_DIR": str(var),
           "NAVIGATOR_WEB_SECRET": SECRET.hex(), "NAVIGATOR_WEB_SESSION_RATE": "10000",
           "NAVIGATOR_WEB_ADDRESS_RATE": "100000",
           "NAVIGATOR_WEB_NEW_CONVERSATION_RATE": "100000"}
    with (var / "gateway.log").open("wb") as log:
        process = subprocess.Popen(
            [str(GATEWAY_PYTHON), "-m", "gateway", "--port", str(port), "--rasa-url", url,
             "--actions-url", url], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group, as stop_process expects
    try:
        wait_http(f"http://127.0.0.1:{port}/", {"gateway": process}, 60)

        async def connect() -> ClientSession:
            return ClientSession(base_url=f"http://127.0.0.1:{port}",
                                 cookie_jar=DummyCookieJar())

        client = loop.run(connect())
        yield GatewayUnderTest(loop, rasa, client, var / "gateway.log")
        loop.run(client.close())
    finally:
        stop_process(process)
        loop.run(rasa_server.close())


def _check_headers(response: Response) -> None:
    assert response.headers.get("Content-Security-Policy") == CSP
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("X-Frame-Options") == "DENY"


def _check_api(method: str, response: Response) -> dict[str, Any] | None:
    """/api answers: JSON, never HTML, not cached; a reply or an error people can read."""
    content_type = response.headers.get("Content-Type", "")
    assert content_type.split(";")[0].strip() == "application/json", content_type
    assert "html" not in content_type.lower()
    assert response.headers.get("Cache-Control") == "no-store"
    if method == "HEAD":
        return None
    data = json.loads(response.body.decode("utf-8"))
    assert isinstance(data, dict)
    if response.status == 200:
        assert set(data) == {"messages"} and isinstance(data["messages"], list)
        for message in data["messages"]:
            assert set(message) in ({"text", "buttons"}, {"text", "buttons", "cards", "after",
                                                          "sources", "labels"})
            assert isinstance(message["text"], str)
            assert all(isinstance(b["title"], str) and isinstance(b["payload"], str)
                       for b in message["buttons"])
            for card in message.get("cards", []):  # only known fields, each a plain value
                assert set(card) <= set(CARD_FIELDS), card
                assert all(isinstance(v, (str, int)) and not isinstance(v, bool)
                           for v in card.values())
                assert all(SAFE_VALUES[k].fullmatch(card[k]) for k in SAFE_VALUES if k in card)
            for source in message.get("sources", []):
                assert set(source) <= {"title", "short", "url"}
                assert all(isinstance(v, str) for v in source.values())
                assert source["url"].startswith("https://") and source["title"]
            assert all(isinstance(v, str) for v in message.get("labels", {}).values())
    else:
        assert set(data) == {"error", "message"}
        assert isinstance(data["error"], str) and isinstance(data["message"], str)
        assert data["error"] and data["message"]
    return data


def _check_chat(call: Call, response: Response, new: list[dict[str, Any]],
                data: dict[str, Any]) -> None:
    assert response.status in (200, 400, 413, 415), (response.status, data)
    if response.status != 200:
        assert not new  # nothing bad reached the assistant
        return
    assert len(new) == 1
    sender, text = new[0]["sender"], new[0]["message"]
    assert re.fullmatch(r"web-[A-Za-z0-9_-]{22}", sender)  # issued by the gateway, never chosen
    assert text and text == text.strip() and len(text) <= MAX_MESSAGE_CHARS
    assert all(ch in "\n\t" or ch.isprintable() for ch in text), ascii(text)
    if call.shape == "echo":  # the text came back unchanged: escaped by JSON, nothing else
        assert data == {"messages": [{"text": text, "buttons": []}]}


def test_gateway_survives_generated_hostile_requests(gateway: GatewayUnderTest) -> None:
    @settings(FUZZ, max_examples=GATEWAY_EXAMPLES)
    @given(call=GATEWAY_CALLS)
    def fuzz(call: Call) -> None:
        before = len(gateway.rasa.seen)
        response = gateway.send(call)
        new = gateway.rasa.seen[before:]
        assert response.status < 500, (response.status, response.body[:300])
        _check_headers(response)
        is_api = response.path.startswith("/api/")
        data = _check_api(call.method, response) if is_api else None
        if call.kind != "other":
            assert data is not None
            _check_chat(call, response, new, data)
        else:
            assert not new or call.path.startswith("/api/chat")

    fuzz()
    assert gateway.sent >= 1000, gateway.sent
    log = gateway.log.read_text(errors="replace")
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]

    # still answering, as before
    response = gateway.send(Call("POST", "/api/chat", b'{"message": "who pays for hospice?"}',
                                 "application/json", kind="message"))
    assert response.status == 200
    assert json.loads(response.body) == {"messages": [
        {"text": "who pays for hospice?", "buttons": []}]}
    assert response.headers["Content-Type"].startswith("application/json")
    _check_headers(response)
    page = gateway.send(Call("GET", "/"))
    assert page.status == 200 and "/static/widget.js" in page.body.decode()
    _check_headers(page)
    restart = gateway.send(Call("POST", "/api/restart"))
    assert restart.status == 200 and json.loads(restart.body) == {"messages": []}


def test_injection_strings_come_back_as_json_data_never_as_html(
    gateway: GatewayUnderTest,
) -> None:
    """What the page receives is JSON with nosniff: the browser never parses it as HTML. A
    typed "/intent" (never offered as a button) reaches Rasa as text, without its slash."""
    for payload in HOSTILE:
        if not payload.strip() or not payload.isprintable():
            continue
        body = json.dumps({"message": payload}).encode()
        response = gateway.send(Call("POST", "/api/chat", body, "application/json",
                                     kind="message"))
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        text = json.loads(response.body)["messages"][0]["text"]
        assert text == as_text(payload.strip()) and not text.startswith("/")
    # and the widget only ever puts text into the page as text
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", (STATIC / "widget.js").read_text(encoding="utf-8"),
                  flags=re.S)
    assert "textContent" in code
    for sink in (r"\.innerHTML\b", r"\.outerHTML\b", r"insertAdjacentHTML", r"document\.write",
                 r"\beval\s*\(", r"new\s+Function\b", r"\.srcdoc\b"):
        assert not re.search(sink, code), sink


@st.composite
def compressed_calls(draw: st.DrawFn) -> Call:
    """A JSON body that claims a Content-Encoding it may not have."""
    body = draw(st.one_of(RAW_BODIES, message_documents(), st.sampled_from(MALFORMED)))
    encoding = draw(st.sampled_from(["gzip", "deflate", "br", "identity", "x-gzip", "compress",
                                     "gzip, deflate", "GZIP", "zstd", ""]))
    return Call("POST", "/api/chat", body, draw(st.sampled_from(JSON_TYPES)),
                kind="compressed", encoding=encoding)


def test_gateway_survives_bodies_with_a_false_content_encoding(
    gateway: GatewayUnderTest,
) -> None:
    """Binary bodies that claim to be compressed (Content-Encoding is the client's to set)."""

    @settings(FUZZ, max_examples=150)
    @given(call=compressed_calls())
    def fuzz(call: Call) -> None:
        response = gateway.send(call)
        assert response.status < 500, (response.status, response.body[:300])
        _check_headers(response)
        _check_api("POST", response)

    fuzz()
    response = gateway.send(Call("POST", "/api/chat", b'{"message": "still there?"}',
                                 "application/json", kind="message"))
    assert response.status == 200


# --- the Twilio webhook ----------------------------------------------------------------------

ACCOUNT_SID = "AC" + "f" * 32
AUTH_TOKEN = "fuzz-test-token-not-a-secret"
OUR_NUMBER = "+15550001111"
PUBLIC_URL = "https://chat.example.org/webhooks/twilio/webhook"
FORM = "application/x-www-form-urlencoded"
FORM_TYPES = [FORM, "application/x-www-form-urlencoded; charset=utf-8",
              "APPLICATION/X-WWW-FORM-URLENCODED", " application/x-www-form-urlencoded ;x=y"]
LIMIT = twilio_module.MAX_BODY_BYTES
FIELD_NAMES = ["Body", "From", "To", "NumMedia", "MessageSid", "AccountSid", "MediaUrl0",
               "MediaContentType0", "SmsStatus", "ApiVersion", "NumSegments", "ProfileName",
               "WaId"]
KEYWORDS = ["STOP", "stop", " Stop ", "START", "UNSTOP", "YES", "yes", "HELP", "info", "CANCEL",
            "1", "#2", " 3. ", "0", "999", "", " ", "\n", "\u200b"]
NUMBERS = ["+15551234567", "+15557654321", "whatsapp:+447700900123", "WhatsApp:+15551234567",
           "+1 555 123 4567", "", " ", "\t", "whatsapp:", "+", "client:alice", "sip:x@y",
           "\u202e+15551234567", "+١٥٥٥١٢٣٤٥٦٧", "<script>alert(1)</script>",
           "'; DROP TABLE optouts;--"]
NUM_MEDIA = ["0", "1", "10", "-1", "999999999999999999999999", "NaN", "1e3", " 2 ", "٣", "",
             "0x10", "Infinity"]


@st.composite
def huge_form_texts(draw: st.DrawFn) -> str:
    """Text whose form encoding comes out near the channel's 64 KB limit (either side)."""
    unit = draw(st.text(alphabet=_alphabet(False), min_size=1, max_size=4))
    target = draw(st.integers(LIMIT - 3000, LIMIT + 6000))
    size = len(urllib.parse.quote_plus(unit))
    return unit * (target // size + 1)


STRAY_VALUES = st.one_of(FORM_TEXTS, st.sampled_from(KEYWORDS), st.sampled_from(NUMBERS),
                         st.sampled_from(NUM_MEDIA))


@st.composite
def form_pairs(draw: st.DrawFn) -> list[tuple[str, str]]:
    """From/Body/NumMedia (each sometimes missing), plus strays and duplicated fields."""
    often = st.integers(0, 9).map(lambda n: n > 0)
    pairs: list[tuple[str, str]] = []
    if draw(often):
        pairs.append(("From", draw(st.one_of(st.sampled_from(NUMBERS[:5]), st.sampled_from(NUMBERS),
                                             FORM_TEXTS))))
    if draw(often):
        body = st.one_of(FORM_TEXTS, st.sampled_from(KEYWORDS), st.sampled_from(HOSTILE),
                         huge_form_texts())
        pairs.append(("Body", draw(body)))
    if draw(st.booleans()):
        pairs.append(("NumMedia", draw(st.one_of(st.sampled_from(NUM_MEDIA), FORM_TEXTS))))
    if draw(st.booleans()):
        pairs.append(("MessageSid", draw(st.one_of(st.just("SM" + "0" * 32), FORM_TEXTS))))
    names = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))
    pairs += draw(st.lists(st.tuples(names, STRAY_VALUES), max_size=5))
    return draw(st.permutations(pairs))


def _bare(text: str) -> str:
    return text.replace("%", "%25").replace("&", "%26").replace("=", "%3D")


def _encode(pairs: list[tuple[str, str]], how: str) -> bytes:
    if how == "raw":  # unescaped UTF-8, control characters and all (only %, & and = escaped)
        return "&".join(f"{_bare(k)}={_bare(v)}" for k, v in pairs).encode()
    body = urllib.parse.urlencode(pairs).encode()
    return {
        "plain": body,
        "separators": b"&&" + body.replace(b"&", b"&&&") + b"&",
        "blank_names": body + b"&=x&=&Body&From",
        "bad_escapes": body + b"&Body=%zz%&From=%FF%FE%ED%A0%80",
        "semicolons": body.replace(b"&", b";"),
        "many_fields": body + b"&" + b"&".join(b"f%d=%d" % (i, i) for i in range(250)),
    }[how]


def _signature(body: bytes, token: str = AUTH_TOKEN, url: str = PUBLIC_URL) -> str:
    """What Twilio sends for this body: over the decoded fields, repeated ones included."""
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        pairs = []
    return RequestValidator(token).compute_signature(url, MultiDict(pairs))


@dataclass(frozen=True)
class Hook:
    """One generated webhook request."""

    body: bytes
    content_type: str | None
    signature: str | None
    signed: bool  # carries Twilio's signature for exactly this body and URL


SIGNATURE_KINDS = ["valid"] * 6 + ["none", "empty", "garbage", "wrong_token",
                   "wrong_url", "other_body", "mangled"]


@st.composite
def hooks(draw: st.DrawFn) -> Hook:
    if draw(st.integers(0, 5)) == 0:  # not a form at all
        body = draw(st.one_of(RAW_BODIES, st.sampled_from(BAD_UTF8), st.sampled_from(MALFORMED),
                              st.integers(LIMIT - 2, LIMIT + 2).map(lambda n: b"a" * n),
                              message_documents()))
    else:
        how = draw(st.sampled_from(["plain", "plain", "plain", "raw", "separators",
                                    "blank_names", "bad_escapes", "semicolons", "many_fields"]))
        body = _encode(draw(form_pairs()), how)
    if draw(st.integers(0, 9)) == 0:
        content_type = draw(CONTENT_TYPES)
    else:
        content_type = draw(st.sampled_from(FORM_TYPES))
    kind = draw(st.sampled_from(SIGNATURE_KINDS))
    signature: str | None = {
        "valid": lambda: _signature(body),
        "none": lambda: None,
        "empty": lambda: "",
        "garbage": lambda: draw(st.text(max_size=40)),
        "wrong_token": lambda: _signature(body, token="not-the-token"),
        "wrong_url": lambda: _signature(body, url="https://evil.example.com/webhook"),
        "other_body": lambda: _signature(body + b"&Body=more"),
        "mangled": lambda: _signature(body)[::-1],
    }[kind]()
    return Hook(body, content_type, signature, kind == "valid")


@dataclass
class TwilioUnderTest:
    loop: LoopThread
    channel: TwilioChannel
    received: list[UserMessage] = field(default_factory=list)
    outbound: list[dict[str, str]] = field(default_factory=list)
    sent: int = 0

    async def on_new_message(self, message: UserMessage) -> None:
        self.received.append(message)

    def handle(self, hook: Hook) -> twilio_module.WebhookReply:
        self.sent += 1
        return self.loop.run(self.channel.handle(hook.body, hook.content_type, hook.signature,
                                                 self.on_new_message))


@pytest.fixture(scope="module")
def twilio(loop: LoopThread, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TwilioUnderTest]:
    outbound: list[dict[str, str]] = []

    async def accept(request: web.Request) -> web.Response:  # Twilio's API, accepting anything
        form = await request.post()
        outbound.append({k: str(v) for k, v in form.items()})
        return web.json_response({"sid": "SM" + "0" * 32, "status": "queued"}, status=201)

    async def start() -> TestServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", accept)
        server = TestServer(app)
        await server.start_server()
        return server

    api = loop.run(start())
    config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, number=OUR_NUMBER,
                          public_url=PUBLIC_URL, api_base_url=str(api.make_url("")).rstrip("/"))
    channel = TwilioChannel(config, var_dir=Path(tmp_path_factory.mktemp("twilio-var")))
    yield TwilioUnderTest(loop, channel, outbound=outbound)
    loop.run(channel.sender.close())
    loop.run(api.close())


def _first(body: bytes, name: str) -> str | None:
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                       max_num_fields=twilio_module.MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None
    return next((value for key, value in pairs if key == name), None)


def test_twilio_webhook_survives_generated_hostile_requests(twilio: TwilioUnderTest) -> None:
    @settings(FUZZ, max_examples=TWILIO_EXAMPLES)
    @given(hook=hooks())
    def fuzz(hook: Hook) -> None:
        before = len(twilio.received)
        reply = twilio.handle(hook)
        new = twilio.received[before:]
        assert reply.status in (200, 400, 403, 413), (reply.status, reply.body)
        if len(hook.body) > LIMIT:
            assert reply.status == 413
        if not hook.signed:
            assert reply.status != 200 and not new
        sender = (_first(hook.body, "From") or "").strip()
        if (hook.signed and hook.content_type in FORM_TYPES and len(hook.body) <= LIMIT
                and sender):
            assert reply.status == 200, (reply.status, reply.body)
        if reply.status == 200:
            assert reply.body == EMPTY_TWIML and reply.content_type.startswith("text/xml")
            assert len(new) <= 1
            for message in new:
                assert message.sender_id == sender and message.text.strip()
                assert message.input_channel == "twilio"
        else:  # a short fixed text that echoes nothing back
            assert reply.content_type.startswith("text/plain") and len(reply.body) < 80
            assert "<" not in reply.body and not new

    fuzz()
    assert twilio.sent >= 500, twilio.sent
    assert twilio.received, "no generated message reached the assistant"

    # still processing: a question reaches the assistant, HELP is answered through the API
    number = "+15559870000"
    fields = {"From": number, "To": OUR_NUMBER, "Body": "what is hospice?", "NumMedia": "0",
              "MessageSid": "SM" + "1" * 32}
    body = urllib.parse.urlencode(fields).encode()
    reply = twilio.handle(Hook(body, FORM, _signature(body), True))
    assert reply.status == 200 and reply.body == EMPTY_TWIML
    last = twilio.received[-1]
    assert (last.text, last.sender_id, last.message_id) == ("what is hospice?", number,
                                                            "SM" + "1" * 32)
    help_fields = {**fields, "Body": "HELP", "MessageSid": "SM" + "2" * 32}  # a new message
    body = urllib.parse.urlencode(help_fields).encode()
    assert twilio.handle(Hook(body, FORM, _signature(body), True)).status == 200
    assert {"From": OUR_NUMBER, "To": number, "Body": HELP_TEXT} in twilio.outbound
    unsigned = twilio.handle(Hook(body, FORM, None, False))
    assert unsigned.status == 403
