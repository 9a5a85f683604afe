"""The input channel: Twilio's webhook, checked (size, form, signature), de-duplicated on
``MessageSid``, then STOP / START / HELP handled here and everything else passed to Rasa,
replies queued on the sender.

``POST /webhooks/twilio/webhook`` takes each inbound message; ``GET /webhooks/twilio/`` is a
health check. Both answer 503 while the channel's settings are missing. The webhook streams
its body and stops reading at :data:`MAX_BODY_BYTES` (413), so Rasa's web server never
buffers more than that (its own limit for other routes is 100 MB).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.twilio.config import (
    TwilioConfig,
    default_var_dir,
    number_ref,
    region_of_sender,
)
from bot.channels.twilio.options import CHOICE, choose_option, offered_options
from bot.channels.twilio.optouts import OPT_OUT_FILE, OptOutStore, SqlOptOutStore
from bot.channels.twilio.sending import TwilioOutput, TwilioSender
from bot.channels.twilio.signature import FORM_TYPE, MAX_BODY_BYTES, SignatureCheck, parse_form
from knowledge.emergency import emergency_line
from knowledge.pseudonyms import number_key

logger = logging.getLogger(__name__)

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
YES = "YES"  # opts back in only when the sender has opted out; otherwise it is an answer
HELP_WORDS = frozenset({"HELP", "INFO"})

EMERGENCY = emergency_line()["text"]  # each region's number, from knowledge/helplines.yml
HELP_TEXT = (
    "Palliative Care Navigator: an automated service with information about palliative "
    "and hospice care. It is not medical advice and no person reads these messages. "
    f"{EMERGENCY} Reply STOP to stop."
)
WELCOME_TEXT = (
    "Welcome to Palliative Care Navigator, an automated information service. Ask me about "
    "palliative or hospice care. Reply HELP for help, STOP to stop."
)
NO_TEXT_REPLY = "Sorry, I can only read text messages. Please type your question."
ERROR_REPLY = (
    f"Sorry, something went wrong on our side. Please try again in a few minutes. {EMERGENCY}"
)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SEEN_MESSAGES = 10_000  # MessageSids remembered for de-duplication (about 1 MB at most)
SEEN_SECONDS = 3_600.0  # Twilio retries within minutes; an hour is ample


class RecentIds:
    """Ids seen in the last ``ttl`` seconds, at most ``size`` of them (oldest forgotten
    first): Twilio retries a webhook it thinks failed, with the same ``MessageSid``."""

    def __init__(self, size: int = SEEN_MESSAGES, ttl: float = SEEN_SECONDS) -> None:
        self.size = size
        self.ttl = ttl
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str, now: float | None = None) -> bool:
        """True the first time ``key`` is seen (and remember it); False for a repeat."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now - self.ttl:
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._seen)


async def read_capped(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """A streamed request body, or None once it exceeds ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared and declared.strip().isdigit() and int(declared) > limit:
        if request.stream is not None:
            request.stream.request_max_size = limit  # Sanic then drains no more than this
        return None
    if request.stream is None:
        return request.body or b""
    request.stream.request_max_size = limit
    chunks: list[bytes] = []
    try:
        while (chunk := await request.stream.read()) is not None:
            chunks.append(chunk)
    except PayloadTooLarge:
        return None
    return b"".join(chunks)


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


def _int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


class TwilioChannel(InputChannel):
    """Twilio SMS / WhatsApp input channel (see the package docstring)."""

    def __init__(self, config: TwilioConfig, var_dir: Path | None = None) -> None:
        self.config = config
        var = Path(var_dir or default_var_dir())

        def key() -> bytes:  # made or read on first use: an unconfigured channel writes nothing
            return number_key(config.number_secret, var)

        self.optouts: OptOutStore | SqlOptOutStore = (
            SqlOptOutStore(config.optout_url, key) if config.optout_url
            else OptOutStore(var / OPT_OUT_FILE, key))
        self.seen = RecentIds()
        self.sender = TwilioSender(config, self.optouts)
        self._signature = SignatureCheck(config.auth_token, config.public_url)
        if config.configured:
            logger.info("Twilio channel ready")
        else:
            logger.warning("Twilio channel is not configured: set %s. Its webhook answers 503.",
                           ", ".join(config.missing))

    @classmethod
    def name(cls) -> str:
        return "twilio"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> TwilioChannel:
        return cls(TwilioConfig.from_credentials(credentials))

    def get_output_channel(self) -> OutputChannel | None:
        """For messages Rasa sends on its own (no webhook waits for them)."""
        return TwilioOutput(self) if self.config.configured else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("navigator_twilio", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            if not self.config.configured:
                return response.json({"status": "not configured"}, status=503)
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"], stream=True)
        async def webhook(request: Request) -> HTTPResponse:
            body = await read_capped(request)
            if body is None:
                return response.text("Request body too large.\n", status=413)
            agent = getattr(request.app.ctx, "agent", None)
            reply = await self.handle(
                body,
                request.headers.get("content-type"),
                request.headers.get("x-twilio-signature"),
                on_new_message,
                getattr(agent, "tracker_store", None),
            )
            return response.text(reply.body, status=reply.status,
                                 content_type=reply.content_type)

        @hook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            await self.sender.close()

        return hook

    async def handle(self, body: bytes, content_type: str | None, signature: str | None,
                     on_new_message: Callable[[UserMessage], Awaitable[Any]],
                     tracker_store: Any = None) -> WebhookReply:
        """One webhook request, checked, then processed. Returns what to answer Twilio.

        ``tracker_store`` (Rasa's) is where the options offered last turn are read back.
        """
        if not self.config.configured:
            return WebhookReply(503, "Twilio channel is not configured.\n")
        if len(body) > MAX_BODY_BYTES:
            return WebhookReply(413, "Request body too large.\n")
        if (content_type or "").split(";")[0].strip().lower() != FORM_TYPE:
            return WebhookReply(400, f"Expected {FORM_TYPE}.\n")
        try:
            params = parse_form(body)
        except (UnicodeDecodeError, ValueError):
            return WebhookReply(400, "Malformed form body.\n")
        if not signature or not self._signature.signed_by_twilio(params, signature):
            logger.warning("Rejected a Twilio webhook: %s signature",
                           "invalid" if signature else "missing")
            return WebhookReply(403, "Invalid signature.\n")
        sender = (params.get("From") or "").strip()
        if not sender:
            return WebhookReply(400, "Missing From.\n")
        sid = (params.get("MessageSid") or "").strip()
        if sid and not self.seen.first_time(sid):
            logger.info("Ignored a repeated Twilio webhook (retry of a message already taken)")
            return WebhookReply(200, EMPTY_TWIML, "text/xml; charset=utf-8")
        await self._process(sender, params, on_new_message, tracker_store)
        return WebhookReply(200, EMPTY_TWIML, "text/xml; charset=utf-8")

    async def _process(self, sender: str, params: Mapping[str, str],
                       on_new_message: Callable[[UserMessage], Awaitable[Any]],
                       tracker_store: Any = None) -> None:
        text = (params.get("Body") or "").strip()
        keyword = text.upper()
        out = TwilioOutput(self)
        ref = number_ref(sender)
        opted_out = await self.optouts.contains(sender)

        if keyword in STOP_WORDS:
            await self.optouts.add(sender)
            logger.info("Sender %s opted out", ref)
            return  # Twilio confirms STOP itself on real numbers: we go quiet
        if keyword in START_WORDS or (opted_out and keyword == YES):
            await self.optouts.remove(sender)
            logger.info("Sender %s opted in", ref)
            await out.send_text_message(sender, WELCOME_TEXT)
            await out.wait()
            return
        if opted_out:
            logger.debug("Ignored a message from opted-out sender %s", ref)
            return
        if keyword in HELP_WORDS:
            await out.send_text_message(sender, HELP_TEXT)
        elif not text:
            logger.debug("Message without text from %s (%d media)", ref,
                         _int(params.get("NumMedia")))
            await out.send_text_message(sender, NO_TEXT_REPLY)
        else:
            if CHOICE.match(text):
                text = choose_option(text, await offered_options(tracker_store, sender)) or text
            region = region_of_sender(sender, params.get("FromCountry"))
            message = UserMessage(text, out, sender, input_channel=self.name(),
                                  message_id=(params.get("MessageSid") or None),
                                  metadata={"country": region} if region else None)
            try:
                await on_new_message(message)
            except Exception as err:
                logger.error("Rasa could not handle a Twilio message from %s (%s)",
                             ref, type(err).__name__)
                logger.debug("Traceback of the failed Twilio message", exc_info=True)
                await out.send_text_message(sender, ERROR_REPLY)
        await out.wait()
