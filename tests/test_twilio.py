"""The Twilio SMS/WhatsApp channel, end to end: signed webhooks into the real assistant, replies
out to a fake Twilio REST API (a real HTTP server that records what it is sent).

The servers start once per module. The channel is switched on by credentials.yml listing
``bot.channels.twilio.TwilioChannel:``; its settings come from NAVIGATOR_TWILIO_* variables
given to the servers here, with an auth token made up for this run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import socket
import sqlite3
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import yaml
from aiohttp import web
from localserver import LocalServer
from rasa.core.channels.channel import UserMessage
from twilio.request_validator import RequestValidator

import knowledge
from bot.channels.twilio import (
    ERROR_REPLY,
    HELP_TEXT,
    NO_TEXT_REPLY,
    OPT_OUT_FILE,
    OPTIONS_HEADER,
    WELCOME_TEXT,
    Option,
    OptOutStore,
    RecentIds,
    SqlOptOutStore,
    TwilioChannel,
    TwilioConfig,
    choose_option,
    format_options,
    number_hash,
    options_from_buttons,
    parse_options,
    split_message,
    text_size,
)
from knowledge import guides, pseudonyms, shapes
from knowledge.emergency import emergency_line
from navigator import stack
from navigator.stack import free_port
from settings import ROOT

pytestmark = pytest.mark.servers  # starts servers or loads a model: not in make check

ACCOUNT_SID = "AC" + uuid.uuid4().hex
AUTH_TOKEN = secrets.token_hex(16)  # made up per run: no secret in any file
NUMBER_SECRET = secrets.token_hex(32)  # keys the opt-out hashes; made up per run
KEY = NUMBER_SECRET.encode()
OUR_NUMBER = "+15550001111"
PUBLIC_URL = "https://chat.example.org/webhooks/twilio/webhook"
MAX_LENGTH = 480  # shorter than Twilio's 1600, so the longest replies come in parts
FORM = "application/x-www-form-urlencoded"
USED: list[str] = []  # every phone number and message text sent: must never reach the logs


class FakeTwilio(LocalServer):
    """Twilio's Messages API on 127.0.0.1, recording each message it accepts."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__([web.post("/2010-04-01/Accounts/{sid}/Messages.json", self._create),
                          web.route("*", "/{tail:.*}", self._elsewhere)])
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, str]] = []
        self.refused: list[str] = []  # why requests were turned away (auth, path)
        self.fail_for: set[str] = set()  # recipients Twilio "cannot" deliver to

    def _refuse(self, reason: str, status: int, code: int) -> web.Response:
        with self.changed:
            self.refused.append(reason)
            self.changed.notify_all()
        return web.json_response({"code": code, "message": reason, "status": status},
                                 status=status)

    async def _elsewhere(self, request: web.Request) -> web.Response:
        return self._refuse(f"wrong path {request.method} {request.path}", 404, 20404)

    async def _create(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(
            f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return self._refuse("bad basic auth", 401, 20003)
        if request.match_info["sid"] != self.account_sid:
            return self._refuse("wrong account in path", 404, 20404)
        form = await request.post()
        message = {key: str(form.get(key, "")) for key in ("From", "To", "Body")}
        if message["To"] in self.fail_for:  # Twilio's errors quote the number
            return web.json_response(
                {"code": 21211, "message": f"The 'To' number {message['To']} is not valid",
                 "status": 400}, status=400)
        with self.changed:
            self.messages.append(message)
            self.changed.notify_all()
        return web.json_response({
            "sid": "SM" + uuid.uuid4().hex, "account_sid": self.account_sid,
            "from": message["From"], "to": message["To"], "body": message["Body"],
            "status": "queued", "num_segments": "1", "api_version": "2010-04-01",
        }, status=201)

    def to(self, number: str) -> list[dict[str, str]]:
        with self.changed:
            return [m for m in self.messages if m["To"] == number]

    def wait_for(self, number: str, count: int, timeout: float = 60) -> list[dict[str, str]]:
        """The messages to ``number`` once there are at least ``count`` (polls, never sleeps)."""
        arrived = self.wait_until(
            lambda: sum(m["To"] == number for m in self.messages) >= count, timeout)
        sent = self.to(number)
        assert arrived, f"expected {count} messages, got {len(sent)}: {sent}"
        return sent


class Phone:
    """One person texting the assistant's number through Twilio (signed webhooks)."""

    def __init__(self, webhook: str, api: FakeTwilio, whatsapp: bool = False,
                 uk: bool = False) -> None:
        # US 555 numbers, or UK numbers from Ofcom's range for drama (07700 900000-900999)
        digits = (f"+447700900{secrets.randbelow(1000):03d}" if uk
                  else f"+1555{secrets.randbelow(10**7):07d}")
        USED.append(digits)
        self.number = f"whatsapp:{digits}" if whatsapp else digits
        self.webhook = webhook
        self.api = api

    def fields(self, body: str | None = "", **extra: str) -> dict[str, str]:
        fields = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID,
                  "From": self.number, "To": OUR_NUMBER, "NumMedia": "0", "NumSegments": "1",
                  "SmsStatus": "received", "ApiVersion": "2010-04-01", **extra}
        if body is not None:
            fields["Body"] = body
            if len(body) >= 10:  # distinctive enough to look for in the logs
                USED.append(body)
        return fields

    def post(self, fields: dict[str, str], signature: str | None = "sign",
             content_type: str = FORM, data: bytes | None = None) -> tuple[int, str, str]:
        """POST to the webhook; ``signature="sign"`` signs for the public URL like Twilio."""
        if signature == "sign":
            signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL, fields)
        headers = {"Content-Type": content_type}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        body = urllib.parse.urlencode(fields).encode() if data is None else data
        request = urllib.request.Request(self.webhook, body, headers)
        try:
            with urllib.request.urlopen(request, timeout=90) as reply:
                return reply.status, reply.read().decode(), reply.headers["Content-Type"]
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(), err.headers.get("Content-Type", "")

    def send(self, body: str | None, **extra: str) -> None:
        status, answer, content_type = self.post(self.fields(body, **extra))
        assert status == 200, (status, answer)
        assert content_type.startswith("text/xml") and answer.endswith("<Response/>")

    def say(self, body: str | None, **extra: str) -> list[str]:
        """Send a message and return the texts of the reply (one or more messages)."""
        before = len(self.api.to(self.number))
        self.send(body, **extra)
        return [m["Body"] for m in self.api.wait_for(self.number, before + 1)[before:]]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("twilio-var")


@pytest.fixture(scope="module")
def servers(trained_model: Path, var: Path, api: FakeTwilio) -> Iterator[stack.Stack]:
    channels = yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8")) or {}
    if "bot.channels.twilio.TwilioChannel" not in channels:
        pytest.fail("credentials.yml must list `bot.channels.twilio.TwilioChannel:`")
    env = {
        "NAVIGATOR_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "NAVIGATOR_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "NAVIGATOR_TWILIO_NUMBER": OUR_NUMBER,
        "NAVIGATOR_TWILIO_PUBLIC_URL": PUBLIC_URL,
        "NAVIGATOR_TWILIO_API_BASE": api.url,
        "NAVIGATOR_TWILIO_MAX_LENGTH": str(MAX_LENGTH),
        "NAVIGATOR_VAR_DIR": str(var),
        "NAVIGATOR_NUMBER_SECRET": NUMBER_SECRET,
    }
    with stack.running(trained_model, rasa_port=free_port(), actions_port=free_port(),
                       var_dir=var, tracker_db=var / "tracker.db", log_dir=var,
                       extra_env=env) as running:
        yield running


@pytest.fixture
def phone(servers: stack.Stack, api: FakeTwilio) -> Callable[..., Phone]:
    webhook = f"http://{servers.host}:{servers.rasa_port}/webhooks/twilio/webhook"
    return lambda whatsapp=False, uk=False: Phone(webhook, api, whatsapp, uk)


def _say_rest(servers: stack.Stack, text: str) -> list[dict[str, Any]]:
    body = json.dumps({"sender": f"rest-{uuid.uuid4().hex}", "message": text}).encode()
    request = urllib.request.Request(servers.rest_url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# --- through the real assistant ------------------------------------------------------------


def test_health_check_answers(servers: stack.Stack) -> None:
    url = f"http://{servers.host}:{servers.rasa_port}/webhooks/twilio/"
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert json.loads(reply.read()) == {"status": "ok"}


def test_question_gets_the_knowledge_base_answer_and_1_picks_the_first_option(
    phone: Callable[..., Phone], api: FakeTwilio, kb: knowledge.KnowledgeBase
) -> None:
    person = phone()
    reply = person.say("what is palliative care?")
    entry = kb.get("what_is_palliative_care")
    assert entry.text("answer", "en", "US")[:60] in reply[0]
    assert all(m["From"] == OUR_NUMBER for m in api.to(person.number))
    assert all(text_size(part) <= MAX_LENGTH for part in reply)
    # options are numbered across the turn's messages (the answer's follow-ups, then the
    # one-time "is this for you?" question)
    options = [o for part in reply for o in parse_options(part)]
    assert [n for n, _ in options] == list(range(1, len(options) + 1)) and len(options) >= 2
    assert f"{OPTIONS_HEADER}\n1. {options[0][1]}" in " ".join(reply)
    assert options[-1][1] == "Someone I care for"

    expected = {kb.get(r).label("en"): kb.get(r).text("answer", "en", "US") for r in entry.related}
    expected["Tell me more"] = entry.text("more", "en", "US") or entry.text("answer", "en", "US")
    follow = person.say("1")
    assert expected[options[0][1]][:60] in follow[0]
    assert entry.text("answer", "en", "US")[:60] not in follow[0]


def test_any_rasa_instance_understands_a_numbered_reply(
    phone: Callable[..., Phone], api: FakeTwilio, var: Path, tmp_path: Path,
    kb: knowledge.KnowledgeBase,
) -> None:
    """The options offered are read back from the tracker store, not from the memory of the
    process that sent them: a second channel (as in another Rasa instance) over the same
    store turns "2" into the second option's payload."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    person = phone()
    reply = person.say("what is palliative care?")
    options = [o for part in reply for o in parse_options(part)]
    store = SQLTrackerStore(Domain.load(str(ROOT / "domain.yml")), dialect="sqlite",
                            db=str(var / "tracker.db"))
    elsewhere = _channel(api, tmp_path)
    received: list[str] = []

    async def on_new_message(message: UserMessage) -> None:
        received.append(message.text)

    body, signature = _signed({"From": person.number, "To": OUR_NUMBER, "Body": "2",
                               "MessageSid": "SM" + "0" * 32, "NumMedia": "0"})
    answer = asyncio.run(elsewhere.handle(body, "application/x-www-form-urlencoded",
                                          signature, on_new_message, store))
    assert answer.status == 200
    second = next(i for i in kb.get("what_is_palliative_care").related
                  if kb.get(i).label("en") == options[1][1])
    assert received == [knowledge.faq_payload(second)]


def test_a_number_after_a_reply_without_options_is_an_ordinary_message(
    phone: Callable[..., Phone], kb: knowledge.KnowledgeBase
) -> None:
    person = phone()
    assert parse_options(person.say("what is palliative care?")[-1])
    person.say("show more")  # "I haven't looked anything up yet": no options
    reply = person.say("1")
    assert kb.get("what_is_palliative_care").text("more", "en", "US")[:60] not in " ".join(reply)


def test_forged_or_missing_signatures_get_403_and_nothing_is_sent(
    phone: Callable[..., Phone], api: FakeTwilio
) -> None:
    person = phone()
    fields = person.fields("what is palliative care?")
    forged = RequestValidator("not-the-token").compute_signature(PUBLIC_URL, fields)
    other_url = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://evil.example.com/webhooks/twilio/webhook", fields)
    signed = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL, fields)
    tampered = {**fields, "Body": "what is hospice?"}
    for request, signature in ((fields, forged), (fields, other_url), (fields, None),
                               (fields, ""), (tampered, signed)):
        status, body, _ = person.post(request, signature=signature)
        assert status == 403, (status, body)
    assert api.to(person.number) == []
    # Replies to one person go in order: had anything been sent, it would come before this.
    assert person.say("HELP") == [HELP_TEXT]


def test_bad_requests_are_refused_before_anything_happens(
    phone: Callable[..., Phone], api: FakeTwilio
) -> None:
    person = phone()
    fields = person.fields("what is hospice?")
    as_json = json.dumps(fields).encode()
    status, _, _ = person.post(fields, content_type="application/json", data=as_json)
    assert status == 400
    big = {**fields, "Body": "x" * (65 * 1024)}
    assert person.post(big)[0] == 413
    assert person.post(person.fields("hello"), data=b"\xff\xfe=\xff")[0] == 400
    status, _, _ = person.post({k: v for k, v in fields.items() if k != "From"})
    assert status == 400
    assert api.to(person.number) == []


def test_a_webhook_twilio_retries_is_taken_once(
    phone: Callable[..., Phone], api: FakeTwilio, var: Path
) -> None:
    """Twilio retries a webhook it thinks failed, with the same MessageSid: the person must
    not get the answer twice, nor Rasa see the message twice."""
    person = phone()
    fields = person.fields("what is hospice?")
    assert person.post(fields)[0] == 200
    answered = len(api.to(person.number))
    assert answered >= 1
    for _ in range(2):
        status, body, _ = person.post(fields)
        assert status == 200 and body.endswith("<Response/>")
    assert len(api.to(person.number)) == answered
    with sqlite3.connect(var / "tracker.db") as db:
        texts = [json.loads(row[0]).get("text") for row in db.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'",
            (person.number,))]
    assert texts == ["what is hospice?"]
    assert "Source:" in " ".join(person.say("what is hospice?"))  # a new message still is


def test_an_oversized_body_is_refused_before_it_is_read(servers: stack.Stack) -> None:
    """A client that announces 50 MB gets 413 at once: the channel does not wait for (or
    buffer) the body, as Rasa's web server would up to its 100 MB limit."""
    with socket.create_connection((servers.host, servers.rasa_port), timeout=10) as conn:
        conn.sendall(b"POST /webhooks/twilio/webhook HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 50000000\r\n\r\n" + b"x" * 1024)
        started = time.monotonic()
        head = conn.recv(200)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert time.monotonic() - started < 5
    # chunked, with no length announced: cut off once past the cap
    with socket.create_connection((servers.host, servers.rasa_port), timeout=10) as conn:
        conn.sendall(b"POST /webhooks/twilio/webhook HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 16384
        for _ in range(6):  # 96 KB, over the 64 KB cap; the server stops reading at 64 KB
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        head = conn.recv(200)
    assert head.startswith(b"HTTP/1.1 413"), head


def test_media_only_or_empty_messages_get_a_friendly_text_reply(
    phone: Callable[..., Phone]
) -> None:
    person = phone()
    picture = {"NumMedia": "1", "MediaContentType0": "image/jpeg",
               "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/1"}
    assert person.say(None, **picture) == [NO_TEXT_REPLY]
    assert person.say("") == [NO_TEXT_REPLY]
    assert person.say("   ", NumMedia="") == [NO_TEXT_REPLY]


def test_stop_goes_quiet_until_start(
    phone: Callable[..., Phone], api: FakeTwilio, var: Path
) -> None:
    person = phone()
    person.say("hello")
    before = len(api.to(person.number))
    person.send("  Stop ")
    person.send("what is hospice?")
    person.send("HELP")
    person.send("1")
    assert len(api.to(person.number)) == before  # the webhook returns after sending

    stored = (var / OPT_OUT_FILE).read_text(encoding="utf-8")
    assert number_hash(person.number, KEY) in json.loads(stored)["opted_out"]
    assert person.number.lstrip("+") not in stored

    assert person.say("start") == [WELCOME_TEXT]  # nothing queued before it slipped out
    assert len(api.to(person.number)) == before + 1
    assert "Source:" in " ".join(person.say("what is hospice?"))
    stored = json.loads((var / OPT_OUT_FILE).read_text(encoding="utf-8"))
    assert number_hash(person.number, KEY) not in stored["opted_out"]
    # Keywords and what came while opted out never reached Rasa.
    with sqlite3.connect(var / "tracker.db") as db:
        texts = [json.loads(row[0]).get("text") for row in db.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'",
            (person.number,))]
    assert texts == ["hello", "what is hospice?"]


@pytest.mark.parametrize("stop, start", [("STOPALL", "yes"), ("unsubscribe", "UNSTOP"),
                                         ("Cancel", "Start"), ("END", "Yes"), ("quit", "unstop")])
def test_every_stop_word_opts_out_and_every_start_word_opts_back_in(
    phone: Callable[..., Phone], api: FakeTwilio, stop: str, start: str
) -> None:
    person = phone()
    person.send(stop)
    person.send("what is palliative care?")
    assert api.to(person.number) == []
    assert person.say(start) == [WELCOME_TEXT]


def test_a_crisis_by_sms_gets_the_numbers_of_the_country_it_comes_from(
    phone: Callable[..., Phone],
) -> None:
    uk = " ".join(phone(uk=True).say("i cant go on like this, i want to end my life",
                                     FromCountry="GB"))
    assert "116 123" in uk and "999" in uk and "988" not in uk
    us = " ".join(phone().say("honestly kms tonight, im done", FromCountry="US"))
    assert "988" in us and "911" in us and "116 123" not in us
    # what the message says beats the number's country
    visiting = " ".join(phone().say(
        "im in Leeds with mum and she says she'll take all her pills tonight", FromCountry="US"))
    assert "999" in visiting and "988" not in visiting


def test_help_says_what_this_is_and_how_to_stop(phone: Callable[..., Phone]) -> None:
    for word in ("HELP", "info"):
        reply = phone().say(word)
        assert reply == [HELP_TEXT]
        assert "automated" in reply[0] and "In an emergency call 911" in reply[0]
        assert "Reply STOP to stop" in reply[0] and "Palliative Care Navigator" in reply[0]


def _rest_reply(servers: stack.Stack, question: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the REST channel's text message, the reply's parts) for a question."""
    messages = _say_rest(servers, question)
    parts = next(m["custom"]["reply"] for m in messages if "reply" in (m.get("custom") or {}))
    return messages[0], parts


def test_a_long_answer_comes_in_parts_with_links_whole(
    servers: stack.Stack, phone: Callable[..., Phone]
) -> None:
    question = "what does DNR mean?"
    full, reply = _rest_reply(servers, question)
    sms = shapes.sms_text(reply)
    assert text_size(sms) > 2 * MAX_LENGTH
    parts = phone().say(question)
    assert len(parts) >= 3 and all(text_size(p) <= MAX_LENGTH for p in parts)
    links = re.findall(r"https://\S+", sms)
    assert len(links) >= 2
    for link in links:  # each source: a short title, its URL whole on its own line
        assert any(link in re.findall(r"https://\S+", p) for p in parts), link
    # Nothing lost or reordered: the parts are the reply for SMS plus the numbered options.
    titles = [(i, b["title"]) for i, b in enumerate(full["buttons"], start=1)]
    options = "\n".join([OPTIONS_HEADER, *(f"{i}. {t}" for i, t in titles)])
    assert _squash(" ".join(parts)).startswith(_squash(f"{sms}\n\n{options}"))


def test_search_results_are_short_numbered_lines_and_a_number_picks_one(
    servers: stack.Stack, phone: Callable[..., Phone]
) -> None:
    question = "find hospice care near 60614"
    full, reply = _rest_reply(servers, question)
    person = phone()
    sent = " ".join(person.say(question))
    names = [c["name"] for c in reply["cards"]]
    lines = re.findall(r"^(\d+)\. (.+), (<1|\d+) mi, (\(\d{3}\) \d{3}-\d{4})$", sent, re.M)
    assert [(n, name) for n, name, _, _ in lines] == [("1", names[0]), ("2", names[1]),
                                                      ("3", names[2])]
    assert "google.com" not in sent and "tel:" not in sent  # nothing longer than it must be
    assert text_size(sent) < text_size(full["text"]) / 2
    assert "Medicare" in sent  # where the list comes from
    # the follow-ups are numbered after the results
    assert parse_options(sent) == [(i, b["title"]) for i, b in enumerate(full["buttons"],
                                                                         start=4)]
    detail = " ".join(person.say("2"))  # the second result, in full
    assert detail.startswith(names[1]) and f"tel:{reply['cards'][1]['tel'][4:]}" in detail
    whatsapp = " ".join(phone(whatsapp=True).say(question))
    assert re.search(rf"^1\. \*{re.escape(names[0])}\*, ", whatsapp, re.M)


def test_the_guided_check_by_sms_uses_numbered_options(phone: Callable[..., Phone]) -> None:
    person = phone()
    start = " ".join(person.say("is palliative care right for us?"))
    assert parse_options(start) == [(1, "For me"), (2, "Someone I care for")]
    questions = guides.check_questions("caregiver", "US")
    first = " ".join(person.say("2"))  # someone I care for
    assert questions[0].text in first
    assert parse_options(first) == [(i, c.title) for i, c in enumerate(
        questions[0].choices, start=1)] + [(len(questions[0].choices) + 1, "Stop here")]
    assert questions[1].text in " ".join(person.say("1"))


def test_getting_ready_by_sms_scores_by_typing_and_sends_the_summary(
        phone: Callable[..., Phone]) -> None:
    person = phone()
    person.say("help me get ready for the appointment")
    kinds = " ".join(person.say("1"))  # for me
    assert [t for _, t in parse_options(kinds)][:4] == [c.title for c in
                                                        guides.appointment_kinds("US")]
    pain = " ".join(person.say("1"))  # the first kind of visit
    assert "from 0 to 10" in pain and OPTIONS_HEADER not in pain  # typed, not numbered
    # a message of just STOP or END would unsubscribe the number: never invite one
    assert "STOP HERE" in pain and not re.search(r"\b(STOP|END|CANCEL|QUIT)\b(?! HERE)", pain)
    after = " ".join(person.say("8"))
    assert guides.high_score_text("US")[:60] in after
    person.say("done")  # no more scores
    matters = " ".join(person.say("1"))  # skip-or-choose: the first thing that matters
    assert OPTIONS_HEADER in matters
    person.say("done")
    person.say("done")  # no questions from the list
    person.say("oxycodone, senna")
    person.say("done")
    parts = person.say("No one")
    summary = "\n".join(parts)
    assert parts[0].startswith("Appointment summary")
    assert all(text_size(p) <= MAX_LENGTH for p in parts)
    for expected in ("Pain: 8 of 10", "- oxycodone", "- senna", "No one", "Notes:"):
        assert expected in summary, expected
    assert "Print" not in summary  # nothing to print on a phone


def test_whatsapp_replies_come_from_our_whatsapp_address(
    phone: Callable[..., Phone], api: FakeTwilio
) -> None:
    person = phone(whatsapp=True)
    assert "Source:" in " ".join(person.say("what is hospice?"))
    assert {m["From"] for m in api.to(person.number)} == {f"whatsapp:{OUR_NUMBER}"}


def test_a_failing_send_is_logged_without_details_and_nothing_breaks(
    phone: Callable[..., Phone], api: FakeTwilio, var: Path
) -> None:
    unlucky = phone()
    api.fail_for.add(unlucky.number)
    unlucky.send("what is hospice?")  # still 200 with empty TwiML
    assert api.to(unlucky.number) == []
    log = (var / "rasa.log").read_text(encoding="utf-8", errors="replace")
    assert "Twilio did not accept a reply" in log and "Twilio error 21211" in log
    assert "Source:" in " ".join(phone().say("what is hospice?"))
    api.fail_for.discard(unlucky.number)
    assert "Source:" in " ".join(unlucky.say("what is hospice?"))


def test_the_fake_api_never_refused_us(api: FakeTwilio) -> None:
    assert api.refused == []


def test_logs_hold_no_phone_numbers_or_message_texts(
    servers: stack.Stack, var: Path, phone: Callable[..., Phone],
) -> None:
    """Sends its own messages first (so it checks something when run alone), then looks
    through everything this run made the servers log, its messages and all sent before."""
    phone().say("what is hospice care? my mum lives at 12 Elm Street, call me back")
    phone(uk=True).say("is there a hospice near LS6 2AB for my dad please", FromCountry="GB")
    log = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                    for p in (var / "rasa.log", var / "actions.log"))
    assert "bot.channels.twilio" in log
    numbers = [u for u in USED if u.startswith("+")]
    assert numbers
    for secret in [*USED, *(n.lstrip("+") for n in numbers), AUTH_TOKEN]:
        assert secret not in log, secret


# --- the channel on its own ----------------------------------------------------------------


def _clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACCOUNT_SID", "AUTH_TOKEN", "NUMBER", "PUBLIC_URL", "API_BASE", "MAX_LENGTH"):
        monkeypatch.delenv(f"NAVIGATOR_TWILIO_{name}", raising=False)


async def _never(_: Any) -> None:
    raise AssertionError("the message must not reach Rasa")


def test_not_configured_answers_503_and_processes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clear_env(monkeypatch)
    monkeypatch.setenv("NAVIGATOR_VAR_DIR", str(tmp_path))
    for credentials in (None, {}, {"account_sid": "AC1", "auth_token": "t", "number": "+1"}):
        channel = TwilioChannel.from_credentials(credentials)
        assert not channel.config.configured
        assert channel.get_output_channel() is None
        body = urllib.parse.urlencode({"From": "+15551234567", "Body": "STOP"}).encode()
        for signature in ("anything", None):
            reply = asyncio.run(channel.handle(body, FORM, signature, _never))
            assert reply.status == 503 and "not configured" in reply.body
        assert len(channel.optouts) == 0
    assert "NAVIGATOR_TWILIO_PUBLIC_URL" in channel.config.missing
    assert list(tmp_path.iterdir()) == []


def test_settings_come_from_credentials_else_the_environment(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_env(monkeypatch)
    monkeypatch.setenv("NAVIGATOR_TWILIO_ACCOUNT_SID", "ACenv")
    monkeypatch.setenv("NAVIGATOR_TWILIO_AUTH_TOKEN", "from-env")
    monkeypatch.setenv("NAVIGATOR_TWILIO_NUMBER", "whatsapp:+15550001111")
    monkeypatch.setenv("NAVIGATOR_TWILIO_PUBLIC_URL", PUBLIC_URL)
    config = TwilioConfig.from_credentials({"account_sid": "ACfile", "auth_token": ""})
    assert config.configured and config.account_sid == "ACfile"
    assert config.auth_token == "from-env" and "from-env" not in repr(config)
    assert config.max_length == 1600 and config.api_base_url == "https://api.twilio.com"
    assert config.messages_url == "https://api.twilio.com/2010-04-01/Accounts/ACfile/Messages.json"
    assert config.sender_for("+447700900123") == "+15550001111"
    assert config.sender_for("whatsapp:+447700900123") == "whatsapp:+15550001111"
    monkeypatch.setenv("NAVIGATOR_TWILIO_API_BASE", "http://127.0.0.1:1/")
    assert TwilioConfig.from_credentials({"max_length": 320}).max_length == 320
    assert TwilioConfig.from_credentials(None).api_base_url == "http://127.0.0.1:1"
    for bad in ("lots", "0", "5000"):
        with pytest.raises(ValueError, match="max_length"):
            TwilioConfig.from_credentials({"max_length": bad})


def _channel(api: FakeTwilio, var_dir: Path, max_length: int = 1600) -> TwilioChannel:
    config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, number=OUR_NUMBER,
                          number_secret=NUMBER_SECRET,
                          public_url=PUBLIC_URL, api_base_url=api.url, max_length=max_length)
    return TwilioChannel(config, var_dir=var_dir)


def _signed(fields: dict[str, str]) -> tuple[bytes, str]:
    return (urllib.parse.urlencode(fields).encode(),
            RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL, fields))


def test_options_are_numbered_across_a_turn_and_a_failing_bot_gets_an_apology(
    api: FakeTwilio, tmp_path: Path
) -> None:
    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import BotUttered, UserUttered

    seen: list[str] = []
    number = f"+1555{secrets.randbelow(10**7):07d}"
    store = InMemoryTrackerStore(Domain.empty())  # Rasa's own; the bot below keeps it as Rasa does

    async def record(*events: Any) -> None:
        tracker = await store.get_or_create_tracker(number)
        for event in events:
            tracker.update(event)
        await store.save(tracker)

    async def bot(message: Any) -> None:
        seen.append(message.text)
        await record(UserUttered(message.text))
        if message.text == "crash":
            raise RuntimeError("boom")
        out = message.output_channel
        await out.send_text_with_buttons(number, "First?", [{"title": "A", "payload": "/a"}])
        await out.send_text_with_buttons(number, "Or?", [{"title": "B", "payload": "/b"},
                                                         {"title": "C", "payload": "/c"}])
        await out.send_custom_json(number, {"cards": [{"name": "x"}]})
        await out.send_custom_json(number, {"text": "From custom."})
        await record(BotUttered("First?", {"buttons": [{"title": "A", "payload": "/a"}]}),
                     BotUttered("Or?", {"buttons": [{"title": "B", "payload": "/b"},
                                                    {"title": "C", "payload": "/c"}]}),
                     BotUttered("From custom.", {"custom": {"cards": [{"name": "x"}]}}))

    async def run() -> list[int]:
        channel = _channel(api, tmp_path)
        statuses = []
        for n, text in enumerate(("hi", "3", "crash", "1")):
            body, signature = _signed({"From": number, "Body": text, "MessageSid": f"SM{n}"})
            statuses.append((await channel.handle(body, FORM, signature, bot, store)).status)
        await channel.sender.close()
        return statuses

    assert asyncio.run(run()) == [200, 200, 200, 200]
    assert seen == ["hi", "/c", "crash", "1"]  # no options after the failed turn
    bodies = [m["Body"] for m in api.to(number)]
    assert bodies[:3] == [f"First?\n\n{OPTIONS_HEADER}\n1. A",
                          f"Or?\n\n{OPTIONS_HEADER}\n2. B\n3. C", "From custom."]
    assert bodies[6].startswith("Sorry, something went wrong")


def test_yes_is_an_answer_unless_opted_out_and_start_always_welcomes(
    api: FakeTwilio, tmp_path: Path
) -> None:
    seen: list[str] = []
    number = f"+1555{secrets.randbelow(10**7):07d}"

    async def bot(message: Any) -> None:
        seen.append(message.text)

    async def run() -> None:
        channel = _channel(api, tmp_path)
        for text in ("yes", "START", "stop", "yes", "yes"):
            body, signature = _signed({"From": number, "Body": text})
            assert (await channel.handle(body, FORM, signature, bot)).status == 200
        await channel.sender.close()

    asyncio.run(run())
    assert seen == ["yes", "yes"]  # the first answer, and the one after opting back in
    assert [m["Body"] for m in api.to(number)] == [WELCOME_TEXT, WELCOME_TEXT]


def test_opt_outs_survive_a_restart_and_hold_only_hashes(api: FakeTwilio, tmp_path: Path) -> None:
    number = f"whatsapp:+1555{secrets.randbelow(10**7):07d}"

    async def stop() -> None:
        channel = _channel(api, tmp_path)
        body, signature = _signed({"From": number, "Body": "STOP"})
        assert (await channel.handle(body, FORM, signature, _never)).status == 200

    asyncio.run(stop())
    restarted = _channel(api, tmp_path)
    assert number in restarted.optouts
    assert number.removeprefix("whatsapp:") in restarted.optouts  # STOP means both channels
    assert [p.name for p in tmp_path.iterdir()] == [OPT_OUT_FILE]  # no temp file left
    text = (tmp_path / OPT_OUT_FILE).read_text(encoding="utf-8")
    digits = number.removeprefix("whatsapp:+")
    assert digits not in text
    assert json.loads(text)["opted_out"] == [number_hash(f"+{digits}", KEY)]  # keyed, not
    assert hashlib.sha256(f"+{digits}".encode()).hexdigest() not in text  # a plain SHA-256


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_stop_on_one_instance_silences_every_instance(
    api: FakeTwilio, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """With NAVIGATOR_TWILIO_OPTOUT_URL, opt-outs live in a shared SQL table: STOP taken by
    one channel (one Rasa instance) holds on another, and START there undoes it for both."""
    url = (f"sqlite:///{tmp_path / 'shared.db'}" if database == "sqlite"
           else request.getfixturevalue("postgres_url"))
    number = f"+1555{secrets.randbelow(10**7):07d}"
    seen: list[str] = []

    async def bot(message: Any) -> None:
        seen.append(message.text)

    def instance() -> TwilioChannel:
        config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, number=OUR_NUMBER,
                              public_url=PUBLIC_URL, api_base_url=api.url, optout_url=url,
                              number_secret=NUMBER_SECRET)
        return TwilioChannel(config, var_dir=tmp_path / f"var-{secrets.token_hex(4)}")

    async def say(channel: TwilioChannel, text: str) -> None:
        body, signature = _signed({"From": f"whatsapp:{number}", "Body": text})
        assert (await channel.handle(body, FORM, signature, bot)).status == 200
        await channel.sender.close()

    one, two = instance(), instance()
    asyncio.run(say(one, "STOP"))
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        stored = [h for (h,) in conn.execute(
            sqlalchemy.text("SELECT hash FROM navigator_twilio_optouts"))]
    assert number_hash(number, KEY) in stored  # keyed with NAVIGATOR_NUMBER_SECRET
    assert hashlib.sha256(number.encode()).hexdigest() not in stored
    asyncio.run(say(two, "is hospice free?"))  # SMS or WhatsApp: STOP holds for both
    assert seen == [] and api.to(f"whatsapp:{number}") == []
    assert asyncio.run(two.optouts.contains(number))
    asyncio.run(say(two, "START"))
    assert not asyncio.run(one.optouts.contains(number))
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(sqlalchemy.text("SELECT hash FROM navigator_twilio_optouts"))
        assert all(number.lstrip("+") not in h for (h,) in stored)  # hashes only
    engine.dispose()


def test_plain_sha256_opt_outs_from_before_still_hold_and_become_keyed(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Migration: opt-outs written before the hashes were keyed (plain SHA-256 of the
    number) keep the number silent, and are rewritten as keyed hashes when it next writes."""
    number = f"+1555{secrets.randbelow(10**7):07d}"
    other = f"+1555{secrets.randbelow(10**7):07d}"
    plain = hashlib.sha256(number.encode()).hexdigest()
    (tmp_path / OPT_OUT_FILE).write_text(json.dumps(
        {"version": 1, "hash": "sha256", "opted_out": [plain]}), encoding="utf-8")
    store = OptOutStore(tmp_path / OPT_OUT_FILE, lambda: KEY)
    assert asyncio.run(store.contains(f"whatsapp:{number}"))
    assert not asyncio.run(store.contains(other))
    assert json.loads((tmp_path / OPT_OUT_FILE).read_text())["opted_out"] == [
        number_hash(number, KEY)]

    url = request.getfixturevalue("postgres_url")
    shared = SqlOptOutStore(url, lambda: KEY)
    asyncio.run(shared.remove(number))
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO navigator_twilio_optouts (hash, since) "
                                     "VALUES (:h, 0)"), {"h": plain})
    assert asyncio.run(shared.contains(number)) and not asyncio.run(shared.contains(other))
    with engine.connect() as conn:
        rows = {h for (h,) in conn.execute(sqlalchemy.text(
            "SELECT hash FROM navigator_twilio_optouts WHERE hash IN (:a, :b)"),
            {"a": plain, "b": number_hash(number, KEY)})}
    engine.dispose()
    assert rows == {number_hash(number, KEY)}
    asyncio.run(shared.remove(number))
    assert not asyncio.run(shared.contains(number))


def test_the_number_key_is_a_secret_or_kept_in_the_var_folder(tmp_path: Path) -> None:
    number = "+15550001234"
    key = pseudonyms.number_key(None, tmp_path)
    kept = tmp_path / pseudonyms.KEY_FILE
    assert len(key) == 32 and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert pseudonyms.number_key(None, tmp_path) == key  # the same key next time
    assert number_hash(number, key) != number_hash(number, KEY)
    assert number_hash(number, key) == number_hash(f"whatsapp:{number}", key)
    assert pseudonyms.number_key(NUMBER_SECRET, tmp_path / "elsewhere") == KEY
    with pytest.raises(ValueError, match="NAVIGATOR_NUMBER_SECRET"):
        pseudonyms.number_key("short", tmp_path)


def test_recent_message_ids_are_bounded_and_expire() -> None:
    seen = RecentIds(size=3, ttl=60)
    assert seen.first_time("SM1", now=0) and not seen.first_time("SM1", now=1)
    for n, sid in enumerate(("SM2", "SM3", "SM4"), start=2):
        assert seen.first_time(sid, now=n)
    assert len(seen) == 3 and seen.first_time("SM1", now=5)  # the oldest was forgotten
    assert not seen.first_time("SM4", now=59) and seen.first_time("SM4", now=65)  # expired
    assert len(seen) <= 3


def test_an_unreadable_opt_out_file_is_kept_aside(tmp_path: Path) -> None:
    (tmp_path / OPT_OUT_FILE).write_text("{not json", encoding="utf-8")
    store = OptOutStore(tmp_path / OPT_OUT_FILE, lambda: KEY)
    assert len(store) == 0
    kept = [p for p in tmp_path.iterdir() if ".unreadable-" in p.name]
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == "{not json"


# --- splitting and options -----------------------------------------------------------------


def test_short_text_is_one_message_and_empty_text_none() -> None:
    assert split_message("  Hello there.  ", 100) == ["Hello there."]
    assert split_message("", 100) == [] and split_message(" \n ", 100) == []


def test_long_text_splits_at_sentence_boundaries(kb: knowledge.KnowledgeBase) -> None:
    text = " ".join(e.text("answer", "en", "US") for e in list(kb.entries.values())[:12])
    parts = split_message(text, 300)
    assert len(parts) > 5
    assert all(text_size(p) <= 300 for p in parts)
    assert all(re.search(r"[.!?)]$", p) for p in parts)
    assert " ".join(parts) == text


def test_paragraphs_are_preferred_over_sentences() -> None:
    first, second = "One. Two three four.", "Five six. Seven."
    assert split_message(f"{first}\n\n{second}", 30) == [first, second]
    assert split_message(f"{first}\n\n{second}", 200) == [f"{first}\n\n{second}"]


def test_an_overlong_sentence_is_split_at_spaces_never_mid_word() -> None:
    words = [f"word{i}" for i in range(120)]
    parts = split_message(" ".join(words) + ".", 70)
    assert all(text_size(p) <= 70 for p in parts)
    assert " ".join(parts).split() == [*words[:-1], words[-1] + "."]


def test_links_stay_whole() -> None:
    url = "https://www.google.com/maps/search/?api=1&query=Horizon+Hospice%2C+833+W+Chicago+Ave"
    text = ("Call us now. " * 6 + f"Phone (312) 733-2233 (tel:+13127332233). Map: {url} "
            "and more words here. " * 4)
    parts = split_message(text, 90)
    assert all(text_size(p) <= 90 for p in parts)
    assert any("tel:+13127332233" in p for p in parts) and any(url in p for p in parts)


def test_only_a_single_overlong_word_is_cut_and_size_counts_utf16() -> None:
    assert split_message("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]
    emoji = "🙂" * 60  # 2 UTF-16 units each, as Twilio counts
    assert all(text_size(p) <= 100 for p in split_message(emoji, 100))
    assert "".join(split_message(emoji, 100)) == emoji


def test_buttons_become_numbered_options_and_numbers_become_payloads() -> None:
    options = options_from_buttons([{"title": "Show more", "payload": "/provider_more"},
                                    {"title": "Look further away", "payload": "/provider_widen"},
                                    {"payload": "/no_title"}, "junk"])
    assert options == [Option("Show more", "/provider_more"),
                       Option("Look further away", "/provider_widen")]
    text = format_options("Here you are.", options)
    assert text.endswith("Reply with a number:\n1. Show more\n2. Look further away")
    assert parse_options(text) == [(1, "Show more"), (2, "Look further away")]
    assert format_options("", options).startswith(OPTIONS_HEADER)
    assert format_options("Plain.", []) == "Plain."
    for reply, payload in (("1", "/provider_more"), (" 2 ", "/provider_widen"),
                           ("2.", "/provider_widen"), ("#1", "/provider_more"),
                           ("1)", "/provider_more")):
        assert choose_option(reply, options) == payload, reply
    for reply in ("0", "3", "12", "1 please", "one", "", "60614"):
        assert choose_option(reply, options) is None, reply
    assert choose_option("1", []) is None and choose_option("1", None) is None


def test_help_and_error_replies_give_the_emergency_numbers_from_helplines_yml() -> None:
    line = emergency_line()
    for text in (HELP_TEXT, ERROR_REPLY):
        assert line["text"] in text
        assert all(number["label"] in text for number in line["numbers"])
    sources = list((ROOT / "bot" / "channels" / "twilio").glob("*.py"))
    assert len(sources) >= 6
    written = [p.name for p in sources
               if re.search(r"(?<!\d)(911|999)(?!\d)", p.read_text(encoding="utf-8"))]
    assert written == []  # numbers live only in knowledge/helplines.yml
