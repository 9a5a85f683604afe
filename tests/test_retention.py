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
from pathlib import Path

import pytest
import sqlalchemy
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from navigator import retention
from navigator.retention import DAY, delete_older_than
from settings import ROOT, Settings


def _store(path: Path) -> SQLTrackerStore:
    return SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))


def _conversation(store: SQLTrackerStore, sender: str, *ages_in_days: float) -> None:
    now = time.time()
    tracker = DialogueStateTracker(sender, [])
    for age in ages_in_days:
        tracker.update(UserUttered("hello", timestamp=now - age * DAY))
        tracker.update(ActionExecuted("utter_greet", timestamp=now - age * DAY + 1))
    asyncio.run(store.save(tracker))


def _sessions(store: SQLTrackerStore, sender: str, *sessions: tuple[float, ...]) -> None:
    """One conversation in Rasa sessions: each a tuple of the ages (days) of its messages;
    a session starts as Rasa starts one (action_session_start, session_started, listen)."""
    now = time.time()
    tracker = DialogueStateTracker(sender, [])
    for ages in sessions:
        start = now - ages[0] * DAY - 10
        tracker.update(ActionExecuted("action_session_start", timestamp=start))
        tracker.update(SessionStarted(timestamp=start + 0.01))
        tracker.update(ActionExecuted("action_listen", timestamp=start + 0.03))
        for age in ages:
            tracker.update(UserUttered(f"message {age:g} days ago", timestamp=now - age * DAY))
            tracker.update(ActionExecuted("utter_greet", timestamp=now - age * DAY + 1))
    asyncio.run(store.save(tracker))


def _senders(store: SQLTrackerStore) -> set[str]:
    return set(asyncio.run(store.keys()))


def _texts(store: SQLTrackerStore, sender: str) -> list[str]:
    tracker = asyncio.run(store.retrieve_full_tracker(sender))
    return [e.text for e in tracker.events if isinstance(e, UserUttered)]


def _database(server_url: str) -> str:
    """A fresh database on the test PostgreSQL server; its URL."""
    name = f"retention_{secrets.token_hex(4)}"
    url = sqlalchemy.engine.make_url(server_url)
    admin = sqlalchemy.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def tracker(request: pytest.FixtureRequest, tmp_path: Path
            ) -> Iterator[tuple[str, SQLTrackerStore]]:
    """An empty tracker store (Rasa's SQLTrackerStore) and its URL, on both databases."""
    if request.param == "sqlite":
        path = tmp_path / "tracker.db"
        store, url = _store(path), f"sqlite:///{path}"
    else:
        url = _database(request.getfixturevalue("postgres_url"))
        parts = sqlalchemy.engine.make_url(url)
        store = SQLTrackerStore(Domain.empty(), dialect="postgresql", host=parts.host,
                                port=parts.port, db=parts.database, username=parts.username,
                                password=parts.password)
    yield url, store
    store.engine.dispose()


def test_old_conversations_go_whole_and_recent_ones_stay(
    tracker: tuple[str, SQLTrackerStore]
) -> None:
    url, store = tracker
    _conversation(store, "old", 90, 60)
    _conversation(store, "ongoing", 60, 1)  # one session since long ago: Rasa needs it whole
    _conversation(store, "new", 0.1)
    report = delete_older_than(url, days=30)
    assert (report.conversations, report.events, report.trimmed) == (1, 4, 0)
    assert _senders(store) == {"ongoing", "new"}
    assert len(_texts(store, "ongoing")) == 2


def test_active_conversations_lose_their_old_sessions(
    tracker: tuple[str, SQLTrackerStore]
) -> None:
    """An SMS number writes again yesterday: its sessions of a year and of 45 days ago go,
    yesterday's stays whole and Rasa carries on from it."""
    url, store = tracker
    sms = "+15550001111"
    _sessions(store, sms, (400, 399.9), (45,), (1, 0.99))
    _sessions(store, "recent", (10,), (1,))
    _sessions(store, "idle", (100,), (90,))
    report = delete_older_than(url, days=30)
    assert _texts(store, sms) == ["message 1 days ago", "message 0.99 days ago"]
    assert _texts(store, "recent") == ["message 10 days ago", "message 1 days ago"]
    assert _senders(store) == {sms, "recent"}
    assert (report.conversations, report.trimmed) == (1, 1)
    assert report.trimmed_events == 7 + 5  # each session: 3 events, and 2 per message
    current = asyncio.run(store.retrieve(sms))  # what Rasa loads to carry on: unchanged
    assert isinstance(current.events[0], SessionStarted) and len(current.events) == 6
    assert "12 older events from 1 active conversations" in str(report)


def test_sqlite_overwrites_what_it_deletes(tmp_path: Path) -> None:
    """secure_delete is set on the connection, not left to how SQLite was built: the
    deleted words are gone from the file itself."""
    db = tmp_path / "tracker.db"
    store = _store(db)
    words = "my-very-private-diagnosis-" + secrets.token_hex(4)
    now = time.time()
    tracker = DialogueStateTracker("+15550002222", [])
    tracker.update(SessionStarted(timestamp=now - 400 * DAY))
    tracker.update(UserUttered(words, timestamp=now - 400 * DAY + 1))
    tracker.update(SessionStarted(timestamp=now - DAY))
    tracker.update(UserUttered("hello again", timestamp=now - DAY + 1))
    asyncio.run(store.save(tracker))
    store.engine.dispose()
    assert words.encode() in db.read_bytes()
    assert delete_older_than(f"sqlite:///{db}", days=30).trimmed_events == 2
    assert words.encode() not in db.read_bytes()
    assert b"hello again" in db.read_bytes()


def test_command_line_and_an_empty_store(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    assert str(delete_older_than(f"sqlite:///{db}", days=30)) == (
        "deleted 0 conversations (0 events) last active more than 30 days ago, and 0 older "
        "events from 0 active conversations")
    _conversation(_store(db), "old", 400)
    out = subprocess.run([sys.executable, "-m", "navigator", "retention", "--days", "365", "--db",
                          f"sqlite:///{db}"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "deleted 1 conversations (2 events) last active more than 365 days ago" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "navigator", "retention", "--days", "0", "--db",
                          f"sqlite:///{db}"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "days must be more than 0" in bad.stderr


def test_navigator_run_deletes_on_a_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`navigator run` starts this schedule (NAVIGATOR_RETENTION_INTERVAL_HOURS): a run at
    start, then again every interval, until it stops."""
    db = tmp_path / "tracker.db"
    store = _store(db)
    _conversation(store, "old", 90)
    settings = Settings(tracker_url=f"sqlite:///{db}", retention_days=30,
                        retention_interval_hours=0.5 / 3600)  # every half second
    assert retention.start_schedule(Settings(retention_interval_hours=0)) is None
    schedule = retention.start_schedule(settings)
    assert schedule is not None
    try:
        _wait(lambda: "old" not in _senders(store))
        _conversation(store, "later", 45, 40)  # goes old while the assistant runs
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
