"""The unanswered-question report: real Rasa events saved through Rasa's SQL tracker store
(SQLite and PostgreSQL), read back by `navigator report` in each format; groups, counts and
order are right, and no personal detail or conversation id is printed."""

from __future__ import annotations

import csv
import io
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, UserUttered

from knowledge.privacy import mask
from navigator import report
from navigator.cli import main

if TYPE_CHECKING:
    from conftest import TrackerStores

NOW = time.time()
DAY = 86_400.0

# Every one of these is in a listed message; none may appear in any output.
PERSONAL = [
    "07700 900123", "900123", "+1 (312) 555-0199", "555-0199", "mary.jones@example.org",
    "mary.jones", "example.org", "jo (at) example (dot) com", "SW1A 1AA", "SW1A", "LS6 2AB",
    "943 476 5919", "4765919", "12 Acacia Avenue", "Acacia", "221B Baker St", "Baker",
    "Mary Jones", "Jones", "Patel", "1EG4-TE5-MK73", "12/03/1950", "60614",
]
# Conversation ids: SMS ones are phone numbers. Never printed.
SENDERS = ["+447700900111", "whatsapp:+13125550142", "web-9f2c1d0e", "+447700900222",
           "+13125550177", "web-4be1c2aa", "+447700900333", "web-77aa11bb", "web-old"]


def _user(text: str, at: float, intent: str, entry: str | None = None,
          confidence: float = 0.9) -> UserUttered:
    parse = {"intent": {"name": intent, "confidence": 0.95}, "entities": [], "text": text}
    if entry is not None:
        parse["response_selector"] = {"faq": {
            "response": {"intent_response_key": f"faq/{entry}", "confidence": confidence},
            "ranking": [{"intent_response_key": f"faq/{entry}", "confidence": confidence}]}}
    return UserUttered(text, parse["intent"], [], parse_data=parse, timestamp=at)


def _did_you_mean(text: str, at: float, offered: str, explicit: bool = False) -> list:
    """The two-stage fallback starting: it offers the likeliest topics ("did you mean")."""
    user = _user(text, at, "nlu_fallback", offered, confidence=0.15)
    if explicit:  # as Rasa records it when a rule predicts the action itself
        return [user, ActionExecuted("action_default_ask_affirmation", timestamp=at + 1),
                BotUttered("Did you mean ...?", timestamp=at + 1)]
    return [user, ActionExecuted("action_two_stage_fallback", timestamp=at + 1),
            ActiveLoop("action_two_stage_fallback", timestamp=at + 1),
            BotUttered("Did you mean ...?", timestamp=at + 1),
            ActionExecuted("action_listen", timestamp=at + 1)]


def _fell_back(text: str, at: float) -> list:
    return [_user(text, at, "nlu_fallback"),
            ActionExecuted("action_default_fallback", timestamp=at + 1),
            BotUttered("Sorry, I don't know that one.", timestamp=at + 1),
            ActionExecuted("action_listen", timestamp=at + 1)]


def _answered(text: str, at: float, entry: str, confidence: float = 0.9) -> list:
    return [_user(text, at, "faq", entry, confidence),
            ActionExecuted("action_answer_faq", timestamp=at + 1),
            BotUttered("An answer.", timestamp=at + 1),
            ActionExecuted("action_listen", timestamp=at + 1)]


def _conversations() -> dict[str, list]:
    t = NOW - 2 * DAY
    s = SENDERS
    return {
        # group 1: the dog, 4 messages (3 fell back, 1 did you mean), details in each
        s[0]: [*_fell_back("can my dog come with me to the hospice? call me on 07700 900123", t),
               *_answered("who pays for hospice", t + 600, "hospice_costs")],
        s[1]: _fell_back("Can my dog come with me into the hospice, my name is Mary Jones and "
                         "I live at 12 Acacia Avenue", t + 50),
        s[2]: [*_fell_back("can my dog come with me to hospice - email mary.jones@example.org "
                           "or ring +1 (312) 555-0199", t + 100),
               # a button pressed: a payload, never listed
               *_answered('/faq{"faq_id":"hospice_visiting"}', t + 130, "hospice_visiting")],
        s[3]: _did_you_mean("can my dog come with me to the hospice? Mrs Patel, 221B Baker St, "
                            "SW1A 1AA", t + 150, "hospice_visiting"),
        # group 2: Medicare at home, 3 answered with low confidence
        s[4]: [*_answered("does medicare pay for hospice at home", t + 200,
                          "medicare_hospice_eligibility", 0.35),
               # unrelated and later: neither a rephrase nor listed
               *_answered("what is palliative care", t + 900, "what_is_palliative_care")],
        s[5]: [*_answered("does medicare pay for hospice at home", t + 250,
                          "medicare_hospice_eligibility", 0.42),
               *_answered("does medicare pay for hospice care at home? my number is "
                          "1EG4-TE5-MK73", t + 400, "medicare_hospice_eligibility", 0.3)],
        # group 3: answered, then asked again in other words within 2 minutes: rephrased
        s[6]: [*_answered("what does palliative care mean for my mum", t + 300,
                          "what_is_palliative_care"),
               *_answered("what does palliative care actually mean for mum", t + 340,
                          "what_is_palliative_care"),
               *_answered("what does palliative care mean for my mum please", t + 2000,
                          "what_is_palliative_care"),
               *_answered("what does palliative care mean for my mum, LS6 2AB", t + 2060,
                          "what_is_palliative_care")],
        # group 4: one "did you mean" (recorded as the action itself), with more details
        s[7]: [*_did_you_mean("is cannabis oil allowed? NHS number 943 476 5919, born "
                              "12/03/1950, write to jo (at) example (dot) com, ZIP 60614",
                              t + 500, "pain_clinic_medicines", explicit=True),
               *_answered("thanks", t + 520, "what_is_palliative_care", 0.9)],
        # older than the report's window: not listed
        s[8]: _fell_back("can my dog come with me to the hospice", NOW - 40 * DAY),
    }


@pytest.fixture
def tracker_db_url(tracker_stores: TrackerStores, tracker_dialect: str) -> str:
    """A tracker store seeded through Rasa's SQLTrackerStore, on SQLite and on PostgreSQL."""
    tracker = tracker_stores(tracker_dialect, _conversations())
    tracker.close()
    return tracker.url


EXPECTED = [  # (count, why, entry chosen), most frequent first
    (4, "fell back 3, did you mean 1", "hospice_visiting (offered)"),
    (3, "low confidence 3", "medicare_hospice_eligibility"),
    (2, "rephrased 2", "what_is_palliative_care"),
    (1, "did you mean 1", "pain_clinic_medicines (offered)"),
]


def _no_personal_details(output: str) -> None:
    leaked = [d for d in PERSONAL + SENDERS if d.lower() in output.lower()]
    assert leaked == []


def test_report_groups_in_every_format_and_prints_nothing_personal(
    tracker_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["report", "--db", tracker_db_url]) == 0
    table = capsys.readouterr().out
    _no_personal_details(table)
    assert "10 of 15 user messages in 4 groups" in table
    assert "fell back 3, did you mean 2, low confidence 3, rephrased 2" in table
    rows = [line for line in table.splitlines() if line[:3].strip().isdigit()]
    assert [int(line.split()[1]) for line in rows] == [4, 3, 2, 1]
    assert "[phone]" in table and "[name]" in table and "[address]" in table

    out = tmp_path / "report.csv"
    assert main(["report", "--db", tracker_db_url, "--format", "csv", "--out", str(out)]) == 0
    assert "wrote 4 groups" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    _no_personal_details(text)
    groups = list(csv.DictReader(io.StringIO(text)))
    assert [(int(g["count"]), g["why"], g["entry"]) for g in groups] == EXPECTED
    dog = groups[0]
    assert (dog["fell_back"], dog["did_you_mean"]) == ("3", "1")
    examples = [dog[f"example_{n}"] for n in (1, 2, 3)]
    assert all(e.lower().startswith("can my dog come with me") for e in examples)
    assert any("[phone]" in e for e in examples)
    medicare = [groups[1][f"example_{n}"] for n in (1, 2)]
    assert medicare == ["does medicare pay for hospice at home",
                        "does medicare pay for hospice care at home? my number is "
                        "[medicare-number]"]
    single = groups[3]["example_1"]
    assert "[nhs-number]" in single and "[date]" in single and "[email]" in single
    assert "[zip]" in single

    assert main(["report", "--db", tracker_db_url, "--format", "html"]) == 0
    page = capsys.readouterr().out
    _no_personal_details(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http" not in page  # self-contained
    assert page.count("<tr><td class=n>") == 4


def test_a_lower_threshold_and_a_shorter_window(tracker_db_url: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", tracker_db_url, "--format", "csv",
                 "--min-confidence", "0.4"]) == 0
    groups = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(int(g["count"]), g["why"]) for g in groups][1] == (2, "low confidence 2")
    assert main(["report", "--db", tracker_db_url, "--days", "1"]) == 0
    assert "0 of 0 user messages in 0 groups" in capsys.readouterr().out
    assert main(["report", "--db", tracker_db_url, "--days", "0"]) == 2


def test_html_escapes_what_people_typed(tmp_path: Path) -> None:
    page = report.render_html(report.Report(30, NOW - 30 * DAY, NOW, 1, [report.Group([
        report.Miss("<script>alert('hi')</script> & hospice", "fell_back")])]))
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; hospice" in page


def test_rephrase_needs_most_words_shared() -> None:
    assert report.similar("how much does hospice cost", "how much does hospice care cost")
    assert report.similar("what does palliative care mean please", "palliative care meaning?")
    assert not report.similar("what is hospice care", "and respite care?")
    assert not report.similar("hi", "hi")  # too short to tell


def test_an_empty_or_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["report", "--db", url]) == 0
    assert "nothing to list" in capsys.readouterr().out


TOPICS = {  # a word every wording of the topic keeps: which topic a grouped message is from
    "cat": "can my cat visit {} at the hospice",
    "nurse": "does insurance cover a night nurse for {}",
    "wheelchair": "how do i get a wheelchair at home for {}",
    "married": "can {} get married in the hospice",
    "benefits": "what happens to {} benefits after death",
    "oxygen": "who delivers oxygen at home for {}",
}
WHO = ["my mum", "my dad", "my husband", "my wife", "nan", "grandad", "my partner", "him"]
DETAILS = ["call me on 07700 900{:03d}", "my email is p{}@example.org", "we live at {} Mill "
           "Lane", "postcode LS6 2AB", "my number is +1 312 555 0{:03d}", "", "thanks", "please"]


def _wording(rng: random.Random, n: int) -> tuple[str, str]:
    word = rng.choice(sorted(TOPICS))
    words = TOPICS[word].format(rng.choice(WHO)).split()
    if rng.random() < 0.5:  # a typo, not in the topic's word
        i = rng.choice([i for i, w in enumerate(words) if w != word and len(w) > 3] or [0])
        j = rng.randrange(len(words[i]))
        words[i] = words[i][:j] + words[i][j + 1:]
    detail = rng.choice(DETAILS).format(n % 1000)
    return word, " ".join(words) + (f", {detail}" if detail else "")


def test_a_few_thousand_messages_take_seconds(tracker_stores: TrackerStores) -> None:
    """3,000 listed messages (typos, contact details) from 1,000 conversations: read, masked
    and grouped in seconds, one group per topic."""
    tracker = tracker_stores()
    store = tracker.store
    rng = random.Random(7)
    rows = []
    for n in range(1000):
        for k in range(3):
            _, text = _wording(rng, n * 3 + k)
            for event in _fell_back(text, NOW - DAY + n + 200 * k):
                rows.append({"sender_id": f"+4477009{n:05d}", "type_name": event.type_name,
                             "timestamp": event.timestamp,
                             "action_name": getattr(event, "action_name", None),
                             "data": json.dumps(event.as_dict())})
    with store.engine.begin() as conn:
        conn.execute(store.SQLEvent.__table__.insert(), rows)
    tracker.close()
    started = time.perf_counter()
    built = report.build(tracker.url, days=30, now=NOW)
    elapsed = time.perf_counter() - started
    assert built.listed == 3000 and built.user_messages == 3000
    assert elapsed < 20, elapsed
    assert len(built.groups) == len(TOPICS)
    assert min(_purity(built.groups)) >= 0.98  # a misspelt word or two may pull one across
    _no_personal_details(report.render_table(built))


def _purity(groups: list[report.Group]) -> list[float]:
    """For each group, the share of its messages from its most common topic."""
    shares = []
    for g in groups:
        topics = Counter(next(w for w in TOPICS if w in m.text.split()) for m in g.misses)
        shares.append(topics.most_common(1)[0][1] / g.count)
    return shares


def test_past_the_linkage_limit_rarer_wordings_join_the_nearest_group() -> None:
    rng = random.Random(3)
    misses = [report.Miss(mask(_wording(rng, n)[1]), "fell_back") for n in range(600)]
    groups = report.group(misses, max_linkage=40)
    assert sum(g.count for g in groups) == 600
    assert min(_purity(groups)) >= 0.95
    assert len(groups) <= 2 * len(TOPICS)
    assert sum(g.count for g in groups[:len(TOPICS)]) >= 580
