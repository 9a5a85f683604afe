"""Hand-off to a person: summary, redaction, a real webhook server, pause and resume; a slow
webhook, one open hand-off per conversation, the cap per channel, opaque SMS ids (against a
real action server and a real aiohttp staff webhook that counts what it is sent)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from localserver import LocalServer

from actions import handoff
from knowledge import pseudonyms
from navigator import stack
from navigator.stack import free_port
from navigator.training import rasa_env
from settings import ROOT

if TYPE_CHECKING:
    from conftest import TrackerStores

TOKEN = "test-" + uuid.uuid4().hex
NUMBER_SECRET = secrets.token_hex(32)  # made up per run
STAFF_LINE = "0800 000 0000"


def test_reference_is_short_and_easy_to_read_out() -> None:
    assert re.fullmatch(r"PCN-[A-HJ-NP-Z2-9]{6}", handoff.new_reference())


def test_redaction_masks_contact_details() -> None:
    text = "call me on 07700 900123 or +1 (312) 555-0199, mail a.b@example.org, SW1A 1AA, 60614"
    masked = handoff.redact(text)
    for secret in ("07700", "555-0199", "a.b@example.org", "SW1A", "60614"):
        assert secret not in masked
    assert "[phone]" in masked and "[email]" in masked


def test_summary_lists_knowledge_base_topics_and_crisis_flags_not_peoples_words() -> None:
    events = [
        {"event": "user", "text": "who pays for hospice",
         "parse_data": {"intent": {"name": "faq"}, "response_selector": {"faq": {"response": {
             "intent_response_key": "faq/hospice_costs"}}}}},
        {"event": "bot", "text": "..."},
        {"event": "user", "text": '/faq{"faq_id":"respite_care"}',
         "parse_data": {"intent": {"name": "faq"},
                        "entities": [{"entity": "faq_id", "value": "respite_care"}]}},
        {"event": "user", "text": '/faq{"faq_id":"Jane Doe 07700 900123"}',  # typed, not pressed
         "parse_data": {"intent": {"name": "faq"},
                        "entities": [{"entity": "faq_id", "value": "Jane Doe 07700 900123"}]}},
        {"event": "user", "text": "i want to end my life",
         "parse_data": {"intent": {"name": "crisis_suicide"}}},
        {"event": "user", "text": "talk to a person, my email is x@y.com",
         "parse_data": {"intent": {"name": "human_handoff"}}},
    ]
    summary = handoff.summarise(events, "US", "PCN-ABCDEF")
    assert summary["topics"] == ["hospice_costs", "respite_care"]  # knowledge-base ids only
    assert "Jane" not in json.dumps(summary)
    assert summary["crisis"] == ["suicide"]
    assert summary["user_turns"] == 5
    assert summary["last_message_redacted"] == "talk to a person, my email is [email]"


class StaffWebhook(LocalServer):
    """The staff system's webhook at ``url``: takes each POST (recorded in ``posts`` as it
    arrives), then waits ``delay`` seconds before answering ``status``."""

    def __init__(self) -> None:
        super().__init__([web.post("/handoff", self._receive)])
        self.delay = 0.0
        self.status = 204

    @property
    def url(self) -> str:
        return f"{super().url}/handoff"

    @property
    def posts(self) -> list[dict]:
        """The body of every POST, in the order they came."""
        return [r.json() for r in self.requests if (r.method, r.path) == ("POST", "/handoff")]

    async def _receive(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return web.Response(status=self.status)

    def for_reference(self, reference: str) -> list[dict]:
        return [p for p in self.posts if p.get("reference") == reference]


@pytest.fixture(scope="module")
def webhook() -> Iterator[StaffWebhook]:
    """The staff webhook the Rasa stack of this module's first tests hands off to."""
    server = StaffWebhook().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def servers(trained_model: Path, webhook: StaffWebhook,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Stack]:
    var = tmp_path_factory.mktemp("var")
    env = {"NAVIGATOR_HANDOFF_WEBHOOK_URL": webhook.url, "NAVIGATOR_HANDOFF_WEBHOOK_TOKEN": TOKEN,
           "NAVIGATOR_HANDOFF_PHONE": "0800 000 0000", "NAVIGATOR_HANDOFF_HOURS": "9am-5pm"}
    with stack.running(trained_model, rasa_port=free_port(), actions_port=free_port(),
                       var_dir=var, tracker_db=var / "tracker.db", log_dir=var, api_token=TOKEN,
                       extra_env=env) as running:
        yield running


def _say(servers: stack.Stack, sender: str, text: str) -> list[dict]:
    body = json.dumps({"sender": sender, "message": text}).encode()
    request = urllib.request.Request(servers.rest_url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _text(messages: list[dict]) -> str:
    """The REST channel sends one message per paragraph: read them all."""
    return "\n\n".join(m.get("text", "") for m in messages)


def test_handoff_posts_a_redacted_summary_pauses_and_staff_can_resume(
    servers: stack.Stack, webhook: StaffWebhook
) -> None:
    def received() -> list[dict]:
        return [{"auth": r.headers.get("Authorization"), "body": r.json()}
                for r in webhook.requests]

    sender = f"test-{uuid.uuid4().hex}"
    _say(servers, sender, '/faq{"faq_id":"hospice_costs"}')  # pressed a topic button
    reply = _say(servers, sender, "I want to talk to a real person, ring me on 07700 900123")
    text = _text(reply)
    reference = re.search(r"PCN-[A-Z0-9]{6}", text).group(0)
    assert "paused" in text and "9am-5pm" in text

    posted = [r for r in received() if r["body"]["reference"] == reference]
    assert len(posted) == 1
    assert posted[0]["auth"] == f"Bearer {TOKEN}"
    body = posted[0]["body"]
    assert body["conversation_id"] == sender and "hospice_costs" in body["topics"]
    assert "07700" not in json.dumps(body)

    assert _say(servers, sender, "hello?") == []  # paused: the bot stays quiet
    # Rasa keeps the hand-off's reference with the bot's message (how a second request while
    # it is open gets the same one), and no channel sends that on.
    tracker_url = (f"http://{servers.host}:{servers.rasa_port}/conversations/{sender}/tracker"
                   f"?token={TOKEN}")
    with urllib.request.urlopen(tracker_url, timeout=30) as response:
        events = json.loads(response.read())["events"]
    assert handoff.open_handoff(events) == {"reference": reference, "delivered": True}
    assert "navigator_handoff" not in json.dumps(reply)

    resume = urllib.request.Request(
        f"http://{servers.host}:{servers.rasa_port}/conversations/{sender}/tracker/events"
        f"?token={TOKEN}",
        json.dumps([{"event": "resume"}, {"event": "action", "name": "action_listen"}]).encode(),
        {"Content-Type": "application/json"})
    with urllib.request.urlopen(resume, timeout=30) as response:
        assert response.status == 200
    assert "automated" in _text(_say(servers, sender, "hello"))
    # resumed, the hand-off is closed: asking again is a new one
    again = re.search(r"PCN-[A-Z0-9]{6}", _text(_say(servers, sender, "talk to a person")))
    assert again and again.group(0) != reference
    assert [r["body"]["reference"] for r in received()].count(again.group(0)) == 1


def test_a_crisis_while_paused_still_gets_the_crisis_reply(servers: stack.Stack) -> None:
    """After a hand-off the assistant is silent, except for a crisis: then the person gets
    the crisis numbers at once, is told the conversation is waiting for staff, and the
    conversation stays paused for everything else."""
    sender = f"test-{uuid.uuid4().hex}"
    assert "paused" in _text(_say(servers, sender, "can I talk to a real person please"))
    assert _say(servers, sender, "are you there?") == []
    crisis = _text(_say(servers, sender, "I can't do this anymore, I want to kill myself. "
                                         "I live in Leeds"))
    assert "116 123" in crisis and "999" in crisis and "988" not in crisis
    assert "waiting for a person from our team" in crisis
    assert _say(servers, sender, "hello?") == []  # still paused


def test_rasa_api_refuses_requests_without_the_token(servers: stack.Stack) -> None:
    url = f"http://{servers.host}:{servers.rasa_port}/conversations/x/tracker"
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(url, timeout=10)
    assert error.value.code == 401


def test_crisis_reply_also_offers_the_staff_line(servers: stack.Stack) -> None:
    reply = _say(servers, f"test-{uuid.uuid4().hex}", "he's not breathing")
    assert "911" in _text(reply) and "0800 000 0000" in _text(reply)


def test_an_unreachable_webhook_is_reported_not_raised() -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    delivery = asyncio.run(handoff.notify(url, {"reference": "PCN-TEST00"}, timeout=2))
    assert delivery is handoff.Delivery.FAILED


# --- a real action server and a real aiohttp staff webhook ---------------------------------


_MESSAGE = {"text", "buttons", "elements", "custom", "template", "response", "image",
            "attachment", "quick_replies"}
REFERENCE = re.compile(r"PCN-[A-Z0-9]{6}")


class ActionServer:
    """The real rasa-sdk action server (our actions) with its own settings."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("w", encoding="utf-8") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port",
                 str(self.port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env={**rasa_env(), "SANIC_HOST": "127.0.0.1", **env}, start_new_session=True)
        try:
            stack.wait_http(f"http://127.0.0.1:{self.port}/health", {"actions": self.process},
                            120)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stack.stop_process(self.process)

    def hand_off(self, sender: str, events: list[dict], channel: str = "rest") -> dict:
        """Ask for a person in the conversation ``events`` (plus the request), as Rasa does."""
        request = {"event": "user", "text": "I want to talk to a real person",
                   "input_channel": channel,
                   "parse_data": {"intent": {"name": "human_handoff", "confidence": 1.0},
                                  "entities": []}}
        tracker = {"sender_id": sender, "slots": {}, "latest_message": request["parse_data"],
                   "events": [*events, request], "paused": False, "followup_action": None,
                   "active_loop": {}, "latest_action_name": "action_listen"}
        body = json.dumps({"next_action": "action_human_handoff", "sender_id": sender,
                           "tracker": tracker, "domain": {}}).encode()
        call = urllib.request.Request(f"http://127.0.0.1:{self.port}/webhook", body,
                                      {"Content-Type": "application/json"})
        with urllib.request.urlopen(call, timeout=60) as answer:
            result = json.loads(answer.read())
        # What Rasa keeps: the request, the bot's messages (any keys beyond a message's own
        # become the event's metadata, as in rasa.core.actions.action.create_bot_utterance),
        # then the events.
        kept = [request, *({"event": "bot", "text": r.get("text"),
                            "metadata": {k: v for k, v in r.items() if k not in _MESSAGE}}
                           for r in result["responses"]), *result["events"]]
        return {**result, "text": " ".join(r.get("text") or "" for r in result["responses"]),
                "kept": [*events, *kept]}


@pytest.fixture(scope="module")
def staff() -> Iterator[StaffWebhook]:
    webhook = StaffWebhook().start()
    yield webhook
    webhook.stop()


def _actions_env(staff: StaffWebhook, var: Path, rate: int) -> dict[str, str]:
    return {"NAVIGATOR_HANDOFF_WEBHOOK_URL": staff.url, "NAVIGATOR_HANDOFF_PHONE": STAFF_LINE,
            "NAVIGATOR_HANDOFF_WEBHOOK_TIMEOUT": "1", "NAVIGATOR_HANDOFF_RATE": str(rate),
            "NAVIGATOR_NUMBER_SECRET": NUMBER_SECRET, "NAVIGATOR_VAR_DIR": str(var)}


@pytest.fixture(scope="module")
def actions(staff: StaffWebhook, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ActionServer]:
    var = tmp_path_factory.mktemp("actions-var")
    server = ActionServer(_actions_env(staff, var, rate=1000), var / "actions.log")
    yield server
    server.stop()


@pytest.fixture
def fast_staff(staff: StaffWebhook) -> Iterator[StaffWebhook]:
    staff.delay, staff.status = 0.0, 204
    yield staff
    staff.delay, staff.status = 0.0, 204


def _paused(result: dict) -> bool:
    return any(e.get("event") == "pause" for e in result["events"])


@pytest.mark.servers
def test_a_slow_webhook_still_gives_the_reference_and_the_staff_line(
    actions: ActionServer, fast_staff: StaffWebhook
) -> None:
    """The webhook takes longer than NAVIGATOR_HANDOFF_WEBHOOK_TIMEOUT (1 s) to answer: the
    person still gets a reference staff may have received and the number to call."""
    fast_staff.delay = 6.0  # past our 1 s, and past the 5 s default too
    sender = f"test-{uuid.uuid4().hex}"
    first = actions.hand_off(sender, [])
    reference = REFERENCE.search(first["text"]).group(0)
    assert STAFF_LINE in first["text"] and "slow" in first["text"]
    assert not _paused(first)  # nobody confirmed: the assistant keeps answering
    assert len(fast_staff.for_reference(reference)) == 1  # staff may well have it
    # Asked again once the webhook is back: the same reference, now handed over.
    fast_staff.delay = 0.0
    again = actions.hand_off(sender, first["kept"])
    assert reference in again["text"] and _paused(again)
    assert len(fast_staff.for_reference(reference)) == 2


@pytest.mark.servers
def test_one_open_handoff_per_conversation(
    actions: ActionServer, fast_staff: StaffWebhook
) -> None:
    sender = f"test-{uuid.uuid4().hex}"
    first = actions.hand_off(sender, [])
    reference = REFERENCE.search(first["text"]).group(0)
    assert _paused(first) and len(fast_staff.for_reference(reference)) == 1
    posts = len(fast_staff.posts)
    for _ in range(3):  # asked again while staff have it: same reference, nothing POSTed
        again = actions.hand_off(sender, first["kept"])
        assert reference in again["text"] and _paused(again)
    assert len(fast_staff.posts) == posts
    # Staff resumed the conversation: that hand-off is closed, a new request is a new one.
    resumed = [*first["kept"], {"event": "resume"}]
    later = actions.hand_off(sender, resumed)
    new_reference = REFERENCE.search(later["text"]).group(0)
    assert new_reference != reference and len(fast_staff.for_reference(new_reference)) == 1


@pytest.mark.servers
def test_handoff_posts_are_capped_per_channel(
    staff: StaffWebhook, tmp_path: Path
) -> None:
    """NAVIGATOR_HANDOFF_RATE=2: a third web conversation asking within the hour gets the
    staff line and nothing is POSTed; SMS has its own allowance."""
    staff.delay, staff.status = 0.0, 204
    server = ActionServer(_actions_env(staff, tmp_path, rate=2), tmp_path / "actions.log")
    try:
        before = len(staff.posts)
        replies = [server.hand_off(f"test-{uuid.uuid4().hex}", [], "rest") for _ in range(3)]
        assert len(staff.posts) == before + 2
        assert all(_paused(r) for r in replies[:2])
        assert not _paused(replies[2]) and STAFF_LINE in replies[2]["text"]
        assert not REFERENCE.search(replies[2]["text"])  # no reference: nobody has it
        sms = server.hand_off("+15550009999", [], "twilio")
        assert _paused(sms) and len(staff.posts) == before + 3
    finally:
        server.stop()
    assert "hand-off cap reached on channel rest" in (tmp_path / "actions.log").read_text()


@pytest.mark.servers
def test_sms_conversations_reach_staff_by_an_opaque_id(
    actions: ActionServer, fast_staff: StaffWebhook, tracker_stores: TrackerStores
) -> None:
    number = f"+1555{secrets.randbelow(10**7):07d}"
    reply = actions.hand_off(number, [], "twilio")
    reference = REFERENCE.search(reply["text"]).group(0)
    posted = fast_staff.for_reference(reference)[0]
    key = NUMBER_SECRET.encode()
    assert posted["conversation_id"] == pseudonyms.conversation_ref(key, number)
    assert number.lstrip("+")[-7:] not in json.dumps(posted)
    # staff (with the key) find the conversation among the tracker store's ids, to resume it
    assert pseudonyms.sender_of(key, posted["conversation_id"],
                                ["test-abc", "+15550000000", number]) == number
    from rasa.shared.core.events import UserUttered

    tracker = tracker_stores(conversations={sender: [UserUttered("hello")]
                                            for sender in ("+15550000000", number, "web-abc")})
    tracker.close()
    found = subprocess.run(
        [sys.executable, "-m", "navigator", "find-conversation", posted["conversation_id"],
         "--db", tracker.url], capture_output=True, text=True,
        cwd=ROOT, env={**rasa_env(), "NAVIGATOR_NUMBER_SECRET": NUMBER_SECRET})
    assert found.returncode == 0 and found.stdout.strip() == number, found.stderr
