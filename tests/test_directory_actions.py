"""The provider-search actions against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import directory as actions
from knowledge.directory import nice_case
from providers.geo import gazetteer
from settings import Settings


def _tracker(slots: dict[str, Any], text: str = "", entities: list | None = None) -> Tracker:
    message = {"text": text, "intent": {"name": "x", "confidence": 1.0},
               "entities": entities or []}
    return Tracker("u1", slots, message, [], False, None, {}, "action_listen")


def _run(action: Any, slots: dict[str, Any], text: str = "", entities: list | None = None):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, _tracker(slots, text, entities), {}))
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


@pytest.fixture()
def on_directory(directory_engine, monkeypatch):
    monkeypatch.setattr(actions, "SETTINGS", Settings(directory_url=str(directory_engine.url
                                                                       .render_as_string(False))))
    return directory_engine


def _place(text: str) -> dict[str, Any]:
    return asdict(gazetteer().resolve(text))


def test_search_more_detail_and_widen(on_directory):
    messages, slots = _run(actions.ActionSearchProviders(),
                           {"place": _place("36109"), "service": "hospice"})
    text = messages[0]["text"]
    assert text.index("1. Baptist Hospice") < text.index("2. Compassus-Montgomery")
    assert "tel:+13343955000" in text and "https://www.google.com/maps/search/" in text
    assert messages[0]["custom"]["cards"][0]["name"] == "Baptist Hospice"
    state = slots["search"]
    assert state["radius"] == 25 and len(state["shown"]) == 3

    more, slots = _run(actions.ActionProviderMore(), {"search": state})
    assert more[0]["text"].startswith("Hospices near 36109") and "4. " in more[0]["text"]
    assert len(slots["search"]["shown"]) == 6

    second, _ = _run(actions.ActionProviderDetail(), {"search": state}, "call the second one",
                     [{"entity": "ordinal", "value": 2}])
    assert second[0]["text"].startswith("Compassus-Montgomery")
    assert "tel:+13345176112" in second[0]["text"]
    named, _ = _run(actions.ActionProviderDetail(), {"search": state},
                    "more about baptist hospice")
    assert named[0]["text"].startswith("Baptist Hospice\n301 Interstate Park")
    assert "Medicare-certified hospice since 1984" in named[0]["text"]

    wider, slots = _run(actions.ActionProviderWiden(), {"search": state})
    assert slots["search"]["radius"] == 50 and "1. Baptist Hospice" in wider[0]["text"]


def test_no_data_is_said_honestly_and_names_nobody(on_directory):
    messages, _ = _run(actions.ActionSearchProviders(),
                       {"place": _place("Boise, ID"), "service": "pain_management"})
    text = messages[0]["text"]
    assert text.startswith("I don't have a list of pain clinics in the US yet")
    assert "referral" in text and "\n1. " not in text
    uk, _ = _run(actions.ActionSearchProviders(), {"place": _place("Leeds"),
                                                    "service": "hospice"})
    assert uk[0]["text"].startswith("I don't have a list of hospices in the UK yet")
    assert "https://www.hospiceuk.org/" in uk[0]["text"]


def test_nothing_within_reach_points_to_care_compare(on_directory):
    messages, slots = _run(actions.ActionSearchProviders(),
                           {"place": _place("99723"), "service": "hospice"})
    assert "couldn't find any hospices within 100 miles" in messages[0]["text"]
    assert "https://www.medicare.gov/care-compare/" in messages[0]["text"]
    widest, _ = _run(actions.ActionProviderWiden(), {"search": slots["search"]})
    assert "That's as far as I search" in widest[0]["text"]


def test_database_trouble_gets_a_clear_reply(tmp_path, monkeypatch):
    monkeypatch.setattr(actions, "SETTINGS",
                        Settings(directory_url=f"sqlite:///{tmp_path}/missing/nothing.db"))
    messages, slots = _run(actions.ActionSearchProviders(),
                           {"place": _place("36109"), "service": "hospice"})
    assert messages[0]["text"].startswith("Sorry, I can't search the list of services")
    assert slots == {}


def test_a_locked_directory_gets_a_clear_reply_then_works_again(tmp_path, monkeypatch):
    """Another program holds the SQLite directory exclusively (an import, a backup tool):
    the search says it can't search right now, without crashing; once free, it works."""
    import sqlite3

    from providers import bundled, db

    url = f"sqlite:///{tmp_path / 'directory.db'}"
    engine = db.make_engine(url)
    bundled.ensure_ready(engine, progress=False)
    engine.dispose()
    monkeypatch.setattr(actions, "SETTINGS", Settings(directory_url=url))
    holder = sqlite3.connect(tmp_path / "directory.db", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE providers SET name = name WHERE id = 1")  # takes the write lock
    try:
        messages, slots = _run(actions.ActionSearchProviders(),
                               {"place": _place("36109"), "service": "hospice"})
        assert messages[0]["text"].startswith("Sorry, I can't search the list of services")
        assert slots == {}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    messages, slots = _run(actions.ActionSearchProviders(),
                           {"place": _place("36109"), "service": "hospice"})
    assert "\n1. " in messages[0]["text"] and slots["search"]["total"] > 0


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("6061", "doesn't look like a ZIP code"),
        ("99999", "I couldn't find the ZIP code 99999"),
        ("Springfield", "There is more than one Springfield"),
        ("BT1 1AA", "Northern Ireland"),
        ("xqzzy", "Sorry, I couldn't find that place"),
    ],
)
def test_form_reasks_saying_what_was_wrong(typed, expected):
    dispatcher = CollectingDispatcher()
    slots = actions.ValidateProviderSearchForm().validate_location(
        typed, dispatcher, _tracker({}), {})
    assert slots["location"] is None and slots["location_attempts"] == 1
    assert expected in dispatcher.messages[0]["text"]
    if typed == "Springfield":
        payloads = [b["payload"] for b in dispatcher.messages[0]["buttons"]]
        assert '/inform_location{"location":"Springfield, IL"}' in payloads


def test_form_gives_up_kindly_after_three_tries():
    dispatcher = CollectingDispatcher()
    slots = actions.ValidateProviderSearchForm().validate_location(
        "xqzzy", dispatcher, _tracker({"location_attempts": 2}), {})
    assert slots["place"] is None and slots["location"] == "xqzzy"
    assert "haven't searched" in dispatcher.messages[0]["text"]


def test_form_accepts_a_place_and_learns_the_country():
    dispatcher = CollectingDispatcher()
    slots = actions.ValidateProviderSearchForm().validate_location(
        "LS1 4DY", dispatcher, _tracker({}), {})
    assert slots["location"] == "LS1 4DY" and slots["place"]["country"] == "GB"
    assert slots["region"] == "UK" and dispatcher.messages == []


def test_names_are_shown_in_normal_case():
    assert nice_case("BAPTIST HOSPICE OF THE SOUTH, LLC") == "Baptist Hospice of the South, LLC"
    assert nice_case("Already Mixed Case") == "Already Mixed Case"
