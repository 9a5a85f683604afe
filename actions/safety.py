"""Crisis replies (suicide, emergency, overdose, abuse) and the kind "I can't advise on
medicines" reply. Numbers come from knowledge/helplines.yml."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType
from rasa_sdk.executor import CollectingDispatcher

import knowledge
from actions.common import HELPLINES, KB, human_contact, reader, send_reply
from knowledge.helplines import CRISIS_KIND_FOR_INTENT


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
        language, region = reader(tracker)
        in_hospice = "hospice" in (message.get("text") or "").lower()
        text = HELPLINES.crisis_reply(kinds or ["emergency"], language, region, in_hospice)
        contact = human_contact(language)
        dispatcher.utter_message(text=f"{text}\n\n{contact}" if contact else text)
        return [ActiveLoop(None)] if tracker.active_loop_name else []


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
