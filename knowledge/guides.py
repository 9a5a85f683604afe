"""The guided conversations' content (knowledge/guides.yml): loading, checking, and the small
functions the flows call.

Two guides (issue 16): the "Is palliative care right for us?" check with its hospice path, and
"Help me get ready for the appointment" with its plain-text summary. A text is keyed by
language, then is one string for everyone, or a mapping by region (``US`` and ``UK``) and/or by
audience (``patient`` and ``caregiver``), one inside the other. Help-line numbers are never
written in the file: a text names them as ``{emergency}`` or ``{advice_line}`` (keys of
knowledge/helplines.yml) and they are filled in for the reader's region. No Rasa import.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from knowledge.helplines import Helplines, default_helplines
from knowledge.loader import MAX_RELATED, MAX_TITLE_CHARS, KnowledgeError, default_kb
from knowledge.regions import REGIONS

GUIDES_FILE = Path(__file__).parent / "guides.yml"
AUDIENCES = ("patient", "caregiver")
DEFAULT_AUDIENCE = "patient"  # the wording used until the person says who they are
MAX_BUTTON_CHARS = 20  # a button title, also a numbered SMS option
MAX_CHECK_QUESTIONS = 6
OPTIONS_PER_QUESTION = (2, 5)
MATTERS_OPTIONS = (6, 8)
MIN_PROMPT_QUESTIONS = 20
SKIP = "skip"  # the answer id of a skipped step (the skip button's payload)
SCORE_RANGE = range(0, 11)
LANGUAGE = "en"  # every text must have it; other languages fall back to it

Node = str | dict[str, "Node"]  # a string, or variants by region or audience
_DIMENSIONS = {"region": frozenset(REGIONS), "audience": frozenset(AUDIENCES)}


class GuideError(KnowledgeError):
    """guides.yml is missing or breaks the schema (the message names the place in the file)."""


# ---------------------------------------------------------------------------- the data types


@dataclass(frozen=True)
class Text:
    """A text in every language, each one string or varying by region and/or audience."""

    by_language: Mapping[str, Node]
    where: str = ""

    def get(self, language: str = LANGUAGE, region: str = REGIONS[0],
            audience: str | None = None) -> str:
        """The wording for this reader (English if the language is missing)."""
        node = self.by_language.get(language) or self.by_language[LANGUAGE]
        while isinstance(node, dict):
            key = region if set(node) == _DIMENSIONS["region"] else audience or DEFAULT_AUDIENCE
            if key not in node:
                raise ValueError(f"{self.where}: no wording for {key!r}")
            node = node[key]
        return node

    @property
    def varies_by(self) -> frozenset[str]:
        """Which of ``region`` and ``audience`` this text changes with."""
        found: set[str] = set()
        for node in self.by_language.values():
            found |= _dimensions(node)
        return frozenset(found)

    def variants(self) -> Iterator[tuple[str, str, str]]:
        """Every wording: its key ("en/US/caregiver", "*" where the text does not vary), its
        region ("*" if any) and its text."""
        for language, node in self.by_language.items():
            for region, audience, text in _leaves(node, "*", "*"):
                yield f"{language}/{region}/{audience}", region, text


@dataclass(frozen=True)
class Source:
    """A public page that supports a text."""

    title: str
    url: str
    regions: tuple[str, ...] | None = None

    def applies_to(self, region: str) -> bool:
        """Whether the source is shown to a reader in ``region``."""
        return self.regions is None or region in self.regions


@dataclass(frozen=True)
class Block:
    """A text people read as an answer, with its sources and review date."""

    text: Text
    sources: tuple[Source, ...]
    reviewed: dt.date

    def sources_for(self, region: str) -> tuple[Source, ...]:
        """The sources for ``region`` (all of them if none is specific to it)."""
        return tuple(s for s in self.sources if s.applies_to(region)) or self.sources


@dataclass(frozen=True)
class Option:
    """A button: its payload id and title; ``signal``: a "yes"-type answer in the check."""

    id: str
    title: Text
    signal: bool = False


@dataclass(frozen=True)
class CheckQuestion:
    """One question of the check, and the result's sentence when a signal option is chosen."""

    id: str
    ask: Text
    options: tuple[Option, ...]
    because: Block


@dataclass(frozen=True)
class Check:
    """The "Is palliative care right for us?" check."""

    id: str
    reviewed: dt.date
    title: Text
    button: Text
    intro: Text
    sources: tuple[Source, ...]
    questions: tuple[CheckQuestion, ...]
    opening: Block
    no_signals: Block
    how_to_ask: Block
    what_to_say: Block
    related: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Hospice:
    """The short hospice path: eligibility, how to ask for an assessment, what to say."""

    id: str
    reviewed: dt.date
    title: Text
    button: Text
    eligibility: Block
    how_to_ask: Block
    what_to_say: Block
    related: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Appointment:
    """A kind of appointment and what it is for."""

    id: str
    title: Text
    about: Text
    related: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Symptom:
    """A symptom scored 0 to 10; ``custom``: the one the person names."""

    id: str
    label: Text
    ask: Text
    low: Text
    high: Text
    custom: bool = False


@dataclass(frozen=True)
class PromptQuestion:
    """A question from the prompt list."""

    id: str
    text: Text


@dataclass(frozen=True)
class PromptGroup:
    """A group of the question prompt list."""

    id: str
    title: Text
    questions: tuple[PromptQuestion, ...]


@dataclass(frozen=True)
class Step:
    """A step of the preparation guide: its prompt, options and sources."""

    ask: Text
    options: tuple[Option, ...] = ()
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True)
class Prepare:
    """The "Help me get ready for the appointment" guide."""

    id: str
    reviewed: dt.date
    title: Text
    button: Text
    intro: Text
    sources: tuple[Source, ...]
    appointments: Step
    kinds: tuple[Appointment, ...]
    symptoms_intro: Text
    symptoms: tuple[Symptom, ...]
    symptom_sources: tuple[Source, ...]
    matters: Step
    questions_intro: Text
    groups: tuple[PromptGroup, ...]
    question_sources: tuple[Source, ...]
    medicines: Step
    no_advice: Text
    companions: Step
    summary: Mapping[str, Text]
    headings: Mapping[str, Text]
    threshold: int
    high_score: Block


@dataclass(frozen=True)
class Guides:
    """Everything in guides.yml, checked."""

    reviewed: dt.date
    controls: Mapping[str, Text]
    check: Check
    hospice: Hospice
    prepare: Prepare
    helplines: Helplines = field(repr=False, default_factory=default_helplines)

    def say(self, text: Text, language: str, region: str, audience: str | None = None) -> str:
        """``text`` for this reader, with help-line numbers filled in for ``region``."""
        return _fill(text.get(language, region, audience), self.helplines, region)

    def texts(self) -> Iterator[tuple[str, Text]]:
        """Every text people read as prose (not button titles), by its place in the file."""
        c, h, p = self.check, self.hospice, self.prepare
        yield "check.intro", c.intro
        for q in c.questions:
            yield f"check.questions.{q.id}.ask", q.ask
            yield f"check.questions.{q.id}.because", q.because.text
        for name in ("opening", "no_signals", "how_to_ask", "what_to_say"):
            yield f"check.result.{name}", getattr(c, name).text
        for name in ("eligibility", "how_to_ask", "what_to_say"):
            yield f"hospice.{name}", getattr(h, name).text
        yield "prepare.intro", p.intro
        yield "prepare.appointments.ask", p.appointments.ask
        for kind in p.kinds:
            yield f"prepare.appointments.{kind.id}.about", kind.about
        yield "prepare.symptoms.intro", p.symptoms_intro
        for s in p.symptoms:
            yield f"prepare.symptoms.{s.id}.ask", s.ask
        yield "prepare.matters.ask", p.matters.ask
        yield "prepare.questions.intro", p.questions_intro
        for group in p.groups:
            for q in group.questions:
                yield f"prepare.questions.{group.id}.{q.id}", q.text
        yield "prepare.medicines.ask", p.medicines.ask
        yield "prepare.medicines.no_advice", p.no_advice
        yield "prepare.companions.ask", p.companions.ask
        yield "prepare.summary.footer", p.summary["footer"]
        yield "prepare.high_score", p.high_score.text

    def labels(self) -> Iterator[tuple[str, Text]]:
        """Every button title (at most MAX_BUTTON_CHARS characters), by its place."""
        for name, text in self.controls.items():
            yield f"controls.{name}", text
        yield "check.button", self.check.button
        yield "hospice.button", self.hospice.button
        yield "prepare.button", self.prepare.button
        for q in self.check.questions:
            for o in q.options:
                yield f"check.questions.{q.id}.{o.id}", o.title
        p = self.prepare
        for kind in p.kinds:
            yield f"prepare.appointments.{kind.id}", kind.title
        for s in p.symptoms:
            yield f"prepare.symptoms.{s.id}.label", s.label
        for step in ("matters", "companions"):
            for o in getattr(p, step).options:
                yield f"prepare.{step}.{o.id}", o.title
        for group in p.groups:
            yield f"prepare.questions.{group.id}", group.title


# ------------------------------------------------------------------------- what flows call


@dataclass(frozen=True)
class Choice:
    """A button as shown: payload id and title."""

    id: str
    title: str


@dataclass(frozen=True)
class Question:
    """A question as asked: its text and buttons (the last one is always "skip")."""

    id: str
    text: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class Result:
    """A result as shown: the text, the related FAQ ids (buttons) and the sources."""

    text: str
    related: tuple[str, ...]
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class SymptomStep:
    """A symptom as asked: label, question and the plain meanings of 0 and 10."""

    id: str
    label: str
    ask: str
    low: str
    high: str
    custom: bool


@dataclass(frozen=True)
class PromptList:
    """A group of the prompt list as shown: its title and questions (id, text)."""

    id: str
    title: str
    questions: tuple[Choice, ...]


@dataclass
class PrepState:
    """What was gathered for the appointment summary. ``scores`` maps symptom ids to 0-10;
    ``other_symptom`` names the custom one. In ``matters``, ``questions`` and ``companions`` an
    option or question id stands for its wording; anything else is the person's own words."""

    appointment: str | None = None
    scores: Mapping[str, int | str] = field(default_factory=dict)
    other_symptom: str | None = None
    matters: Sequence[str] = ()
    questions: Sequence[str] = ()
    medicines: Sequence[str] = ()
    companions: Sequence[str] = ()
    audience: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PrepState:
        """Build from slot values (missing or None values are empty)."""
        return cls(appointment=data.get("appointment"), scores=data.get("scores") or {},
                   other_symptom=data.get("other_symptom"),
                   matters=data.get("matters") or (), questions=data.get("questions") or (),
                   medicines=data.get("medicines") or (),
                   companions=data.get("companions") or (), audience=data.get("audience"))


def control(name: str, language: str = LANGUAGE, guides: Guides | None = None) -> str:
    """A shared button title: ``skip``, ``done``, ``stop`` or ``own_words``."""
    return (guides or default_guides()).controls[name].get(language)


def check_questions(audience: str | None = None, region: str = REGIONS[0],
                    language: str = LANGUAGE, guides: Guides | None = None) -> list[Question]:
    """The check's questions in order, worded for the audience, each ending with "skip"."""
    g = guides or default_guides()
    skip = Choice(SKIP, g.controls["skip"].get(language))
    return [Question(q.id, g.say(q.ask, language, region, audience),
                     tuple(Choice(o.id, o.title.get(language, region, audience))
                           for o in q.options) + (skip,))
            for q in g.check.questions]


def check_result(answers: Mapping[str, str | None], region: str, audience: str | None = None,
                 language: str = LANGUAGE, guides: Guides | None = None) -> Result:
    """The check's result: never a verdict. One sentence per "yes"-type answer on why
    palliative care may help now, then how to ask for it and what to say, for ``region``.

    ``answers`` maps question ids to option ids; a missing, ``None``, ``"skip"`` or unknown
    answer counts as skipped, and unknown question ids are ignored.
    """
    g = guides or default_guides()
    c = g.check
    chosen = [q for q in c.questions
              if any(o.id == answers.get(q.id) and o.signal for o in q.options)]
    blocks = [c.opening, *(q.because for q in chosen)] if chosen else [c.no_signals]
    parts = [g.say(blocks[0].text, language, region, audience)]
    parts += [f"- {g.say(b.text, language, region, audience)}" for b in blocks[1:]]
    text = "\n".join(parts)
    tail = [c.how_to_ask, c.what_to_say]
    text += "".join(f"\n\n{g.say(b.text, language, region, audience)}" for b in tail)
    return Result(text, c.related[region], _sources([*blocks, *tail], region))


def hospice_result(region: str, audience: str | None = None, language: str = LANGUAGE,
                   guides: Guides | None = None) -> Result:
    """The hospice path: eligibility in ``region``, how to ask for an assessment, what to
    say."""
    g = guides or default_guides()
    h = g.hospice
    blocks = [h.eligibility, h.how_to_ask, h.what_to_say]
    text = "\n\n".join(g.say(b.text, language, region, audience) for b in blocks)
    return Result(text, h.related[region], _sources(blocks, region))


def prepare_prompt(step: str, audience: str | None = None, region: str = REGIONS[0],
                   language: str = LANGUAGE, guides: Guides | None = None) -> str:
    """The words for a step of the preparation guide: ``intro``, ``appointments``,
    ``symptoms``, ``matters``, ``questions``, ``medicines``, ``no_advice`` or
    ``companions``."""
    g = guides or default_guides()
    p = g.prepare
    texts = {"intro": p.intro, "appointments": p.appointments.ask,
             "symptoms": p.symptoms_intro, "matters": p.matters.ask,
             "questions": p.questions_intro, "medicines": p.medicines.ask,
             "no_advice": p.no_advice, "companions": p.companions.ask}
    if step not in texts:
        raise ValueError(f"unknown step {step!r}: one of {sorted(texts)}")
    return g.say(texts[step], language, region, audience)


def appointment_kinds(region: str = REGIONS[0], language: str = LANGUAGE,
                      guides: Guides | None = None) -> list[Choice]:
    """The kinds of appointment, as buttons."""
    g = guides or default_guides()
    return [Choice(k.id, k.title.get(language, region)) for k in g.prepare.kinds]


def appointment_about(kind: str, region: str = REGIONS[0], language: str = LANGUAGE,
                      guides: Guides | None = None) -> Result:
    """What a kind of appointment is for, with its related FAQ ids."""
    g = guides or default_guides()
    found = {k.id: k for k in g.prepare.kinds}
    if kind not in found:
        raise ValueError(f"unknown appointment kind {kind!r}: one of {sorted(found)}")
    k = found[kind]
    return Result(g.say(k.about, language, region), k.related[region],
                  _sources([Block(k.about, g.prepare.appointments.sources, g.reviewed)], region))


def symptoms(audience: str | None = None, region: str = REGIONS[0], language: str = LANGUAGE,
             guides: Guides | None = None) -> list[SymptomStep]:
    """The symptoms to score, in order, worded for the audience."""
    g = guides or default_guides()
    return [SymptomStep(s.id, s.label.get(language, region, audience),
                        g.say(s.ask, language, region, audience),
                        s.low.get(language, region, audience),
                        s.high.get(language, region, audience), s.custom)
            for s in g.prepare.symptoms]


def options(step: str, audience: str | None = None, region: str = REGIONS[0],
            language: str = LANGUAGE, guides: Guides | None = None) -> list[Choice]:
    """The buttons of a step: ``matters`` or ``companions``."""
    g = guides or default_guides()
    if step not in ("matters", "companions"):
        raise ValueError(f"unknown step {step!r}: matters or companions")
    return [Choice(o.id, o.title.get(language, region, audience))
            for o in getattr(g.prepare, step).options]


def prompt_groups(region: str = REGIONS[0], language: str = LANGUAGE,
                  guides: Guides | None = None) -> list[PromptList]:
    """The question prompt list, by group."""
    g = guides or default_guides()
    return [PromptList(group.id, group.title.get(language, region),
                       tuple(Choice(q.id, g.say(q.text, language, region))
                             for q in group.questions))
            for group in g.prepare.groups]


def parse_score(text: object) -> int | None:
    """A 0-10 score from what was typed or sent ("7", " 10 ", 3), else None."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text if text in SCORE_RANGE else None
    match = re.fullmatch(r"\s*(\d{1,2})\s*(?:/\s*10|out of 10)?\s*\.?\s*", str(text or ""))
    return int(match.group(1)) if match and int(match.group(1)) in SCORE_RANGE else None


def high_score_text(region: str, language: str = LANGUAGE,
                    guides: Guides | None = None) -> str:
    """The rule for a score of 7 or more: tell the team soon; how to reach them today."""
    g = guides or default_guides()
    return g.say(g.prepare.high_score.text, language, region)


def summary_text(state: PrepState | Mapping[str, Any], region: str, language: str = LANGUAGE,
                 guides: Guides | None = None) -> str:
    """The plain-text summary: visit, symptom scores (high ones flagged, with the rule text),
    what matters, questions, medicines, who is coming, and a line for notes.

    Raises ValueError for an unknown symptom id or a score outside 0-10 (check answers with
    :func:`parse_score` first).
    """
    g = guides or default_guides()
    p = g.prepare
    if not isinstance(state, PrepState):
        state = PrepState.from_mapping(state)

    def said(key: str) -> str:
        return p.summary[key].get(language, region)

    def heading(key: str) -> str:
        return p.headings[key].get(language, region)

    def section(key: str, items: list[str]) -> str:
        lines = [f"- {item}" for item in items] or [f"- {said('none')}"]
        return "\n".join([heading(key), *lines])

    known = {s.id: s for s in p.symptoms}
    unknown = sorted(set(state.scores) - set(known))
    if unknown:
        raise ValueError(f"unknown symptom ids in scores: {unknown}")
    score_lines, high = [], False
    for s in p.symptoms:
        if s.id not in state.scores:
            continue
        score = parse_score(state.scores[s.id])
        if score is None:
            raise ValueError(f"score for {s.id!r} must be 0 to 10, got {state.scores[s.id]!r}")
        label = _clean(state.other_symptom) if s.custom and state.other_symptom else \
            s.label.get(language, region)
        line = f"{label}: {said('score').format(score=score)}"
        if score >= p.threshold:
            high = True
            line += f" ({said('flag')})"
        score_lines.append(line)

    kinds = {k.id: k.title.get(language, region) for k in p.kinds}
    visit = kinds.get(state.appointment or "", _clean(state.appointment) or said("none"))
    matters = _words(state.matters, {o.id: o.title.get(language, region, state.audience)
                                     for o in p.matters.options})
    asked = _words(state.questions, {q.id: g.say(q.text, language, region)
                                     for group in p.groups for q in group.questions})
    coming = _words(state.companions, {o.id: o.title.get(language, region, state.audience)
                                       for o in p.companions.options})
    parts = [said("title"), f"{heading('appointment')}: {visit}",
             section("symptoms", score_lines)]
    if high:
        parts.append(high_score_text(region, language, g))
    parts += [section("matters", matters), section("questions", asked),
              section("medicines", _words(state.medicines, {})),
              section("companions", coming), said("notes_line"), said("footer")]
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------- loading


def load(path: Path = GUIDES_FILE, faq_ids: set[str] | None = None,
         helplines: Helplines | None = None) -> Guides:
    """Load and check guides.yml. ``faq_ids``: the FAQ ids related entries may name (default:
    the bundled knowledge base); ``helplines``: where {placeholders} come from."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GuideError(f"{path.name}: cannot be read: {exc}") from exc
    helplines = helplines or default_helplines()
    parser = _Parser(path.name, set(default_kb().entries) if faq_ids is None else faq_ids,
                     helplines)
    return parser.guides(raw, helplines)


@lru_cache(maxsize=1)
def default_guides() -> Guides:
    """The bundled guides, loaded and checked once per process."""
    return load()


# ------------------------------------------------------------------------------- internals


def _dimensions(node: Node) -> set[str]:
    if isinstance(node, str):
        return set()
    dim = "region" if set(node) == _DIMENSIONS["region"] else "audience"
    return {dim}.union(*(_dimensions(child) for child in node.values()))


def _leaves(node: Node, region: str, audience: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(node, str):
        yield region, audience, node
        return
    is_region = set(node) == _DIMENSIONS["region"]
    for key, child in node.items():
        yield from _leaves(child, key if is_region else region, audience if is_region else key)


def _fill(text: str, helplines: Helplines, region: str) -> str:
    names = {f for _, f, _, _ in string.Formatter().parse(text) if f}
    if not names:
        return text
    labels = {name: entry["label"] for name, entry in helplines.numbers[region].items()}
    return text.format(**labels)


def _sources(blocks: Sequence[Block], region: str) -> tuple[Source, ...]:
    seen: dict[str, Source] = {}
    for block in blocks:
        for source in block.sources_for(region):
            seen.setdefault(source.url, source)
    return tuple(seen.values())


def _clean(text: object) -> str:
    return " ".join(str(text or "").split())


def _words(items: Sequence[str], by_id: Mapping[str, str]) -> list[str]:
    if isinstance(items, str):
        items = [items]
    out = []
    for item in items:
        cleaned = _clean(item)
        if cleaned:
            out.append(by_id.get(cleaned, cleaned))
    return out


_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_BLOCK_KEYS = {"text", "sources", "reviewed"}


class _Parser:
    """Turns the YAML into the dataclasses, with errors that say where the problem is."""

    def __init__(self, name: str, faq_ids: set[str], helplines: Helplines) -> None:
        self.name = name
        self.faq_ids = faq_ids
        self.placeholders = set.intersection(*(set(n) for n in helplines.numbers.values()))

    def fail(self, where: str, problem: str) -> GuideError:
        return GuideError(f"{self.name}: {where}: {problem}")

    def mapping(self, raw: object, where: str, required: set[str],
                optional: set[str] = frozenset()) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(where, "expected a mapping")
        missing, extra = required - set(raw), set(raw) - required - optional
        if missing:
            raise self.fail(where, f"missing {sorted(missing)}")
        if extra:
            raise self.fail(where, f"unknown keys {sorted(extra)}")
        return raw

    def items(self, raw: object, where: str) -> list[Any]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(where, "expected a non-empty list")
        return raw

    def ident(self, raw: object, where: str) -> str:
        if not isinstance(raw, str) or not _ID.match(raw):
            raise self.fail(where, f"id {raw!r} must be snake_case")
        return raw

    def date(self, raw: object, where: str) -> dt.date:
        if not isinstance(raw, dt.date):
            raise self.fail(where, f"reviewed must be a date (YYYY-MM-DD), got {raw!r}")
        return raw

    def node(self, raw: object, where: str, used: frozenset[str]) -> Node:
        if isinstance(raw, str):
            if not raw.strip():
                raise self.fail(where, "empty text")
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(raw) if f is not None}
            except ValueError as exc:
                raise self.fail(where, f"bad braces: {exc}") from exc
            unknown = fields - self.placeholders
            if unknown:
                raise self.fail(where, f"unknown placeholders {sorted(unknown)}: only help-line "
                                       f"keys from helplines.yml {sorted(self.placeholders)}")
            return " ".join(raw.split())
        if not isinstance(raw, dict) or not raw:
            raise self.fail(where, "a text must be a string or a mapping")
        keys = set(raw)
        for dim, allowed in _DIMENSIONS.items():
            if keys & allowed:
                if keys != allowed:
                    missing, extra = sorted(allowed - keys), sorted(keys - allowed)
                    raise self.fail(where, f"missing {dim} variant {missing}" if missing else
                                    f"unknown keys {extra} beside the {dim} variants")
                if dim in used:
                    raise self.fail(where, f"varies by {dim} twice")
                return {k: self.node(v, f"{where}.{k}", used | {dim}) for k, v in raw.items()}
        raise self.fail(where, f"keys {sorted(keys)}: give both of {REGIONS} or both of "
                               f"{AUDIENCES}")

    def text(self, raw: object, where: str, must_vary: frozenset[str] = frozenset(),
             max_chars: int | None = None) -> Text:
        if not isinstance(raw, dict) or LANGUAGE not in raw:
            raise self.fail(where, f"needs an {LANGUAGE!r} text")
        text = Text({lang: self.node(v, f"{where}.{lang}", frozenset()) for lang, v in
                     raw.items()}, f"{self.name}: {where}")
        lacking = must_vary - text.varies_by
        if lacking:
            words = {"region": f"both {REGIONS[0]} and {REGIONS[1]} wording",
                     "audience": "both patient and caregiver wording"}
            raise self.fail(where, "needs " + " and ".join(words[d] for d in sorted(lacking)))
        if max_chars:
            for key, _, value in text.variants():
                if len(value) > max_chars:
                    raise self.fail(where, f"title {value!r} ({key}) is {len(value)} "
                                           f"characters, at most {max_chars}")
        return text

    def label(self, raw: object, where: str) -> Text:
        return self.text(raw, where, max_chars=MAX_BUTTON_CHARS)

    def sources(self, raw: object, where: str) -> tuple[Source, ...]:
        out = []
        for i, item in enumerate(self.items(raw, f"{where} (sources)")):
            here = f"{where}[{i}]"
            item = self.mapping(item, here, {"title", "url"}, {"regions"})
            title, url = item["title"], item["url"]
            if not isinstance(title, str) or len(title.strip()) < 3:
                raise self.fail(here, "a source needs a title")
            if not isinstance(url, str) or not re.match(r"^https://[\w.-]+\.[a-z]{2,}(/\S*)?$",
                                                        url):
                raise self.fail(here, f"url {url!r} must be an https address")
            regions = item.get("regions")
            if regions is not None and (not regions or set(regions) - set(REGIONS)):
                raise self.fail(here, f"regions must be a non-empty subset of {REGIONS}")
            out.append(Source(title.strip(), url, tuple(regions) if regions else None))
        return tuple(out)

    def block(self, raw: object, where: str, must_vary: frozenset[str] = frozenset()) -> Block:
        raw = self.mapping(raw, where, _BLOCK_KEYS)
        return Block(self.text(raw["text"], f"{where}.text", must_vary),
                     self.sources(raw["sources"], f"{where}.sources"),
                     self.date(raw["reviewed"], where))

    def related(self, raw: object, where: str) -> dict[str, tuple[str, ...]]:
        by_region = raw if isinstance(raw, dict) else {r: raw for r in REGIONS}
        by_region = self.mapping(by_region, where, set(REGIONS))
        out = {}
        for region, ids in by_region.items():
            if not isinstance(ids, list) or len(ids) > MAX_RELATED:
                raise self.fail(f"{where}.{region}", f"a list of at most {MAX_RELATED} FAQ ids")
            unknown = [i for i in ids if i not in self.faq_ids]
            if unknown:
                raise self.fail(f"{where}.{region}", f"unknown related entry ids {unknown} "
                                                     "(not in knowledge/faq/)")
            out[region] = tuple(ids)
        return out

    def options(self, raw: object, where: str, count: tuple[int, int] | None = None,
                signals: bool = False) -> tuple[Option, ...]:
        items = self.items(raw, where)
        if count and not count[0] <= len(items) <= count[1]:
            raise self.fail(where, f"{len(items)} options, give {count[0]} to {count[1]}")
        out = []
        for i, item in enumerate(items):
            item = self.mapping(item, f"{where}[{i}]", {"id", "title"},
                                {"signal"} if signals else set())
            oid = self.ident(item["id"], f"{where}[{i}]")
            if oid == SKIP:
                raise self.fail(f"{where}.{oid}", "'skip' is added by the loader, not an option")
            out.append(Option(oid, self.label(item["title"], f"{where}.{oid}.title"),
                              bool(item.get("signal", False))))
        self.unique([o.id for o in out], where)
        return tuple(out)

    def unique(self, ids: list[str], where: str) -> None:
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise self.fail(where, f"duplicate ids {dupes}")

    def guides(self, raw: object, helplines: Helplines) -> Guides:
        raw = self.mapping(raw, "top level", {"reviewed", "controls", "check", "hospice",
                                              "prepare"})
        controls = self.mapping(raw["controls"], "controls", {"skip", "done", "stop",
                                                               "own_words"})
        return Guides(
            reviewed=self.date(raw["reviewed"], "top level"),
            controls={k: self.label(v, f"controls.{k}") for k, v in controls.items()},
            check=self.check(raw["check"]), hospice=self.hospice(raw["hospice"]),
            prepare=self.prepare(raw["prepare"]), helplines=helplines)

    def guide_head(self, raw: dict[str, Any], where: str) -> dict[str, Any]:
        return {"id": self.ident(raw["id"], where),
                "reviewed": self.date(raw["reviewed"], where),
                "title": self.text(raw["title"], f"{where}.title", max_chars=MAX_TITLE_CHARS),
                "button": self.label(raw["button"], f"{where}.button")}

    def check(self, raw: object) -> Check:
        head = {"id", "reviewed", "title", "button"}
        raw = self.mapping(raw, "check", head | {"intro", "sources", "questions", "result"})
        questions = self.items(raw["questions"], "check.questions")
        if len(questions) > MAX_CHECK_QUESTIONS:
            raise self.fail("check.questions", f"{len(questions)} questions, at most "
                                               f"{MAX_CHECK_QUESTIONS}")
        parsed = []
        for i, q in enumerate(questions):
            q = self.mapping(q, f"check.questions[{i}]", {"id", "ask", "options", "because"})
            where = f"check.questions[{i}] ({q.get('id')})"
            opts = self.options(q["options"], f"{where}.options", OPTIONS_PER_QUESTION, True)
            if not any(o.signal for o in opts):
                raise self.fail(where, "at least one option needs signal: true")
            parsed.append(CheckQuestion(
                self.ident(q["id"], where),
                self.text(q["ask"], f"{where}.ask", frozenset({"audience"})), opts,
                self.block(q["because"], f"{where}.because", frozenset({"audience"}))))
        self.unique([q.id for q in parsed], "check.questions")
        result = self.mapping(raw["result"], "check.result",
                              {"opening", "no_signals", "how_to_ask", "what_to_say", "related"})
        regional = frozenset({"region"})
        return Check(
            **self.guide_head(raw, "check"),
            intro=self.text(raw["intro"], "check.intro", frozenset({"audience"})),
            sources=self.sources(raw["sources"], "check.sources"), questions=tuple(parsed),
            opening=self.block(result["opening"], "check.result.opening"),
            no_signals=self.block(result["no_signals"], "check.result.no_signals"),
            how_to_ask=self.block(result["how_to_ask"], "check.result.how_to_ask", regional),
            what_to_say=self.block(result["what_to_say"], "check.result.what_to_say",
                                   regional),
            related=self.related(result["related"], "check.result.related"))

    def hospice(self, raw: object) -> Hospice:
        parts = {"eligibility", "how_to_ask", "what_to_say"}
        raw = self.mapping(raw, "hospice", {"id", "reviewed", "title", "button", "related"}
                           | parts)
        regional = frozenset({"region"})
        return Hospice(**self.guide_head(raw, "hospice"),
                       **{p: self.block(raw[p], f"hospice.{p}", regional) for p in parts},
                       related=self.related(raw["related"], "hospice.related"))

    def step(self, raw: object, where: str, extra: set[str] = frozenset(),
             count: tuple[int, int] | None = None) -> tuple[Step, dict[str, Any]]:
        raw = self.mapping(raw, where, {"ask"}, {"options", "sources"} | extra)
        opts = self.options(raw["options"], f"{where}.options", count) if "options" in raw \
            else ()
        sources = self.sources(raw["sources"], f"{where}.sources") if "sources" in raw else ()
        return Step(self.text(raw["ask"], f"{where}.ask"), opts, sources), raw

    def prepare(self, raw: object) -> Prepare:
        raw = self.mapping(raw, "prepare", {
            "id", "reviewed", "title", "button", "intro", "sources", "appointments",
            "symptoms", "matters", "questions", "medicines", "companions", "summary",
            "high_score"})
        appointments, appt_raw = self.step(raw["appointments"], "prepare.appointments",
                                           {"kinds"})
        kinds = []
        for i, k in enumerate(self.items(appt_raw.get("kinds"), "prepare.appointments.kinds")):
            where = f"prepare.appointments.kinds[{i}]"
            k = self.mapping(k, where, {"id", "title", "about", "related"})
            kinds.append(Appointment(self.ident(k["id"], where),
                                     self.label(k["title"], f"{where}.title"),
                                     self.text(k["about"], f"{where}.about"),
                                     self.related(k["related"], f"{where}.related")))
        self.unique([k.id for k in kinds], "prepare.appointments.kinds")
        symptoms, sym_sources = self.symptoms(raw["symptoms"])
        matters, _ = self.step(raw["matters"], "prepare.matters", count=MATTERS_OPTIONS)
        q_intro, groups, q_sources = self.prompts(raw["questions"])
        medicines, med_raw = self.step(raw["medicines"], "prepare.medicines", {"no_advice"})
        companions, _ = self.step(raw["companions"], "prepare.companions", count=(2, 8))
        summary, headings = self.summary(raw["summary"])
        high = self.mapping(raw["high_score"], "prepare.high_score",
                            {"threshold"} | _BLOCK_KEYS)
        threshold = high.pop("threshold")
        if not isinstance(threshold, int) or threshold not in SCORE_RANGE:
            raise self.fail("prepare.high_score.threshold", "a whole number from 0 to 10")
        symptoms_raw = raw["symptoms"]
        return Prepare(
            **self.guide_head(raw, "prepare"),
            intro=self.text(raw["intro"], "prepare.intro", frozenset({"audience"})),
            sources=self.sources(raw["sources"], "prepare.sources"),
            appointments=appointments, kinds=tuple(kinds),
            symptoms_intro=self.text(symptoms_raw["intro"], "prepare.symptoms.intro",
                                     frozenset({"audience"})),
            symptoms=symptoms, symptom_sources=sym_sources, matters=matters,
            questions_intro=q_intro, groups=groups, question_sources=q_sources,
            medicines=medicines,
            no_advice=self.text(med_raw.get("no_advice"), "prepare.medicines.no_advice"),
            companions=companions, summary=summary, headings=headings, threshold=threshold,
            high_score=self.block(high, "prepare.high_score", frozenset({"region"})))

    def symptoms(self, raw: object) -> tuple[tuple[Symptom, ...], tuple[Source, ...]]:
        raw = self.mapping(raw, "prepare.symptoms", {"intro", "items", "sources"})
        out = []
        for i, s in enumerate(self.items(raw["items"], "prepare.symptoms.items")):
            where = f"prepare.symptoms.items[{i}] ({s.get('id') if isinstance(s, dict) else i})"
            s = self.mapping(s, where, {"id", "label", "ask", "low", "high"}, {"custom"})
            out.append(Symptom(self.ident(s["id"], where), self.label(s["label"], f"{where}.label"),
                               self.text(s["ask"], f"{where}.ask", frozenset({"audience"})),
                               self.text(s["low"], f"{where}.low"),
                               self.text(s["high"], f"{where}.high"), bool(s.get("custom"))))
        self.unique([s.id for s in out], "prepare.symptoms.items")
        if sum(s.custom for s in out) > 1:
            raise self.fail("prepare.symptoms.items", "at most one custom symptom")
        return tuple(out), self.sources(raw["sources"], "prepare.symptoms.sources")

    def prompts(self, raw: object) -> tuple[Text, tuple[PromptGroup, ...], tuple[Source, ...]]:
        raw = self.mapping(raw, "prepare.questions", {"intro", "groups", "sources"})
        groups = []
        for i, g in enumerate(self.items(raw["groups"], "prepare.questions.groups")):
            where = f"prepare.questions.groups[{i}]"
            g = self.mapping(g, where, {"id", "title", "questions"})
            qs = []
            for j, q in enumerate(self.items(g["questions"], f"{where}.questions")):
                q = self.mapping(q, f"{where}.questions[{j}]", {"id", "text"})
                qid = self.ident(q["id"], f"{where}.questions[{j}]")
                qs.append(PromptQuestion(qid, self.text(q["text"], f"{where}.{qid}")))
            groups.append(PromptGroup(self.ident(g["id"], where),
                                      self.label(g["title"], f"{where}.title"), tuple(qs)))
        self.unique([g.id for g in groups], "prepare.questions.groups")
        ids = [q.id for g in groups for q in g.questions]
        self.unique(ids, "prepare.questions")
        if len(ids) < MIN_PROMPT_QUESTIONS:
            raise self.fail("prepare.questions", f"{len(ids)} prompt questions, at least "
                                                 f"{MIN_PROMPT_QUESTIONS}")
        return (self.text(raw["intro"], "prepare.questions.intro"), tuple(groups),
                self.sources(raw["sources"], "prepare.questions.sources"))

    def summary(self, raw: object) -> tuple[dict[str, Text], dict[str, Text]]:
        keys = {"title", "headings", "none", "score", "flag", "notes_line", "footer"}
        raw = self.mapping(raw, "prepare.summary", keys)
        headings = self.mapping(raw["headings"], "prepare.summary.headings", {
            "appointment", "symptoms", "matters", "questions", "medicines", "companions",
            "notes"})
        self.placeholders.add("score")  # the one field a summary line fills itself
        try:
            summary = {k: self.text(raw[k], f"prepare.summary.{k}") for k in keys - {"headings"}}
        finally:
            self.placeholders.discard("score")
        if "{score}" not in summary["score"].get():
            raise self.fail("prepare.summary.score", "must contain {score}")
        return summary, {k: self.text(v, f"prepare.summary.headings.{k}")
                         for k, v in headings.items()}
