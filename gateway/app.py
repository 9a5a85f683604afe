"""The public web gateway: the only port people reach. Rasa and the action server stay on
loopback behind it.

- `GET /` a demo page with the widget; `GET /static/...` the widget's files.
- `POST /api/chat` `{"message": "..."}` → `{"messages": [{"text", "buttons", "cards"}]}`.
  The conversation id is issued here, random and HMAC-signed, in an HttpOnly SameSite=Strict
  cookie: no client can choose or guess another person's id (Rasa's REST channel trusts a
  client-chosen `sender`, so it is never exposed).
- `POST /api/restart` starts a new conversation (a new id).
- `GET /healthz` reports Rasa, the action server and the directory database.

With several Rasa instances (`rasa_urls`, which share a SQL tracker store and a Redis lock
store), turns go to them in turn (round-robin); an instance that refuses the connection is
skipped for the next, so one instance going down loses no message. A timeout is not
retried: that turn may already have been taken in.

Bad input gets a clear JSON error: 400 (malformed), 413 (too big), 415 (not JSON), 429 (too
many, with Retry-After), 503 (the assistant is down). Message text is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientConnectorError, ClientError, ClientSession, ClientTimeout, web

STATIC = Path(__file__).parent / "static"
COOKIE = "pcn_session"
MAX_BODY_BYTES = 4096
MAX_MESSAGE_CHARS = 1000
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
       "object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
NO_ANSWER = ("Sorry, part of the assistant isn't working right now, so I couldn't answer. "
             "Please try again in a few minutes.")
EMERGENCY = "In an emergency call 911 (US) or 999 (UK)."
# How the HTTP server must be run (python -m gateway and the tests): no automatic
# decompression, so a body that claims gzip/deflate/br and is not gets our JSON 400 instead of
# aiohttp's bare error page or a 500 (found by tests/test_fuzz.py).
SERVER_OPTIONS = {"auto_decompress": False}
UNAVAILABLE = ("Sorry, the assistant isn't available right now. Please try again in a few "
               "minutes. In an emergency call 911 (US) or 999 (UK).")
log = logging.getLogger(__name__)


@dataclass
class Config:
    """What the gateway needs; `secret` signs conversation ids (keep it the same across
    instances and restarts, or people's conversations start over)."""

    rasa_urls: tuple[str, ...] = ("http://127.0.0.1:5005",)  # one or more Rasa instances
    actions_url: str = "http://127.0.0.1:5055"
    directory_url: str | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    secure_cookies: bool = False  # set True behind HTTPS
    human_contact: str | None = None  # e.g. "call 0800 123 4567 (9am-5pm)"
    session_rate: tuple[int, float] = (20, 60.0)  # messages per seconds, per conversation
    address_rate: tuple[int, float] = (300, 60.0)  # per client address (NAT: be generous)
    timeout: float = 30.0
    rate_limit_url: str | None = None  # redis://...: limits shared by every gateway replica


class RateLimiter:
    """Sliding-window counts per key, in memory (one gateway process)."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self.hits: dict[str, list[float]] = {}

    def check(self, key: str) -> float:
        """0 if allowed (and counted), else seconds until the next request is allowed."""
        now = time.monotonic()
        recent = [t for t in self.hits.get(key, []) if now - t < self.window]
        if len(recent) >= self.limit:
            self.hits[key] = recent
            return self.window - (now - recent[0])
        if len(self.hits) >= self.max_keys:
            self.hits.clear()  # bounded memory under a flood of new keys
        recent.append(now)
        self.hits[key] = recent
        return 0.0

    async def wait_for(self, key: str) -> float:
        """:meth:`check`, with the same signature as :class:`SharedRateLimiter`."""
        return self.check(key)


# One atomic step in Redis: drop hits older than the window, then refuse (with the seconds
# to wait) or count this one. Numbers travel as strings so Lua does not round them.
_SLIDING_WINDOW = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tostring(window - (now - tonumber(oldest[2])))
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return '0'
"""


class SharedRateLimiter:
    """The same sliding window, kept in Redis so that every gateway replica counts together
    (``NAVIGATOR_WEB_RATE_LIMIT_URL``). Keys are stored hashed (no addresses in Redis). If
    Redis cannot be reached, requests are let through and a warning is logged: the limits
    guard against abuse, and people should not be turned away because of them."""

    def __init__(self, url: str, name: str, limit: int, window: float) -> None:
        from redis import asyncio as redis

        self.limit, self.window, self.name = limit, window, name
        self.redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._script = self.redis.register_script(_SLIDING_WINDOW)

    async def wait_for(self, key: str) -> float:
        """0 if allowed (and counted), else seconds until the next request is allowed."""
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        now = time.time()
        try:
            wait = await self._script(keys=[f"navigator:rate:{self.name}:{digest}"],
                                      args=[repr(now), repr(self.window), self.limit,
                                            f"{now!r}-{secrets.token_hex(4)}"])
        except Exception as err:  # noqa: BLE001 - fail open, say so
            log.warning("rate limits unavailable (%s): request let through",
                         type(err).__name__)
            return 0.0
        return max(0.0, float(wait))

    async def close(self) -> None:
        await self.redis.close()


def sign(secret: bytes, session_id: str) -> str:
    """`<id>.<signature>` for the cookie."""
    mac = hmac.new(secret, session_id.encode(), hashlib.sha256).digest()
    return f"{session_id}.{base64.urlsafe_b64encode(mac[:18]).decode().rstrip('=')}"


def verify(secret: bytes, value: str | None) -> str | None:
    """The id inside a signed cookie value, or None when absent or forged."""
    if not value or value.count(".") != 1 or len(value) > 100:
        return None
    session_id = value.split(".", 1)[0]
    return session_id if hmac.compare_digest(sign(secret, session_id), value) else None


def new_session_id() -> str:
    """A random conversation id (128 bits)."""
    return secrets.token_urlsafe(16)


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    """A JSON error people can read."""
    return web.json_response({"error": code, "message": message}, status=status,
                             headers=headers or None)


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    """Strict headers on every response; JSON errors instead of HTML pages."""
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        response = error(413, "too_large", "That message is too long. Please send a shorter "
                                           "one.")
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            response = error(exc.status, "http_error", exc.reason)
        else:  # 404s and redirects get the same strict headers
            response = web.Response(status=exc.status, text=f"{exc.status} {exc.reason}",
                                    headers={k: v for k, v in exc.headers.items()
                                             if k.lower() == "location"})
    except Exception:  # noqa: BLE001 - never leak a trace to the client
        log.exception("gateway error on %s", request.path)
        response = error(500, "internal", "Sorry, something went wrong. Please try again.")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


class Gateway:
    """The aiohttp application and its state."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.session_limits: RateLimiter | SharedRateLimiter
        self.address_limits: RateLimiter | SharedRateLimiter
        if config.rate_limit_url:
            self.session_limits = SharedRateLimiter(config.rate_limit_url, "session",
                                                    *config.session_rate)
            self.address_limits = SharedRateLimiter(config.rate_limit_url, "address",
                                                    *config.address_rate)
        else:
            self.session_limits = RateLimiter(*config.session_rate)
            self.address_limits = RateLimiter(*config.address_rate)
        self.client: ClientSession | None = None
        if not config.rasa_urls:
            raise ValueError("the gateway needs at least one Rasa URL")
        self._next_rasa = itertools.count()
        self.app = web.Application(middlewares=[security_headers],
                                   client_max_size=MAX_BODY_BYTES)
        self.app.router.add_get("/", self.index)
        self.app.router.add_static("/static/", STATIC, show_index=False)
        self.app.router.add_post("/api/chat", self.chat)
        self.app.router.add_post("/api/restart", self.restart)
        self.app.router.add_get("/healthz", self.health)
        self.app.on_startup.append(self._start)
        self.app.on_cleanup.append(self._stop)

    async def _start(self, _app: web.Application) -> None:
        self.client = ClientSession(timeout=ClientTimeout(total=self.config.timeout))

    async def _stop(self, _app: web.Application) -> None:
        if self.client:
            await self.client.close()
        for limits in (self.session_limits, self.address_limits):
            if isinstance(limits, SharedRateLimiter):
                await limits.close()

    async def index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    def _set_cookie(self, response: web.StreamResponse, session_id: str) -> None:
        response.set_cookie(COOKIE, sign(self.config.secret, session_id), httponly=True,
                            samesite="Strict", secure=self.config.secure_cookies, path="/")

    async def chat(self, request: web.Request) -> web.Response:
        address = request.remote or "unknown"
        wait = await self.address_limits.wait_for(address)
        if wait:
            return error(429, "rate_limited", "You're sending messages very fast. Please "
                         "wait a moment.", **{"Retry-After": str(int(wait) + 1)})
        if request.content_type != "application/json":
            return error(415, "not_json", "Please send JSON: {\"message\": \"...\"}.")
        if request.headers.get("Content-Encoding", "identity").lower() != "identity":
            return error(400, "bad_json", "Sorry, I couldn't read that message.")
        try:
            raw = await request.read()
        except web.RequestPayloadError:
            return error(400, "bad_json", "Sorry, I couldn't read that message.")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return error(400, "bad_json", "Sorry, I couldn't read that message.")
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message.strip():
            return error(400, "no_message", "Please type a message.")
        text = "".join(ch for ch in message if ch in "\n\t" or ch.isprintable()).strip()
        if len(text) > MAX_MESSAGE_CHARS:
            return error(413, "too_long", f"Please keep messages under {MAX_MESSAGE_CHARS} "
                         "characters.")
        if not text:
            return error(400, "no_message", "Please type a message.")
        session_id = verify(self.config.secret, request.cookies.get(COOKIE))
        fresh = session_id is None
        session_id = session_id or new_session_id()
        wait = await self.session_limits.wait_for(session_id)
        if wait:
            return error(429, "rate_limited", "You're sending messages very fast. Please "
                         "wait a moment.", **{"Retry-After": str(int(wait) + 1)})
        try:
            replies = await self._ask_rasa(session_id, text)
        except (ClientError, asyncio.TimeoutError, ValueError):
            log.warning("Rasa did not answer")
            response = error(503, "unavailable", UNAVAILABLE)
        else:
            if not replies and await self._probe(f"{self.config.actions_url}/health") != "ok":
                # Rasa answers nothing when its action server is down: say so, kindly.
                log.warning("action server down: answered with an apology")
                replies = [_message({"text": self._apology()})]
            response = web.json_response({"messages": replies})
        if fresh:
            self._set_cookie(response, session_id)
        return response

    def rasa_order(self) -> list[str]:
        """The Rasa instances to try for the next turn: round-robin, then the others."""
        urls = self.config.rasa_urls
        start = next(self._next_rasa) % len(urls)
        return [*urls[start:], *urls[:start]]

    async def _ask_rasa(self, session_id: str, text: str) -> list[dict[str, Any]]:
        refused: ClientConnectorError | None = None
        for base in self.rasa_order():
            try:
                return await self._ask_one(base, session_id, text)
            except ClientConnectorError as exc:  # not taken in: safe to try the next one
                log.warning("a Rasa instance refused the connection; trying the next one")
                refused = exc
        assert refused is not None
        raise refused

    async def _ask_one(self, base: str, session_id: str, text: str) -> list[dict[str, Any]]:
        assert self.client is not None
        url = f"{base}/webhooks/rest/webhook"
        async with self.client.post(url, json={"sender": session_id, "message": text}) as resp:
            if resp.status != 200:
                raise ValueError(f"Rasa answered {resp.status}")
            data = await resp.json()
        return [_message(m) for m in data if isinstance(m, dict)]

    def _apology(self) -> str:
        contact = self.config.human_contact
        person = (f" To talk to a person, {contact}." if contact else
                  " Your doctor, nurse or GP can also help.")
        return f"{NO_ANSWER}{person} {EMERGENCY}"

    async def restart(self, _request: web.Request) -> web.Response:
        response = web.json_response({"messages": []})
        self._set_cookie(response, new_session_id())
        return response

    async def health(self, _request: web.Request) -> web.Response:
        rasa, actions, database = await asyncio.gather(
            asyncio.gather(*(self._probe(f"{url}/") for url in self.config.rasa_urls)),
            self._probe(f"{self.config.actions_url}/health"),
            asyncio.to_thread(_database_ok, self.config.directory_url),
        )
        up = sum(r == "ok" for r in rasa)
        report = {
            "rasa": "ok" if up == len(rasa) else f"{up} of {len(rasa)} up" if up else "down",
            "actions": actions,
            "database": database,
        }
        ok = all(v == "ok" for v in report.values())
        serving = up > 0 and actions == "ok" and database == "ok"  # some Rasa down: still on
        return web.json_response({"status": "ok" if ok else "degraded", **report},
                                 status=200 if serving else 503)

    async def _probe(self, url: str) -> str:
        assert self.client is not None
        try:
            async with self.client.get(url, timeout=ClientTimeout(total=3)) as resp:
                return "ok" if resp.status == 200 else f"http {resp.status}"
        except (ClientError, asyncio.TimeoutError):
            return "down"


def _message(raw: dict[str, Any]) -> dict[str, Any]:
    """One bot message for the widget: text, buttons, optional structured cards."""
    custom = raw.get("custom") if isinstance(raw.get("custom"), dict) else {}
    return {
        "text": raw.get("text") or "",
        "buttons": [{"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                    for b in raw.get("buttons") or [] if isinstance(b, dict)],
        "cards": custom.get("cards") or [],
    }


def _database_ok(url: str | None) -> str:
    from sqlalchemy import text

    from providers import db

    try:
        with db.session_factory(url)() as session:
            session.execute(text("SELECT 1 FROM providers LIMIT 1"))
        return "ok"
    except Exception:  # noqa: BLE001 - any failure is "down", reported, never raised
        return "down"
