"""Custom actions. Each reads the tracker, calls a library, and renders the result."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActiveLoop,
    ConversationPaused,
    EventType,
    SlotSet,
    UserUtteranceReverted,
)
from rasa_sdk.executor import CollectingDispatcher

import knowledge
from bot import handoff
from bot.audience import audience_of
from bot.settings import Settings
from knowledge.helplines import CRISIS_KIND_FOR_INTENT, default_helplines

SETTINGS = Settings.from_env()
KB = knowledge.default_kb()
HELPLINES = default_helplines()
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
ASK_AUDIENCE = ("May I ask: is this for you, or for someone you care for?",
                [("For me", '/inform_audience{"audience":"patient"}'),
                 ("Someone I care for", '/inform_audience{"audience":"caregiver"}')])
MAX_BUTTONS = 4
SOMETHING_ELSE = knowledge.Button("Something else", "/out_of_scope")
# Intents (other than faq) that the fallback may offer as a guess, with their button label.
OFFERABLE_INTENTS = {"what_can_you_do": "What can you help with?", "set_region": "Change country"}


def _entity(tracker: Tracker, name: str) -> str | None:
    """The first value of entity ``name`` in the latest user message."""
    return next(tracker.get_latest_entity_values(name), None)


def _reader(tracker: Tracker) -> tuple[str, str]:
    """The (language, region) to answer in: the conversation's, else the deployment's."""
    language = tracker.get_slot("language") or SETTINGS.language
    region = tracker.get_slot("region") or SETTINGS.default_region
    return language, region


def _region_said(tracker: Tracker) -> str | None:
    """``US``/``UK`` if the latest message names a country (as an entity or in its words)."""
    return knowledge.region_from_text(_entity(tracker, "region")) or (
        knowledge.region_in_message((tracker.latest_message or {}).get("text")))


def _offer_carer_support(reply: knowledge.Reply, entry_id: str, language: str) -> knowledge.Reply:
    """Caregivers are offered support for themselves too (one button, if not there yet)."""
    offered = {b.payload for b in reply.buttons}
    for carer_id in CARER_ENTRIES:
        payload = knowledge.faq_payload(carer_id)
        if carer_id == entry_id or payload in offered or carer_id not in KB:
            continue
        button = knowledge.Button(KB.entries[carer_id].label(language), payload)
        return knowledge.Reply(reply.text, [*reply.buttons[: MAX_BUTTONS - 1], button])
    return reply


def _human_contact() -> str | None:
    """The deployment's staff line, if it has one."""
    if not SETTINGS.handoff_phone:
        return None
    hours = f" ({SETTINGS.handoff_hours})" if SETTINGS.handoff_hours else ""
    return f"You can talk to a person from our team: call {SETTINGS.handoff_phone}{hours}."


def _can_hand_off() -> bool:
    return bool(SETTINGS.handoff_phone or SETTINGS.handoff_webhook_url)


def send_reply(dispatcher: CollectingDispatcher, reply: knowledge.Reply) -> None:
    """Send a channel-neutral reply: text, quick replies, and cards as a custom payload."""
    dispatcher.utter_message(
        text=reply.text, buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons],
        json_message={"cards": reply.cards} if reply.cards else None,
    )


SEARCH_ACTIONS = {"action_search_providers", "action_provider_more", "action_provider_widen",
                  "action_provider_detail"}


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


def selected_faq_ids(message: dict[str, Any]) -> list[tuple[str, float]]:
    """The ResponseSelector's FAQ ids for a parsed message, most likely first."""
    ranking = (message.get("response_selector") or {}).get("faq", {}).get("ranking") or []
    out = []
    for item in ranking:
        key = item.get("intent_response_key") or ""
        if key.startswith("faq/"):
            out.append((key.split("/", 1)[1], float(item.get("confidence") or 0.0)))
    return out


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
            from actions.directory import ActionProviderMore

            return await ActionProviderMore().run(dispatcher, tracker, domain)
        entry_id = _entity(tracker, "faq_id")
        if not entry_id:
            if more:
                entry_id = tracker.get_slot("last_faq_id")
            else:
                ranked = selected_faq_ids(message)
                entry_id = ranked[0][0] if ranked else None
        entry = KB.get(entry_id)
        if entry is None:
            dispatcher.utter_message(
                text="Sorry, I don't have an answer for that yet. Could you ask it another way?"
            )
            return []
        language, region = _reader(tracker)
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
            question, buttons = ASK_AUDIENCE
            dispatcher.utter_message(
                text=question, buttons=[{"title": t, "payload": p} for t, p in buttons])
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
        audience = _entity(tracker, "audience") or audience_of(text)
        if audience not in ("patient", "caregiver"):
            audience = "caregiver" if re.search(
                r"(care for|caring|carer|caregiver|behalf|family)", text, re.I) else "patient"
        language, _ = _reader(tracker)
        if audience == "caregiver":
            buttons = [knowledge.Button(KB.entries[c].label(language), knowledge.faq_payload(c))
                       for c in CARER_ENTRIES if c in KB]
            send_reply(dispatcher, knowledge.Reply(
                "Thank you. Looking after someone is hard work, so I'll also point you to help "
                "for carers. What would you like to know?", buttons))
        else:
            dispatcher.utter_message(text="Thank you. What else would you like to know?")
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
            "region": _region_said(tracker),
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
        region = _region_said(tracker)
        if region is None:
            dispatcher.utter_message(
                text="Which country are you in?",
                buttons=[
                    {"title": "United States", "payload": '/set_region{"region":"US"}'},
                    {"title": "United Kingdom", "payload": '/set_region{"region":"UK"}'},
                ],
            )
            return []
        name = {"US": "the United States", "UK": "the United Kingdom"}[region]
        dispatcher.utter_message(text=f"Thank you. I'll give you answers for {name}.")
        return [SlotSet("region", region)]


class ActionAskAffirmation(Action):
    """Low confidence: offer the two likeliest topics as buttons, plus "Something else"."""

    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        message = tracker.latest_message or {}
        language, _ = _reader(tracker)
        buttons: list[knowledge.Button] = []
        for intent in message.get("intent_ranking") or []:
            name = intent.get("name")
            if name == "faq":
                for entry_id, _conf in selected_faq_ids(message)[:2]:
                    entry = KB.get(entry_id)
                    if entry:
                        buttons.append(
                            knowledge.Button(entry.label(language), knowledge.faq_payload(entry_id))
                        )
            elif name in OFFERABLE_INTENTS:
                buttons.append(knowledge.Button(OFFERABLE_INTENTS[name], f"/{name}"))
            if len(buttons) >= 2:
                break
        buttons = buttons[:2]
        text = (
            "I'm not sure I understood. Did you mean one of these?"
            if buttons
            else "I'm not sure I understood. Could you tell me a bit more?"
        )
        send_reply(dispatcher, knowledge.Reply(text, [*buttons, SOMETHING_ELSE]))
        return []


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
        language, region = _reader(tracker)
        in_hospice = "hospice" in (message.get("text") or "").lower()
        text = HELPLINES.crisis_reply(kinds or ["emergency"], language, region, in_hospice)
        contact = _human_contact()
        dispatcher.utter_message(text=f"{text}\n\n{contact}" if contact else text)
        return [ActiveLoop(None)] if tracker.active_loop_name else []


class ActionMedicalAdvice(Action):
    """Doses, drug comparisons, symptoms: say kindly who can advise, offer general facts."""

    def name(self) -> str:
        return "action_medical_advice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        language, region = _reader(tracker)
        buttons = [
            knowledge.Button(KB.entries[i].label(language), knowledge.faq_payload(i))
            for i in ("pain_relief_possible", "talking_about_pain", "hospice_24_hour_line")
            if i in KB
        ]
        text = HELPLINES.medical_advice_reply(language, region)
        send_reply(dispatcher, knowledge.Reply(text, buttons))
        return []


class ActionHumanHandoff(Action):
    """Offer a person: the staff line, and where a webhook is set, hand over and pause."""

    def name(self) -> str:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        events = await self._offer(dispatcher, tracker)
        return [ActiveLoop(None), *events] if tracker.active_loop_name else events

    async def _offer(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        _, region = _reader(tracker)
        emergency = HELPLINES.numbers[region]["emergency"]["label"]
        contact = _human_contact()
        if SETTINGS.handoff_webhook_url:
            reference = handoff.new_reference()
            payload = handoff.summarise(tracker.events, region, reference)
            payload["conversation_id"] = tracker.sender_id
            delivered = await handoff.notify(
                SETTINGS.handoff_webhook_url, payload, SETTINGS.handoff_webhook_token
            )
            if delivered:
                when = f" ({SETTINGS.handoff_hours})" if SETTINGS.handoff_hours else ""
                dispatcher.utter_message(text=(
                    f"I've asked a person from our team to take over. Your reference is "
                    f"{reference}. They will answer you here{when}. Until then I'll stay quiet: "
                    f"this chat is paused for me. In an emergency, call {emergency}."
                ))
                return [ConversationPaused()]
            dispatcher.utter_message(text=(
                "Sorry, I couldn't reach our team just now. "
                + (contact or f"Please call your doctor, nurse or GP. In an emergency, call "
                   f"{emergency}.")
            ))
            return []
        dispatcher.utter_message(text=contact or (
            "I'm sorry, this service doesn't have a team you can talk to here. Your doctor, "
            f"nurse or GP can help. In an emergency, call {emergency}."
        ))
        return []


class ActionDefaultFallback(Action):
    """After two misses in a row: say so kindly, and offer a person if the service has one."""

    def name(self) -> str:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = "I'm sorry, I still don't understand. I may not know about this."
        buttons = []
        if _can_hand_off():
            buttons.append({"title": "Talk to a person", "payload": "/human_handoff"})
            text += " Would you like to talk to a person?"
        else:
            text += " Your doctor, nurse or GP can help with questions about your care."
        dispatcher.utter_message(text=text, buttons=buttons)
        return [UserUtteranceReverted()]
