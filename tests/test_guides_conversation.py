"""The guided conversations through the real Rasa server and action server, over the REST
channel: the palliative care check and getting ready for an appointment, complete, skipped,
stopped, with a question or a crisis in the middle, in US and UK wording, for a patient and
for a carer. The SMS side is in test_twilio.py and the printed summary in test_browser.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from restclient import User

import knowledge
from knowledge import guides
from knowledge.helplines import default_helplines
from navigator import stack

pytestmark = pytest.mark.servers  # starts servers or loads a model: not in make check


def _value(value: str) -> str:
    return f'/guide_answer{{"guide_value":"{value}"}}'


def _text(reply: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in reply)


def _buttons(reply: list[dict[str, Any]]) -> list[str]:
    return [b["title"] for m in reply for b in m.get("buttons") or []]


def _values(reply: list[dict[str, Any]]) -> list[str]:
    return [json.loads("{" + b["payload"].split("{", 1)[1])["guide_value"]
            for m in reply for b in m.get("buttons") or []
            if b["payload"].startswith("/guide_answer")]


def test_the_check_for_a_patient_in_the_us_gives_reasons_and_how_to_ask(
        servers: stack.Stack, kb: knowledge.KnowledgeBase) -> None:
    user = User(servers)
    first = user.say("is palliative care right for me?")
    questions = guides.check_questions("patient", "US")
    text = _text(first)
    assert "6 short questions" in text and "For me" in _buttons(first)  # who is it for?
    reply = user.say(_value("patient"))
    assert questions[0].text in _text(reply)
    assert _buttons(reply)[-2:] == ["Skip", "Stop here"]  # always there
    answers = {}
    for question in questions:  # the first option of each: the "yes"-like ones
        answers[question.id] = question.choices[0].id
        reply = user.say(_value(question.choices[0].id))
    result = guides.check_result(answers, "US", "patient")
    text = _text(reply)
    assert result.text.split("\n")[0] in text and "referral" in text and "GP" not in text
    assert reply[0]["text"].startswith(result.text)
    assert {"Prepare for a visit", "About hospice"} <= set(_buttons(reply))
    after = user.say("skip")  # the guide is over: nothing is waiting for an answer
    assert "no question waiting" in _text(after)


def test_the_check_for_a_carer_in_the_uk_speaks_of_them_and_of_the_gp(
        servers: stack.Stack) -> None:
    user = User(servers)
    assert "United Kingdom" in _text(user.say("I'm in the UK"))
    user.say("/start_check")
    reply = user.say(_value("caregiver"))
    questions = guides.check_questions("caregiver", "UK")
    assert questions[0].text in _text(reply)
    assert re.search(r"\b(they|them|their|the person)\b", questions[0].text)
    for _ in questions:
        reply = user.say("skip")  # typed, not a button
    result = guides.check_result({}, "UK", "caregiver")
    assert reply[0]["text"].startswith(result.text)  # nothing answered: no reasons invented
    assert "GP" in result.text


def test_stop_early_and_a_question_in_the_middle(servers: stack.Stack,
                                                  kb: knowledge.KnowledgeBase) -> None:
    user = User(servers)
    user.say("/start_check")
    user.say(_value("patient"))
    question = guides.check_questions("patient", "US")[0]
    middle = user.say("who pays for palliative care?")
    answer = kb.get("who_pays_palliative").text("answer", "en", "US")
    assert middle[0]["text"].startswith(answer[:60])  # answered ...
    assert question.text in _text(middle)  # ... then the same step again
    second = guides.check_questions("patient", "US")[1]
    assert second.text in _text(user.say(_value(question.choices[0].id)))  # and it goes on
    stopped = user.say("stop here")
    assert "stopped" in _text(stopped)
    assert "no question waiting" in _text(user.say("skip"))


def test_a_crisis_in_the_middle_gets_the_crisis_reply_and_ends_the_guide(
        servers: stack.Stack) -> None:
    user = User(servers)
    user.say("/start_prepare")
    user.say(_value("patient"))
    user.say(_value("palliative_first"))
    crisis = _text(user.say("I can't go on, I want to end my life tonight"))
    lines = default_helplines().numbers["US"]
    assert str(lines["crisis"]["label"]) in crisis  # 988
    assert "no question waiting" in _text(user.say("skip"))


def test_getting_ready_gathers_a_summary_and_flags_a_high_score(servers: stack.Stack) -> None:
    user = User(servers)
    assert "one step at a time" in _text(user.say("help me get ready for the appointment"))
    reply = user.say(_value("patient"))
    assert set(_values(reply)) >= {c.id for c in guides.appointment_kinds("US")}
    reply = user.say(_value("palliative_first"))
    assert set(_values(reply)) >= {str(n) for n in range(11)} | {"skip", "done", "stop"}
    high = _text(user.say("8"))  # typed: pain 8 of 10
    assert guides.high_score_text("US") in high  # said at once, not only in the summary
    user.say(_value("3"))  # tiredness
    user.say("done")  # no more scores
    user.say(_value("comfort"))
    user.say("Seeing my grandson graduate")  # own words
    user.say(_value("done"))
    first_group = guides.prompt_groups("US")[0]
    user.say(_value(first_group.questions[0].id))
    user.say("Can I still travel to see my sister?")  # their own question, not answered
    user.say("done")
    user.say("morphine, senna and paracetamol")
    user.say("done")
    summary = user.say(_value("friend"))
    text = _text(summary)
    assert summary[0]["text"] == "Appointment summary"
    for expected in ("Pain: 8 of 10 (7 or more", "Tiredness: 3 of 10", "Being comfortable",
                     "Seeing my grandson graduate", first_group.questions[0].title,
                     "Can I still travel to see my sister?", "- morphine", "- senna",
                     "- paracetamol", "Friend", "Notes:"):
        assert expected in text, expected
    assert "not medical advice" in text
    # the REST channel shows it paragraph by paragraph; its parts (printable on the web) whole
    printable = [m["custom"]["reply"] for m in summary if "custom" in m]
    assert [r["text"] for r in printable] == [
        "\n\n".join(m["text"] for m in summary if "text" in m)]


def test_skipping_everything_still_gives_a_summary_and_the_hospice_path_answers_at_once(
        servers: stack.Stack) -> None:
    user = User(servers)
    user.say("/start_prepare")
    reply = user.say(_value("caregiver"))
    for _ in range(40):
        text = _text(reply)
        if "Appointment summary" in text:
            break
        reply = user.say("skip")
    assert "Appointment summary" in text and "None given" in text
    hospice = user.say("/start_hospice_check")
    assert hospice[0]["text"].startswith(guides.hospice_result("US", "caregiver").text[:60])
