"""Deterministic crisis detection: suicide or self-harm, medical emergency, overdose, abuse.

A model's guess must never decide these. :class:`CrisisDetector` matches the rule patterns in
``knowledge/safety_patterns.yml`` with spaCy's ``Matcher`` (a blank English tokenizer, no
pretrained model) over normalised text. It sets aside matches that are negated ("I'm not
suicidal"), that sit inside an excluded phrase ("assisted suicide", "wants to die at home") or
an idiom ("I'd kill for a coffee"), that only quote a term being asked about ("what does 'end
of life' mean?"), or (for emergencies) that the message shows are over ("he had a seizure last
year"): these clear the message. It leaves to the model the matches that are only mentioned
("we lost him to suicide"), asked about in a hypothetical ("what should I do if he stops
breathing?") or told as history in their clause or sentence ("I tried to take my life years
ago"), unless the same sentence says it is happening now ("tonight", "right now").
:class:`SafetyOverride` is the Rasa component: placed last in the NLU pipeline, it replaces
whatever intent was predicted by ``crisis_<class>``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import spacy
import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from spacy.matcher import Matcher
from spacy.tokens import Doc

from bot.nlu.faq_classifier import CRISIS_SENTENCE
from knowledge.helplines import CRISIS_KIND_FOR_INTENT, CRISIS_ORDER, INTENT_FOR_KIND
from knowledge.helplines import SAFETY_PATTERNS_FILE as PATTERNS_FILE
from knowledge.region_cues import word_counts

# The reply for the first class found wins the intent; every class found is passed on.
PRIORITY = CRISIS_ORDER
INTENT_FOR = INTENT_FOR_KIND
NEGATIONS = {"not", "no", "never", "nobody", "neither", "nor", "without"}
NEGATION_WINDOW = 3
# A hypothetical cue ("what if", "should I ... if") covers a match this many words after it, in
# its clause: an unpunctuated message ("they said ring back if worse i have since found ... i
# can not wake him") runs on long after the question it asked.
HYPOTHETICAL_REACH = 12
SENTENCE_ENDS = {".", "?", "!", ";", "...", "\u2026"}
CLAUSE_ENDS = SENTENCE_ENDS | {",", "but", "however", "though", "although", "--", "\u2014"}
DEFINITION_CUES = re.compile(r"\b(mean|means|meaning|definition|define|stand for|called)\b")
QUOTED = re.compile(r"\"[^\"]+\"|'[^']{3,}'")
# Scare quotes around a word or three ("he'll make sure I 'fall'", "she 'looks after' him"):
# dropped before matching, unless the message asks what a quoted term means.
SCARE_QUOTED = re.compile(r"(?<![\w'\"])(['\"])(\w+(?: \w+){0,2})\1(?![\w'\"])")

_CONTRACTIONS = [
    (r"\b(can)'?t\b", r"\1 not"), (r"\bcannot\b", "can not"), (r"\bwon'?t\b", "will not"),
    (r"\bshan'?t\b", "shall not"), (r"\b(\w+)n't\b", r"\1 not"),
    (r"\b(do|does|did|is|are|was|were|have|has|had|would|could|should|must|need)nt\b",
     r"\1 not"),
    (r"\bi'?m\b", "i am"), (r"\bi'?ve\b", "i have"), (r"\bwhat'?s\b", "what is"),
    (r"\b(he|she|it|that)'s\b", r"\1 is"), (r"\b(you|we|they)'re\b", r"\1 are"),
    (r"\bwanna\b", "want to"), (r"\bgonna\b", "going to"),
]


def normalise(text: str) -> str:
    """Lower-case, straighten quotes, expand contractions, squeeze spaces."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    for pattern, repl in _CONTRACTIONS:
        text = re.sub(pattern, repl, text)
    return " ".join(text.split())


# An English word this common is never a misspelling of a pattern word ("talking" is not
# "taking", "changing" is not "hanging"); rarer words ("sucidal", "bleding") can be.
ENGLISH_MIN_COUNT = 100


@lru_cache(maxsize=1)
def english_words(min_count: int = ENGLISH_MIN_COUNT) -> frozenset[str]:
    """Common English words, from pyspellchecker's word-frequency list (shipped in the
    package, nothing downloaded)."""
    return frozenset(w for w, count in word_counts().items()
                     if count >= min_count and w.isalpha())


class Speller:
    """Correct misspellings of the detector's own longer words ("sucidal" -> "suicidal"),
    never a common English word into one of them."""

    MIN_LENGTH = 6
    CUTOFF = 0.88  # "cuting" -> "cutting", but "putting" stays "putting"

    def __init__(self, vocabulary: set[str], dictionary: frozenset[str] = frozenset()) -> None:
        self.vocabulary = sorted(w for w in vocabulary if len(w) >= self.MIN_LENGTH)
        self.by_length: dict[int, list[str]] = {}
        for w in self.vocabulary:
            self.by_length.setdefault(len(w), []).append(w)
        self.known = set(vocabulary) | dictionary
        self.correct = lru_cache(maxsize=50_000)(self._correct)

    def _correct(self, word: str) -> str:
        if len(word) < self.MIN_LENGTH or word in self.known or not word.isalpha():
            return word
        # difflib's ratio is 2*matches/(len(a)+len(b)) <= 2*min/(a+b): only words of a near
        # length can reach the cutoff, so only those are compared (same result, faster).
        n = len(word)
        near = [w for length, ws in self.by_length.items()
                if 2 * min(n, length) / (n + length) >= self.CUTOFF for w in ws]
        close = difflib.get_close_matches(word, near, n=1, cutoff=self.CUTOFF)
        return close[0] if close else word

    def __call__(self, text: str) -> str:
        return re.sub(r"[a-z]+", lambda m: self.correct(m.group(0)), text)


def _token_specs(pattern: str, lists: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Compile one pattern of the mini-syntax (see safety_patterns.yml) to Matcher tokens."""
    specs: list[dict[str, Any]] = []
    for token in pattern.split():
        if token == "*":
            specs += [{"OP": "?"}] * 4
            continue
        optional = token.endswith("?") and len(token) > 1
        words: list[str] = []
        for alt in token.rstrip("?").split("|"):
            words += lists[alt[1:]] if alt.startswith("@") else [alt]
        spec: dict[str, Any] = {"LOWER": {"IN": words}}
        if optional:
            spec["OP"] = "?"
        specs.append(spec)
    return specs


@dataclass(frozen=True)
class Hit:
    """One pattern match that counts (``rule``: ``<kind>-patterns-<i>`` in the YAML)."""

    kind: str
    text: str
    start: int
    end: int
    rule: str = ""


class Analysis(NamedTuple):
    """What the rules made of a message."""

    hits: list[Hit]  # the matches that count
    cleared: int  # matches set aside as no crisis (negated, excluded, idiom, quoted, over)
    strained: bool  # no match, but everyday exasperation ("at my wit's end")
    deferred: int = 0  # matches left to the model (a mention, a hypothetical, history)
    weak: tuple[Hit, ...] = ()  # matches of ambiguous words: they count if the model agrees
    told_over: bool = False  # the message tells an event as over, explained or expected


# Roles of a class in safety_patterns.yml (see the file's header for what each does).
ROLES = ("patterns", "weak", "exclude", "mention", "past", "present", "present_sentence",
         "urgent", "past_clause", "past_sentence")


class CrisisDetector:
    """Find crisis classes in a message with rule patterns (no model, no network)."""

    def __init__(self, patterns_file: Path = PATTERNS_FILE) -> None:
        spec = yaml.safe_load(patterns_file.read_text(encoding="utf-8"))
        lists = {k: [str(w) for w in v] for k, v in spec["lists"].items()}
        self.nlp = spacy.blank("en")
        self.matchers: dict[str, dict[str, Matcher]] = {}
        # For each matcher, the words each pattern cannot match without (one set per
        # required token): a matcher is run only when some pattern could match at all.
        self.needs: dict[tuple[str, str], list[list[frozenset[str]]]] = {}
        words: set[str] = set()
        hypothetical = spec.get("hypothetical") or {}
        self.hypothetical_kinds = set(hypothetical.get("kinds") or [])
        groups = {kind: {role: rules.get(role) for role in ROLES}
                  for kind, rules in spec["classes"].items()}
        groups["_idioms"] = {"patterns": spec.get("idioms"), "exclude": spec.get("not_idioms")}
        groups["_strain"] = {"patterns": spec.get("strain")}
        groups["_reported"] = {"patterns": spec.get("reported")}
        outcome = spec.get("outcome") or {}
        groups["_outcome"] = {"patterns": outcome.get("over"), "present": outcome.get("ongoing")}
        groups["_hypothetical"] = {"patterns": hypothetical.get("cues"),
                                   "exclude": hypothetical.get("not")}
        for kind, roles in groups.items():
            self.matchers[kind] = {}
            for role, patterns in roles.items():
                if not patterns:
                    continue
                matcher = Matcher(self.nlp.vocab)
                needs = []
                for i, pattern in enumerate(patterns):
                    specs = _token_specs(pattern, lists)
                    matcher.add(f"{kind}-{role}-{i}", [specs])
                    needs.append([frozenset(t["LOWER"]["IN"]) for t in specs
                                  if "LOWER" in t and t.get("OP") != "?"])
                    # every role's words: an excluded word ("collapse") must not be
                    # "corrected" into a pattern word ("collapsed")
                    words.update(w for t in specs for w in t.get("LOWER", {}).get("IN", []))
                self.matchers[kind][role] = matcher
                self.needs[(kind, role)] = needs
        self.speller = Speller(words, english_words())

    def _could_match(self, kind: str, role: str, words: set[str]) -> bool:
        return any(all(need & words for need in needs) for needs in self.needs[(kind, role)])

    def hits(self, text: str) -> list[Hit]:
        """Every match that counts, in the order of PRIORITY."""
        return self.analyse(text)[0]

    def _spans(self, kind: str, role: str, doc: Doc, words: set[str]) -> list[tuple[int, int]]:
        """Where a role's phrases occur (empty if the class has no such role)."""
        matcher = self.matchers.get(kind, {}).get(role)
        if matcher is None or not self._could_match(kind, role, words):
            return []
        return [(s, e) for _, s, e in matcher(doc)]

    def analyse(self, text: str) -> Analysis:
        """The matches that count; how many were set aside as clearly not a crisis (negated,
        excluded, idiomatic, quoted, over; an idiom counts even when nothing matched) and how
        many were left to the model (a mention, a hypothetical, history told in its clause)."""
        clean = self.speller(normalise(text))
        asks_meaning = bool(DEFINITION_CUES.search(clean))
        if not asks_meaning:
            clean = SCARE_QUOTED.sub(r"\2", clean)
        doc = self.nlp(clean)
        quoted = [(m.start(), m.end()) for m in QUOTED.finditer(clean)]
        found: list[Hit] = []
        weak: list[Hit] = []
        cleared = deferred = 0
        words = {t.lower_ for t in doc}
        sentence, clause = _segments(doc, SENTENCE_ENDS), _segments(doc, CLAUSE_ENDS)
        not_idioms = self._spans("_idioms", "exclude", doc, words)
        idioms = [(s, e) for s, e in self._spans("_idioms", "patterns", doc, words)
                  if not _overlaps(s, e, not_idioms)]
        reported = {sentence[s] for s, _ in self._spans("_reported", "patterns", doc, words)}
        not_cues = self._spans("_hypothetical", "exclude", doc, words)
        cues = [e for s, e in self._spans("_hypothetical", "patterns", doc, words)
                if not any(ns < e and s < ne for ns, ne in not_cues)]
        for kind in PRIORITY:
            roles = self.matchers.get(kind) or {}
            tiers = [role for role in ("patterns", "weak")
                     if role in roles and self._could_match(kind, role, words)]
            if not tiers:
                continue
            matches = [(m, s, e, role) for role in tiers for m, s, e in roles[role](doc)]
            urgent = {sentence[s] for s, _ in self._spans(kind, "urgent", doc, words)}
            anywhere = urgent | {sentence[s] for s, _ in self._spans(kind, "present", doc, words)}
            now = anywhere | {sentence[s] for s, _ in
                              self._spans(kind, "present_sentence", doc, words)}
            over_now = not anywhere and any(  # "not actively dying" does not say it is expected
                not _negated(doc, s, sentence) for s, _ in self._spans(kind, "past", doc, words))
            excluded = self._spans(kind, "exclude", doc, words)
            mentioned = self._spans(kind, "mention", doc, words)
            over = {clause[s] for s, _ in self._spans(kind, "past_clause", doc, words)}
            settled = {sentence[s] for s, _ in self._spans(kind, "past_sentence", doc, words)}
            asked = cues if kind in self.hypothetical_kinds else []
            for match_id, start, end, role in matches:
                span = doc[start:end]
                here = sentence[start]
                told_as_over = over_now and here not in now
                if role == "weak" and told_as_over:
                    deferred += 1  # an ambiguous word in a message told as over: the model decides
                    continue
                if (
                    told_as_over
                    or _overlaps(start, end, idioms)
                    or _negated(doc, start, sentence)
                    or (asks_meaning and any(
                        qs <= span.start_char and span.end_char <= qe for qs, qe in quoted
                    ))
                    or (here not in urgent and _overlaps(start, end, excluded))
                ):
                    cleared += 1
                elif here not in urgent and (
                        _overlaps(start, end, mentioned) or here in reported or (
                        here not in now and (clause[start] in over or here in settled or any(
                            e <= start < e + HYPOTHETICAL_REACH and clause[e - 1] == clause[start]
                            for e in asked)))):
                    deferred += 1
                else:
                    hit = Hit(kind, span.text, start, end, self.nlp.vocab.strings[match_id])
                    (found if role == "patterns" or here in urgent else weak).append(hit)
        if idioms and not found:
            cleared += len(idioms)
        strained = not found and bool(self._spans("_strain", "patterns", doc, words))
        told_over = (not found and bool(self._spans("_outcome", "patterns", doc, words))
                     and not self._spans("_outcome", "present", doc, words))
        return Analysis(found, cleared, strained, deferred, tuple(weak), told_over)

    def classes(self, text: str) -> list[str]:
        """The crisis classes found, most urgent first (empty if none)."""
        seen: list[str] = []
        for hit in self.hits(text):
            if hit.kind not in seen:
                seen.append(hit.kind)
        return seen


def _negated(doc: Doc, start: int, sentence: list[int]) -> bool:
    """A negation within NEGATION_WINDOW words before ``start``, in its sentence (a phrase that
    itself starts with the negation, "not breathing", is not negated)."""
    return doc[start].lower_ not in NEGATIONS and any(
        t.lower_ in NEGATIONS and sentence[t.i] == sentence[start]
        for t in doc[max(0, start - NEGATION_WINDOW):start])


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in spans)


def _segments(doc: Doc, ends: set[str]) -> list[int]:
    """The segment (sentence or clause) each token is in: a new one starts after an end."""
    ids, current = [], 0
    for token in doc:
        if token.lower_ in ends:
            current += 1  # the end token belongs to neither side
            ids.append(-current)
            continue
        ids.append(current)
    return ids


@lru_cache(maxsize=1)
def default_detector() -> CrisisDetector:
    """The detector over the bundled patterns, built once per process."""
    return CrisisDetector()


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class SafetyOverride(GraphComponent):
    """Last in the pipeline: a crisis found by the rules overrides any predicted intent."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The patterns live in knowledge/safety_patterns.yml; thresholds for the model."""
        # The classifier's crisis intents together at least this likely also route to the
        # crisis reply (see README, "Measured", for the recall / false-alarm trade-off);
        # `strain_threshold` when the message's only cue is everyday exasperation ("driving
        # me mad"), chosen on the dev sets (navigator/crisis_dev.py).
        # `sentence_threshold`: the same for the most crisis-like sentence of a long message
        # (a crisis told in passing inside a question about something else).
        # `weak_threshold`: how sure the model must be when the rules found only an ambiguous
        # word ("overdose", "unresponsive", "suicide"), which is as often a question about it.
        return {"model_threshold": 0.5, "strain_threshold": 0.75, "sentence_threshold": 0.93,
                "weak_threshold": 0.2}

    @staticmethod
    def required_packages() -> list[str]:
        """Python packages this component imports."""
        return ["spacy", "spellchecker"]

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyOverride:
        """Create the component (nothing to train)."""
        return cls(config)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.detector = default_detector()
        config = {**self.get_default_config(), **(config or {})}
        self.model_threshold = float(config["model_threshold"])
        self.strain_threshold = max(self.model_threshold, float(config["strain_threshold"]))
        self.sentence_threshold = float(config["sentence_threshold"])
        self.weak_threshold = float(config["weak_threshold"])

    def process(self, messages: list[Message]) -> list[Message]:
        """Crisis by the rules: set ``crisis_<class>`` and ``crisis_type`` entities.

        The classifier is a second net for indirect wording: when its crisis intents together
        reach ``model_threshold`` (``strain_threshold`` when the rules read only everyday
        exasperation in it), the message is routed as a crisis too, unless the rules
        explicitly cleared it (a crisis phrase in it negated, excluded, an idiom, quoted or
        over; a mention, a hypothetical or history is left to the model). A match of the
        rules' `weak` tier (an ambiguous word) routes the message when the model gives it
        ``weak_threshold`` of crisis weight (the whole message or its riskiest sentence). So
        is a long message one of whose sentences reaches ``sentence_threshold`` on its own.
        The model's route (and a weak match's) is held back when the rules read the event as
        over, explained or expected, with nothing said to be happening now (``outcome`` in the
        patterns file).
        Any other crisis guess of the classifier is replaced by its next intent.
        """
        for message in messages:
            text = message.get(TEXT) or ""
            if not text or text.startswith("/"):  # button payloads are not user words
                continue
            found = self.detector.analyse(text)
            kinds = list(dict.fromkeys(h.kind for h in found.hits))
            if kinds:
                self._set_crisis(message, kinds)
                continue
            crisis = [i for i in message.get(INTENT_RANKING_KEY) or []
                      if i.get(INTENT_NAME_KEY, "").startswith("crisis_")]
            mass = sum(i["confidence"] for i in crisis)
            threshold = self.strain_threshold if found.strained else self.model_threshold
            sentence = message.get(CRISIS_SENTENCE) or {}
            held = found.cleared or found.told_over  # the model alone may not route it
            if (found.weak and not found.told_over
                    and max(mass, sentence.get("confidence", 0.0)) >= self.weak_threshold):
                self._set_crisis(message, list(dict.fromkeys(h.kind for h in found.weak)))
            elif crisis and mass >= threshold and not held:
                self._set_crisis(message, [CRISIS_KIND_FOR_INTENT[crisis[0][INTENT_NAME_KEY]]])
            elif (sentence.get("confidence", 0.0) >= max(threshold, self.sentence_threshold)
                  and not held):
                self._set_crisis(message, [CRISIS_KIND_FOR_INTENT[sentence["intent"]]])
            elif (message.get(INTENT) or {}).get(INTENT_NAME_KEY, "").startswith("crisis_"):
                self._demote(message)
        return messages

    @staticmethod
    def _set_crisis(message: Message, kinds: list[str]) -> None:
        intent = {INTENT_NAME_KEY: INTENT_FOR[kinds[0]], "confidence": 1.0}
        ranking = [i for i in message.get(INTENT_RANKING_KEY) or []
                   if i.get(INTENT_NAME_KEY) != intent[INTENT_NAME_KEY]]
        message.set(INTENT, intent, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)
        entities = list(message.get(ENTITIES) or [])
        entities += [{"entity": "crisis_type", "value": kind, "extractor": "SafetyOverride",
                      "confidence_entity": 1.0} for kind in kinds]
        message.set(ENTITIES, entities, add_to_output=True)

    @staticmethod
    def _demote(message: Message) -> None:
        ranking = [i for i in message.get(INTENT_RANKING_KEY) or []
                   if not i.get(INTENT_NAME_KEY, "").startswith("crisis_")
                   and i.get(INTENT_NAME_KEY) != "nlu_fallback"]
        if not ranking:
            return
        message.set(INTENT, dict(ranking[0]), add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
