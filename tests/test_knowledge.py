"""The knowledge base: schema, coverage, consistency with the NLU data, rendering."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

import knowledge
from knowledge import shapes
from navigator import training

# Topics the knowledge base must cover (issue: "The spine", coverage list).
REQUIRED_TOPICS = [
    "what_is_palliative_care", "palliative_vs_hospice", "only_for_dying", "any_age_any_stage",
    "alongside_treatment", "which_illnesses", "care_team", "where_care_given", "get_referral",
    "who_pays_palliative", "medicare_hospice_eligibility", "hospice_six_months",
    "hospice_benefit_periods", "hospice_costs", "hospice_nursing_home", "stop_or_change_hospice",
    "hospice_home_vs_inpatient", "hospice_24_hour_line", "respite_care", "bereavement_support",
    "advance_care_planning", "pc_ms", "pc_metastatic_breast_cancer", "pc_chronic_pain",
    "what_is_pain_clinic", "pain_clinic_medicines", "pain_clinic_procedures",
    "pain_clinic_other_therapies", "pain_clinic_first_visit", "why_referred_pain_management",
    "palliative_massage", "massage_safety_consent", "morphine_myth", "hospice_giving_up",
    "talking_about_pain", "pain_diary", "caregiver_support",
    # what people ask that the first 57 did not answer (issue 13)
    "hospice_levels_of_care", "hospice_night_care", "ambulance_on_hospice",
    "hospital_while_on_hospice", "comfort_kit", "medicines_out_of_hours",
    "safe_storage_medicines", "missing_medicines", "medicines_after_death", "after_death_at_home",
    "not_eating_near_end", "feeding_tubes_and_drips", "dnr", "polst_respect",
    "cpr_what_it_involves", "treatments_on_hospice", "hospice_without_insurance",
    "hospice_non_cancer", "children_palliative_care", "talking_to_children",
    "assisted_dying_law", "warning_signs_call_team", "fast_track_funding",
]
# Facts that hold in one country only: text naming them must be regional (US/UK).
# ("doctor or GP" is a word choice, not a fact, so GP may appear in shared text.)
COUNTRY_SPECIFIC = re.compile(r"\b(Medicare|Medicaid|NHS|911|999|111|988|VA)\b")
# The review rule: an entry's `reviewed` date must not be after the reference date (today,
# by default) and must be less than this many days before it (about two years).
REVIEW_MAX_AGE_DAYS = 2 * 365


def test_knowledge_base_has_at_least_110_entries(kb: knowledge.KnowledgeBase) -> None:
    assert len(kb) >= 110


@pytest.mark.parametrize("topic", REQUIRED_TOPICS)
def test_required_topic_is_covered(kb: knowledge.KnowledgeBase, topic: str) -> None:
    assert topic in kb


def review_problems(reviewed: dict[str, dt.date], today: dt.date) -> list[str]:
    """What breaks the review rule (see REVIEW_MAX_AGE_DAYS), one line per entry id.

    ``reviewed`` maps entry ids to their review dates; ``today`` is the reference date.
    """
    problems = []
    for entry_id, date in sorted(reviewed.items()):
        age = (today - date).days
        if age < 0:
            problems.append(
                f"{entry_id}: reviewed {date}, {-age} day(s) after the reference date {today} "
                "(today's date on this machine, unless a test passed another): either the "
                "review date is wrong or this machine's clock is behind"
            )
        elif age >= REVIEW_MAX_AGE_DAYS:
            problems.append(
                f"{entry_id}: reviewed {date}, {age} days before {today}; entries must be "
                f"reviewed again within {REVIEW_MAX_AGE_DAYS} days (update the text if needed "
                "and its `reviewed` date)"
            )
    return problems


@pytest.fixture
def today() -> dt.date:
    """The reference date for the review rule: the machine's date. Override this fixture
    (or call review_problems with a fixed date) to check against another day."""
    return dt.date.today()


def test_every_entry_has_sources_and_valid_related(kb: knowledge.KnowledgeBase) -> None:
    for entry in kb.entries.values():
        assert entry.sources, entry.id
        assert all(str(s.url).startswith("https://") for s in entry.sources), entry.id
        assert len(entry.related) <= 3 and all(r in kb for r in entry.related), entry.id


def test_every_entry_was_reviewed_recently(kb: knowledge.KnowledgeBase, today: dt.date) -> None:
    """Every entry's `reviewed` date is on or before ``today`` (the machine's date by
    default) and less than REVIEW_MAX_AGE_DAYS days before it. This test starts failing
    once content has gone unreviewed that long: that is its job."""
    problems = review_problems({e.id: e.reviewed for e in kb.entries.values()}, today)
    assert not problems, "\n".join(problems)


def test_review_rule_on_fixed_dates() -> None:
    day = dt.date(2026, 3, 1)
    limit = dt.timedelta(days=REVIEW_MAX_AGE_DAYS)
    assert review_problems({"same_day": day, "almost_stale": day - limit + dt.timedelta(1)},
                           today=day) == []
    [stale] = review_problems({"stale": day - limit}, today=day)
    assert stale.startswith("stale: reviewed") and f"within {REVIEW_MAX_AGE_DAYS} days" in stale
    [future] = review_problems({"future": day + dt.timedelta(1)}, today=day)
    assert future.startswith("future: reviewed 2026-03-02, 1 day(s) after the reference date "
                             "2026-03-01") and "clock" in future


def test_country_specific_facts_have_us_and_uk_variants(kb: knowledge.KnowledgeBase) -> None:
    shared = [
        (entry.id, part, match.group(0))
        for entry in kb.entries.values()
        for part in ("answer", "more")
        for by_region in (getattr(entry, part) or {}).values()
        if (text := by_region.get(knowledge.ALL)) and (match := COUNTRY_SPECIFIC.search(text))
    ]
    assert not shared, f"country-specific words in text shown to everyone: {shared}"


def test_many_entries_differ_between_us_and_uk(kb: knowledge.KnowledgeBase) -> None:
    regional = [e.id for e in kb.entries.values() if "US" in e.answer["en"]]
    assert {"who_pays_palliative", "get_referral", "hospice_costs"} <= set(regional)


def test_every_faq_subintent_has_an_entry_and_every_entry_has_examples(
    kb: knowledge.KnowledgeBase, nlu_examples: dict[str, list[str]]
) -> None:
    sub_intents = {i.split("/", 1)[1] for i in nlu_examples if i.startswith("faq/")}
    assert sub_intents - set(kb.entries) == set(), "sub-intents without a knowledge base entry"
    assert set(kb.entries) - sub_intents == set(), "entries without NLU examples"
    thin = {i: len(ex) for i, ex in nlu_examples.items() if len(ex) < 10}
    assert not thin, f"intents with fewer than 10 examples: {thin}"


def test_no_training_example_is_shared_by_two_intents(nlu_examples: dict[str, list[str]]) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for intent, examples in nlu_examples.items():
        for ex in examples:
            key = " ".join(ex.lower().split())
            if key in seen and seen[key] != intent:
                clashes.append((ex, seen[key], intent))
            seen[key] = intent
    assert not clashes


def test_generated_faq_responses_match_the_knowledge_base(kb: knowledge.KnowledgeBase) -> None:
    assert training.FAQ_RESPONSES.read_text(encoding="utf-8") == training.faq_responses_text(kb), (
        "nlu_data/faq/responses.yml is stale: run `make model`"
    )


def test_render_gives_region_specific_answer_with_source_and_buttons(
    kb: knowledge.KnowledgeBase,
) -> None:
    entry = kb.get("who_pays_palliative")
    us = knowledge.render(kb, entry, "en", "US")
    uk = knowledge.render(kb, entry, "en", "UK")
    assert "Medicare" in us.text and "NHS" not in us.text
    assert "NHS" in uk.text and "Medicare" not in uk.text
    for reply in (us, uk):
        assert reply.sources and all(s.url.startswith("https://") for s in reply.sources)
        plain = shapes.plain_text(reply.payload())
        assert plain.startswith(reply.text + "\n\nSource: ")
        assert all(f"{s.title} {s.url}" in plain for s in reply.sources)
        related_titles = {kb.entries[r].label("en") for r in entry.related}
        assert related_titles <= {b.title for b in reply.buttons}


def test_render_more_gives_the_longer_text_without_a_second_more_button(
    kb: knowledge.KnowledgeBase,
) -> None:
    entry = next(e for e in kb.entries.values() if e.more)
    short = knowledge.render(kb, entry, "en", "US")
    longer = knowledge.render(kb, entry, "en", "US", more=True)
    assert short.buttons[0].payload == knowledge.more_payload(entry.id)
    assert longer.text.startswith(entry.text("more", "en", "US"))
    assert all(b.title != "Tell me more" for b in longer.buttons)


def test_unknown_language_falls_back_to_english(kb: knowledge.KnowledgeBase) -> None:
    entry = kb.get("what_is_palliative_care")
    assert knowledge.render(kb, entry, "es", "US").text == knowledge.render(
        kb, entry, "en", "US"
    ).text


GOOD = {
    "id": "demo_entry",
    "reviewed": "2026-01-01",
    "title": {"en": "A demo"},
    "answer": {"en": {"all": "Short and clear."}},
    "sources": [{"title": "MedlinePlus", "url": "https://medlineplus.gov/"}],
}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"sources": []}, "at least one source"),
        ({"answer": {"en": {"all": "word " * 121}}}, "at most 120"),
        ({"answer": {"en": {"US": "only one country"}}}, "both of"),
        ({"id": "Bad Id"}, "id"),
        ({"related": ["demo_entry"]}, "itself"),
        ({"sources": [{"title": "x source", "url": "not a url"}]}, "url"),
    ],
)
def test_schema_rejects_broken_entries(tmp_path: Path, change: dict, complaint: str) -> None:
    (tmp_path / "bad.yml").write_text(yaml.safe_dump([{**GOOD, **change}]), encoding="utf-8")
    with pytest.raises(knowledge.KnowledgeError, match=complaint):
        knowledge.load(tmp_path)


def test_schema_rejects_related_ids_that_do_not_exist(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(yaml.safe_dump([{**GOOD, "related": ["nope"]}]))
    with pytest.raises(knowledge.KnowledgeError, match="not in the knowledge base"):
        knowledge.load(tmp_path)


def test_region_names_people_use_are_understood() -> None:
    assert knowledge.region_from_text("England") == "UK"
    assert knowledge.region_from_text("the States") == "US"
    assert knowledge.region_from_text("United Kingdom") == "UK"
    assert knowledge.region_from_text("Mars") is None


def test_a_country_named_inside_a_message_is_found() -> None:
    assert knowledge.region_in_message("we're in the US") == "US"
    assert knowledge.region_in_message("my mum lives in Wales") == "UK"
    assert knowledge.region_in_message("can you help us") is None
    assert knowledge.region_in_message("I'm in the united states") == "US"


def test_no_test_question_is_a_near_duplicate_of_a_training_example() -> None:
    """The frozen test split measures understanding, not memory: no training example may repeat
    one of its questions (the failure names rows by number only, never their text). Dev rows
    that do are left out by make eval, which prints how many."""
    from navigator import evaluate

    rows = [r["text"] for r in evaluate.real_question_rows("test")]
    dups = evaluate.near_duplicates(rows, evaluate.training_texts())
    assert not dups, f"test rows {sorted(dups)} repeat training examples: reword those examples"


def test_every_real_question_label_names_an_entry_or_an_intent() -> None:
    """A label that names no entry or intent could never be judged right (the failure names
    rows by split and number only, never their text)."""
    from navigator import evaluate

    domain = yaml.safe_load((training.ROOT / "domain.yml").read_text(encoding="utf-8"))
    known = {str(i) for i in domain["intents"]}
    known |= {f"faq/{entry_id}" for entry_id in knowledge.default_kb().entries}
    bad = [(split, i, label) for split in ("dev", "test")
           for i, row in enumerate(evaluate.real_question_rows(split))
           for key in ("labels", "reviewed_labels") for label in row.get(key, [])
           if label not in known]
    assert not bad, f"unknown labels (split, row, label): {bad}"
