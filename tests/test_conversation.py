"""The real action server and Rasa server, talked to over the REST channel like a user would."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import yaml
from restclient import User

import knowledge
from navigator import stack


def test_greeting_says_it_is_an_automated_helper(servers: stack.Stack) -> None:
    reply = User(servers).say("hello")
    assert "automated" in reply[0]["text"]


def test_faq_answer_comes_from_the_knowledge_base_with_source_and_buttons(
    servers: stack.Stack, kb: knowledge.KnowledgeBase
) -> None:
    reply = User(servers).say("Is palliative care only for people who are dying?")
    entry = kb.get("only_for_dying")
    assert reply[0]["text"].startswith(entry.text("answer", "en", "US"))
    assert "Source: " in reply[0]["text"]
    related = {kb.get(r).label("en") for r in entry.related}
    assert {b["title"] for b in reply[0]["buttons"]} >= related


def test_uk_reader_gets_the_uk_answer_and_can_ask_for_more(
    servers: stack.Stack, kb: knowledge.KnowledgeBase
) -> None:
    user = User(servers)
    assert "United Kingdom" in user.say("I'm in the UK")[0]["text"]
    reply = user.say("who pays for palliative care?")
    assert reply[0]["text"].startswith(kb.get("who_pays_palliative").text("answer", "en", "UK"))
    more = user.say("tell me more")
    entry = kb.get("who_pays_palliative")
    longer = entry.text("more", "en", "UK") or entry.text("answer", "en", "UK")
    assert more[0]["text"].startswith(longer)


def test_tell_me_more_after_small_talk_still_means_the_last_answer(
    servers: stack.Stack, kb: knowledge.KnowledgeBase
) -> None:
    """Found while profiling: Rasa ran the FAQ action on every message to fill its slots, so
    "thanks" quietly replaced the last answer and "tell me more" expanded another topic."""
    user = User(servers)
    user.say("who pays for palliative care?")
    user.say("thanks")
    more = user.say("tell me more")
    entry = kb.get("who_pays_palliative")
    assert more[0]["text"].startswith(entry.text("more", "en", "US") or
                                      entry.text("answer", "en", "US"))


def test_saying_hello_first_does_not_use_up_the_one_question_about_who_it_is_for(
    servers: stack.Stack,
) -> None:
    user = User(servers)
    user.say("hello")
    replies = user.say("what is hospice care?")
    assert any(b["title"] == "Someone I care for" for m in replies for b in m.get("buttons") or [])


def test_wording_anywhere_sets_country_and_carer_without_an_extra_reply(
    servers: stack.Stack, kb: knowledge.KnowledgeBase
) -> None:
    user = User(servers)
    replies = user.say("my husband has lung cancer and we live in Wales. who pays for hospice?")
    texts = [m.get("text") or "" for m in replies]
    # either entry that says who pays, in its UK words (hospice care is free there)
    uk_answers = [kb.get(i).text("answer", "en", "UK")[:60]
                  for i in ("hospice_costs", "hospice_without_insurance")]
    assert any(texts[0].startswith(a) for a in uk_answers), texts[0]
    assert not any("Which country" in t or "Thank you. I'll give you" in t for t in texts)
    assert not any(b["title"] == "Someone I care for" for m in replies
                   for b in m.get("buttons") or [])  # "my husband": already known


def test_clicking_a_follow_up_button_answers_that_entry(
    servers: stack.Stack, kb: knowledge.KnowledgeBase
) -> None:
    reply = User(servers).say(knowledge.faq_payload("hospice_costs"))
    assert reply[0]["text"].startswith(kb.get("hospice_costs").text("answer", "en", "US"))


def test_gibberish_gets_offered_topics_then_a_rephrase_request(servers: stack.Stack) -> None:
    user = User(servers)
    first = user.say("qwxz plorb vvv")
    assert first[0]["buttons"][-1] == {"title": "Something else", "payload": "/out_of_scope"}
    second = user.say("/out_of_scope")
    assert "another way" in second[0]["text"]


def test_conversation_is_kept_in_the_sql_tracker_store(servers: stack.Stack) -> None:
    user = User(servers)
    user.say("hello")
    user.say("what is hospice")
    with sqlite3.connect(servers.var_dir / "tracker.db") as conn:
        texts = [json.loads(row[0]).get("text") for row in conn.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'", (user.id,))]
    assert texts == ["hello", "what is hospice"]


def test_crisis_wins_in_the_middle_of_the_fallback_loop(servers: stack.Stack) -> None:
    user = User(servers)
    assert user.say("qwxz plorb vvv")[0]["buttons"][-1]["title"] == "Something else"
    reply = user.say("honestly I don't want to be alive anymore")
    assert "988" in reply[0]["text"] and "911" in reply[0]["text"]
    assert "Source:" not in reply[0]["text"]  # not an FAQ answer


def test_crisis_after_an_faq_answer_gives_the_uk_numbers(servers: stack.Stack) -> None:
    user = User(servers)
    user.say("I'm in the UK")
    user.say("what is hospice care?")
    reply = user.say("my brother has been stealing mum's morphine patches")
    assert "999" in reply[0]["text"] and "safeguarding" in reply[0]["text"]
    assert "911" not in reply[0]["text"]


def _all(reply: list[dict[str, Any]]) -> str:
    """The REST channel sends one message per paragraph: read them all."""
    return "\n\n".join(m.get("text") or "" for m in reply)


def test_crisis_numbers_follow_the_place_the_message_names(servers: stack.Stack) -> None:
    uk = _all(User(servers).say("im in glasgow and honestly I want to end my life"))
    assert "116 123" in uk and "999" in uk
    assert "988" not in uk and "911" not in uk
    us = _all(User(servers).say("we live in Tulsa, OK and my husband says he will shoot "
                                "himself tonight"))
    assert "988" in us and "911" in us and "116 123" not in us
    gp = _all(User(servers).say("the GP won't listen and my dad says he wants to kill himself"))
    assert "116 123" in gp and "988" not in gp


def test_a_crisis_that_says_nothing_of_where_adds_the_other_country(
    servers: stack.Stack,
) -> None:
    reply = _all(User(servers).say("I want to kill myself"))
    assert reply.index("988") < reply.index("If you are in the UK: Samaritans 116 123, 999.")


def test_medicines_being_taken_gets_practical_steps(servers: stack.Stack) -> None:
    reply = _all(User(servers).say(
        "my son lives with us and keeps taking his mum's oxycodone, she's in agony"))
    for step in ("locked away", "count them", "pharmacist", "Adult Protective Services",
                 "911"):
        assert step in reply, step


def test_ordinary_talk_about_dying_gets_its_normal_answer(servers: stack.Stack) -> None:
    for text in ("my grandmother is dying, what does hospice do?",
                 "what happens in the last days of life?"):
        reply = User(servers).say(text)
        assert "Source:" in reply[0]["text"], text
        assert "988" not in reply[0]["text"] and "911" not in reply[0]["text"][:40]


def test_dose_questions_are_declined_with_who_to_ask(servers: stack.Stack) -> None:
    reply = User(servers).say("how much morphine can I give my dad tonight?")
    assert "can't advise" in reply[0]["text"]


def test_run_endpoints_point_at_a_sqlite_file_whose_folder_exists(tmp_path: Path) -> None:
    from navigator.stack import _write_endpoints

    target = tmp_path / "run.yml"
    _write_endpoints(target, "http://127.0.0.1:1/webhook", tmp_path / "new" / "tracker.db")
    store = yaml.safe_load(target.read_text())["tracker_store"]
    assert store["db"] == str(tmp_path / "new" / "tracker.db")
    assert (tmp_path / "new").is_dir()
