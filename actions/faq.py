"""Answering from the knowledge base, and the small talk around it: who is asking, which
country, "did you mean", and the kind "I don't know" after two misses."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

import knowledge
from actions.common import (
    KB,
    MAX_BUTTONS,
    audience_of,
    can_hand_off,
    entity,
    reader,
    region_said,
    selected_faq_ids,
    send_reply,
)
from knowledge import shapes
from knowledge.emergency import emergency_line
from knowledge.replies import phrase, say

CARER_ENTRIES = ("caregiver_support", "respite_care")  # offered to caregivers
# Entries after which it matters who is asking (carers get their own help offered), so the
# assistant asks once, if what people wrote did not already say.
AUDIENCE_MATTERS = {
    "what_is_palliative_care", "what_is_hospice", "when_to_consider_hospice",
    "hospice_services_covered", "where_care_given", "hospice_home_vs_inpatient", "last_days",
    "symptoms_helped", "get_referral", "ask_for_hospice_evaluation", "palliative_vs_hospice",
    "medicare_hospice_eligibility", "hospice_six_months", "pc_cancer",
    "pc_metastatic_breast_cancer", "pc_heart_failure", "pc_copd", "pc_kidney_failure",
    "pc_dementia", "pc_parkinsons", "pc_ms", "pc_stroke",
}
AUDIENCE_PAYLOADS = {"patient": '/inform_audience{"audience":"patient"}',
                     "caregiver": '/inform_audience{"audience":"caregiver"}'}
# Intents (other than faq) that the fallback may offer as a guess, with their label's key.
OFFERABLE_INTENTS = {"what_can_you_do": "offer_what_can_you_do",
                     "set_region": "offer_set_region"}
# How many topics a "did you mean" offers (with "Something else": MAX_BUTTONS in all).
OFFERS = MAX_BUTTONS - 1
SEARCH_ACTIONS = {"action_search_providers", "action_provider_more", "action_provider_widen",
                  "action_provider_detail"}


def _offer_carer_support(reply: knowledge.Reply, entry_id: str, language: str) -> knowledge.Reply:
    """Caregivers are offered support for themselves too (one button, if not there yet)."""
    offered = {b.payload for b in reply.buttons}
    for carer_id in CARER_ENTRIES:
        payload = knowledge.faq_payload(carer_id)
        if carer_id == entry_id or payload in offered or carer_id not in KB:
            continue
        button = knowledge.Button(KB.entries[carer_id].label(language), payload)
        return dataclasses.replace(reply, buttons=[*reply.buttons[: MAX_BUTTONS - 1], button])
    return reply


def _last_answer_was_a_search(tracker: Tracker) -> bool:
    """Whether the latest answer (FAQ or search) was a provider search."""
    for event in reversed(tracker.events):
        if event.get("event") == "action":
            name = event.get("name")
            if name in SEARCH_ACTIONS:
                return True
            if name == "action_answer_faq":
                return False
    return False


class ActionGreet(Action):
    """Hello: what the assistant is, topic buttons to start from, the emergency numbers."""

    def name(self) -> str:
        return "action_greet"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language, _ = reader(tracker)
        welcome = shapes.welcome(language)
        send_reply(dispatcher, dataclasses.replace(
            welcome, text=f"{welcome.text} {emergency_line()['text']}"))
        return []


class ActionAnswerFaq(Action):
    """Answer from the knowledge base, in the reader's region, with source and follow-ups."""

    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        message = tracker.latest_message or {}
        more = (message.get("intent") or {}).get("name") == "tell_me_more"
        if more and _last_answer_was_a_search(tracker):
            # "more please" right after search results means more results
            return [FollowupAction("action_provider_more")]
        entry_id = entity(tracker, "faq_id")
        if not entry_id:
            if more:
                entry_id = tracker.get_slot("last_faq_id")
            else:
                ranked = selected_faq_ids(message)
                entry_id = ranked[0][0] if ranked else None
        entry = KB.get(entry_id)
        language, region = reader(tracker)
        if entry is None:
            dispatcher.utter_message(text=say("faq_missing", language))
            return []
        events: list[EventType] = [SlotSet("last_faq_id", entry.id)]
        audience = audience_of(message.get("text")) or tracker.get_slot("audience")
        if audience and audience != tracker.get_slot("audience"):
            events.append(SlotSet("audience", audience))
        reply = knowledge.render(KB, entry, language, region, more=more)
        if audience == "caregiver":
            reply = _offer_carer_support(reply, entry.id, language)
        send_reply(dispatcher, reply)
        if (not audience and not more and entry.id in AUDIENCE_MATTERS
                and not tracker.get_slot("audience_asked")):
            dispatcher.utter_message(text=say("ask_audience", language), buttons=[
                {"title": say(f"audience_{who}_button", language), "payload": payload}
                for who, payload in AUDIENCE_PAYLOADS.items()])
            events.append(SlotSet("audience_asked", True))
        return events


class ActionSetAudience(Action):
    """The reader said who they are: remember it, and offer carers help for themselves."""

    def name(self) -> str:
        return "action_set_audience"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = (tracker.latest_message or {}).get("text") or ""
        audience = entity(tracker, "audience") or audience_of(text)
        if audience not in ("patient", "caregiver"):
            audience = "caregiver" if re.search(
                r"(care for|caring|carer|caregiver|behalf|family)", text, re.I) else "patient"
        language, _ = reader(tracker)
        if audience == "caregiver":
            buttons = [knowledge.Button(KB.entries[c].label(language), knowledge.faq_payload(c))
                       for c in CARER_ENTRIES if c in KB]
            send_reply(dispatcher, knowledge.Reply(say("thanks_caregiver", language), buttons))
        else:
            dispatcher.utter_message(text=say("thanks_patient", language))
        return [SlotSet("audience", audience), SlotSet("audience_asked", True)]


class ActionExtractReader(Action):
    """Runs on every message (Rasa's slot extraction): the reader's country and whether they
    are the patient or a carer, when the wording says so. Says nothing; sets only what
    changed. One action for both, so each message costs one call to this server."""

    def name(self) -> str:
        return "action_extract_reader"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        found = {
            "region": region_said(tracker),
            "audience": audience_of((tracker.latest_message or {}).get("text")),
        }
        return [SlotSet(slot, value) for slot, value in found.items()
                if value and value != tracker.get_slot(slot)]


class ActionSetRegion(Action):
    """Remember which country's answers the reader wants (US or UK)."""

    def name(self) -> str:
        return "action_set_region"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        region = region_said(tracker)
        language, _ = reader(tracker)
        if region is None:
            dispatcher.utter_message(text=say("ask_country", language), buttons=[
                {"title": title, "payload": f'/set_region{{"region":"{code}"}}'}
                for code, title in phrase("country_buttons", language).items()])
            return []
        name = phrase("country_names", language)[region]
        dispatcher.utter_message(text=say("region_set", language, name=name))
        return [SlotSet("region", region)]


def offer_buttons(message: dict[str, Any], language: str) -> list[knowledge.Button]:
    """The "did you mean" topic buttons for a parsed message: the likeliest OFFERS FAQ entries
    or offerable intents, in ranking order. ``navigator eval`` counts an offer as right only when
    the right entry is among these."""
    buttons: list[knowledge.Button] = []
    for intent in message.get("intent_ranking") or []:
        name = intent.get("name")
        if name == "faq":
            for entry_id, _conf in selected_faq_ids(message)[:OFFERS]:
                entry = KB.get(entry_id)
                if entry:
                    buttons.append(
                        knowledge.Button(entry.label(language), knowledge.faq_payload(entry_id))
                    )
        elif name in OFFERABLE_INTENTS:
            buttons.append(knowledge.Button(say(OFFERABLE_INTENTS[name], language), f"/{name}"))
        if len(buttons) >= OFFERS:
            break
    return buttons[:OFFERS]


class ActionAskAffirmation(Action):
    """Low confidence: offer the three likeliest topics as buttons, plus "Something else"."""

    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        language, _ = reader(tracker)
        buttons = offer_buttons(tracker.latest_message or {}, language)
        text = say("not_sure_offer" if buttons else "not_sure_ask", language)
        something_else = knowledge.Button(say("something_else", language), "/out_of_scope")
        send_reply(dispatcher, knowledge.Reply(text, [*buttons, something_else]))
        return []


class ActionDefaultFallback(Action):
    """After two misses in a row: say so kindly, and offer a person if the service has one."""

    def name(self) -> str:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        language, _ = reader(tracker)
        text = say("fallback", language)
        buttons = []
        if can_hand_off():
            buttons.append({"title": say("talk_to_person_button", language),
                            "payload": "/human_handoff"})
            text += " " + say("fallback_offer_person", language)
        else:
            text += " " + say("fallback_own_doctor", language)
        dispatcher.utter_message(text=text, buttons=buttons)
        return [UserUtteranceReverted()]
