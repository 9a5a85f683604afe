"""Hand a conversation to a person: a reference number, a redacted summary, a webhook POST.

:class:`ActionHumanHandoff` builds the summary from the tracker's events and calls
:func:`notify`. The summary carries topics, not people's words, plus the last message with
phone numbers, emails and postcodes/ZIP codes masked.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import HELPLINES, SETTINGS, human_contact, reader
from knowledge.replies import say

logger = logging.getLogger(__name__)
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to read out on the phone
_REDACTIONS = [
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "[email]"),
    (re.compile(r"\+?\d[\d\s().-]{6,}\d"), "[number]"),
    (re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE), "[postcode]"),
    (re.compile(r"\b\d{5}(-\d{4})?\b"), "[zip]"),
]
MAX_QUOTE = 280


def new_reference() -> str:
    """A short reference the person can quote, like ``PCN-7K3QXM``."""
    return "PCN-" + "".join(secrets.choice(_ALPHABET) for _ in range(6))


def redact(text: str) -> str:
    """Mask phone numbers, emails, postcodes and ZIP codes; cut to a short quote."""
    for pattern, mask in _REDACTIONS:
        text = pattern.sub(mask, text)
    return text[:MAX_QUOTE]


def summarise(events: Iterable[Mapping[str, Any]], region: str, reference: str) -> dict:
    """What staff need to pick up: topics asked about, crisis flags, the last message redacted."""
    topics: list[str] = []
    crisis: list[str] = []
    user_turns = 0
    last = ""
    for event in events:
        if event.get("event") != "user":
            continue
        user_turns += 1
        parse = event.get("parse_data") or {}
        intent = (parse.get("intent") or {}).get("name") or ""
        if intent.startswith("crisis_"):
            crisis.append(intent.removeprefix("crisis_"))
        chosen = [e.get("value") for e in parse.get("entities") or []
                  if e.get("entity") == "faq_id"]  # a button the person pressed
        selected = (parse.get("response_selector") or {}).get("faq", {}).get("response", {})
        key = selected.get("intent_response_key") if intent == "faq" else None
        topic = chosen[0] if chosen else key.removeprefix("faq/") if key else intent
        if topic and topic not in topics and topic not in {"human_handoff", "nlu_fallback"}:
            topics.append(topic)
        if event.get("text") and not str(event["text"]).startswith("/"):
            last = str(event["text"])
    return {
        "reference": reference,
        "region": region,
        "user_turns": user_turns,
        "topics": topics[-10:],
        "crisis": sorted(set(crisis)),
        "last_message_redacted": redact(last),
    }


async def notify(url: str, payload: dict, token: str | None = None, timeout: float = 5.0) -> bool:
    """POST the summary to the staff webhook; True if it answered 2xx."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.post(url, json=payload, headers=headers) as response,
        ):
            if 200 <= response.status < 300:
                return True
            logger.warning("hand-off webhook answered %s (reference %s)",
                           response.status, payload.get("reference"))
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("hand-off webhook unreachable: %s (reference %s)",
                       type(exc).__name__, payload.get("reference"))
    return False


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
        language, region = reader(tracker)
        emergency = HELPLINES.numbers[region]["emergency"]["label"]
        contact = human_contact(language)
        if SETTINGS.handoff_webhook_url:
            reference = new_reference()
            payload = summarise(tracker.events, region, reference)
            payload["conversation_id"] = tracker.sender_id
            delivered = await notify(
                SETTINGS.handoff_webhook_url, payload, SETTINGS.handoff_webhook_token
            )
            if delivered:
                hours = f" ({SETTINGS.handoff_hours})" if SETTINGS.handoff_hours else ""
                dispatcher.utter_message(text=say(
                    "handoff_done", language, reference=reference, hours=hours,
                    emergency=emergency))
                return [ConversationPaused()]
            dispatcher.utter_message(text=say("handoff_unreachable", language) + " " + (
                contact or say("handoff_own_doctor", language, emergency=emergency)))
            return []
        dispatcher.utter_message(
            text=contact or say("handoff_no_team", language, emergency=emergency))
        return []
