"""A Redis lock store whose every change is atomic, for several Rasa instances.

Rasa keeps one "ticket lock" per conversation so that its turns are taken one at a time.
Rasa 3.6's ``RedisLockStore`` changes that lock by reading it, changing it in Python and
writing it back, with nothing in between to stop another instance doing the same. Two
instances taking two messages of one conversation at the same moment can both read "no
tickets", both issue ticket 1, and both go ahead: one of the turns is then lost when the
tracker is saved (``tests/test_scale_out.py`` shows it; upstream: RasaHQ/rasa#9213, and a fix
that was merged then reverted, #11256 / #11428).

``AtomicRedisLockStore`` keeps Rasa's ticket lock and its waiting loop, and makes each change
(issue a ticket, drop expired ones, finish a ticket, delete the lock when nobody waits) one
Redis transaction: ``WATCH`` the key, read, change, ``MULTI``/``EXEC``, retried if another
instance changed the key in between. Use it in endpoints.yml as::

    lock_store:
      type: bot.lock_store.AtomicRedisLockStore
      url: <host>
      port: 6379
      password: ${NAVIGATOR_LOCK_STORE_PASSWORD}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

T = TypeVar("T")
_DELETE = object()  # a change's request to delete the lock


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` with atomic read-change-write of each conversation's lock."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # how Rasa builds a lock store named by module path
            kwargs = {"host": endpoint_config.url or "localhost",
                      **{k: v for k, v in endpoint_config.kwargs.items() if k != "type"}}
        super().__init__(**kwargs)

    def _change(self, conversation_id: str,
                change: Callable[[TicketLock | None], tuple[Any, T]]) -> T:
        """Apply ``change`` to the stored lock in one transaction; return its result.

        ``change`` gets the lock (or None) and returns (what to store, result): a lock to
        save, ``_DELETE`` to delete it, or None to leave it as it is.
        """
        key = self.key_prefix + conversation_id

        def transaction(pipe: Any) -> T:
            raw = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(raw)) if raw else None
            store, result = change(lock)
            pipe.multi()
            if store is _DELETE:
                pipe.delete(key)
            elif store is not None:
                pipe.set(key, store.dumps())
            return result

        return self.red.transaction(transaction, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Issue the next ticket for the conversation (creating its lock if needed)."""

        def issue(lock: TicketLock | None) -> tuple[TicketLock, int]:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        return self._change(conversation_id, issue)

    def update_lock(self, conversation_id: str) -> None:
        """Drop expired tickets (a crashed instance's ticket expires after its lifetime)."""

        def drop_expired(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock:
                lock.remove_expired_tickets()
            return lock, None

        self._change(conversation_id, drop_expired)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Remove a finished ticket."""

        def finish(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._change(conversation_id, finish)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Remove a finished ticket, and the lock if nobody else waits: in one step, so a
        ticket issued meanwhile by another instance is never deleted with it."""

        def finish_and_maybe_delete(lock: TicketLock | None) -> tuple[Any, None]:
            if not lock:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else _DELETE), None

        self._change(conversation_id, finish_and_maybe_delete)
