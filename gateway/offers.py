"""The button payloads the assistant offered each web conversation, so that a message
starting with "/" (which Rasa reads as an intent, not as text) is passed on only when it is
one of them. Anything else starting with "/" is sent as text, without its slashes.

Bounded: the newest :data:`PER_CONVERSATION` payloads of each conversation, at most
:data:`CONVERSATIONS` conversations in memory (the least recently used go first). With
``NAVIGATOR_WEB_RATE_LIMIT_URL`` they are kept in Redis instead, so that every gateway
replica knows them (keys and payloads stored hashed, expiring with the conversation).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict

log = logging.getLogger(__name__)

INTENT_PREFIX = "/"  # Rasa's INTENT_MESSAGE_PREFIX
PER_CONVERSATION = 64
CONVERSATIONS = 50_000


def as_text(message: str) -> str:
    """``message`` as plain text for Rasa: without the leading slashes that would make it an
    intent (and the spaces after them)."""
    while message.startswith(INTENT_PREFIX):
        message = message[len(INTENT_PREFIX):].strip()
    return message


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class Offers:
    """Offered payloads per conversation, in this process's memory."""

    def __init__(self, per_conversation: int = PER_CONVERSATION,
                 conversations: int = CONVERSATIONS) -> None:
        self.per_conversation, self.conversations = per_conversation, conversations
        self._offered: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()

    async def remember(self, conversation: str, payloads: list[str]) -> None:
        """Note the intent payloads (those starting with "/") among ``payloads``."""
        payloads = [p for p in payloads if p.startswith(INTENT_PREFIX)]
        if not payloads:
            return
        known = self._offered.pop(conversation, None) or OrderedDict()
        for payload in payloads:
            known.pop(payload, None)
            known[payload] = None
        while len(known) > self.per_conversation:
            known.popitem(last=False)
        self._offered[conversation] = known
        while len(self._offered) > self.conversations:
            self._offered.popitem(last=False)

    async def offered(self, conversation: str, payload: str) -> bool:
        """True if the assistant offered ``payload`` in ``conversation``."""
        return payload in self._offered.get(conversation, ())

    async def close(self) -> None:
        """Nothing to release (the same interface as :class:`SharedOffers`)."""


class SharedOffers:
    """The same, in Redis, shared by every gateway replica. If Redis cannot be reached a
    payload counts as not offered (it is then sent as text) and a warning is logged."""

    def __init__(self, url: str, ttl: float, per_conversation: int = PER_CONVERSATION) -> None:
        from redis import asyncio as redis

        self.ttl, self.per_conversation = ttl, per_conversation
        self.redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    @staticmethod
    def _key(conversation: str) -> str:
        return f"navigator:offers:{_digest(conversation)}"

    async def remember(self, conversation: str, payloads: list[str]) -> None:
        payloads = [p for p in payloads if p.startswith(INTENT_PREFIX)]
        if not payloads:
            return
        key, now = self._key(conversation), time.time()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {_digest(p): now for p in payloads})
                pipe.zremrangebyrank(key, 0, -self.per_conversation - 1)
                pipe.expire(key, int(self.ttl) + 1)
                await pipe.execute()
        except Exception as err:  # noqa: BLE001 - buttons then read as text, say so
            log.warning("offered buttons not stored (%s)", type(err).__name__)

    async def offered(self, conversation: str, payload: str) -> bool:
        try:
            return await self.redis.zscore(self._key(conversation), _digest(payload)) is not None
        except Exception as err:  # noqa: BLE001
            log.warning("offered buttons unavailable (%s)", type(err).__name__)
            return False

    async def close(self) -> None:
        await self.redis.close()


def offers(url: str | None, ttl: float) -> Offers | SharedOffers:
    """Shared offers when there is a Redis URL, else this process's memory."""
    return SharedOffers(url, ttl) if url else Offers()
