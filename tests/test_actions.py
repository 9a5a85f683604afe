"""Custom actions, run as the action server runs them (tracker from a dict, real dispatcher)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

import knowledge
from actions.faq import ActionAnswerFaq, ActionAskAffirmation, ActionSetRegion
from actions.safety import ActionCrisisResponse, ActionMedicalAdvice


def _message(
    intent: str,
    text: str = "",
    faq_ranking: list[tuple[str, float]] | None = None,
    entities: list[dict[str, Any]] | None = None,
    intent_ranking: list[str] | None = None,
) -> dict[str, Any]:
    """A parsed user message shaped like Rasa's NLU output."""
    message: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "intent_ranking": [{"name": n, "confidence": 0.5} for n in (intent_ranking or [intent])],
        "entities": entities or [],
    }
    if faq_ranking:
        ranking = [
            {"intent_response_key": f"faq/{i}", "confidence": c, "id": 1} for i, c in faq_ranking
        ]
        message["response_selector"] = {
            "all_retrieval_intents": ["faq"],
            "faq": {"response": {"intent_response_key": ranking[0]["intent_response_key"],
                                 "confidence": ranking[0]["confidence"]},
                    "ranking": ranking},
        }
    return message


def _run(action: Any, message: dict[str, Any], slots: dict[str, Any] | None = None):
    tracker = Tracker(
        sender_id="test-user", slots=slots or {}, latest_message=message, events=[],
        paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def test_answers_the_selected_entry_with_source_and_follow_up_buttons(
    kb: knowledge.KnowledgeBase,
) -> None:
    messages, events = _run(
        ActionAnswerFaq(),
        _message("faq", "is palliative care only for dying people", [("only_for_dying", 0.9)]),
    )
    entry = kb.get("only_for_dying")
    assert len(messages) == 1
    assert messages[0]["text"].startswith(entry.text("answer", "en", "US"))
    assert "Source: " in messages[0]["text"]
    titles = [b["title"] for b in messages[0]["buttons"]]
    related = [kb.get(r).label("en") for r in entry.related]
    assert related == [t for t in titles if t != "Tell me more"]
    assert SlotSet("last_faq_id", "only_for_dying") in events


@pytest.mark.parametrize(("region", "expected", "absent"), [("US", "Medicare", "NHS"),
                                                             ("UK", "NHS", "Medicare")])
def test_answer_follows_the_conversation_region(region: str, expected: str, absent: str) -> None:
    messages, _ = _run(
        ActionAnswerFaq(), _message("faq", "who pays", [("who_pays_palliative", 0.8)]),
        slots={"region": region},
    )
    answer = messages[0]["text"].split("Source:")[0]
    assert expected in answer and absent not in answer


def test_region_defaults_to_the_deployment_setting(kb: knowledge.KnowledgeBase) -> None:
    messages, _ = _run(ActionAnswerFaq(), _message("faq", "", [("who_pays_palliative", 0.8)]))
    assert messages[0]["text"].startswith(kb.get("who_pays_palliative").text("answer", "en", "US"))


def test_a_button_choice_overrides_the_model_guess(kb: knowledge.KnowledgeBase) -> None:
    entities = [{"entity": "faq_id", "value": "hospice_costs"}]
    messages, events = _run(
        ActionAnswerFaq(), _message("faq", "/faq", [("care_team", 0.4)], entities=entities)
    )
    assert messages[0]["text"].startswith(kb.get("hospice_costs").text("answer", "en", "US"))
    assert SlotSet("last_faq_id", "hospice_costs") in events


def test_tell_me_more_gives_the_longer_text_of_the_last_answer(
    kb: knowledge.KnowledgeBase,
) -> None:
    entry = next(e for e in kb.entries.values() if e.more)
    messages, _ = _run(ActionAnswerFaq(), _message("tell_me_more", "tell me more"),
                       slots={"last_faq_id": entry.id})
    assert messages[0]["text"].startswith(entry.text("more", "en", "US"))


def test_unknown_entry_gets_a_polite_rephrase_request_not_a_crash() -> None:
    entities = [{"entity": "faq_id", "value": "no_such_entry"}]
    messages, events = _run(ActionAnswerFaq(), _message("faq", "/faq", entities=entities))
    assert "another way" in messages[0]["text"]
    assert events == []


def test_set_region_understands_country_names() -> None:
    messages, events = _run(
        ActionSetRegion(),
        _message("set_region", entities=[{"entity": "region", "value": "England"}]),
    )
    assert events == [SlotSet("region", "UK")]
    assert "United Kingdom" in messages[0]["text"]


def test_set_region_asks_when_the_country_is_unknown() -> None:
    messages, events = _run(
        ActionSetRegion(), _message("set_region", entities=[{"entity": "region", "value": "Mars"}])
    )
    assert events == []
    assert {b["payload"] for b in messages[0]["buttons"]} == {
        '/set_region{"region":"US"}', '/set_region{"region":"UK"}'
    }


def test_fallback_offers_the_three_likeliest_topics_and_something_else(
    kb: knowledge.KnowledgeBase,
) -> None:
    message = _message(
        "nlu_fallback", "medicare hospice thing",
        faq_ranking=[("hospice_costs", 0.25), ("medicare_hospice_eligibility", 0.2),
                     ("care_team", 0.1), ("respite_care", 0.05)],
        intent_ranking=["nlu_fallback", "faq", "greet"],
    )
    messages, _ = _run(ActionAskAffirmation(), message)
    buttons = messages[0]["buttons"]
    assert [b["title"] for b in buttons] == [
        kb.get("hospice_costs").label("en"),
        kb.get("medicare_hospice_eligibility").label("en"),
        kb.get("care_team").label("en"),
        "Something else",
    ]
    assert buttons[0]["payload"] == knowledge.faq_payload("hospice_costs")
    assert buttons[-1]["payload"] == "/out_of_scope"


def test_fallback_with_no_guess_still_offers_a_way_out() -> None:
    messages, _ = _run(ActionAskAffirmation(), _message("nlu_fallback", "zzzz",
                                                        intent_ranking=["nlu_fallback"]))
    assert [b["title"] for b in messages[0]["buttons"]] == ["Something else"]


def test_crisis_reply_uses_the_classes_found_and_the_region() -> None:
    entities = [{"entity": "crisis_type", "value": "suicide"}]
    us, _ = _run(ActionCrisisResponse(), _message("crisis_suicide", "i want to die",
                                                  entities=entities))
    uk, _ = _run(ActionCrisisResponse(), _message("crisis_suicide", "i want to die",
                                                  entities=entities), slots={"region": "UK"})
    # nothing says where: the deployment's country first, then one line for the other
    assert us[0]["text"].index("988") < us[0]["text"].index("If you are in the UK: Samaritans")
    assert "116 123" in uk[0]["text"] and "988" not in uk[0]["text"]


@pytest.mark.parametrize(("text", "slots", "metadata", "main", "other"), [
    ("i want to die, we live in Cardiff", {"region": "US"}, {}, "116 123", "988"),  # message
    ("i want to die", {"region": "UK"}, {"country": "US"}, "116 123", "988"),  # then the slot
    ("i want to die", {}, {"country": "UK"}, "116 123", "988"),  # then the SMS number's country
    ("i want to die, the ER sent us home", {}, {"country": "UK"}, "988", "116 123"),
])
def test_the_crisis_reply_numbers_follow_what_tells_where_the_person_is(
    text: str, slots: dict, metadata: dict, main: str, other: str,
) -> None:
    tracker = Tracker(
        sender_id="t", slots=slots, paused=False, followup_action=None, active_loop={},
        latest_message=_message("crisis_suicide", text,
                                entities=[{"entity": "crisis_type", "value": "suicide"}]),
        events=[{"event": "user", "text": text, "metadata": metadata}],
        latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionCrisisResponse().run(dispatcher, tracker, {}))
    reply = dispatcher.messages[0]["text"]
    assert main in reply and other not in reply and "If you are in" not in reply


def test_medicines_in_a_crisis_add_what_to_do_if_too_many_were_taken() -> None:
    messages, _ = _run(ActionCrisisResponse(), _message(
        "crisis_emergency", "dad drank his whole bottle of liquid morphine, he's very sleepy",
        entities=[{"entity": "crisis_type", "value": "emergency"}]))
    assert "911" in messages[0]["text"] and "1-800-222-1222" in messages[0]["text"]


def test_a_crisis_while_paused_says_the_conversation_waits_for_staff() -> None:
    tracker = Tracker(
        sender_id="t", slots={}, paused=True, followup_action=None, active_loop={},
        latest_message=_message("crisis_suicide", "i want to end it tonight",
                                entities=[{"entity": "crisis_type", "value": "suicide"}]),
        events=[], latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionCrisisResponse().run(dispatcher, tracker, {}))
    assert "988" in dispatcher.messages[0]["text"]
    assert "waiting for a person from our team" in dispatcher.messages[0]["text"]


def test_crisis_reply_ends_an_active_loop_and_mentions_the_hospice_line() -> None:
    tracker = Tracker(
        sender_id="t", slots={}, latest_message=_message(
            "crisis_emergency", "dad is in hospice and he's not breathing",
            entities=[{"entity": "crisis_type", "value": "emergency"}]),
        events=[], paused=False, followup_action=None,
        active_loop={"name": "action_two_stage_fallback"}, latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionCrisisResponse().run(dispatcher, tracker, {}))
    assert "911" in dispatcher.messages[0]["text"]
    assert "24 hours" in dispatcher.messages[0]["text"]
    assert events == [ActiveLoop(None), SlotSet("guide", None)]  # and any guide with it


@pytest.mark.parametrize(("region", "person", "line"), [("US", "doctor", "after-hours"),
                                                        ("UK", "GP", "NHS 111")])
def test_medical_advice_is_declined_kindly_with_who_to_ask(
    region: str, person: str, line: str
) -> None:
    messages, _ = _run(ActionMedicalAdvice(), _message("medical_advice", "how much morphine"),
                       slots={"region": region})
    text = messages[0]["text"]
    assert "can't advise" in text and person in text and line in text
    assert not re.search(r"\d+\s?(mg|ml|mcg)\b", text)
    assert knowledge.faq_payload("pain_relief_possible") in {b["payload"] for b in
                                                            messages[0]["buttons"]}


def test_caregivers_are_offered_support_for_themselves(kb: knowledge.KnowledgeBase) -> None:
    messages, events = _run(ActionAnswerFaq(), _message(
        "faq", "my mum has copd, what can palliative care do for her?", [("pc_copd", 0.9)]))
    titles = [b["title"] for b in messages[0]["buttons"]]
    assert kb.get("caregiver_support").label("en") in titles
    assert SlotSet("audience", "caregiver") in events


def test_patients_are_not_offered_carer_support(kb: knowledge.KnowledgeBase) -> None:
    messages, events = _run(ActionAnswerFaq(), _message(
        "faq", "I have COPD, what can palliative care do for me?", [("pc_copd", 0.9)]))
    titles = [b["title"] for b in messages[0]["buttons"]]
    assert kb.get("caregiver_support").label("en") not in titles
    assert SlotSet("audience", "patient") in events


@pytest.mark.parametrize(("text", "audience"), [
    ("my husband has MS", "caregiver"), ("I'm his carer", "caregiver"),
    ("I was diagnosed last month", "patient"), ("what is hospice?", None),
])
def test_audience_is_read_from_what_people_say(text: str, audience: str | None) -> None:
    from actions.common import audience_of

    assert audience_of(text) == audience


def test_asks_once_who_it_is_for_when_it_matters() -> None:
    messages, events = _run(ActionAnswerFaq(), _message("faq", "what is hospice",
                                                        [("what_is_hospice", 0.9)]))
    assert messages[1]["text"].startswith("May I ask: is this for you")
    assert [b["payload"] for b in messages[1]["buttons"]] == [
        '/inform_audience{"audience":"patient"}', '/inform_audience{"audience":"caregiver"}']
    assert SlotSet("audience_asked", True) in events
    again, _ = _run(ActionAnswerFaq(), _message("faq", "what is hospice",
                                                [("what_is_hospice", 0.9)]),
                    slots={"audience_asked": True})
    assert len(again) == 1
    told, _ = _run(ActionAnswerFaq(), _message("faq", "my dad has copd, what is hospice",
                                               [("what_is_hospice", 0.9)]))
    assert len(told) == 1  # the wording already said who is asking


def test_a_carer_who_answers_is_offered_help_for_themselves(kb: knowledge.KnowledgeBase) -> None:
    from actions.faq import ActionSetAudience

    messages, events = _run(ActionSetAudience(), _message(
        "inform_audience", '/inform_audience{"audience":"caregiver"}',
        entities=[{"entity": "audience", "value": "caregiver"}]))
    assert kb.get("caregiver_support").label("en") in [b["title"] for b in messages[0]["buttons"]]
    assert SlotSet("audience", "caregiver") in events
    messages, events = _run(ActionSetAudience(), _message("inform_audience", "it's for me"))
    assert SlotSet("audience", "patient") in events and not messages[0].get("buttons")


def test_more_please_after_search_results_means_more_results() -> None:
    tracker = Tracker(
        sender_id="u", slots={}, latest_message=_message("tell_me_more", "more please"),
        events=[{"event": "action", "name": "action_search_providers"}], paused=False,
        followup_action=None, active_loop={}, latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionAnswerFaq().run(dispatcher, tracker, {}))
    # not an FAQ answer: Rasa runs the search's "more" next (tested end to end over REST)
    assert [(e["event"], e["name"]) for e in events] == [("followup", "action_provider_more")]
    assert dispatcher.messages == []


def test_a_typed_option_title_is_that_option_before_it_is_a_skip() -> None:
    """'no' and 'not sure' typed at a check question are those answers, not a skip; where no
    option says so, they skip."""
    from actions import guides as flow
    from knowledge import guides

    state = flow._next(flow.start("check", "patient"), "US")
    question = guides.check_questions("patient", "US")[0]
    titles = {c.title.lower(): c.id for c in question.choices}
    assert {"no", "not sure"} <= set(titles)
    for typed in ("No", "not sure"):
        assert flow.read_answer(typed, state, "en", "US") == titles[typed.lower()] != "skip"
    assert flow.read_answer("skip", state, "en", "US") == "skip"
    prep = flow._next(flow.start("prepare", "patient"), "US")  # the kind of visit
    assert flow.read_answer("not sure", prep, "en", "US") == "skip"
    assert flow.read_answer("7/10", {**prep, "step": "score:pain"}, "en", "US") == "7"
