"""Replies out: long texts split at sentence boundaries (links kept whole), then posted to
Twilio's REST API with aiohttp, never blocking the event loop, one conversation's messages
in order. :class:`TwilioOutput` is the output channel Rasa hands each turn's replies to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

import aiohttp
from rasa.core.channels.channel import OutputChannel

from bot.channels.twilio.config import TWILIO_MAX_LENGTH, TwilioConfig, number_ref
from bot.channels.twilio.options import (
    Option,
    format_options,
    message_options,
    options_from_buttons,
    reply_of,
)
from bot.channels.twilio.optouts import OptOutStore, SqlOptOutStore
from knowledge.shapes import sms_text

if TYPE_CHECKING:
    from bot.channels.twilio.webhook import TwilioChannel

logger = logging.getLogger(__name__)

SEND_TIMEOUT = aiohttp.ClientTimeout(total=10)
SEND_ATTEMPTS = 3  # only for answers that mean "not accepted, try again"


def text_size(text: str) -> int:
    """Length as Twilio counts it (UTF-16 code units), never less than ``len(text)``."""
    return len(text.encode("utf-16-le")) // 2


# From the coarsest to the finest: paragraphs, lines, sentences, words. Every boundary is
# whitespace, so links (which contain none) are never cut unless one alone is too long.
_BOUNDARIES = (
    re.compile(r"\n[ \t]*\n\s*"),
    re.compile(r"\n\s*"),
    re.compile(r"[.!?…]+[\"'’”)\]]*\s+"),
    re.compile(r"\s+"),
)


def _units(text: str, boundary: re.Pattern[str]) -> list[str]:
    """``text`` cut after each boundary match, the separator kept on the piece before it."""
    pieces, start = [], 0
    for match in boundary.finditer(text):
        if match.end() > start:
            pieces.append(text[start:match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _hard_cut(word: str, max_length: int) -> list[str]:
    """Last resort for a single "word" longer than a message (e.g. a huge URL)."""
    parts, current = [], ""
    for char in word:
        if text_size(current + char) > max_length:
            parts.append(current)
            current = ""
        current += char
    return [*parts, current] if current else parts


def _pack(text: str, max_length: int, level: int) -> list[str]:
    if text_size(text.strip()) <= max_length:
        return [text.strip()] if text.strip() else []
    if level == len(_BOUNDARIES):
        return _hard_cut(text.strip(), max_length)
    chunks: list[str] = []
    current = ""
    for unit in _units(text, _BOUNDARIES[level]):
        if text_size((current + unit).strip()) <= max_length:
            current += unit
            continue
        if current.strip():
            chunks.append(current.strip())
        current = ""
        if text_size(unit.strip()) <= max_length:
            current = unit
        else:
            parts = _pack(unit, max_length, level + 1)
            chunks.extend(parts[:-1])
            # the tail of a long piece may share a message with what follows
            current = parts[-1] + unit[len(unit.rstrip()):] if parts else ""
    if current.strip():
        chunks.append(current.strip())
    return chunks


def split_message(text: str, max_length: int = TWILIO_MAX_LENGTH) -> list[str]:
    """Cut ``text`` into messages of at most ``max_length`` characters.

    Prefers paragraph, then line, then sentence boundaries; a sentence longer than a message
    is cut at a space. Never cuts inside a word, so ``tel:`` and https links stay whole.
    """
    return _pack(text or "", max_length, 0)


class TwilioSender:
    """Posts messages to Twilio's REST API with aiohttp; each recipient's messages in order."""

    def __init__(self, config: TwilioConfig, optouts: OptOutStore | SqlOptOutStore) -> None:
        self.config = config
        self.optouts = optouts
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._tails: dict[str, asyncio.Task] = {}  # last queued send per recipient

    def enqueue(self, recipient: str, body: str) -> asyncio.Task:
        """Queue one message after the recipient's earlier ones; the task never raises."""
        previous = self._tails.get(recipient)
        task = asyncio.get_running_loop().create_task(self._after(previous, recipient, body))
        self._tails[recipient] = task

        def forget(done: asyncio.Task) -> None:
            if self._tails.get(recipient) is done:
                del self._tails[recipient]

        task.add_done_callback(forget)
        return task

    async def _after(self, previous: asyncio.Task | None, recipient: str, body: str) -> bool:
        if previous is not None:
            await asyncio.wait([previous])
        if await self.optouts.contains(recipient):  # said STOP while this was waiting
            return False
        try:
            return await self._post(recipient, body)
        except Exception as err:  # never let one reply break the conversation
            logger.warning("Sending a Twilio reply to %s failed (%s)",
                           number_ref(recipient), type(err).__name__)
            return False

    async def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession(
                timeout=SEND_TIMEOUT,
                auth=aiohttp.BasicAuth(self.config.account_sid or "", self.config.auth_token or ""),
            )
            self._session_loop = loop
        return self._session

    async def _post(self, recipient: str, body: str) -> bool:
        form = {"From": self.config.sender_for(recipient), "To": recipient, "Body": body}
        session = await self._client()
        ref = number_ref(recipient)
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                async with session.post(self.config.messages_url, data=form) as reply:
                    if reply.status < 300:
                        logger.debug("Twilio accepted a reply to %s", ref)
                        return True
                    retry = reply.status in (429, 503) and attempt < SEND_ATTEMPTS
                    code = await _twilio_error_code(reply)
                    logger.warning(
                        "Twilio did not accept a reply to %s: HTTP %s, Twilio error %s%s",
                        ref, reply.status, code, "; retrying" if retry else "")
            except aiohttp.ClientConnectionError as err:
                # Only "could not connect" is safe to repeat: the message was never received.
                retry = isinstance(err, aiohttp.ClientConnectorError) and attempt < SEND_ATTEMPTS
                logger.warning("Could not reach Twilio to send a reply to %s (%s)%s",
                               ref, type(err).__name__, "; retrying" if retry else "")
            except asyncio.TimeoutError:
                logger.warning("Twilio did not answer in time for a reply to %s", ref)
                retry = False
            if not retry:
                return False
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
        return False

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


async def _twilio_error_code(reply: aiohttp.ClientResponse) -> str:
    """Twilio's numeric error code only: its message may quote the phone number."""
    with contextlib.suppress(Exception):
        data = await reply.json(content_type=None)
        if isinstance(data, dict) and data.get("code") is not None:
            return str(data["code"])
    return "unknown"


class TwilioOutput(OutputChannel):
    """Queues a conversation's replies with :class:`TwilioSender`, buttons as numbered options."""

    def __init__(self, channel: TwilioChannel) -> None:
        self.channel = channel
        self.options: list[Option] = []  # offered in this turn, numbered across its messages
        self.pending: list[asyncio.Task] = []

    @classmethod
    def name(cls) -> str:
        return "twilio"

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """A reply with parts (result cards, sources) is shaped for a phone: one numbered line
        per result (its number is an option), each source a short title and URL; bold names on
        WhatsApp. Anything else goes as Rasa sends it."""
        reply = reply_of(message)
        if reply is None:
            await super().send_response(recipient_id, message)
            return
        first = len(self.options) + 1
        options = message_options(message)
        self.options.extend(options)
        text = sms_text(reply, whatsapp=recipient_id.startswith("whatsapp:"), first=first)
        cards = len(options) - len(options_from_buttons(message.get("buttons") or []))
        await self.send_text_message(
            recipient_id, format_options(text, options[cards:], first + cards))

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        for part in split_message(text, self.channel.config.max_length):
            self.pending.append(self.channel.sender.enqueue(recipient_id, part))

    async def send_text_with_buttons(self, recipient_id: str, text: str,
                                     buttons: list[dict[str, Any]], **kwargs: Any) -> None:
        options = options_from_buttons(buttons)
        first = len(self.options) + 1
        self.options.extend(options)
        await self.send_text_message(recipient_id, format_options(text or "", options, first))

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any],
                               **kwargs: Any) -> None:
        # Structured extras (e.g. provider cards) are for rich channels; their text is
        # already in the message. A custom payload with its own text is sent as text.
        text = json_message.get("text") if isinstance(json_message, dict) else None
        if isinstance(text, str) and text.strip():
            await self.send_text_message(recipient_id, text)

    async def wait(self) -> None:
        """Until every queued message has been tried (sent, refused or failed)."""
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
