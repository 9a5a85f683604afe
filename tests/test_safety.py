"""The crisis override: rules, help lines, the Rasa component and the replies people see."""

from __future__ import annotations

import re

import pytest
import yaml
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.safety import SafetyOverride, default_detector
from knowledge.helplines import default_helplines
from settings import ROOT

DATA = ROOT / "tests" / "data"
# Sets the rules were fitted to: regression tests. The other sets (safety_heldout2.yml, the
# independent dev and test splits) are reported by `make eval`, not asserted here.
TUNED_SETS = ["safety_set.yml", "safety_heldout.yml"]


def _rows(name: str) -> list[dict]:
    return yaml.safe_load((DATA / name).read_text(encoding="utf-8"))["examples"]


@pytest.mark.parametrize("name", TUNED_SETS)
def test_every_crisis_message_in_the_labelled_sets_is_caught(name: str) -> None:
    detector = default_detector()
    missed = [r["text"] for r in _rows(name) if r["label"] != "none"
              and not detector.classes(r["text"])]
    assert not missed


@pytest.mark.parametrize("name", TUNED_SETS)
def test_every_crisis_row_of_the_tuned_sets_gets_its_kinds_numbers_for_its_region(
    name: str, trained_model,
) -> None:
    """Through the whole trained NLU pipeline and the crisis action, as a person would see
    it: the reply must carry the numbers of the row's kind (988 / Samaritans for suicide,
    Poison Control / NHS 111 for an overdose, ...) for the region the message implies."""
    import asyncio

    from navigator.evaluate import _parse_all, crisis_reply_for, judge_crisis_row

    rows = [r for r in _rows(name) if r["label"] != "none"]
    parses, _ = asyncio.run(_parse_all(trained_model, [r["text"] for r in rows]))
    wrong = [(r["label"], r.get("region"), r["text"]) for r, p in zip(rows, parses, strict=True)
             if not judge_crisis_row(r, crisis_reply_for(p), "US")["caught"]]
    assert wrong == []


@pytest.mark.parametrize("name", TUNED_SETS)
def test_no_false_alarm_on_the_look_alikes(name: str) -> None:
    detector = default_detector()
    alarms = [r["text"] for r in _rows(name)
              if r["label"] == "none" and detector.classes(r["text"])]
    assert not alarms


def test_labelled_sets_are_big_enough() -> None:
    rows = _rows("safety_set.yml")
    assert sum(r["label"] != "none" for r in rows) >= 60
    assert sum(r["label"] == "none" for r in rows) >= 60


# Real questions the rules flag, left so on purpose: a second-hand report that someone on
# hospice "was unresponsive" and "is in a comatose state" reads like an emergency, and
# narrowing the rule to spare it would miss people reporting one now.
KNOWN_ALARMS = ("he was unresponsive. At present he is in a comatose state",)


def test_rules_never_fire_on_ordinary_training_or_real_world_questions(
    nlu_examples: dict[str, list[str]],
) -> None:
    detector = default_detector()
    ordinary = [re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
                for intent, texts in nlu_examples.items() if not intent.startswith("crisis_")
                for text in texts]
    # the real questions' dev split only: a failure prints its rows, and the test split
    # must stay unread
    ordinary += [r["text"] for r in _rows("realworld/dev.yml")]
    assert len(ordinary) > 2000
    alarms = [t for t in ordinary if detector.classes(t)]
    assert [t for t in alarms if not any(k in t for k in KNOWN_ALARMS)] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I don't want to live anymore", ["suicide"]),
        ("I'm not suicidal, just worn out", []),
        ("i feel sucidal tonight", ["suicide"]),                    # typo
        ("is assisted suicide legal in the UK?", []),               # a question about the law
        ("mum wants to die at home, not in hospital", []),          # a wish about place
        ("he isn't breathing", ["emergency"]),
        ("no chest pain today, just tired", []),                    # negated
        ("he had a seizure last year, can palliative care help?", []),  # over
        ('what does "unresponsive" mean in the hospice notes?', []),   # a quoted term
        ("my back pain is killing me", []),                         # an idiom
        ("my son took a whole bottle of her pills", ["overdose"]),
        ("my brother is stealing dad's morphine", ["abuse"]),
        ("we're taking her home from hospital tomorrow", []),
        ("he's not breathing and I think he took all his pills", ["emergency", "overdose"]),
        ("the care fees are wiping out his savings", []),          # not "swiping"
        ("i was changing her bed and talking to her", []),          # not "hanging", "taking"
    ],
)
def test_detector_reads_meaning_not_just_words(text: str, expected: list[str]) -> None:
    assert default_detector().classes(text) == expected


def test_every_number_a_reply_uses_exists_in_every_region() -> None:
    helplines = default_helplines()
    for region, numbers in helplines.numbers.items():
        assert helplines.placeholders() <= set(numbers), region
        for entry in numbers.values():
            assert entry["source"]["url"].startswith("https://")


@pytest.mark.parametrize(
    ("kinds", "region", "must_say"),
    [
        (["suicide"], "US", ["988", "911"]),
        (["suicide"], "UK", ["116 123", "999"]),
        (["emergency"], "US", ["911"]),
        (["emergency"], "UK", ["999"]),
        (["overdose"], "US", ["911", "1-800-222-1222"]),
        (["abuse"], "US", ["1-800-677-1116", "911"]),
        (["abuse"], "UK", ["safeguarding", "101", "999"]),
    ],
)
def test_crisis_reply_gives_the_numbers_for_the_region(
    kinds: list[str], region: str, must_say: list[str]
) -> None:
    text = default_helplines().crisis_reply(kinds, "en", region)
    assert all(s in text for s in must_say)
    other = {"US": ["999", "116 123"], "UK": ["911", "988"]}[region]
    assert not any(s in text for s in other)
    assert text.endswith("I'm still here if you want to keep talking.")


def test_hospice_patients_are_reminded_of_the_24_hour_nurse_line() -> None:
    text = default_helplines().crisis_reply(["emergency"], "en", "US", in_hospice=True)
    assert "24 hours" in text


def _message(text: str, intent: str, ranking: list[str]) -> Message:
    message = Message(data={"text": text})
    confidences = [0.9] + [0.1 / max(1, len(ranking) - 1)] * (len(ranking) - 1)
    message.set("intent", {"name": intent, "confidence": 0.9}, add_to_output=True)
    message.set("intent_ranking", [{"name": n, "confidence": c}
                                   for n, c in zip(ranking, confidences, strict=True)],
                add_to_output=True)
    return message


def test_override_beats_whatever_the_model_predicted() -> None:
    message = _message("what does hospice do? also i want to end my life", "faq", ["faq"])
    [message] = SafetyOverride().process([message])
    assert message.get("intent") == {"name": "crisis_suicide", "confidence": 1.0}
    entity = message.get("entities")[0]
    assert (entity["entity"], entity["value"]) == ("crisis_type", "suicide")


def test_model_crisis_guess_stands_unless_the_rules_cleared_the_message() -> None:
    kept = _message("I've written letters for the kids and kept back her tablets",
                    "crisis_suicide", ["crisis_suicide", "faq"])
    cleared = _message("I'm not suicidal, just tired", "crisis_suicide",
                       ["crisis_suicide", "thank"])
    SafetyOverride().process([kept, cleared])
    assert kept.get("intent")["name"] == "crisis_suicide"
    assert cleared.get("intent")["name"] == "thank"


def test_button_payloads_are_never_treated_as_crisis_words() -> None:
    message = _message('/faq{"faq_id":"last_days"}', "faq", ["faq"])
    [message] = SafetyOverride().process([message])
    assert message.get("intent")["name"] == "faq"



def test_model_crisis_mass_routes_indirect_wording_unless_cleared() -> None:
    def ranked(text: str) -> Message:
        message = Message(data={"text": text})
        ranking = [{"name": "crisis_suicide", "confidence": 0.4},
                   {"name": "faq", "confidence": 0.35},
                   {"name": "crisis_abuse", "confidence": 0.25}]
        message.set("intent", dict(ranking[0]), add_to_output=True)
        message.set("intent_ranking", ranking, add_to_output=True)
        return message

    indirect = ranked("once she's gone I've decided I'm going too")
    negated = ranked("I'm not suicidal, I'm just so tired")
    SafetyOverride({"model_threshold": 0.6}).process([indirect, negated])
    assert indirect.get("intent")["name"] == "crisis_suicide"
    assert negated.get("intent")["name"] == "faq"


def test_a_weak_crisis_guess_of_the_model_is_not_enough() -> None:
    message = Message(data={"text": "I'd kill for a full night's sleep"})
    ranking = [{"name": "crisis_suicide", "confidence": 0.35},
               {"name": "faq", "confidence": 0.3}, {"name": "greet", "confidence": 0.1}]
    message.set("intent", dict(ranking[0]), add_to_output=True)
    message.set("intent_ranking", ranking, add_to_output=True)
    SafetyOverride({"model_threshold": 0.6}).process([message])
    assert message.get("intent")["name"] == "faq"
