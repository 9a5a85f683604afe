"""Retention: conversations idle past the limit are deleted whole; active ones lose their
older sessions (an SMS number's year-old history too); SQLite overwrites what it deletes;
``navigator run`` runs it on a schedule. On SQLite and on PostgreSQL, seeded through Rasa's
own SQLTrackerStore."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, UserUttered

from navigator import retention
from navigator.retention import DAY, delete_older_than
from settings import ROOT, Settings

if TYPE_CHECKING:
    from conftest import TrackerDB, TrackerStores


def _conversation(*ages_in_days: float) -> list[Event]:
    """A conversation's events: a message and a reply at each age (days)."""
    now = time.time()
    events: list[Event] = []
    for age in ages_in_days:
        events.append(UserUttered("hello", timestamp=now - age * DAY))
        events.append(ActionExecuted("utter_greet", timestamp=now - age * DAY + 1))
    return events


def _sessions(*sessions: tuple[float, ...]) -> list[Event]:
    """One conversation in Rasa sessions: each a tuple of the ages (days) of its messages;
    a session starts as Rasa starts one (action_session_start, session_started, listen)."""
    now = time.time()
    events: list[Event] = []
    for ages in sessions:
        start = now - ages[0] * DAY - 10
        events.append(ActionExecuted("action_session_start", timestamp=start))
        events.append(SessionStarted(timestamp=start + 0.01))
        events.append(ActionExecuted("action_listen", timestamp=start + 0.03))
        for age in ages:
            events.append(UserUttered(f"message {age:g} days ago", timestamp=now - age * DAY))
            events.append(ActionExecuted("utter_greet", timestamp=now - age * DAY + 1))
    return events


def _senders(store: SQLTrackerStore) -> set[str]:
    return set(asyncio.run(store.keys()))


def _texts(store: SQLTrackerStore, sender: str) -> list[str]:
    tracker = asyncio.run(store.retrieve_full_tracker(sender))
    return [e.text for e in tracker.events if isinstance(e, UserUttered)]


@pytest.fixture
def tracker(tracker_stores: TrackerStores, tracker_dialect: str) -> Iterator[TrackerDB]:
    """An empty tracker store (Rasa's SQLTrackerStore) and its URL, on both databases."""
    db = tracker_stores(tracker_dialect)
    yield db
    db.close()


def test_old_conversations_go_whole_and_recent_ones_stay(tracker: TrackerDB) -> None:
    url, store = tracker.url, tracker.store
    tracker.seed({"old": _conversation(90, 60),
                  # one session since long ago: Rasa needs it whole
                  "ongoing": _conversation(60, 1),
                  "new": _conversation(0.1)})
    report = delete_older_than(url, days=30)
    assert (report.conversations, report.events, report.trimmed) == (1, 4, 0)
    assert _senders(store) == {"ongoing", "new"}
    assert len(_texts(store, "ongoing")) == 2


def test_active_conversations_lose_their_old_sessions(tracker: TrackerDB) -> None:
    """An SMS number writes again yesterday: its sessions of a year and of 45 days ago go,
    yesterday's stays whole and Rasa carries on from it."""
    url, store = tracker.url, tracker.store
    sms = "+15550001111"
    tracker.seed({sms: _sessions((400, 399.9), (45,), (1, 0.99)),
                  "recent": _sessions((10,), (1,)),
                  "idle": _sessions((100,), (90,))})
    report = delete_older_than(url, days=30)
    assert _texts(store, sms) == ["message 1 days ago", "message 0.99 days ago"]
    assert _texts(store, "recent") == ["message 10 days ago", "message 1 days ago"]
    assert _senders(store) == {sms, "recent"}
    assert (report.conversations, report.trimmed) == (1, 1)
    assert report.trimmed_events == 7 + 5  # each session: 3 events, and 2 per message
    current = asyncio.run(store.retrieve(sms))  # what Rasa loads to carry on: unchanged
    assert isinstance(current.events[0], SessionStarted) and len(current.events) == 6
    assert "12 older events from 1 active conversations" in str(report)


def test_sqlite_overwrites_what_it_deletes(tracker_stores: TrackerStores) -> None:
    """secure_delete is set on the connection, not left to how SQLite was built: the
    deleted words are gone from the file itself."""
    words = "my-very-private-diagnosis-" + secrets.token_hex(4)
    now = time.time()
    tracker = tracker_stores(conversations={"+15550002222": [
        SessionStarted(timestamp=now - 400 * DAY),
        UserUttered(words, timestamp=now - 400 * DAY + 1),
        SessionStarted(timestamp=now - DAY),
        UserUttered("hello again", timestamp=now - DAY + 1)]})
    tracker.close()
    db = tracker.path
    assert words.encode() in db.read_bytes()
    assert delete_older_than(tracker.url, days=30).trimmed_events == 2
    assert words.encode() not in db.read_bytes()
    assert b"hello again" in db.read_bytes()


def test_command_line_and_an_empty_store(tracker_stores: TrackerStores) -> None:
    tracker = tracker_stores()  # the file is made when first used: not yet
    assert str(delete_older_than(tracker.url, days=30)) == (
        "deleted 0 conversations (0 events) last active more than 30 days ago, and 0 older "
        "events from 0 active conversations")
    tracker.seed({"old": _conversation(400)})
    out = subprocess.run([sys.executable, "-m", "navigator", "retention", "--days", "365", "--db",
                          tracker.url], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "deleted 1 conversations (2 events) last active more than 365 days ago" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "navigator", "retention", "--days", "0", "--db",
                          tracker.url], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "days must be more than 0" in bad.stderr


def test_navigator_run_deletes_on_a_schedule(
    tracker_stores: TrackerStores, capsys: pytest.CaptureFixture[str]
) -> None:
    """`navigator run` starts this schedule (NAVIGATOR_RETENTION_INTERVAL_HOURS): a run at
    start, then again every interval, until it stops."""
    tracker = tracker_stores(conversations={"old": _conversation(90)})
    store = tracker.store
    settings = Settings(tracker_url=tracker.url, retention_days=30,
                        retention_interval_hours=0.5 / 3600)  # every half second
    assert retention.start_schedule(Settings(retention_interval_hours=0)) is None
    schedule = retention.start_schedule(settings)
    assert schedule is not None
    try:
        _wait(lambda: "old" not in _senders(store))
        tracker.seed({"later": _conversation(45, 40)})  # goes old while the assistant runs
        _wait(lambda: "later" not in _senders(store))
    finally:
        schedule.stop()
    lines = capsys.readouterr().out.splitlines()
    assert schedule.runs >= 2 and lines[0].startswith("retention: deleted 1 conversations")
    assert not schedule._thread.is_alive()


def _wait(done: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the schedule did not run"
        time.sleep(0.1)
