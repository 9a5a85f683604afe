"""The guided conversations' content (knowledge/guides.yml) and its loader: schema, reading
level, regional and audience wording, related entries, the summary and its high-score rule."""

from __future__ import annotations

import copy
import datetime as dt
import re
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import textstat
import yaml

import knowledge
from knowledge import guides
from knowledge.helplines import default_helplines

MAX_GRADE = 8
MAX_MEDIAN_GRADE = 6
ESAS_R_ITEMS = {"pain", "tiredness", "drowsiness", "nausea", "appetite", "breath", "depression",
                "anxiety", "wellbeing"}
PROMPT_GROUPS = {"illness", "treatment", "home", "carers", "future", "money"}
REVIEW_MAX_AGE_DAYS = 2 * 365
# A phone number: three or more digits, maybe split by spaces or dashes ("116 123", "1-800").
PHONE = re.compile(r"(?<![\w.])\+?\d(?:[\d -]*\d){2,}(?![\w.])")
VERDICT = re.compile(r"\b(you|they) (need|qualify for|are eligible for|should (get|have)) "
                     r"(palliative|hospice)|\b(palliative care|hospice) (is|isn't|is not) right\b",
                     re.I)


@pytest.fixture(scope="module")
def g() -> guides.Guides:
    return guides.load()


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(guides.GUIDES_FILE.read_text(encoding="utf-8"))


def _wordings(g: guides.Guides) -> Iterator[tuple[str, str]]:
    """Every prose wording as people read it (help-line numbers filled in)."""
    for where, text in g.texts():
        for key, region, value in text.variants():
            yield f"{where} {key}", guides._fill(value, g.helplines,
                                                 guides.REGIONS[0] if region == "*" else region)


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in the raw YAML, by path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


# ------------------------------------------------------------------------------ the schema


def test_the_bundled_guides_load_and_keep_their_limits(g: guides.Guides) -> None:
    assert 1 <= len(g.check.questions) <= guides.MAX_CHECK_QUESTIONS
    assert {q.id for q in g.check.questions} == {"illness", "symptoms", "stress", "hospital",
                                                 "carer", "decisions"}
    for q in g.check.questions:
        assert 2 <= len(q.options) <= 5, q.id
        assert any(o.signal for o in q.options), q.id
    for q in guides.check_questions():
        assert q.choices[-1] == guides.Choice(guides.SKIP, "Skip"), q.id
    p = g.prepare
    assert {k.id for k in p.kinds} == {"palliative_first", "pain_clinic", "hospice_assessment",
                                      "gp_visit"}
    assert {s.id for s in p.symptoms if not s.custom} == ESAS_R_ITEMS
    assert [s.id for s in p.symptoms if s.custom] == ["other"]
    assert 6 <= len(p.matters.options) <= 8
    assert {group.id for group in p.groups} == PROMPT_GROUPS
    assert sum(len(group.questions) for group in p.groups) >= guides.MIN_PROMPT_QUESTIONS
    assert p.threshold == 7


def test_every_button_title_fits_a_button_and_an_sms_option(g: guides.Guides) -> None:
    too_long = {f"{where} {key}": value for where, text in g.labels()
                for key, _, value in text.variants() if len(value) > guides.MAX_BUTTON_CHARS}
    assert not too_long


def test_every_guide_and_result_text_has_sources_for_each_region_and_a_review_date(
        g: guides.Guides) -> None:
    today = dt.date.today()
    blocks = {"hospice.eligibility": g.hospice.eligibility,
              "hospice.how_to_ask": g.hospice.how_to_ask,
              "hospice.what_to_say": g.hospice.what_to_say,
              "prepare.high_score": g.prepare.high_score}
    blocks |= {f"check.result.{n}": getattr(g.check, n)
               for n in ("opening", "no_signals", "how_to_ask", "what_to_say")}
    blocks |= {f"check.{q.id}.because": q.because for q in g.check.questions}
    for where, block in blocks.items():
        assert 0 <= (today - block.reviewed).days < REVIEW_MAX_AGE_DAYS, where
        for region in guides.REGIONS:
            assert block.sources_for(region), (where, region)
            assert all(s.url.startswith("https://") for s in block.sources_for(region))
    for guide in (g.check, g.hospice, g.prepare):
        assert 0 <= (today - guide.reviewed).days < REVIEW_MAX_AGE_DAYS, guide.id
    sourced = [g.check.sources, g.prepare.sources, g.prepare.appointments.sources,
               g.prepare.symptom_sources, g.prepare.matters.sources, g.prepare.question_sources,
               g.prepare.medicines.sources, g.prepare.companions.sources]
    assert all(sourced)


def test_every_related_id_is_an_faq_entry(g: guides.Guides, kb: knowledge.KnowledgeBase) -> None:
    related = [*g.check.related.values(), *g.hospice.related.values(),
               *(ids for kind in g.prepare.kinds for ids in kind.related.values())]
    named = {i for ids in related for i in ids}
    assert named and named <= set(kb.entries)


# -------------------------------------------------------------------------- reading level


def test_every_text_is_easy_to_read(g: guides.Guides) -> None:
    grades = {where: textstat.flesch_kincaid_grade(text) for where, text in _wordings(g)}
    assert len(grades) > 100
    too_hard = {k: round(v, 1) for k, v in grades.items() if v > MAX_GRADE}
    assert not too_hard, f"texts above grade {MAX_GRADE}: {too_hard}"
    assert statistics.median(grades.values()) <= MAX_MEDIAN_GRADE


def test_summary_and_results_people_see_are_easy_to_read() -> None:
    for region in guides.REGIONS:
        for audience in guides.AUDIENCES:
            for text in (guides.check_result({"illness": "yes"}, region, audience).text,
                         guides.hospice_result(region, audience).text,
                         guides.high_score_text(region)):
                assert textstat.flesch_kincaid_grade(text) <= MAX_MEDIAN_GRADE, text


# ------------------------------------------------------------ regions, audiences, no verdict


def test_check_questions_have_patient_and_carer_wording(g: guides.Guides) -> None:
    for region in guides.REGIONS:
        patient = guides.check_questions("patient", region)
        carer = guides.check_questions("caregiver", region)
        for p, c in zip(patient, carer, strict=True):
            assert p.text != c.text, p.id
            assert re.search(r"\b(they|them|their|the person you care for)\b", c.text), c.id
    assert guides.check_questions(None) == guides.check_questions("patient")
    hospital = {r: guides.check_questions("patient", r)[3].text for r in guides.REGIONS}
    assert "A&E" in hospital["UK"] and "ER" in hospital["US"]


def test_uk_results_name_the_gp_and_us_results_the_doctor_and_a_referral() -> None:
    answers = {"illness": "yes", "symptoms": "sometimes", "carer": "yes"}
    for audience in guides.AUDIENCES:
        us = guides.check_result(answers, "US", audience)
        uk = guides.check_result(answers, "UK", audience)
        assert "GP" in uk.text and re.search(r"\brefer", uk.text)
        assert "referral" in us.text and "doctor" in us.text
        assert not re.search(r"\bGPs?\b|\bNHS\b", us.text)
        assert us.text != uk.text
        assert all(s.applies_to("US") for s in us.sources)
        assert all(s.applies_to("UK") for s in uk.sources)
        hospice_us = guides.hospice_result("US", audience).text
        hospice_uk = guides.hospice_result("UK", audience).text
        assert "Medicare" in hospice_us and "6 months" in hospice_us and "comfort" in hospice_us
        assert "GP" not in hospice_us and "evaluation" in hospice_us
        assert "GP" in hospice_uk and "district nurse" in hospice_uk and "free" in hospice_uk
        assert "Medicare" not in hospice_uk and "assessment" in hospice_uk


def test_the_check_result_says_why_for_each_yes_and_is_never_a_verdict(g: guides.Guides) -> None:
    everything = {q.id: next(o.id for o in q.options if o.signal) for q in g.check.questions}
    full = guides.check_result(everything, "US", "patient")
    assert full.text.count("\n- ") == len(g.check.questions)
    for q in g.check.questions:
        assert q.because.text.get("en", "US", "patient") in full.text
    assert full.related == g.check.related["US"]
    one = guides.check_result({"hospital": "two_plus", "illness": "no"}, "UK", "caregiver")
    assert one.text.count("\n- ") == 1 and "more than once" in one.text
    for answers in ({}, {q.id: guides.SKIP for q in g.check.questions},
                    {"illness": "no", "symptoms": "not_really", "unknown": "yes"},
                    {"symptoms": "no such option"}):
        result = guides.check_result(answers, "US", "patient")
        assert "\n- " not in result.text
        assert result.text.startswith(g.check.no_signals.text.get("en", "US", "patient"))
    for region in guides.REGIONS:
        for audience in guides.AUDIENCES:
            for answers in ({}, everything):
                text = guides.check_result(answers, region, audience).text
                assert "not a test result" in text and not VERDICT.search(text)


def test_the_medicines_step_says_no_advice_and_no_interaction_checks() -> None:
    said = guides.prepare_prompt("no_advice")
    assert "can't give advice" in said and "mix" in said and "pharmacist" in said
    for audience in guides.AUDIENCES:
        assert "names" in guides.prepare_prompt("medicines", audience).lower()


def test_symptoms_have_plain_labels_and_both_anchors() -> None:
    for region in guides.REGIONS:
        for audience in guides.AUDIENCES:
            for s in guides.symptoms(audience, region):
                assert s.label and s.low and s.high and s.ask.endswith(("?", "skip."))
    nausea = {r: next(s for s in guides.symptoms("patient", r) if s.id == "nausea").label
              for r in guides.REGIONS}
    assert nausea == {"US": "Nausea", "UK": "Feeling sick"}
    carer_pain = next(s for s in guides.symptoms("caregiver") if s.id == "pain")
    assert "their" in carer_pain.ask
    assert "not a diagnosis" in guides.prepare_prompt("symptoms", "caregiver")


def test_the_high_score_rule_takes_its_numbers_from_the_helplines() -> None:
    numbers = default_helplines().numbers
    us, uk = guides.high_score_text("US"), guides.high_score_text("UK")
    assert numbers["US"]["emergency"]["label"] in us and numbers["US"]["advice_line"]["label"] in us
    assert numbers["UK"]["emergency"]["label"] in uk and numbers["UK"]["advice_line"]["label"] in uk
    assert "999" not in us and "911" not in uk and "GP" in uk and "GP" not in us
    assert "{" not in us + uk


def test_no_phone_number_is_written_in_the_guides_file(raw: dict[str, Any]) -> None:
    numbers = default_helplines().numbers
    written = {str(entry[k]) for by_kind in numbers.values() for entry in by_kind.values()
               for k in ("label", "short", "tel") if entry.get(k)}
    found = []
    for path, value in _strings(raw):
        if ".sources[" in path:  # a citation's title and address, not words people read
            continue
        found += [f"{path}: {m.group(0)}" for m in PHONE.finditer(value)]
        found += [f"{path}: {label}" for label in written
                  if re.search(r"\d", label) and label in value]
    assert found == [], "write help lines as {placeholders} from helplines.yml"


# ------------------------------------------------------------------------------ the summary


SAMPLE = guides.PrepState(
    appointment="pain_clinic", scores={"pain": 8, "tiredness": "3", "other": 5},
    other_symptom="Constipation", matters=["home", "Seeing my grandson  graduate"],
    questions=["ease_symptoms", "how_long", "Can I still drive?"],
    medicines=["Oxycodone", " Senna "], companions=["family"], audience="patient")


def test_the_summary_holds_what_was_given_and_flags_high_scores() -> None:
    for region in guides.REGIONS:
        text = guides.summary_text(SAMPLE, region)
        for expected in ("Pain: 8 of 10", "Tiredness: 3 of 10", "Constipation: 5 of 10",
                         "Being at home", "Seeing my grandson graduate",
                         "What can be done to ease the pain or other symptoms?",
                         "Can I still drive?", "- Oxycodone", "- Senna", "Family member",
                         "Pain clinic", "Notes:", "not medical advice"):
            assert expected in text, (region, expected)
        assert text.count("tell the team soon") == 1  # only pain is 7 or more
        assert guides.high_score_text(region) in text
        assert text.index("Symptom scores") < text.index(guides.high_score_text(region)) < \
            text.index("What matters")


@pytest.mark.parametrize(("score", "flagged"), [(0, False), (6, False), (7, True), (10, True)])
def test_the_high_score_rule_appears_only_for_7_or_more(score: int, flagged: bool) -> None:
    for region in guides.REGIONS:
        text = guides.summary_text({"scores": {"nausea": score}}, region)
        assert (guides.high_score_text(region) in text) is flagged
        assert ("tell the team soon" in text) is flagged


def test_an_empty_summary_still_has_every_heading_and_the_notes_line(g: guides.Guides) -> None:
    text = guides.summary_text({}, "UK")
    for heading in g.prepare.headings.values():
        assert heading.get() in text
    assert g.prepare.summary["notes_line"].get() in text
    assert guides.high_score_text("UK") not in text


def test_the_summary_refuses_scores_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="0 to 10"):
        guides.summary_text({"scores": {"pain": 11}}, "US")
    with pytest.raises(ValueError, match="unknown symptom"):
        guides.summary_text({"scores": {"itch": 3}}, "US")


@pytest.mark.parametrize(("typed", "score"), [("7", 7), (" 10 ", 10), ("0", 0), (4, 4),
                                              ("8/10", 8), ("3 out of 10", 3), ("11", None),
                                              ("-1", None), ("seven", None), (True, None),
                                              (None, None), ("", None)])
def test_scores_are_read_from_what_people_type(typed: object, score: int | None) -> None:
    assert guides.parse_score(typed) == score


# ----------------------------------------------------------------- the loader's complaints


def _broken(tmp_path: Path, raw: dict[str, Any], change) -> Path:
    data = copy.deepcopy(raw)
    change(data)
    path = tmp_path / "guides.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _set_related(d: dict) -> None:
    d["check"]["result"]["related"]["UK"] = ["no_such_entry"]


def _drop_uk(d: dict) -> None:
    del d["hospice"]["eligibility"]["text"]["en"]["UK"]


def _same_everywhere(d: dict) -> None:
    d["check"]["result"]["how_to_ask"]["text"]["en"] = "Ask your doctor."


def _long_title(d: dict) -> None:
    d["check"]["questions"][0]["options"][0]["title"]["en"] = "Yes, I think so, very much"


def _few_prompts(d: dict) -> None:
    for group in d["prepare"]["questions"]["groups"]:
        del group["questions"][1:]


def _many_questions(d: dict) -> None:
    d["check"]["questions"].append(copy.deepcopy(d["check"]["questions"][0]))


def _phone(d: dict) -> None:
    d["prepare"]["high_score"]["text"]["en"]["UK"] = "Call {samaritans} now."


def _no_carer_wording(d: dict) -> None:
    d["check"]["questions"][1]["ask"]["en"] = "Do symptoms make your days hard?"


def _six_options(d: dict) -> None:
    d["check"]["questions"][0]["options"] += [{"id": f"x{i}", "title": {"en": "X"}}
                                              for i in range(3)]


def _unknown_key(d: dict) -> None:
    d["prepare"]["summary"]["colour"] = {"en": "blue"}


@pytest.mark.parametrize(("change", "complaint"), [
    (_set_related, r"unknown related entry ids \['no_such_entry'\]"),
    (_drop_uk, r"missing region variant \['UK'\]"),
    (_same_everywhere, "needs both US and UK wording"),
    (_long_title, "at most 20"),
    (_few_prompts, "prompt questions, at least 20"),
    (_many_questions, "7 questions, at most 6"),
    (_phone, "unknown placeholders"),
    (_no_carer_wording, "patient and caregiver wording"),
    (_six_options, "6 options, give 2 to 5"),
    (_unknown_key, "unknown keys"),
])
def test_the_loader_names_what_is_wrong(tmp_path: Path, raw: dict[str, Any], change,
                                        complaint: str) -> None:
    with pytest.raises(guides.GuideError, match=complaint):
        guides.load(_broken(tmp_path, raw, change))


def test_an_unreadable_file_is_a_guide_error(tmp_path: Path) -> None:
    bad = tmp_path / "guides.yml"
    bad.write_text("check: {title: [unclosed", encoding="utf-8")
    with pytest.raises(guides.GuideError, match="cannot be read"):
        guides.load(bad)
    with pytest.raises(knowledge.KnowledgeError):
        guides.load(tmp_path / "missing.yml")
