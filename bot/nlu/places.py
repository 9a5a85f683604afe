"""Rule-based entities for the provider search: where (`location`), what (`service`), which one
(`ordinal`).

Places come from the project's own gazetteer (providers/data: US towns and states, UK towns)
through a spaCy PhraseMatcher on a blank English tokenizer, plus patterns for US ZIP codes and
UK postcodes. A town name counts only when it reads as a place: next to a state ("Tulsa, OK"),
after a word like "near" or "in", or as the whole message ("Boise"), so that "hope" or "deal"
inside a sentence is not taken for a town. Services come from the synonyms in
providers/services.py.

When a message is nothing but a place (a bare "60614" or "Leeds"), the component also sets
the intent to `inform_location`: the classifier cannot know a ZIP code, and such a message
must never fall into the FAQ fallback. A message that names a service and a place (or says
"near me") and also asks a question ("how does hospice work? we live in 60614") becomes
`find_provider` too, keeping the FAQ ranking: the search actions answer the question as well
(knowledge.directory.question_in). A hospice for a child is a `childrens_hospice` search.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import spacy
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from spacy.matcher import PhraseMatcher

from knowledge.directory import QUESTION_CONFIDENCE
from knowledge.region_cues import word_counts
from providers.geo import STATE_BY_NAME, UK_WORDS, US_STATES, LocationError, gazetteer
from providers.services import for_child, near_me, synonyms

LOCATION_CUES = {"near", "in", "around", "close", "to", "by", "at", "from", "outside",
                 "nearby", "neer", "within", "of", "for", "about", "live", "lives", "town",
                 "city", "area"}
ZIP = re.compile(r"(?<![\d-])\d{5}(?:-\d{4})?(?![\d-])")
POSTCODE = re.compile(r"\b[A-Za-z]{1,2}\d[A-Za-z\d]?\s*\d[A-Za-z]{2}\b")
OUTCODE = re.compile(r"\b[A-Za-z]{1,2}\d[A-Za-z\d]?\b")
ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
            "4th": 4, "fifth": 5, "5th": 5, "last": -1, "top": 1}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
ORDINAL = re.compile(
    r"\b(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last)\b"
    r"|\b(?:number|no\.?|#|option)\s*(one|two|three|four|five|[1-5])\b",
    re.IGNORECASE,
)
# Town names that are also everyday words: taken as places only when capitalised ("Reading").
COMMON_WORDS = {
    "home", "hope", "mission", "comfort", "welcome", "why", "deal", "march", "street", "wells",
    "bath", "reading", "sale", "ware", "bury", "rest", "care", "health", "life", "love",
    "paradise", "friendship", "harmony", "unity", "liberty", "independence", "mobile",
    "normal", "pleasant", "faith", "grace", "joy", "peace", "eden", "center", "central",
    "midway", "house", "hospital", "nursing", "clinic", "help", "mom", "early", "ideal",
    "fairfield", "enterprise", "energy", "plain", "plains", "ogden", "bliss", "sweet home",
    "social", "chance", "cash", "price", "money", "star", "loyal", "needles", "ranger",
    "young", "brothers", "marriage", "orange", "sunrise", "sunset", "gray", "grey", "rose",
    "bear", "beaver", "eagle", "buffalo", "cool", "hot springs", "royal", "ever", "rush",
    "alert", "level", "plenty", "west", "east", "north", "south", "nan", "gran", "dad",
}
# A one-word town name this common as an English word (pyspellchecker's counts: "tell",
# "call", "send", "only", "wisdom" are all US towns; "Chicago" is 957, "Buffalo" 6,101) is
# also taken as a place only when capitalised: "my mom called me to tell me" names no town.
COMMON_WORD_COUNT = 10_000
# Predicted intents for which a well-known town counts even without "near" or "in".
SEARCH_INTENTS = {"find_provider", "inform_location"}
WELL_KNOWN = 50_000  # population
UNSURE = 0.5  # below this, a message naming a service and a place is taken for a search
FILLER = re.compile(
    r"\b(i'?m|i am|we'?re|we are|live|living|based|in|near|around|the|my|our|zip|code|"
    r"postcode|post code|is|it'?s|area|please|thanks|ok|okay|city|town|of)\b|[^\w\s]",
    re.IGNORECASE,
)


def _spellings(name: str) -> set[str]:
    """A town's name as people type it: 'saint louis' also as 'st louis' and 'st. louis'."""
    out = {name}
    for long, short in (("saint ", "st"), ("fort ", "ft"), ("mount ", "mt")):
        if name.startswith(long):
            rest = name[len(long):]
            # "St." is one token only when capitalised, so keep that spelling too
            out |= {f"{short} {rest}", f"{short}. {rest}", f"{short.title()}. {rest}"}
    return out


@lru_cache(maxsize=1)
def _well_known() -> set[str]:
    gaz = gazetteer()
    names = set()
    for towns in (gaz.us_towns, gaz.uk_towns):
        for name, found in towns.items():
            if max(t.population for t in found) >= WELL_KNOWN:
                names |= _spellings(name)
    return names


@lru_cache(maxsize=1)
def _matchers() -> tuple[spacy.language.Language, PhraseMatcher, PhraseMatcher]:
    nlp = spacy.blank("en")
    places = PhraseMatcher(nlp.vocab, attr="LOWER")
    names = sorted({s for n in gazetteer().place_names() for s in _spellings(n)})
    places.add("PLACE", list(nlp.tokenizer.pipe(names)))
    services = PhraseMatcher(nlp.vocab, attr="LOWER")
    for phrase, code in synonyms().items():
        services.add(code, [nlp.make_doc(phrase)])
    return nlp, places, services


def _entity(name: str, start: int, end: int, value: Any, text: str) -> dict[str, Any]:
    return {"entity": name, "start": start, "end": end, "value": value, "confidence_entity": 1.0,
            "extractor": "PlaceAndServiceExtractor", "text": text}


def extract(text: str, intent: str | None = None) -> list[dict[str, Any]]:
    """Entities found in `text` (pure function: the component and tests call it).

    `intent` is the classifier's guess: for a search, a well-known town counts on its own
    ("hospice chicago").
    """
    text = text[:2000]
    found: list[dict[str, Any]] = []
    nlp, place_matcher, service_matcher = _matchers()
    doc = nlp.make_doc(text)

    seen_services = set()
    child = for_child(text)
    for match_id, start, end in sorted(service_matcher(doc), key=lambda m: (m[1], -m[2])):
        code = nlp.vocab.strings[match_id]
        if code == "hospice" and child:
            code = "childrens_hospice"
        span = doc[start:end]
        if code not in seen_services and not any(
            e["start"] <= span.start_char < e["end"] for e in found
        ):
            seen_services.add(code)
            found.append(_entity("service", span.start_char, span.end_char, code, span.text))

    location = _location(text, doc, place_matcher, intent in SEARCH_INTENTS)
    if location:
        found.append(location)

    m = ORDINAL.search(text)
    if m:
        word = (m.group(1) or m.group(2)).lower()
        value = ORDINALS.get(word) or NUMBER_WORDS.get(word) or int(word)
        found.append(_entity("ordinal", m.start(), m.end(), value, m.group(0)))
    return sorted(found, key=lambda e: e["start"])


def _location(text: str, doc, matcher: PhraseMatcher,  # noqa: ANN001
              searching: bool = False) -> dict[str, Any] | None:
    for pattern in (POSTCODE, ZIP):
        m = pattern.search(text)
        if m:
            return _entity("location", m.start(), m.end(), m.group(0).upper(), m.group(0))
    spans = spacy.util.filter_spans(matcher(doc, as_spans=True))
    whole = _bare(text)
    for span in spans:
        name = span.text.lower()
        start, end = span.start, span.end
        state = _state_after(doc, end)
        if state is None and not span.text[:1].isupper() and (  # "buffalo ny" is a place
                name in COMMON_WORDS or word_counts().get(name, 0) >= COMMON_WORD_COUNT):
            continue
        if state:
            end = state
        previous = doc[start - 1].lower_ if start > 0 else ""
        is_whole = whole in (_bare(span.text), _bare(doc[span.start:end].text))
        if name in UK_WORDS and state is None:  # "in England" is the country, not England, AR
            continue
        is_state_only = name in STATE_BY_NAME and state is None and name not in (
            "new york", "washington")
        if is_state_only and not is_whole and previous not in LOCATION_CUES:
            continue
        known = searching and name in _well_known() and name not in COMMON_WORDS
        if state or previous in LOCATION_CUES or is_whole or known:
            chunk = doc[start:end]
            return _entity("location", chunk.start_char, chunk.end_char, chunk.text, chunk.text)
    m = OUTCODE.fullmatch(whole.upper()) if whole else None
    if m and gazetteer().outcode(whole.upper()):
        start = text.upper().find(whole.upper())
        return _entity("location", start, start + len(whole), whole.upper(), whole)
    for i, token in enumerate(doc):  # "near LS1", "in the M1 area"
        cue = doc[i - 1].lower_ if i else ""
        cue2 = doc[i - 2].lower_ if i > 1 else ""
        if (OUTCODE.fullmatch(token.text) and (cue in LOCATION_CUES or cue2 in LOCATION_CUES)
                and any(c.isdigit() for c in token.text)
                and gazetteer().outcode(token.text.upper())):
            return _entity("location", token.idx, token.idx + len(token), token.text.upper(),
                           token.text)
    return None


def _bare(text: str) -> str:
    """Lower case without filler words or punctuation: 'I'm in St. Louis!' -> 'st louis'."""
    return " ".join(FILLER.sub(" ", text).split()).lower()


def _state_after(doc, end: int) -> int | None:  # noqa: ANN001
    """Token index just past a state written after a town ('Tulsa, OK', 'Columbus Ohio')."""
    j = end + (1 if end < len(doc) and doc[end].text == "," else 0)
    for n in (3, 2, 1):
        if j + n <= len(doc) and doc[j:j + n].text.lower() in STATE_BY_NAME:
            return j + n
    if j < len(doc) and doc[j].text.rstrip(".").upper() in US_STATES and (
        doc[j].text.isupper() or j == len(doc) - 1 or doc[j + 1].is_punct
        or doc[j].text.lower() not in {"in", "me", "or", "hi", "oh", "ok", "de", "la", "pa",
                                       "al", "co", "ma", "id", "il", "mo", "ga", "va"}
    ):
        return j + 1
    return None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class PlaceAndServiceExtractor(GraphComponent):
    """Adds `location`, `service` and `ordinal` entities; a bare place becomes inform_location."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Defaults: set inform_location when a place is the whole message."""
        return {"place_only_intent": "inform_location"}

    def __init__(self, config: dict[str, Any]) -> None:
        self.place_only_intent = config.get("place_only_intent")

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PlaceAndServiceExtractor:
        """Create the component and load the gazetteer (about a second, once)."""
        _matchers()
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        """Add the entities to each message."""
        for message in messages:
            text = message.get(TEXT) or ""
            predicted = message.get(INTENT) or {}
            ranking = message.get(INTENT_RANKING_KEY) or []
            guess = predicted.get(INTENT_NAME_KEY)
            if guess == "nlu_fallback" and len(ranking) > 1:
                guess = ranking[1].get(INTENT_NAME_KEY)
            entities = extract(text, guess)
            if not entities:
                continue
            message.set(ENTITIES, [*(message.get(ENTITIES) or []), *entities],
                        add_to_output=True)
            found = {e["entity"] for e in entities}
            location = next((e for e in entities if e["entity"] == "location"), None)
            if self.place_only_intent and location and not FILLER.sub(
                " ", text[:location["start"]] + text[location["end"]:]
            ).strip():
                self._set_intent(message, self.place_only_intent)
            elif "service" in found and (
                (location and self._unsure(predicted, ranking))
                or self._asks_and_searches(text, guess, location, ranking)
            ):
                self._set_intent(message, "find_provider")
        return messages

    @staticmethod
    def _asks_and_searches(text: str, guess: str | None, location: dict[str, Any] | None,
                           ranking: list[dict[str, Any]]) -> bool:
        """A question that also asks for a search: the classifier's FAQ guess (or its
        fallback) with a place that can be searched, or "near me"."""
        top = (ranking[0] if ranking else {}).get(INTENT_NAME_KEY)
        if top == "find_provider" or guess not in ("faq", "find_provider"):
            return False
        faq = next((float(r.get("confidence") or 0) for r in ranking
                    if r.get(INTENT_NAME_KEY) == "faq"), 0.0)
        if faq < QUESTION_CONFIDENCE:
            return False
        if location is None:
            return near_me(text)
        try:
            gazetteer().resolve(str(location["value"]))
        except LocationError as err:
            return err.reason == "northern_ireland"
        return True

    @staticmethod
    def _unsure(predicted: dict[str, Any], ranking: list[dict[str, Any]]) -> bool:
        """The classifier fell back, or its guess is weak and a search is among the next."""
        name = predicted.get(INTENT_NAME_KEY)
        if name in SEARCH_INTENTS or str(name).startswith("crisis_"):
            return False
        if name == "nlu_fallback":
            return True
        top = [r.get(INTENT_NAME_KEY) for r in ranking[:3]]
        return float(predicted.get("confidence") or 0) < UNSURE and "find_provider" in top

    @staticmethod
    def _set_intent(message: Message, name: str) -> None:
        intent = {INTENT_NAME_KEY: name, "confidence": 1.0}
        message.set(INTENT, intent, add_to_output=True)
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or []
                   if r.get(INTENT_NAME_KEY) != name]
        message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)
