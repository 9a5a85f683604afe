"""Crisis replies (suicide, emergency, overdose, abuse) and the kind "I can't advise on
medicines" reply. Numbers come from knowledge/helplines.yml."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

import knowledge
from actions.common import HELPLINES, KB, SETTINGS, human_contact, reader, send_reply
from knowledge.helplines import CRISIS_KIND_FOR_INTENT, mentions_medicines
from knowledge.region_cues import region_of_message

OTHER = {"US": "UK", "UK": "US"}


def crisis_region(tracker: Tracker) -> tuple[str, str | None]:
    """(region for the numbers, the other region to add one line for, or None).

    A place or a telling word in this message decides; else what the conversation said
    before (the ``region`` slot); else the channel's country (an SMS number's country code,
    from the message's metadata); else the deployment's default, plus one line with the other
    country's numbers.
    """
    message = tracker.latest_message or {}
    told = (region_of_message(message.get("text")) or tracker.get_slot("region")
            or _channel_country(tracker))
    if told in OTHER:
        return told, None
    return SETTINGS.default_region, OTHER[SETTINGS.default_region]


def _channel_country(tracker: Tracker) -> str | None:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            country = (event.get("metadata") or {}).get("country")
            return country if country in OTHER else None
    return None


class ActionCrisisResponse(Action):
    """Suicide, emergency, overdose or abuse: the right numbers for the region, at once."""

    def name(self) -> str:
        return "action_crisis_response"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        message = tracker.latest_message or {}
        kinds = list(tracker.get_latest_entity_values("crisis_type"))
        intent = (message.get("intent") or {}).get("name")
        if not kinds and intent in CRISIS_KIND_FOR_INTENT:
            kinds = [CRISIS_KIND_FOR_INTENT[intent]]
        said = message.get("text") or ""
        medicines = mentions_medicines(said)
        if {"emergency", "suicide"} & set(kinds) and "overdose" not in kinds and medicines:
            kinds.append("overdose")  # medicines are involved: what to do if too many taken
        language, _ = reader(tracker)
        region, other = crisis_region(tracker)
        text = HELPLINES.crisis_reply(
            kinds or ["emergency"], language, region, in_hospice="hospice" in said.lower(),
            other_region=other, medicines_taken=medicines,
            paused=tracker.is_paused())
        contact = human_contact(language)
        dispatcher.utter_message(text=f"{text}\n\n{contact}" if contact else text)
        # a search or a guided conversation in progress ends here
        return [ActiveLoop(None), SlotSet("guide", None)] if tracker.active_loop_name else []


class ActionMedicalAdvice(Action):
    """Doses, drug comparisons, symptoms: say kindly who can advise, offer general facts."""

    def name(self) -> str:
        return "action_medical_advice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        language, region = reader(tracker)
        buttons = [
            knowledge.Button(KB.entries[i].label(language), knowledge.faq_payload(i))
            for i in ("pain_relief_possible", "talking_about_pain", "hospice_24_hour_line")
            if i in KB
        ]
        text = HELPLINES.medical_advice_reply(language, region)
        send_reply(dispatcher, knowledge.Reply(text, buttons))
        return []
