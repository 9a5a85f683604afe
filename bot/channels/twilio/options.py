"""Buttons as numbered options: shown as "Reply with a number:" and a list, and a reply of
"1", "2", ... read back as that option. The options offered are read from Rasa's tracker
store, so any Rasa instance understands the reply."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from knowledge.shapes import card_options

logger = logging.getLogger(__name__)

OPTIONS_HEADER = "Reply with a number:"


@dataclass(frozen=True)
class Option:
    """One button as a numbered option: what is shown and what is sent to Rasa."""

    title: str
    payload: str


def options_from_buttons(buttons: Iterable[Mapping[str, Any]]) -> list[Option]:
    """Rasa buttons (``title``/``payload``) as options; a button without either is skipped."""
    options = []
    for button in buttons or []:
        if not isinstance(button, Mapping):
            continue
        title = str(button.get("title") or "").strip()
        payload = str(button.get("payload") or title).strip()
        if title and payload:
            options.append(Option(title, payload))
    return options


def format_options(text: str, options: list[Option], first: int = 1) -> str:
    """``text`` followed by "Reply with a number:" and the options numbered from ``first``."""
    if not options:
        return text
    lines = [f"{n}. {option.title}" for n, option in enumerate(options, start=first)]
    block = "\n".join([OPTIONS_HEADER, *lines])
    head = text.rstrip()
    return f"{head}\n\n{block}" if head else block


CHOICE = re.compile(r"^\s*#?\s*(\d{1,3})\s*[.)]?\s*$")


def choose_option(text: str, options: list[Option] | None) -> str | None:
    """The payload of the option a reply like ``2`` (or ``2.``, ``#2``) picks, else None."""
    match = CHOICE.match(text or "")
    if not match or not options:
        return None
    number = int(match.group(1))
    return options[number - 1].payload if 1 <= number <= len(options) else None


async def offered_options(tracker_store: Any, sender: str) -> list[Option]:
    """The options the assistant's last turn offered this sender, numbered across that
    turn's messages, read from Rasa's tracker store (shared by every Rasa instance).
    Nothing when there is no store, no conversation, or no buttons after the last message."""
    if tracker_store is None:
        return []
    from rasa.shared.core.events import BotUttered, UserUttered

    try:
        tracker = await tracker_store.retrieve(sender)
    except Exception as err:  # noqa: BLE001 - the reply is then read as plain text
        logger.warning("Could not read the options offered (%s)", type(err).__name__)
        return []
    turn: list[BotUttered] = []
    for event in reversed(list(tracker.events) if tracker else []):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, BotUttered):
            turn.append(event)
    return [option for event in reversed(turn) for option in message_options(event.data or {})]


def reply_of(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """A message's channel-neutral reply parts (the custom payload's ``reply``), if any."""
    custom = message.get("custom")
    reply = custom.get("reply") if isinstance(custom, Mapping) else None
    return reply if isinstance(reply, dict) else None


def message_options(message: Mapping[str, Any]) -> list[Option]:
    """The options one message offers, in the order they are numbered: its result cards
    (a reply of "1" asks for the first in full), then its buttons."""
    reply = reply_of(message)
    cards = [Option(b.title, b.payload) for b in card_options(reply)] if reply else []
    return [*cards, *options_from_buttons(message.get("buttons") or [])]


def parse_options(body: str) -> list[tuple[int, str]]:
    """The numbered options in a message we sent (what a person sees): [(1, "Show more"), ...]."""
    _, found, tail = (body or "").rpartition(OPTIONS_HEADER)
    if not found:
        return []
    options = []
    for line in tail.splitlines():
        match = re.match(r"^(\d+)\. (.+)$", line.strip())
        if match:
            options.append((int(match.group(1)), match.group(2)))
    return options
