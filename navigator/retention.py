"""Delete what is older than the retention limit from Rasa's SQL tracker store (privacy).

A conversation is every event of one sender id in the table ``events``; Rasa splits it into
sessions (a new one after 60 minutes of silence, each starting with a ``session_started``
event) and loads only the latest. A run deletes

* every conversation whose newest event is older than the cut-off, whole;
* in conversations still active, every event older than the cut-off that comes before the
  latest session: older sessions go, so a stable id (an SMS number) never keeps a year of
  history. The current session is kept whole, as Rasa needs it to carry on.

SQLite overwrites what it deletes (``PRAGMA secure_delete`` set on the connection, not left to
how SQLite was built). :class:`RetentionSchedule` runs it periodically (``navigator run``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection

from settings import Settings

DAY = 86_400.0
HOUR = 3_600.0
logger = logging.getLogger(__name__)

_STALE = "SELECT sender_id FROM events GROUP BY sender_id HAVING MAX(timestamp) < :cutoff"
_OLD_SESSIONS = (  # older than the cut-off and before the conversation's latest session
    "timestamp < :cutoff AND timestamp < (SELECT MAX(s.timestamp) FROM events s "
    "WHERE s.sender_id = events.sender_id AND s.type_name = 'session_started')"
)


@dataclass(frozen=True)
class RetentionReport:
    """What a retention run removed."""

    conversations: int  # idle past the limit, deleted whole
    events: int
    days: float = 0.0
    trimmed: int = 0  # active conversations whose older sessions were deleted
    trimmed_events: int = 0

    def __str__(self) -> str:
        return (f"deleted {self.conversations} conversations ({self.events} events) last "
                f"active more than {self.days:g} days ago, and {self.trimmed_events} older "
                f"events from {self.trimmed} active conversations")


def _secure_delete(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.close()


def delete_older_than(url: str, days: float, now: float | None = None) -> RetentionReport:
    """Delete idle conversations and the older sessions of active ones (see the module)."""
    if days <= 0:
        raise ValueError("days must be more than 0")
    cutoff = (now if now is not None else time.time()) - days * DAY
    engine = create_engine(url, future=True)
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        event.listen(engine, "connect", _secure_delete)
    try:
        if "events" not in inspect(engine).get_table_names():
            return RetentionReport(0, 0, days)
        with engine.begin() as conn:
            params = {"cutoff": cutoff}
            senders = _count(conn, f"SELECT COUNT(*) FROM ({_STALE}) AS s", params)
            deleted = conn.execute(text(f"DELETE FROM events WHERE sender_id IN ({_STALE})"),
                                   params).rowcount
            trimmed = _count(conn, "SELECT COUNT(DISTINCT sender_id) FROM events WHERE "
                             + _OLD_SESSIONS, params)
            old = conn.execute(text("DELETE FROM events WHERE " + _OLD_SESSIONS),
                               params).rowcount
        if sqlite:
            _flush_wal(engine)
        return RetentionReport(senders, int(deleted or 0), days, trimmed, int(old or 0))
    finally:
        engine.dispose()


def _count(conn: Connection, query: str, params: dict) -> int:
    return int(conn.execute(text(query), params).scalar() or 0)


def _flush_wal(engine: object) -> None:
    """In WAL mode the deleted rows' old pages sit in the -wal file until a checkpoint."""
    with engine.connect() as conn:  # type: ignore[attr-defined]
        if str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower() == "wal":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


class RetentionSchedule:
    """Runs :func:`delete_older_than` now and then every ``hours`` in a background thread,
    until :meth:`stop`; a failed run is logged (without the URL) and retried next time."""

    def __init__(self, url: str, days: float, hours: float,
                 report: Callable[[str], None] | None = None) -> None:
        if hours <= 0:
            raise ValueError("hours must be more than 0")
        self.url, self.days, self.interval = url, days, hours * HOUR
        self.report = report or (lambda line: logger.info("%s", line))
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> RetentionSchedule:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.report(f"retention: {delete_older_than(self.url, self.days)}")
            except Exception as err:  # noqa: BLE001 - keep serving; try again next time
                self.report(f"retention failed ({type(err).__name__}); trying again later")
            self.runs += 1
            self._stop.wait(self.interval)


def start_schedule(settings: Settings) -> RetentionSchedule | None:
    """``navigator run``'s schedule (lines printed to the console), started; None when
    ``NAVIGATOR_RETENTION_INTERVAL_HOURS`` is 0."""
    if settings.retention_interval_hours <= 0:
        return None
    return RetentionSchedule(settings.tracker, settings.retention_days,
                             settings.retention_interval_hours,
                             report=lambda line: print(line, flush=True)).start()


def conversation_ids(url: str) -> list[str]:
    """Every conversation id in the tracker store (for finding an SMS hand-off's id)."""
    engine = create_engine(url, future=True)
    try:
        if "events" not in inspect(engine).get_table_names():
            return []
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT DISTINCT sender_id FROM events"))]
    finally:
        engine.dispose()
