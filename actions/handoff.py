"""Hand a conversation to a person: a reference number, a redacted summary, a webhook POST.

:class:`ActionHumanHandoff` builds the summary from the tracker's events and calls
:func:`notify`. The summary carries knowledge-base topics, not people's words, plus the last
message with contact details masked; an SMS conversation is named by an opaque keyed hash,
never by its phone number.

Floods: a conversation has at most one open hand-off (asked again, the person gets the same
reference and nothing is POSTed; staff resuming the conversation closes it), and each channel
gets at most ``NAVIGATOR_HANDOFF_RATE`` POSTs an hour from one action server
(:class:`PostCap`; the action server never sees addresses, so the cap is per channel).
A webhook that answers too slowly still leaves the person with the reference and the line.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import aiohttp
from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import HELPLINES, KB, SETTINGS, human_contact, reader
from knowledge import pseudonyms
from knowledge.privacy import mask
from knowledge.replies import say

logger = logging.getLogger(__name__)
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to read out on the phone
MAX_QUOTE = 280
RECORD = "navigator_handoff"  # bot-message metadata: this conversation's hand-off reference
REFERENCE = re.compile(r"PCN-[A-HJ-NP-Z2-9]{6}")
HOUR = 3600.0


class Delivery(enum.Enum):
    """What became of a POST to the staff webhook."""

    DELIVERED = "delivered"  # answered 2xx
    TIMED_OUT = "timed out"  # no answer in time: staff may or may not have it
    FAILED = "failed"  # refused, unreachable, or an error status


class PostCap:
    """At most ``limit`` webhook POSTs per ``window`` seconds for each channel (one process)."""

    def __init__(self, limit: int, window: float = HOUR) -> None:
        self.limit = limit
        self.window = window
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, channel: str, now: float | None = None) -> bool:
        """Count one POST for ``channel``; False (and nothing counted) when it is at the cap."""
        now = time.monotonic() if now is None else now
        with self._lock:
            sent = self._sent.setdefault(channel, deque())
            while sent and sent[0] <= now - self.window:
                sent.popleft()
            if len(sent) >= self.limit:
                return False
            sent.append(now)
            return True


CAP = PostCap(SETTINGS.handoff_rate)


def new_reference() -> str:
    """A short reference the person can quote, like ``PCN-7K3QXM``."""
    return "PCN-" + "".join(secrets.choice(_ALPHABET) for _ in range(6))


def redact(text: str) -> str:
    """Mask personal details (:func:`knowledge.privacy.mask`); cut to a short quote."""
    return mask(text)[:MAX_QUOTE]


def summarise(events: Iterable[Mapping[str, Any]], region: str, reference: str,
              known: Collection[str] | None = None) -> dict:
    """What staff need to pick up: topics asked about, crisis flags, the last message redacted.

    A topic is only ever a knowledge-base id (``known``; default the loaded knowledge base):
    an entity a person typed into a payload is never copied.
    """
    known = KB.entries if known is None else known
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
        topic = chosen[0] if chosen else key.removeprefix("faq/") if key else None
        if isinstance(topic, str) and topic in known and topic not in topics:
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


async def notify(url: str, payload: dict, token: str | None = None,
                 timeout: float = 5.0) -> Delivery:
    """POST the summary to the staff webhook and say what became of it (never raises for a
    slow, failing or absent webhook)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reference = payload.get("reference")
    try:
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.post(url, json=payload, headers=headers) as response,
        ):
            if 200 <= response.status < 300:
                return Delivery.DELIVERED
            logger.warning("hand-off webhook answered %s (reference %s)",
                           response.status, reference)
    # On Python 3.10 asyncio.TimeoutError (what aiohttp raises) is not the built-in one.
    except (asyncio.TimeoutError, TimeoutError):
        logger.warning("hand-off webhook did not answer within %g s (reference %s)",
                       timeout, reference)
        return Delivery.TIMED_OUT
    except aiohttp.ClientError as exc:
        logger.warning("hand-off webhook unreachable: %s (reference %s)",
                       type(exc).__name__, reference)
    return Delivery.FAILED


def open_handoff(events: Iterable[Mapping[str, Any]]) -> dict | None:
    """This conversation's latest hand-off record (``reference``, ``delivered``) since staff
    last resumed it, or None. The action keeps it in its own message's metadata, which no
    channel sends on and no person can set."""
    found: dict | None = None
    for event in events:
        if event.get("event") == "resume":
            found = None
        elif event.get("event") == "bot":
            record = (event.get("metadata") or {}).get(RECORD)
            if isinstance(record, dict) and REFERENCE.fullmatch(str(record.get("reference"))):
                found = record
    return found


def conversation_id(tracker: Tracker) -> str:
    """The id staff get: a web conversation's own (random) id; for SMS/WhatsApp an opaque
    keyed hash of the number (:func:`knowledge.pseudonyms.conversation_ref`)."""
    sender = tracker.sender_id
    if tracker.get_latest_input_channel() == "twilio" or pseudonyms.is_phone_number(sender):
        key = pseudonyms.number_key(SETTINGS.number_secret, SETTINGS.var_dir)
        return pseudonyms.conversation_ref(key, sender)
    return sender


class ActionHumanHandoff(Action):
    """Offer a person: the staff line, and where a webhook is set, hand over and pause."""

    def name(self) -> str:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        events = await self._offer(dispatcher, tracker)
        if tracker.active_loop_name:  # a search or a guided conversation ends here
            return [ActiveLoop(None), SlotSet("guide", None), *events]
        return events

    async def _offer(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        language, region = reader(tracker)
        emergency = HELPLINES.numbers[region]["emergency"]["label"]
        contact = human_contact(language)
        if not SETTINGS.handoff_webhook_url:
            dispatcher.utter_message(
                text=contact or say("handoff_no_team", language, emergency=emergency))
            return []
        line = contact or say("handoff_own_doctor", language, emergency=emergency)
        earlier = open_handoff(tracker.events)
        if earlier and earlier.get("delivered"):  # already with staff: same reference, no POST
            return _handed_over(dispatcher, language, earlier["reference"], emergency)
        channel = tracker.get_latest_input_channel() or "other"
        if not CAP.take(channel):
            logger.warning("hand-off cap reached on channel %s (%d an hour): nothing POSTed",
                           channel, CAP.limit)
            dispatcher.utter_message(text=say("handoff_unreachable", language) + " " + line)
            return []
        # A retry after a webhook too slow to answer keeps the reference the person was given.
        reference = earlier["reference"] if earlier else new_reference()
        payload = summarise(tracker.events, region, reference)
        payload["conversation_id"] = conversation_id(tracker)
        delivery = await notify(SETTINGS.handoff_webhook_url, payload,
                                SETTINGS.handoff_webhook_token, SETTINGS.handoff_webhook_timeout)
        if delivery is Delivery.DELIVERED:
            return _handed_over(dispatcher, language, reference, emergency)
        if delivery is Delivery.TIMED_OUT:  # staff may have it: the reference is worth quoting
            dispatcher.utter_message(
                text=say("handoff_slow", language, reference=reference) + " " + line,
                **{RECORD: {"reference": reference, "delivered": False}})
        else:
            dispatcher.utter_message(text=say("handoff_unreachable", language) + " " + line)
        return []


def _handed_over(dispatcher: CollectingDispatcher, language: str, reference: str,
                 emergency: str) -> list[EventType]:
    """Tell the person staff will take over (recording the reference), and pause."""
    hours = f" ({SETTINGS.handoff_hours})" if SETTINGS.handoff_hours else ""
    dispatcher.utter_message(
        text=say("handoff_done", language, reference=reference, hours=hours,
                 emergency=emergency),
        **{RECORD: {"reference": reference, "delivered": True}})
    return [ConversationPaused()]
