"""What every action shares: settings, the loaded content, the reader, sending a reply.

Each action module (faq, safety, handoff, directory) imports this and the libraries, never
another action module.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import knowledge
from knowledge import shapes
from knowledge.helplines import default_helplines
from knowledge.replies import say
from settings import Settings

SETTINGS = Settings.from_env()
KB = knowledge.default_kb()
HELPLINES = default_helplines()
MAX_BUTTONS = 4

_PERSON = (r"(mum|mom|mother|mam|dad|father|husband|wife|partner|son|daughter|brother|sister|"
           r"grandma|grandmother|grandad|grandpa|grandfather|nan|nana|gran|granny|aunt|auntie|"
           r"uncle|friend|neighbou?r|parents?|in-laws?|mother-in-law|father-in-law|client|"
           r"resident|patient)")
CAREGIVER = re.compile(
    rf"\b(my|our)\s+(\w+\s+)?{_PERSON}\b|\b(i am|i'm|im) (a |the |her |his |their )?"
    rf"(carer|caregiver|care worker)\b|\bcaring for\b|\blooking after (my|her|him|them)\b",
    re.IGNORECASE,
)
PATIENT = re.compile(
    r"\b(i have|i've got|i was diagnosed|i am dying|i'm dying|my (cancer|illness|diagnosis|"
    r"pain|tumou?r|ms|copd|chemo|treatment|oncologist|consultant))\b",
    re.IGNORECASE,
)


def audience_of(text: str | None) -> str | None:
    """``caregiver``, ``patient``, or None when the message does not say."""
    if not text or text.startswith("/"):
        return None
    if CAREGIVER.search(text):
        return "caregiver"
    if PATIENT.search(text):
        return "patient"
    return None


def entity(tracker: Tracker, name: str) -> str | None:
    """The first value of entity ``name`` in the latest user message."""
    return next(tracker.get_latest_entity_values(name), None)


def reader(tracker: Tracker) -> tuple[str, str]:
    """The (language, region) to answer in: the conversation's, else the deployment's."""
    language = tracker.get_slot("language") or SETTINGS.language
    region = tracker.get_slot("region") or SETTINGS.default_region
    return language, region


def region_said(tracker: Tracker) -> str | None:
    """``US``/``UK`` if the latest message names a country (as an entity or in its words)."""
    return knowledge.region_from_text(entity(tracker, "region")) or (
        knowledge.region_in_message((tracker.latest_message or {}).get("text")))


def human_contact(language: str = "en") -> str | None:
    """The deployment's staff line as a sentence, if it has one."""
    if not SETTINGS.handoff_phone:
        return None
    hours = f" ({SETTINGS.handoff_hours})" if SETTINGS.handoff_hours else ""
    return say("human_contact", language, phone=SETTINGS.handoff_phone, hours=hours)


def can_hand_off() -> bool:
    """Whether there is a person to hand over to (a staff line or a webhook)."""
    return bool(SETTINGS.handoff_phone or SETTINGS.handoff_webhook_url)


def send_reply(dispatcher: CollectingDispatcher, reply: knowledge.Reply,
               language: str | None = None) -> None:
    """Send a channel-neutral reply: its plain text (for channels without rich display) and
    quick replies, and, when it has parts (cards, sources, text after the cards, or it is
    worth printing), those parts as a custom payload (``{"reply": ...}``) that each channel
    shapes (knowledge/shapes.py)."""
    language = language or SETTINGS.language
    rich = bool(reply.cards or reply.sources or reply.after or reply.printable)
    payload = {**reply.payload(), "labels": shapes.labels(language)}
    dispatcher.utter_message(
        text=shapes.plain_text(payload, language) if rich else reply.text,
        buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons],
        json_message={"reply": payload} if rich else None,
    )


def selected_faq_ids(message: dict[str, Any]) -> list[tuple[str, float]]:
    """The ResponseSelector's FAQ ids for a parsed message, most likely first."""
    ranking = (message.get("response_selector") or {}).get("faq", {}).get("ranking") or []
    out = []
    for item in ranking:
        key = item.get("intent_response_key") or ""
        if key.startswith("faq/"):
            out.append((key.split("/", 1)[1], float(item.get("confidence") or 0.0)))
    return out
