"""Answers must be easy to read: plain words, short sentences (Flesch-Kincaid grade)."""

from __future__ import annotations

import statistics

import textstat

import knowledge
from knowledge.replies import keys as phrase_keys
from knowledge.replies import phrase

MAX_GRADE = 10
MAX_MEDIAN_GRADE = 8


def _answer_grades(kb: knowledge.KnowledgeBase) -> dict[str, float]:
    return {
        f"{entry.id}/{lang}/{region}": textstat.flesch_kincaid_grade(text)
        for entry in kb.entries.values()
        for lang, by_region in entry.answer.items()
        for region, text in by_region.items()
    }


def test_no_answer_is_above_grade_10(kb: knowledge.KnowledgeBase) -> None:
    too_hard = {k: round(g, 1) for k, g in _answer_grades(kb).items() if g > MAX_GRADE}
    assert not too_hard, f"answers above grade {MAX_GRADE}: {too_hard}"


def test_median_answer_is_at_most_grade_8(kb: knowledge.KnowledgeBase) -> None:
    assert statistics.median(_answer_grades(kb).values()) <= MAX_MEDIAN_GRADE


def test_longer_texts_stay_readable(kb: knowledge.KnowledgeBase) -> None:
    too_hard = {
        f"{entry.id}/{region}": round(grade, 1)
        for entry in kb.entries.values()
        for by_region in (entry.more or {}).values()
        for region, text in by_region.items()
        if (grade := textstat.flesch_kincaid_grade(text)) > MAX_GRADE
    }
    assert not too_hard


def test_safety_replies_are_easy_to_read_in_a_hurry() -> None:
    from knowledge.helplines import default_helplines

    helplines = default_helplines()
    texts = {f"{kind}/{region}": helplines.crisis_reply([kind], "en", region)
             for kind in ("suicide", "emergency", "overdose", "abuse") for region in ("US", "UK")}
    texts |= {f"medical/{r}": helplines.medical_advice_reply("en", r) for r in ("US", "UK")}
    too_hard = {k: round(g, 1) for k, t in texts.items()
                if (g := textstat.flesch_kincaid_grade(t)) > MAX_MEDIAN_GRADE}
    assert not too_hard


def test_the_welcome_and_the_guided_conversations_own_words_are_easy_to_read() -> None:
    """What every newcomer reads first, and what a guide says between its steps."""
    keys = ["welcome", *(k for k in phrase_keys() if k.startswith("guide_"))]
    grades = {k: textstat.flesch_kincaid_grade(str(phrase(k))) for k in keys}
    too_hard = {k: round(g, 1) for k, g in grades.items() if g > 6}
    assert len(keys) > 5 and not too_hard, too_hard
