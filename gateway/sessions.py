"""Conversation ids the gateway issues itself: random, HMAC-signed, kept in an HttpOnly
SameSite=Strict cookie, so no client can choose or guess another person's id.

- Web ids start with ``web-``, so a signed cookie can never name an SMS conversation (whose
  ids are phone numbers).
- The cookie value is ``<id>.<issued, hex seconds>.<signature>``: an id is accepted for the
  conversation's lifetime after it was issued, then the person starts afresh.
- Keys rotate: the first key signs, every key verifies (``NAVIGATOR_WEB_SECRET="new,old"``).
- "Start over" revokes the old id (:class:`Revoked`; in Redis with
  ``NAVIGATOR_WEB_RATE_LIMIT_URL``, so every replica refuses it) until it would have expired.
- With secure cookies the name gets the ``__Host-`` prefix (HTTPS only, this host only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence

log = logging.getLogger(__name__)

COOKIE = "pcn_session"
SECURE_COOKIE = f"__Host-{COOKIE}"
PREFIX = "web-"
MAX_VALUE_CHARS = 120
CLOCK_SKEW = 60.0  # seconds an id may seem to come from the future (replicas' clocks)


def cookie_name(secure: bool) -> str:
    """The cookie's name: ``__Host-`` prefixed when it is only sent over HTTPS."""
    return SECURE_COOKIE if secure else COOKIE


def sign(secret: bytes, session_id: str, issued: float | None = None) -> str:
    """``<id>.<issued>.<signature>`` for the cookie (``issued``: now by default)."""
    payload = f"{session_id}.{int(time.time() if issued is None else issued):x}"
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(mac[:18]).decode().rstrip('=')}"


def verify(keys: bytes | Sequence[bytes], value: str | None,
           lifetime: float = 12 * 3600.0) -> str | None:
    """The id inside a signed cookie value, or None when absent, forged, signed with an
    unknown key, not a web id, or older than ``lifetime`` seconds."""
    if not value or not value.isascii() or value.count(".") != 2 or len(value) > MAX_VALUE_CHARS:
        return None  # a quoted cookie may carry any character: not one of ours
    session_id, issued_hex, _ = value.split(".")
    if not session_id.startswith(PREFIX):
        return None
    try:
        issued = int(issued_hex, 16)
    except ValueError:
        return None
    now = time.time()
    if not now - lifetime <= issued <= now + CLOCK_SKEW:
        return None
    for key in (keys,) if isinstance(keys, bytes) else keys:
        if hmac.compare_digest(sign(key, session_id, issued).encode(), value.encode()):
            return session_id
    return None


def new_session_id() -> str:
    """A random web conversation id (128 bits)."""
    return PREFIX + secrets.token_urlsafe(16)


class Revoked:
    """Ids given up with "Start over", in this process's memory until they would have
    expired (at most ``max_ids``; the oldest go first)."""

    def __init__(self, max_ids: int = 100_000) -> None:
        self.max_ids = max_ids
        self._until: OrderedDict[str, float] = OrderedDict()

    async def add(self, session_id: str, seconds: float) -> None:
        self._until[session_id] = time.monotonic() + seconds
        while len(self._until) > self.max_ids:
            self._until.popitem(last=False)

    async def contains(self, session_id: str) -> bool:
        until = self._until.get(session_id)
        if until is not None and until < time.monotonic():
            del self._until[session_id]
            return False
        return until is not None

    async def close(self) -> None:
        """Nothing to release (the same interface as :class:`SharedRevoked`)."""


class SharedRevoked:
    """The same, in Redis for every replica (ids stored hashed). If Redis cannot be reached
    an id counts as not revoked and a warning is logged."""

    def __init__(self, url: str) -> None:
        from redis import asyncio as redis

        self.redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    @staticmethod
    def _key(session_id: str) -> str:
        return f"navigator:revoked:{hashlib.sha256(session_id.encode()).hexdigest()[:32]}"

    async def add(self, session_id: str, seconds: float) -> None:
        try:
            await self.redis.set(self._key(session_id), b"1", ex=max(1, int(seconds) + 1))
        except Exception as err:  # noqa: BLE001 - say so, do not fail "Start over"
            log.warning("could not revoke a conversation id (%s)", type(err).__name__)

    async def contains(self, session_id: str) -> bool:
        try:
            return bool(await self.redis.exists(self._key(session_id)))
        except Exception as err:  # noqa: BLE001
            log.warning("revoked ids unavailable (%s)", type(err).__name__)
            return False

    async def close(self) -> None:
        await self.redis.close()


def revoked(url: str | None) -> Revoked | SharedRevoked:
    """Shared revocations when there is a Redis URL, else this process's memory."""
    return SharedRevoked(url) if url else Revoked()
