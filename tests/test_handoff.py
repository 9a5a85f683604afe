"""Hand-off to a person: summary, redaction, a real webhook server, pause and resume."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from actions import handoff
from navigator import stack
from navigator.stack import free_port

TOKEN = "test-" + uuid.uuid4().hex


def test_reference_is_short_and_easy_to_read_out() -> None:
    assert re.fullmatch(r"PCN-[A-HJ-NP-Z2-9]{6}", handoff.new_reference())


def test_redaction_masks_contact_details() -> None:
    text = "call me on 07700 900123 or +1 (312) 555-0199, mail a.b@example.org, SW1A 1AA, 60614"
    masked = handoff.redact(text)
    for secret in ("07700", "555-0199", "a.b@example.org", "SW1A", "60614"):
        assert secret not in masked
    assert "[number]" in masked and "[email]" in masked


def test_summary_lists_topics_and_crisis_flags_not_peoples_words() -> None:
    events = [
        {"event": "user", "text": "who pays for hospice",
         "parse_data": {"intent": {"name": "faq"}, "response_selector": {"faq": {"response": {
             "intent_response_key": "faq/hospice_costs"}}}}},
        {"event": "bot", "text": "..."},
        {"event": "user", "text": '/faq{"faq_id":"respite_care"}',
         "parse_data": {"intent": {"name": "faq"},
                        "entities": [{"entity": "faq_id", "value": "respite_care"}]}},
        {"event": "user", "text": "i want to end my life",
         "parse_data": {"intent": {"name": "crisis_suicide"}}},
        {"event": "user", "text": "talk to a person, my email is x@y.com",
         "parse_data": {"intent": {"name": "human_handoff"}}},
    ]
    summary = handoff.summarise(events, "US", "PCN-ABCDEF")
    assert summary["topics"] == ["hospice_costs", "respite_care", "crisis_suicide"]
    assert summary["crisis"] == ["suicide"]
    assert summary["user_turns"] == 4
    assert summary["last_message_redacted"] == "talk to a person, my email is [email]"


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length", 0))
        _Webhook.received.append({"auth": self.headers.get("Authorization"),
                                  "body": json.loads(self.rfile.read(length))})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/handoff"
    server.shutdown()


@pytest.fixture(scope="module")
def servers(trained_model: Path, webhook: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[stack.Stack]:
    var = tmp_path_factory.mktemp("var")
    env = {"NAVIGATOR_HANDOFF_WEBHOOK_URL": webhook, "NAVIGATOR_HANDOFF_WEBHOOK_TOKEN": TOKEN,
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
    servers: stack.Stack,
) -> None:
    sender = f"test-{uuid.uuid4().hex}"
    _say(servers, sender, '/faq{"faq_id":"hospice_costs"}')  # pressed a topic button
    reply = _say(servers, sender, "I want to talk to a real person, ring me on 07700 900123")
    text = _text(reply)
    reference = re.search(r"PCN-[A-Z0-9]{6}", text).group(0)
    assert "paused" in text and "9am-5pm" in text

    posted = [r for r in _Webhook.received if r["body"]["reference"] == reference]
    assert len(posted) == 1
    assert posted[0]["auth"] == f"Bearer {TOKEN}"
    body = posted[0]["body"]
    assert body["conversation_id"] == sender and "hospice_costs" in body["topics"]
    assert "07700" not in json.dumps(body)

    assert _say(servers, sender, "hello?") == []  # paused: the bot stays quiet

    resume = urllib.request.Request(
        f"http://{servers.host}:{servers.rasa_port}/conversations/{sender}/tracker/events"
        f"?token={TOKEN}",
        json.dumps([{"event": "resume"}, {"event": "action", "name": "action_listen"}]).encode(),
        {"Content-Type": "application/json"})
    with urllib.request.urlopen(resume, timeout=30) as response:
        assert response.status == 200
    assert "automated" in _text(_say(servers, sender, "hello"))


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
    import asyncio

    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    assert asyncio.run(handoff.notify(url, {"reference": "PCN-TEST00"}, timeout=2)) is False
