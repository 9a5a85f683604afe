"""Which country a message comes from: places (towns, states, ZIP codes, postcodes) and
telling words ("GP", "A&E", "Medicare"), for the crisis reply's numbers.

The words live in knowledge/region_cues.yml; places come from the directory's offline
gazetteer (providers.geo): any UK postcode district or town and any US state, ZIP or town of
one country only (a town written in lower case counts when it is big and not an everyday
word). Names with a well-known namesake in the other country ("Boston", "Birmingham",
"Perth") or elsewhere ("Dublin") tell nothing alone: a state, county or nation after them
does, or another cue. A place after "live in", "I'm in", "moved to" wins over other places;
otherwise the cues must agree, and when they disagree the answer is None (the reply then
gives both countries' numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from knowledge.regions import AMBIGUOUS_IN_TEXT, REGION_WORDS
from providers.geo import STATE_BY_NAME, UK_POSTCODE, US_STATES, US_ZIP, gazetteer

CUES_FILE = Path(__file__).parent / "region_cues.yml"
# A bare town name counts when it has this many people in one country and at least RATIO
# times as many as any town of that name in the other ("Swansea": Wales, not Massachusetts).
BIG_TOWN = 20_000
RATIO = 3
SMALL_TOWN = 1_000  # after "in"/"near", a town of one country counts from this size
# A lower-case name away from "in", "near", ... counts only if the town is big and the name is
# rarer than this in pyspellchecker's English word counts ("gateshead" 50, "bath" 25,326).
COMMON_WORD = 1_000
RARE_WORD = 100  # a name rarer than this ("aberystwyth") counts from MID_TOWN people
MID_TOWN = 5_000
# An outward code alone ("we're in SW19"): after "postcode", or after "in", "near", ... when
# its area has two letters (one-letter ones read like a vitamin or a vertebra: "low in B12",
# "mets in L4"); a full postcode counts anywhere.
OUTCODE_AFTER = re.compile(
    r"\b(?:post ?code\s+([A-Za-z]{1,2}[0-9][A-Za-z0-9]?)|(?:in|near|at|around)\s+"
    r"([A-Za-z]{2}[0-9][A-Za-z0-9]?))\b(?!\s*[0-9][A-Za-z]{2})", re.IGNORECASE)
# Money and body temperatures tell the country too: "£900", "$4,000"; "a fever of 101" (only
# the US gives temperatures in Fahrenheit).
MONEY = re.compile(r"([£$])\s?\d")
FAHRENHEIT = re.compile(
    r"\b(?:temp|temperature|fever|temps)\s+(?:of\s+|is\s+|was\s+|at\s+|up\s+to\s+)?"
    r"(?:99|10[0-6])(?:\.\d)?(?!\s*(?:\.\d|%|years|yrs|mg|ml))\b", re.IGNORECASE)
# "Cook County", "Orange County": US usage (UK counties read "County Durham"); not "Kent
# County Council".
US_COUNTY = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)? County\b(?! Council)")
ABBREVIATIONS = {"st": "saint", "ste": "saint", "ft": "fort", "mt": "mount"}
AMBIGUOUS_STATES = {"georgia", "washington", "jersey"}  # also a country / a UK town
WORD = re.compile(r"[A-Za-z][A-Za-z'.&-]*")
# Two-letter state codes that are also everyday words in capitals are left out.
STATE_AFTER_COMMA = re.compile(
    r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*,\s*(" + "|".join(
        c for c in US_STATES if c not in {"OK", "IN", "ME", "OR", "HI", "OH", "AS", "ID"})
    + r")\b")


@dataclass(frozen=True)
class Cue:
    """One thing in a message that tells a country."""

    region: str  # "US" or "UK"
    start: int  # character offset
    text: str
    here_now: bool  # preceded by "live in", "I'm in", ... (where the person is now)


@lru_cache(maxsize=1)
def _spec() -> dict:
    data = yaml.safe_load(CUES_FILE.read_text(encoding="utf-8"))
    words = [(region, str(w)) for region, ws in data["words"].items() for w in ws]
    words += [(region, w) for region, ws in REGION_WORDS.items() for w in ws
              if w not in AMBIGUOUS_IN_TEXT]
    words += [("UK", w) for w in data["uk_areas"]] + [("US", w) for w in data["us_areas"]]
    words.sort(key=lambda rw: len(rw[1]), reverse=True)
    pattern = "|".join(re.escape(w) for _, w in words)
    region_of = {w.lower(): r for r, w in words}
    exact = {w: r for r, ws in data["exact"].items() for w in ws}
    return {
        "words": re.compile(rf"(?<![\w&])({pattern})(?![\w&])", re.IGNORECASE),
        "region_of": region_of,
        "exact": re.compile(r"(?<![\w.])(" + "|".join(re.escape(w) for w in exact)
                            + r")(?![\w])"),
        "exact_region": exact,
        "here_now": {w.lower() for w in data["here_now"]},
        "not_places": {w.lower() for w in data["not_places"]},
        "no_region": {w.lower() for w in [*data["ambiguous"], *data["elsewhere"]]},
        "person_before": {w.lower() for w in data["person_before"]},
    }


@lru_cache(maxsize=1)
def word_counts() -> dict[str, int]:
    """How common each English word is (pyspellchecker's list, shipped in the package; loaded
    once per process, also for the crisis rules' spelling corrector)."""
    from spellchecker import SpellChecker

    return dict(SpellChecker(language="en", distance=1).word_frequency.items())


def _here_now(text: str, start: int) -> bool:
    """Whether the words just before ``start`` say the person is there now ("we live in")."""
    before = text[max(0, start - 40):start].lower().replace("\u2019", "'")
    words = re.findall(r"[a-z']+", before)[-4:]
    if "from" in words:  # "moved to Milwaukee from Manchester": Manchester is the past
        words = words[len(words) - words[::-1].index("from"):]
    joined = " ".join(words)
    return any(w in _spec()["here_now"] for w in words) or any(
        p in joined for p in ("i am", "we are", "moved to"))


def _town_cues(text: str) -> list[Cue]:
    """Town names (1-3 words) of one country, or followed by a US state ("Tulsa, OK"):
    capitalised, or in lower case after "in", "near", ... or when big and not a common word."""
    gaz = gazetteer()
    spec = _spec()
    cues: list[Cue] = []
    tokens = list(WORD.finditer(text))
    taken: set[int] = set()
    for n in (3, 2, 1):
        for i in range(len(tokens) - n + 1):
            if taken & set(range(i, i + n)):
                continue
            span = tokens[i:i + n]
            before = text[:span[0].start()].lower()
            after_cue = re.search(r"\b(in|near|at|outside|around|from)\s+$", before)
            capitalised = all(t.group(0)[0].isupper() for t in span)
            previous = re.search(r"([a-z]+)([^a-z]*)$", before[-20:])
            if (previous and previous.group(1) in spec["person_before"] and not after_cue
                    and not re.search(r"[.!?;:\n]", previous.group(2))):
                continue  # "my son Tyler": a person (not "... my daughter. Fresno")
            words = [t.group(0).rstrip(".'").lower() for t in span]
            name = " ".join(words)
            us, uk = gaz.us_towns.get(name, []), gaz.uk_towns.get(name, [])
            if not us and not uk:  # "St. Louis" is "saint louis" in the US list
                name = " ".join(ABBREVIATIONS.get(w, w) if k < len(words) - 1 else w
                                for k, w in enumerate(words))
                us, uk = gaz.us_towns.get(name, []), gaz.uk_towns.get(name, [])
            if not us and not uk:
                continue
            count = max(word_counts().get(w, 0) for w in words)
            biggest = max(t.population for t in us + uk)
            if not (after_cue or capitalised or (count < COMMON_WORD and biggest >= BIG_TOWN)
                    or (count < RARE_WORD and biggest >= MID_TOWN)):
                continue  # a lower-case everyday word ("bath") is not a place
            after = text[span[-1].end():span[-1].end() + 4]
            state = re.match(r",?\s*([A-Z]{2})\b", after)
            big_us = max((t.population for t in us), default=0)
            big_uk = max((t.population for t in uk), default=0)
            region = None
            if state and state.group(1) in US_STATES and any(
                    t.state == state.group(1) for t in us):
                region = "US"
            elif name in spec["not_places"] or name in spec["no_region"]:
                region = None
            elif not (us and uk) and after_cue and max(big_us, big_uk) >= SMALL_TOWN:
                region = "US" if us else "UK"  # "in Carmarthen": a town of one country only
            elif big_uk >= BIG_TOWN and big_uk >= RATIO * big_us:
                region = "UK"
            elif big_us >= BIG_TOWN and big_us >= RATIO * big_uk:
                region = "US"
            elif not (us and uk) and count < RARE_WORD and biggest >= MID_TOWN:
                region = "US" if us else "UK"  # "... aberystwyth": rare, one country only
            if region:
                start = span[0].start()
                cues.append(Cue(region, start, name, _here_now(text, start)))
                taken |= set(range(i, i + n))
    return cues


def cues(text: str) -> list[Cue]:
    """Every country cue in ``text``, in order."""
    spec = _spec()
    found: list[Cue] = []
    for m in spec["words"].finditer(text):
        region = spec["region_of"][m.group(1).lower()]
        found.append(Cue(region, m.start(), m.group(1), _here_now(text, m.start())))
    for m in spec["exact"].finditer(text):
        found.append(Cue(spec["exact_region"][m.group(1)], m.start(), m.group(1),
                         _here_now(text, m.start())))
    lowered = text.lower()
    for name, _code in STATE_BY_NAME.items():
        if name in AMBIGUOUS_STATES:
            continue
        for m in re.finditer(rf"(?<![a-z]){re.escape(name)}(?![a-z])", lowered):
            found.append(Cue("US", m.start(), name, _here_now(text, m.start())))
    for m in STATE_AFTER_COMMA.finditer(text):  # "Orange County, CA"
        found.append(Cue("US", m.start(), m.group(0), _here_now(text, m.start())))
    gaz = gazetteer()
    for m in US_ZIP.finditer(text):
        if gaz.zip(m.group(1)) and text[max(0, m.start() - 1):m.start()] not in ("$", "£"):
            found.append(Cue("US", m.start(), m.group(0), _here_now(text, m.start())))
    for m in UK_POSTCODE.finditer(text.upper()):
        if gaz.outcode(m.group(1)):
            found.append(Cue("UK", m.start(), m.group(0), _here_now(text, m.start())))
    for m in OUTCODE_AFTER.finditer(text):
        group = 1 if m.group(1) else 2
        if gaz.outcode(m.group(group).upper()):
            found.append(Cue("UK", m.start(group), m.group(group),
                             _here_now(text, m.start(group))))
    for m in US_COUNTY.finditer(text):
        found.append(Cue("US", m.start(), m.group(0), _here_now(text, m.start())))
    for m in MONEY.finditer(text):
        found.append(Cue("UK" if m.group(1) == "£" else "US", m.start(), m.group(0), False))
    for m in FAHRENHEIT.finditer(text):
        found.append(Cue("US", m.start(), m.group(0), False))
    others = sorted(found, key=lambda c: c.start)
    # A town right before an area, state or nation is qualified by it ("Lincoln,
    # Lincolnshire", "Perth, Scotland"): the qualifier decides.
    towns = [t for t in _town_cues(text) if not any(
        0 <= o.start - (t.start + len(t.text)) <= 3  # qualified by what follows
        or o.start <= t.start < o.start + len(o.text)  # the same words, already a cue
        for o in others)]
    return sorted(others + towns, key=lambda c: c.start)


def region_of_message(text: str | None) -> str | None:
    """``US`` or ``UK`` when the message tells where the person is, else None."""
    if not text:
        return None
    found = cues(text)
    now = [c for c in found if c.here_now]
    if now:
        return now[-1].region
    regions = {c.region for c in found}
    return regions.pop() if len(regions) == 1 else None
