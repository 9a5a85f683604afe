"""The public web gateway: the only port people reach. Rasa and the action server stay on
loopback behind it.

- `GET /` a demo page with the widget; `GET /static/...` the widget's files;
  `GET /api/config` the emergency numbers the widget shows (from knowledge/helplines.yml).
- `POST /api/chat` `{"message": "..."}` → `{"messages": [{"text", "buttons", "cards"}]}`.
  The conversation id is issued here, random and HMAC-signed, in an HttpOnly SameSite=Strict
  cookie: no client can choose or guess another person's id (Rasa's REST channel trusts a
  client-chosen `sender`, so it is never exposed).
- `POST /api/restart` starts a new conversation (a new id).
- `GET /healthz` reports Rasa, the action server and the directory database.
- `POST /webhooks/twilio/webhook` Twilio's SMS/WhatsApp webhook, forwarded to Rasa's Twilio
  channel with its body and signature intact (size-limited), so Rasa is never public.

With several Rasa instances (`rasa_urls`, which share a SQL tracker store and a Redis lock
store), turns go to them in turn (round-robin); an instance that refuses the connection is
skipped for the next, so one instance going down loses no message. A timeout is not
retried: that turn may already have been taken in.

This module is the application factory (:class:`Config`, :class:`Gateway`, :func:`make_app`);
the parts are in :mod:`gateway.routes`, :mod:`gateway.handlers`, :mod:`gateway.middlewares`,
:mod:`gateway.ratelimit` and :mod:`gateway.sessions`. Message text is never logged.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientConnectorError, ClientError, ClientSession, ClientTimeout, web
from aiohttp.abc import AbstractAccessLogger

from gateway.handlers import (
    EMERGENCY,
    GATEWAY,
    MAX_MESSAGE_CHARS,
    NO_ANSWER,
    STATIC,
    UNAVAILABLE,
)
from gateway.middlewares import (
    CSP,
    HSTS,
    MIDDLEWARES,
    SECURITY_HEADERS,
    error,
    security_headers,
)
from gateway.offers import SharedOffers, offers
from gateway.ratelimit import RateLimiter, SharedRateLimiter, limiter, networks
from gateway.routes import add_routes
from gateway.sessions import (
    COOKIE,
    SharedRevoked,
    cookie_name,
    new_session_id,
    revoked,
    sign,
    verify,
)

__all__ = [
    "COOKIE", "CSP", "EMERGENCY", "MAX_BODY_BYTES", "MAX_MESSAGE_CHARS", "NO_ANSWER",
    "SECURITY_HEADERS", "SERVER_OPTIONS", "STATIC", "UNAVAILABLE", "Config", "Gateway",
    "RateLimiter", "SharedRateLimiter", "error", "make_app", "new_session_id",
    "security_headers", "sign", "verify",
]

MAX_BODY_BYTES = 4096
log = logging.getLogger(__name__)


class AccessLog(AbstractAccessLogger):
    """One line a request: method, path (still percent-encoded, never the query string),
    status, size, seconds. No address, cookie, query or body: nothing personal."""

    def log(self, request: Any, response: Any, elapsed: float) -> None:
        self.logger.info('"%s %s" %s %s %.3f', request.method, request.rel_url.raw_path,
                         response.status, response.body_length, elapsed)


# How the HTTP server must be run (python -m gateway and the tests): no automatic
# decompression, so a body that claims gzip/deflate/br and is not gets our JSON 400 instead of
# aiohttp's bare error page or a 500 (found by tests/test_fuzz.py); the access log above.
SERVER_OPTIONS: dict[str, Any] = {"auto_decompress": False, "access_log_class": AccessLog}


@dataclass
class Config:
    """What the gateway needs; `secret` signs conversation ids (keep it the same across
    instances and restarts, or people's conversations start over)."""

    rasa_urls: tuple[str, ...] = ("http://127.0.0.1:5005",)  # one or more Rasa instances
    actions_url: str = "http://127.0.0.1:5055"
    directory_url: str | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))  # signs
    old_secrets: tuple[bytes, ...] = ()  # still verify (key rotation)
    secure_cookies: bool = False  # set True behind HTTPS: __Host- cookie, HSTS
    human_contact: str | None = None  # e.g. "call 0800 123 4567 (9am-5pm)"
    session_rate: tuple[int, float] = (20, 60.0)  # messages per seconds, per conversation
    address_rate: tuple[int, float] = (300, 60.0)  # per client address (NAT: be generous)
    new_conversation_rate: tuple[int, float] = (30, 60.0)  # new conversations per address
    trusted_proxies: tuple[str, ...] = ()  # networks whose X-Forwarded-For / Forwarded count
    timeout: float = 30.0
    health_cache: float = 5.0  # seconds /healthz reuses its last report (probes are not free)
    rate_limit_url: str | None = None  # redis://...: limits (and offers) shared by replicas
    session_lifetime: float = 12 * 3600.0  # seconds a conversation id is accepted


class Gateway:
    """The aiohttp application (``.app``) and its state: settings, rate limits, and the
    HTTP client that talks to the Rasa instances and the action server."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.session_limits = limiter(config.rate_limit_url, "session", config.session_rate)
        self.address_limits = limiter(config.rate_limit_url, "address", config.address_rate)
        self.new_conversation_limits = limiter(config.rate_limit_url, "new",
                                               config.new_conversation_rate)
        self.trusted_proxies = networks(config.trusted_proxies)
        self.revoked = revoked(config.rate_limit_url)
        self.cookie = cookie_name(config.secure_cookies)
        self.offers = offers(config.rate_limit_url, config.session_lifetime)
        self.client: ClientSession | None = None
        if not config.rasa_urls:
            raise ValueError("the gateway needs at least one Rasa URL")
        self._next_rasa = itertools.count()
        self._health: tuple[float, tuple[dict[str, str], bool]] | None = None
        self._health_lock: asyncio.Lock | None = None
        self.app = web.Application(middlewares=MIDDLEWARES, client_max_size=MAX_BODY_BYTES)
        self.app[GATEWAY] = self
        if config.secure_cookies:  # served over HTTPS: browsers should never try HTTP
            self.app[HSTS] = "max-age=31536000"
        add_routes(self.app)
        self.app.on_startup.append(self._start)
        self.app.on_cleanup.append(self._stop)

    async def _start(self, _app: web.Application) -> None:
        self.client = ClientSession(timeout=ClientTimeout(total=self.config.timeout))
        self._health_lock = asyncio.Lock()

    async def _stop(self, _app: web.Application) -> None:
        if self.client:
            await self.client.close()
        for limits in (self.session_limits, self.address_limits, self.new_conversation_limits):
            if isinstance(limits, SharedRateLimiter):
                await limits.close()
        for store in (self.offers, self.revoked):
            if isinstance(store, (SharedOffers, SharedRevoked)):
                await store.close()

    async def session(self, value: str | None) -> str | None:
        """The conversation id in a cookie value: signed with one of our keys, not expired,
        not given up with "Start over"."""
        keys = (self.config.secret, *self.config.old_secrets)
        session_id = verify(keys, value, self.config.session_lifetime)
        if session_id is None or await self.revoked.contains(session_id):
            return None
        return session_id

    def rasa_order(self) -> list[str]:
        """The Rasa instances to try for the next turn: round-robin, then the others."""
        urls = self.config.rasa_urls
        start = next(self._next_rasa) % len(urls)
        return [*urls[start:], *urls[:start]]

    async def ask_rasa(self, session_id: str, text: str) -> list[dict[str, Any]]:
        """Rasa's replies to one turn, from the first instance that takes the connection."""
        refused: ClientConnectorError | None = None
        for base in self.rasa_order():
            try:
                return await self._ask_one(base, session_id, text)
            except ClientConnectorError as exc:  # not taken in: safe to try the next one
                log.warning("a Rasa instance refused the connection; trying the next one")
                self._health = None  # a cached "ok" is out of date
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
        return [m for m in data if isinstance(m, dict)]

    async def health(self, probe: Any) -> tuple[dict[str, str], bool]:
        """``probe()``'s report and whether the gateway can serve, reused for
        ``config.health_cache`` seconds; callers meanwhile share one probe."""
        cached = self._health
        if cached and cached[0] > time.monotonic():
            return cached[1]
        assert self._health_lock is not None
        async with self._health_lock:
            cached = self._health
            if cached and cached[0] > time.monotonic():
                return cached[1]
            result = await probe()
            self._health = (time.monotonic() + self.config.health_cache, result)
            return result

    async def probe(self, url: str) -> str:
        """``"ok"`` if ``url`` answers 200 within 3 seconds, else what went wrong."""
        assert self.client is not None
        try:
            async with self.client.get(url, timeout=ClientTimeout(total=3)) as resp:
                return "ok" if resp.status == 200 else f"http {resp.status}"
        except (ClientError, asyncio.TimeoutError):
            return "down"


def make_app(config: Config) -> web.Application:
    """The gateway's aiohttp application for ``config``."""
    return Gateway(config).app
