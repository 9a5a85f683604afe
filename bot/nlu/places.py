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
must never fall into the FAQ fallback.
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

from providers.geo import STATE_BY_NAME, US_STATES, gazetteer
from providers.services import synonyms

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
FILLER = re.compile(
    r"\b(i'?m|i am|we'?re|we are|live|living|based|in|near|around|the|my|our|zip|code|"
    r"postcode|post code|is|it'?s|area|please|thanks|ok|okay|city|town|of)\b|[^\w\s]",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _matchers() -> tuple[spacy.language.Language, PhraseMatcher, PhraseMatcher]:
    nlp = spacy.blank("en")
    places = PhraseMatcher(nlp.vocab, attr="LOWER")
    names = sorted(gazetteer().place_names())
    places.add("PLACE", list(nlp.tokenizer.pipe(names)))
    services = PhraseMatcher(nlp.vocab, attr="LOWER")
    for phrase, code in synonyms().items():
        services.add(code, [nlp.make_doc(phrase)])
    return nlp, places, services


def _entity(name: str, start: int, end: int, value: Any, text: str) -> dict[str, Any]:
    return {"entity": name, "start": start, "end": end, "value": value, "confidence_entity": 1.0,
            "extractor": "PlaceAndServiceExtractor", "text": text}


def extract(text: str) -> list[dict[str, Any]]:
    """Entities found in `text` (pure function: the component and tests call it)."""
    text = text[:2000]
    found: list[dict[str, Any]] = []
    nlp, place_matcher, service_matcher = _matchers()
    doc = nlp.make_doc(text)

    seen_services = set()
    for match_id, start, end in sorted(service_matcher(doc), key=lambda m: (m[1], -m[2])):
        code = nlp.vocab.strings[match_id]
        span = doc[start:end]
        if code not in seen_services and not any(
            e["start"] <= span.start_char < e["end"] for e in found
        ):
            seen_services.add(code)
            found.append(_entity("service", span.start_char, span.end_char, code, span.text))

    location = _location(text, doc, place_matcher)
    if location:
        found.append(location)

    m = ORDINAL.search(text)
    if m:
        word = (m.group(1) or m.group(2)).lower()
        value = ORDINALS.get(word) or NUMBER_WORDS.get(word) or int(word)
        found.append(_entity("ordinal", m.start(), m.end(), value, m.group(0)))
    return sorted(found, key=lambda e: e["start"])


def _location(text: str, doc, matcher: PhraseMatcher) -> dict[str, Any] | None:  # noqa: ANN001
    for pattern in (POSTCODE, ZIP):
        m = pattern.search(text)
        if m:
            return _entity("location", m.start(), m.end(), m.group(0).upper(), m.group(0))
    spans = spacy.util.filter_spans(matcher(doc, as_spans=True))
    whole = FILLER.sub(" ", text).strip().lower()
    for span in spans:
        name = span.text.lower()
        start, end = span.start, span.end
        state = _state_after(doc, end)
        if state:
            end = state
        previous = doc[start - 1].lower_ if start > 0 else ""
        is_whole = whole == name or whole == doc[span.start:end].text.lower()
        is_state_only = name in STATE_BY_NAME and state is None and name not in (
            "new york", "washington")
        if is_state_only and not is_whole and previous not in LOCATION_CUES:
            continue
        if state or previous in LOCATION_CUES or is_whole:
            chunk = doc[start:end]
            return _entity("location", chunk.start_char, chunk.end_char, chunk.text, chunk.text)
    m = OUTCODE.fullmatch(whole.upper()) if whole else None
    if m and gazetteer().outcode(whole.upper()):
        start = text.upper().find(whole.upper())
        return _entity("location", start, start + len(whole), whole.upper(), whole)
    return None


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
            entities = extract(text)
            if not entities:
                continue
            message.set(ENTITIES, [*(message.get(ENTITIES) or []), *entities],
                        add_to_output=True)
            location = next((e for e in entities if e["entity"] == "location"), None)
            if self.place_only_intent and location and not FILLER.sub(
                " ", text[:location["start"]] + text[location["end"]:]
            ).strip():
                intent = {INTENT_NAME_KEY: self.place_only_intent, "confidence": 1.0}
                message.set(INTENT, intent, add_to_output=True)
                ranking = [r for r in message.get(INTENT_RANKING_KEY) or []
                           if r.get(INTENT_NAME_KEY) != self.place_only_intent]
                message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)
        return messages
