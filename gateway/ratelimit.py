"""Sliding-window rate limits: in memory for one gateway process, or in Redis so that every
gateway replica counts together (``NAVIGATOR_WEB_RATE_LIMIT_URL``); and the client address
they count by (:func:`client_address`: forwarding headers only from trusted proxies)."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
import time
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

log = logging.getLogger(__name__)


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


def limiter(limit_url: str | None, name: str,
            rate: tuple[int, float]) -> RateLimiter | SharedRateLimiter:
    """A shared limiter when there is a Redis URL, else one in this process's memory."""
    return SharedRateLimiter(limit_url, name, *rate) if limit_url else RateLimiter(*rate)


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """``NAVIGATOR_TRUSTED_PROXIES``'s entries as networks."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(hop: str) -> Address | None:
    """One hop of X-Forwarded-For or a Forwarded ``for=``: an IP address, with or without a
    port or brackets; None for "unknown", obfuscated names and garbage."""
    hop = hop.strip().strip('"').strip()
    if hop.startswith("["):  # [v6] or [v6]:port
        hop = hop[1:].split("]", 1)[0]
    elif hop.count(":") == 1:  # v4:port
        hop = hop.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(hop)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _hops(headers: Mapping[str, str] | object) -> list[str]:
    """The forwarding chain, client first: X-Forwarded-For, else Forwarded's ``for=``."""
    getall = getattr(headers, "getall", None)

    def values(name: str) -> list[str]:
        if getall is not None:
            return list(getall(name, []))
        value = headers.get(name) if isinstance(headers, Mapping) else None
        return [value] if value else []

    forwarded_for = values("X-Forwarded-For")
    if forwarded_for:
        return [hop for value in forwarded_for for hop in value.split(",")]
    hops = []
    for value in values("Forwarded"):
        for element in value.split(","):
            params = {name.strip().lower(): value for name, _, value in
                      (part.partition("=") for part in element.split(";"))}
            hops.append(params.get("for", ""))
    return hops


def client_address(peer: str | None, headers: Mapping[str, str] | object,
                   trusted: tuple[Network, ...]) -> str:
    """The address to count a request by. The peer, unless it is a trusted proxy: then the
    forwarding chain is read from the right, skipping trusted proxies, and the first address
    that is not one is the client. A chain that cannot be read stops at the last trusted hop
    (so nobody behind a proxy can choose their own address)."""
    if not peer:
        return "unknown"
    current = _address(peer)
    if current is None or not trusted:
        return peer
    if not any(current in net for net in trusted if net.version == current.version):
        return str(current)
    for hop in reversed(_hops(headers)):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not any(current in net for net in trusted if net.version == current.version):
            break
    return str(current)
