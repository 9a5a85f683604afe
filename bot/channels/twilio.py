"""Twilio SMS and WhatsApp channel: signed webhooks in, asynchronous Twilio REST calls out.

Named in credentials.yml as ``bot.channels.twilio.TwilioChannel:``. Twilio posts each
inbound message to ``POST /webhooks/twilio/webhook``; ``GET /webhooks/twilio/`` is a health
check. Unlike Rasa's stock connector this one

* rejects requests whose ``X-Twilio-Signature`` does not match (403), computed over the
  public URL Twilio posts to, so it works behind a proxy;
* answers 503, never 500, while its settings are missing;
* replies kindly to messages without text instead of crashing;
* honours STOP / START / HELP, remembering opt-outs (as SHA-256 hashes) across restarts;
* turns buttons into numbered options and a reply of "1", "2", ... into that option (the
  options are read back from the tracker store, so any Rasa instance understands the reply);
* splits long replies at sentence boundaries, keeping links whole;
* sends with aiohttp, never blocking the event loop, one conversation's messages in order.

No secret lives in a file: every setting falls back to a ``NAVIGATOR_TWILIO_*`` variable.
Message text and phone numbers are never logged at INFO or above.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.twilio.com"
TWILIO_MAX_LENGTH = 1600  # characters in one Twilio message
MIN_LENGTH = 70  # one UCS-2 SMS segment: shorter parts would be silly
MAX_BODY_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200
OPT_OUT_FILE = "twilio_optouts.json"
SEND_TIMEOUT = aiohttp.ClientTimeout(total=10)
SEND_ATTEMPTS = 3  # only for answers that mean "not accepted, try again"

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
YES = "YES"  # opts back in only when the sender has opted out; otherwise it is an answer
HELP_WORDS = frozenset({"HELP", "INFO"})

HELP_TEXT = (
    "Palliative Care Navigator: an automated service with information about palliative "
    "and hospice care. It is not medical advice and no person reads these messages. "
    "In an emergency call 911 (999 in the UK). Reply STOP to stop."
)
WELCOME_TEXT = (
    "Welcome to Palliative Care Navigator, an automated information service. Ask me about "
    "palliative or hospice care. Reply HELP for help, STOP to stop."
)
NO_TEXT_REPLY = "Sorry, I can only read text messages. Please type your question."
ERROR_REPLY = (
    "Sorry, something went wrong on our side. Please try again in a few minutes. "
    "In an emergency call 911 (999 in the UK)."
)
OPTIONS_HEADER = "Reply with a number:"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
FORM_TYPE = "application/x-www-form-urlencoded"

# Each credentials.yml key and the Settings field it falls back to.
_SETTING = {
    "account_sid": "twilio_account_sid",
    "auth_token": "twilio_auth_token",
    "number": "twilio_number",
    "public_url": "twilio_public_url",
    "api_base_url": "twilio_api_base",
    "max_length": "twilio_max_length",
    "optout_url": "twilio_optout_url",
}
_REQUIRED = ("account_sid", "auth_token", "number", "public_url")


# --- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwilioConfig:
    """The channel's settings. ``auth_token`` is kept out of ``repr`` (and so out of logs)."""

    account_sid: str | None = None
    auth_token: str | None = field(default=None, repr=False)
    number: str | None = None
    public_url: str | None = None
    api_base_url: str = DEFAULT_API_BASE
    max_length: int = TWILIO_MAX_LENGTH
    optout_url: str | None = field(default=None, repr=False)  # SQL URL; None: a local file

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> TwilioConfig:
        """Each key from ``credentials`` if given there, else from its setting."""
        credentials = credentials or {}
        settings = Settings.from_env()

        def value(key: str) -> str | None:
            raw = credentials.get(key)
            if raw is None or str(raw).strip() == "":
                raw = getattr(settings, _SETTING[key]) or ""
            return str(raw).strip() or None

        raw_length = value("max_length")
        try:
            max_length = int(raw_length) if raw_length else TWILIO_MAX_LENGTH
        except ValueError:
            raise ValueError(
                f"Twilio max_length must be a whole number, got {raw_length!r}") from None
        if not MIN_LENGTH <= max_length <= TWILIO_MAX_LENGTH:
            raise ValueError(
                f"Twilio max_length must be between {MIN_LENGTH} and {TWILIO_MAX_LENGTH}, "
                f"got {max_length}"
            )
        public_url = value("public_url")
        if public_url and not public_url.startswith(("https://", "http://")):
            raise ValueError("Twilio public_url must be the full http(s) URL Twilio posts to")
        api_base = (value("api_base_url") or DEFAULT_API_BASE).rstrip("/")
        return cls(
            account_sid=value("account_sid"),
            auth_token=value("auth_token"),
            number=value("number"),
            public_url=public_url,
            api_base_url=api_base,
            max_length=max_length,
            optout_url=value("optout_url"),
        )

    @property
    def missing(self) -> list[str]:
        """The environment variables of required settings that have no value."""
        return [f"NAVIGATOR_{_SETTING[key].upper()}" for key in _REQUIRED
                if not getattr(self, key)]

    @property
    def configured(self) -> bool:
        return not self.missing

    @property
    def messages_url(self) -> str:
        return f"{self.api_base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def sender_for(self, recipient: str) -> str:
        """Our number in the recipient's channel: ``whatsapp:+1...`` for WhatsApp, else bare."""
        bare = _bare_number(self.number or "")
        return f"whatsapp:{bare}" if recipient.lower().startswith("whatsapp:") else bare


def _bare_number(address: str) -> str:
    address = address.strip()
    if address.lower().startswith("whatsapp:"):
        address = address[len("whatsapp:"):]
    return re.sub(r"\s+", "", address)


def number_hash(address: str) -> str:
    """SHA-256 of a phone number without its channel prefix (STOP on one channel stops both)."""
    return hashlib.sha256(_bare_number(address).encode("utf-8")).hexdigest()


_REF_KEY = secrets.token_bytes(16)  # per process: log tags correlate within one run only


def _ref(address: str) -> str:
    """A short tag for log lines instead of the number (a keyed hash: not reversible)."""
    return hmac.new(_REF_KEY, _bare_number(address).encode("utf-8"), "sha256").hexdigest()[:8]


def default_var_dir() -> Path:
    """The settings' var folder (``NAVIGATOR_VAR_DIR``)."""
    return Settings.from_env().var_dir


# --- splitting long replies ----------------------------------------------------------------


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


# --- numbered options ----------------------------------------------------------------------


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


_CHOICE = re.compile(r"^\s*#?\s*(\d{1,3})\s*[.)]?\s*$")


def choose_option(text: str, options: list[Option] | None) -> str | None:
    """The payload of the option a reply like ``2`` (or ``2.``, ``#2``) picks, else None."""
    match = _CHOICE.match(text or "")
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
    return options_from_buttons(b for event in reversed(turn)
                                for b in (event.data or {}).get("buttons") or [])


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


# --- opt-outs ------------------------------------------------------------------------------


class OptOutStore:
    """Who said STOP, as SHA-256 hashes of their numbers, in a JSON file written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._hashes: set[str] = self._load()

    def _load(self) -> set[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            hashes = data["opted_out"]
            if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
                raise ValueError("opted_out is not a list of hashes")
            return set(hashes)
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, KeyError, TypeError) as err:
            # Keep the unreadable file for a person to recover; start with an empty list.
            aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            logger.error("Could not read the Twilio opt-out file %s (%s); moved it to %s",
                         self.path, type(err).__name__, aside.name)
            return set()

    def __contains__(self, address: str) -> bool:
        return number_hash(address) in self._hashes

    async def contains(self, address: str) -> bool:
        """Whether this number said STOP (the same question every store answers)."""
        return address in self

    def __len__(self) -> int:
        return len(self._hashes)

    async def add(self, address: str) -> None:
        await self._change(number_hash(address), add=True)

    async def remove(self, address: str) -> None:
        await self._change(number_hash(address), add=False)

    async def _change(self, digest: str, add: bool) -> None:
        with self._lock:
            if (digest in self._hashes) == add:
                return
            if add:
                self._hashes.add(digest)
            else:
                self._hashes.discard(digest)
        await asyncio.to_thread(self._write)

    def _write(self) -> None:
        # Under the lock: each write holds the latest state, and writes never interleave.
        with self._lock:
            data = {"version": 1, "hash": "sha256", "opted_out": sorted(self._hashes)}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(data, out, indent=0)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise


class SqlOptOutStore:
    """Who said STOP, as SHA-256 hashes, in a SQL table that every Rasa instance shares
    (``NAVIGATOR_TWILIO_OPTOUT_URL``; the stack points it at the tracker database when there
    are several instances). Queries run in a worker thread, never on the event loop. When the
    database cannot be read, a number counts as opted out: better silent than unwanted."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        self.table = sa.Table(
            "navigator_twilio_optouts", sa.MetaData(),
            sa.Column("hash", sa.String(64), primary_key=True),
            sa.Column("since", sa.Float, nullable=False),
        )
        self._created = False  # the table is made on first use, not when Rasa starts

    def _conn(self, write: bool = False) -> Any:
        if not self._created:
            self.table.metadata.create_all(self.engine)
            self._created = True
        return self.engine.begin() if write else self.engine.connect()

    async def contains(self, address: str) -> bool:
        try:
            return await asyncio.to_thread(self._has, number_hash(address))
        except Exception as err:  # noqa: BLE001 - fail closed, and say so
            logger.error("Could not read the Twilio opt-out table (%s): not messaging %s",
                         type(err).__name__, _ref(address))
            return True

    def _has(self, digest: str) -> bool:
        with self._conn() as conn:
            query = self._sa.select(self.table.c.hash).where(self.table.c.hash == digest)
            return conn.execute(query).first() is not None

    async def add(self, address: str) -> None:
        await asyncio.to_thread(self._add, number_hash(address))

    def _add(self, digest: str) -> None:
        # another instance adding the same number at the same moment: already done
        with contextlib.suppress(self._sa.exc.IntegrityError), self._conn(write=True) as conn:
            if conn.execute(self._sa.select(self.table.c.hash)
                            .where(self.table.c.hash == digest)).first() is None:
                conn.execute(self.table.insert().values(hash=digest, since=time.time()))

    async def remove(self, address: str) -> None:
        await asyncio.to_thread(self._remove, number_hash(address))

    def _remove(self, digest: str) -> None:
        with self._conn(write=True) as conn:
            conn.execute(self.table.delete().where(self.table.c.hash == digest))

    def __len__(self) -> int:
        with self._conn() as conn:
            count = self._sa.select(self._sa.func.count()).select_from(self.table)
            return int(conn.execute(count).scalar_one())


# --- sending -------------------------------------------------------------------------------


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
                           _ref(recipient), type(err).__name__)
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
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                async with session.post(self.config.messages_url, data=form) as reply:
                    if reply.status < 300:
                        logger.debug("Twilio accepted a reply to %s", _ref(recipient))
                        return True
                    retry = reply.status in (429, 503) and attempt < SEND_ATTEMPTS
                    code = await _twilio_error_code(reply)
                    logger.warning(
                        "Twilio did not accept a reply to %s: HTTP %s, Twilio error %s%s",
                        _ref(recipient), reply.status, code, "; retrying" if retry else "")
            except aiohttp.ClientConnectionError as err:
                # Only "could not connect" is safe to repeat: the message was never received.
                retry = isinstance(err, aiohttp.ClientConnectorError) and attempt < SEND_ATTEMPTS
                logger.warning("Could not reach Twilio to send a reply to %s (%s)%s",
                               _ref(recipient), type(err).__name__, "; retrying" if retry else "")
            except asyncio.TimeoutError:
                logger.warning("Twilio did not answer in time for a reply to %s", _ref(recipient))
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


# --- the input channel ---------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class _FormParams(dict):
    """First value per field (a dict for code), all values for the signature (``getall``)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        self._all: dict[str, list[str]] = {}
        for key, value in pairs:
            self._all.setdefault(key, []).append(value)
            self.setdefault(key, value)

    def getall(self, key: str) -> list[str]:
        return self._all[key]


def _parse_form(body: bytes) -> _FormParams:
    # keep_blank_values: Twilio signs empty fields (e.g. "Body=") too.
    pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                      max_num_fields=MAX_FORM_FIELDS)
    return _FormParams(pairs)


def _int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


class TwilioChannel(InputChannel):
    """Twilio SMS / WhatsApp input channel (see the module docstring)."""

    def __init__(self, config: TwilioConfig, var_dir: Path | None = None) -> None:
        self.config = config
        self.optouts: OptOutStore | SqlOptOutStore = (
            SqlOptOutStore(config.optout_url) if config.optout_url
            else OptOutStore(Path(var_dir or default_var_dir()) / OPT_OUT_FILE))
        self.sender = TwilioSender(config, self.optouts)
        self._validator = RequestValidator(config.auth_token) if config.auth_token else None
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

        @hook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            agent = getattr(request.app.ctx, "agent", None)
            reply = await self.handle(
                request.body or b"",
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
            params = _parse_form(body)
        except (UnicodeDecodeError, ValueError):
            return WebhookReply(400, "Malformed form body.\n")
        if not signature or not self._signed_by_twilio(params, signature):
            logger.warning("Rejected a Twilio webhook: %s signature",
                           "invalid" if signature else "missing")
            return WebhookReply(403, "Invalid signature.\n")
        sender = (params.get("From") or "").strip()
        if not sender:
            return WebhookReply(400, "Missing From.\n")
        await self._process(sender, params, on_new_message, tracker_store)
        return WebhookReply(200, EMPTY_TWIML, "text/xml; charset=utf-8")

    def _signed_by_twilio(self, params: _FormParams, signature: str) -> bool:
        if self._validator is None or not self.config.public_url:
            return False
        return bool(self._validator.validate(self.config.public_url, params, signature))

    async def _process(self, sender: str, params: Mapping[str, str],
                       on_new_message: Callable[[UserMessage], Awaitable[Any]],
                       tracker_store: Any = None) -> None:
        text = (params.get("Body") or "").strip()
        keyword = text.upper()
        out = TwilioOutput(self)
        ref = _ref(sender)
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
            if _CHOICE.match(text):
                text = choose_option(text, await offered_options(tracker_store, sender)) or text
            message = UserMessage(text, out, sender, input_channel=self.name(),
                                  message_id=(params.get("MessageSid") or None))
            try:
                await on_new_message(message)
            except Exception as err:
                logger.error("Rasa could not handle a Twilio message from %s (%s)",
                             ref, type(err).__name__)
                logger.debug("Traceback of the failed Twilio message", exc_info=True)
                await out.send_text_message(sender, ERROR_REPLY)
        await out.wait()
