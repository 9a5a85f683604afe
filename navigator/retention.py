"""Delete conversations nobody has touched for a set number of days (privacy retention).

A conversation is every event of one sender id in Rasa's SQL tracker store (table
`events`). It goes as a whole once its newest event is older than the cut-off, so a
conversation still in progress is never cut in half.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import create_engine, inspect, text

DAY = 86_400.0


@dataclass(frozen=True)
class RetentionReport:
    """What a retention run removed."""

    conversations: int
    events: int

    def __str__(self) -> str:
        return f"deleted {self.conversations} conversations ({self.events} events)"


def delete_older_than(url: str, days: float, now: float | None = None) -> RetentionReport:
    """Delete conversations whose newest event is more than `days` days old."""
    if days <= 0:
        raise ValueError("days must be more than 0")
    cutoff = (now if now is not None else time.time()) - days * DAY
    engine = create_engine(url, future=True)
    try:
        if "events" not in inspect(engine).get_table_names():
            return RetentionReport(0, 0)
        stale = ("SELECT sender_id FROM events GROUP BY sender_id "
                 "HAVING MAX(timestamp) < :cutoff")
        with engine.begin() as conn:
            senders = conn.execute(text(f"SELECT COUNT(*) FROM ({stale}) AS s"),
                                   {"cutoff": cutoff}).scalar()
            deleted = conn.execute(text(f"DELETE FROM events WHERE sender_id IN ({stale})"),
                                   {"cutoff": cutoff}).rowcount
        return RetentionReport(int(senders or 0), int(deleted or 0))
    finally:
        engine.dispose()
