"""Retention: conversations idle for longer than the limit are deleted whole, others kept."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from navigator.retention import DAY, delete_older_than
from settings import ROOT


def _store(path: Path) -> SQLTrackerStore:
    return SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))


def _conversation(store: SQLTrackerStore, sender: str, *ages_in_days: float) -> None:
    now = time.time()
    tracker = DialogueStateTracker(sender, [])
    for age in ages_in_days:
        tracker.update(UserUttered("hello", timestamp=now - age * DAY))
        tracker.update(ActionExecuted("utter_greet", timestamp=now - age * DAY + 1))
    asyncio.run(store.save(tracker))


def _senders(store: SQLTrackerStore) -> set[str]:
    return set(asyncio.run(store.keys()))


def test_old_conversations_go_whole_and_recent_ones_stay(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    store = _store(db)
    _conversation(store, "old", 90, 60)
    _conversation(store, "ongoing", 60, 1)  # started long ago, active yesterday: kept whole
    _conversation(store, "new", 0.1)
    report = delete_older_than(f"sqlite:///{db}", days=30)
    assert (report.conversations, report.events) == (1, 4)
    assert _senders(store) == {"ongoing", "new"}
    ongoing = asyncio.run(store.retrieve_full_tracker("ongoing"))
    assert len([e for e in ongoing.events if isinstance(e, UserUttered)]) == 2


def test_command_line_and_an_empty_store(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    assert str(delete_older_than(f"sqlite:///{db}", days=30)) == \
        "deleted 0 conversations (0 events)"
    _conversation(_store(db), "old", 400)
    out = subprocess.run([sys.executable, "-m", "navigator", "retention", "--days", "365", "--db",
                          f"sqlite:///{db}"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "deleted 1 conversations (2 events) last active more than 365 days ago" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "navigator", "retention", "--days", "0", "--db",
                          f"sqlite:///{db}"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "days must be more than 0" in bad.stderr
