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
    assert messages[0]["custom"]["reply"]["cards"][0]["name"] == "Baptist Hospice"
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
                                                    "service": "pain_management"})
    assert uk[0]["text"].startswith("I don't have a list of pain clinics in the UK yet")
    assert "GP" in uk[0]["text"] and "\n1. " not in uk[0]["text"]


UK_CAVEAT = "This UK list is not complete"


def test_uk_postcode_lists_registered_hospices_with_the_caveat(on_directory):
    messages, slots = _run(actions.ActionSearchProviders(),
                           {"place": _place("SW1A 1AA"), "service": "hospice"})
    text = messages[0]["text"]
    assert text.startswith("Hospices near SW1A 1AA, nearest first:")
    trinity = text.index("3. Royal Trinity Hospice, about 3 miles away\n"
                         "In-patient hospice, 28 beds\n")
    assert "tel:+442077871000" in text[trinity:] and "Phone 020 7787 1000" in text[trinity:]
    assert ("From the Care Quality Commission's register of hospices in England "
            "(as at 1 November 2025)") in text
    assert ("Contains public sector information from the Care Quality Commission, licensed "
            "under the Open Government Licence v3.0.") in text
    assert UK_CAVEAT in text and "https://www.hospiceuk.org/" in text and "district nurse" in text
    assert messages[0]["custom"]["reply"]["cards"][2]["kind"] == "In-patient hospice, 28 beds"
    more, _ = _run(actions.ActionProviderMore(), {"search": slots["search"]})
    assert "\n4. " in more[0]["text"] and UK_CAVEAT in more[0]["text"]
    detail, _ = _run(actions.ActionProviderDetail(), {"search": slots["search"]},
                     "call the third one", [{"entity": "ordinal", "value": 3}])
    assert detail[0]["text"].startswith("Royal Trinity Hospice\n")
    assert "as at 1 November 2025" in detail[0]["text"] and UK_CAVEAT in detail[0]["text"]


def test_scotland_lists_hospice_at_home_services_and_says_what_it_misses(on_directory):
    messages, slots = _run(actions.ActionSearchProviders(),
                           {"place": _place("G2 1AA"), "service": "hospice"})
    text = messages[0]["text"]
    assert "1. ACCORD@Home (hospice at home service), about 7 miles away\nHospice at home\n" \
        in text
    assert "Care Inspectorate's register of care services in Scotland (as at 31 May 2026)" \
        in text
    assert "Contains Care Inspectorate data licensed under the Open Government Licence v3.0" \
        in text
    assert "In Scotland it has only hospice-at-home services" in text
    wider, slots = _run(actions.ActionProviderWiden(), {"search": slots["search"]})
    assert slots["search"]["radius"] == 50
    assert "3. The Ayrshire Hospice Respite and Response, about 32 miles" in wider[0]["text"]
    widest, _ = _run(actions.ActionProviderWiden(), {"search": slots["search"]})
    assert "In the UK I look no further than 50 miles" in widest[0]["text"]


@pytest.mark.parametrize(("typed", "nation"), [("CF10 1EP", "Wales"),
                                                ("BT1 1AA", "Northern Ireland")])
def test_wales_and_northern_ireland_get_the_signpost_and_no_far_away_place(
        on_directory, typed, nation):
    dispatcher = CollectingDispatcher()
    slots = actions.ValidateProviderSearchForm().validate_location(
        typed, dispatcher, _tracker({}), {})
    assert dispatcher.messages == [] and slots["region"] == "UK"
    messages, _ = _run(actions.ActionSearchProviders(),
                       {"place": slots["place"], "service": "hospice"})
    text = messages[0]["text"]
    assert text.startswith(f"I don't have a list of hospices or palliative care services in "
                           f"{nation}, so I can't name any near {typed}.")
    assert "https://www.hospiceuk.org/" in text and "GP or district nurse" in text
    assert "\n1. " not in text and "miles" not in text  # Weston-super-Mare is 13 miles off


def test_palliative_care_near_a_zip_shows_hospices_and_says_why(on_directory):
    messages, slots = _run(actions.ActionSearchProviders(),
                           {"place": _place("36109"), "service": "palliative_care"})
    text = messages[0]["text"]
    assert text.startswith("I don't have a list of palliative care teams in the US, so I "
                           "can't name one. Many hospices also run palliative care for people "
                           "who are not in hospice")
    assert "Hospices near 36109 (Montgomery, AL)" in text and "1. Baptist Hospice" in text
    assert text.rstrip().endswith("https://medlineplus.gov/palliativecare.html")
    assert "Ask the doctor for a referral to a palliative care team" in text
    assert slots["search"]["service"] == "hospice"
    assert slots["search"]["asked"] == "palliative_care"
    assert "Palliative care instead" not in [b["title"] for b in messages[0]["buttons"]]


def test_a_childs_search_offers_childrens_hospices_first(on_directory):
    messages, _ = _run(actions.ActionSearchProviders(),
                       {"place": _place("M1 1AE"), "service": "childrens_hospice"})
    text = messages[0]["text"]
    assert "Children's hospices near M1 1AE, nearest first:" in text
    assert "1. Francis House Children's Hospice, about 5 miles away\nChildren's hospice;" in text
    assert "\n2. Derian House Children's Hospice" in text
    assert '/find_provider{"service":"hospice"}' in [b["payload"]
                                                     for b in messages[0]["buttons"]]
    us, _ = _run(actions.ActionSearchProviders(),
                 {"place": _place("36109"), "service": "childrens_hospice"})
    assert us[0]["text"].startswith("Medicare's list of certified hospices (CMS) doesn't say "
                                    "which hospices care for children")
    assert "1. Baptist Hospice" in us[0]["text"]


def test_a_question_asked_with_a_search_is_answered(on_directory):
    parse = {"text": "does medicare pay for hospice? we are in 36109",
             "intent": {"name": "find_provider", "confidence": 1.0},
             "intent_ranking": [{"name": "find_provider", "confidence": 1.0},
                                {"name": "faq", "confidence": 0.86}],
             "response_selector": {"faq": {"ranking": [
                 {"intent_response_key": "faq/medicare_hospice_eligibility",
                  "confidence": 0.6}]}},
             "entities": []}
    tracker = Tracker("u1", {"place": _place("36109"), "service": "hospice"}, parse, [], False,
                      None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(actions.ActionSearchProviders().run(dispatcher, tracker, {}))
    answer, results = (m["text"] for m in dispatcher.messages)
    assert "Source:" in answer and results.startswith("Hospices near 36109")
    assert {"event": "slot", "name": "last_faq_id", "value": "medicare_hospice_eligibility",
            "timestamp": None} in events


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


@pytest.mark.parametrize(
    ("text", "service", "location"),
    [
        ("hospice for my little boy near LS1 4DY", "childrens_hospice", "LS1 4DY"),
        ("is there a children's hospice in Leeds", "childrens_hospice", "Leeds"),
        ("hospice for my 46 year old daughter near LS1 4DY", "hospice", "LS1 4DY"),
        ("does hospice cost anything in England? looking near LS6", "hospice", "LS6"),
        ("hospice in buffalo ny", "hospice", "buffalo ny"),  # an everyday word, with its state
    ],
)
def test_what_a_search_message_asks_for(text, service, location):
    from bot.nlu.places import extract

    found = {e["entity"]: e["value"] for e in extract(text, "find_provider")}
    assert (found.get("service"), found.get("location")) == (service, location)


def _parsed(text: str, ranking: list[tuple[str, float]]):
    from rasa.shared.nlu.training_data.message import Message

    message = Message(data={"text": text})
    intents = [{"name": n, "confidence": c} for n, c in ranking]
    message.set("intent", intents[0], add_to_output=True)
    message.set("intent_ranking", intents, add_to_output=True)
    return message


@pytest.mark.parametrize(
    ("text", "ranking", "intent"),
    [
        # a question that names a searchable place, or says "near me": a search as well
        ("does medicare pay for hospice? we are in Tulsa OK", [("faq", 0.86),
                                                               ("find_provider", 0.11)],
         "find_provider"),
        ("is palliative care only for the dying? is there any near me", [("faq", 0.78)],
         "find_provider"),
        ("what does hospice cost? we're near M1 1AE", [("nlu_fallback", 1.0), ("faq", 0.7)],
         "find_provider"),
        # a question with no service, or a place that cannot be searched, stays a question
        ("my mom in Denver is scared of morphine", [("faq", 0.79)], "faq"),
        ("how would we pay for hospice in Ohio", [("faq", 0.8)], "faq"),
        ("what is hospice", [("faq", 0.98)], "faq"),
        # everyday words that are also towns ("Call", Texas; "Tell City") name no place, and
        # friends "close by" is not a search near the person
        ("My mother is hesitant to call Hospice. What can I do?", [("faq", 0.9)], "faq"),
        ("mom rang to tell me to come home, hospice says it's days", [("faq", 0.8)], "faq"),
        ("I have no family or friends close by. How will hospice help me at home?",
         [("faq", 0.96)], "faq"),
    ],
)
def test_a_question_that_also_asks_for_a_search_becomes_a_search(text, ranking, intent):
    from bot.nlu.places import PlaceAndServiceExtractor

    [message] = PlaceAndServiceExtractor({}).process([_parsed(text, ranking)])
    assert message.get("intent")["name"] == intent
    names = [r["name"] for r in message.get("intent_ranking")]
    assert "faq" in names  # the FAQ ranking is kept, so the question can be answered too
