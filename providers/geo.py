"""Offline geocoding: US ZIPs, "City, ST", UK postcodes and towns, from files in data/.

Nothing here touches the network. Sources (see data/PROVENANCE.md): Census ZCTA centroids,
GeoNames ZIP points (for ZIPs with no ZCTA, e.g. PO boxes) and town names, and UK postcode
district centroids from OS Code-Point Open.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data"
EARTH_RADIUS_MILES = 3958.7613

# How exact a point is, best first ("given": the point came with the record).
PRECISIONS = ("given", "zip", "zip_approx", "postcode_district", "city", "town")

US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota",
    "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming", "PR": "Puerto Rico",
    "GU": "Guam", "VI": "U.S. Virgin Islands", "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}
STATE_BY_NAME = {name.lower(): code for code, name in US_STATES.items()}
STATE_BY_NAME.update({"washington dc": "DC", "washington d.c.": "DC", "d.c.": "DC"})
UK_NATIONS = {"ENG": "England", "SCT": "Scotland", "WLS": "Wales", "NIR": "Northern Ireland"}
UK_WORDS = {"uk", "england", "scotland", "wales", "britain", "united kingdom", "gb"}
# A nation named after a town ("Leeds, England", as the "which one?" buttons send it) says
# where the town is; it is not itself a town (England, AR; Wales, South Yorkshire).
NATION_WORDS = {"england": "ENG", "scotland": "SCT", "wales": "WLS", "northern ireland": "NIR"}
# Postcode areas that lie in Wales (near enough: a few NP and LD streets are in England).
# Elsewhere a district's nation is that of its nearest town of 5,000+ people (uk_places.csv),
# which can be wrong right at a border.
WELSH_AREAS = {"CF", "LD", "LL", "NP", "SA"}

UK_POSTCODE = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9][A-Z]{2})\b")
UK_OUTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")
US_ZIP = re.compile(r"(?<![\d-])(\d{5})(?:[-\s]?(\d{4}))?(?![\d-])")
DIGITS = re.compile(r"(?<![\d-])\d{3,10}(?![\d-])")
WORD = re.compile(r"[a-z0-9]+(?:['.][a-z0-9]+)*\.?|,")


@dataclass(frozen=True)
class Place:
    """A point people asked about, with a label to show them and how exact it is."""

    label: str
    lat: float
    lon: float
    country: str  # "US" or "GB"
    precision: str
    state: str | None = None  # US state code, or UK nation code


@dataclass
class LocationError(Exception):
    """Why a location could not be understood; `reason` picks the re-ask wording."""

    reason: str  # empty, invalid_zip, unknown_zip, unknown_postcode, northern_ireland,
    #              ambiguous, need_town, need_uk_town, unknown_place, not_in_state
    text: str = ""
    candidates: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.reason}: {self.text!r} {self.candidates or ''}".strip()


def distance_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in miles."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))


_ABBREVIATIONS = {"st": "saint", "ste": "saint", "ft": "fort", "mt": "mount"}


def _spell_out(tokens: list[str]) -> list[str]:
    """'st. louis' -> 'saint louis', as the ZIP list spells town names."""
    out = []
    for i, tok in enumerate(tokens):
        bare = tok.rstrip(".")
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        out.append(_ABBREVIATIONS[bare] if bare in _ABBREVIATIONS and nxt.isalpha() else tok)
    return out


CELL_DEGREES = 0.5  # grid for the search index: about 35 x 25 miles in the US


def grid_cell(lat: float, lon: float) -> int:
    """The search-grid cell of a point: row * 1000 + column, rows and columns of 0.5 deg."""
    row = int(math.floor((min(max(lat, -90.0), 89.999) + 90) / CELL_DEGREES))
    col = int(math.floor((min(max(lon, -180.0), 179.999) + 180) / CELL_DEGREES))
    return row * 1000 + col


def _title(name: str) -> str:
    return " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in name.split())


@dataclass
class _Town:
    name: str
    state: str
    lat: float
    lon: float
    population: int
    country: str


class Gazetteer:
    """All the place data, loaded once (about 0.3 s); lookups are dictionary reads."""

    def __init__(self, data_dir: Path = DATA) -> None:
        self.zcta: dict[str, tuple[float, float]] = {}
        with (data_dir / "us_zcta_2023_centroids.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                self.zcta[row["GEOID"]] = (float(row["LAT"]), float(row["LONG"]))
        self.zips: dict[str, tuple[str, str, float, float]] = {}
        grouped: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        population: dict[tuple[str, str], int] = {}
        display: dict[tuple[str, str], str] = {}
        with (data_dir / "us_places.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                z, city, state = row["zip"], row["city"], row["state"]
                point = (float(row["lat"]), float(row["lon"]))
                self.zips[z] = (city, state, *point)
                key = (city.lower(), state)
                grouped[key].append(self.zcta.get(z, point))
                population[key] = int(row["city_population"] or 0)
                display.setdefault(key, city)
        self.us_towns: dict[str, list[_Town]] = defaultdict(list)
        for (name, state), points in grouped.items():
            lat = sum(p[0] for p in points) / len(points)
            lon = sum(p[1] for p in points) / len(points)
            self.us_towns[name].append(
                _Town(display[(name, state)], state, lat, lon, population[(name, state)], "US")
            )
        self.outcodes: dict[str, tuple[float, float]] = {}
        with (data_dir / "uk_outcode_centroids.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                self.outcodes[row["outcode"]] = (float(row["latitude"]), float(row["longitude"]))
        self.uk_towns: dict[str, list[_Town]] = defaultdict(list)
        with (data_dir / "uk_places.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                self.uk_towns[row["name"].lower()].append(
                    _Town(row["name"], row["nation"], float(row["lat"]), float(row["lon"]),
                          int(row["population"]), "GB")
                )
        self.max_words = max(len(n.split()) for n in [*self.us_towns, *self.uk_towns])

    # -- single lookups ----------------------------------------------------------------
    def zip(self, code: str) -> Place | None:
        """A US ZIP (5 digits; ZIP+4 is cut to 5) as a point, or None if unknown."""
        code = code.strip()[:5]
        info = self.zips.get(code)
        label = f"{code} ({info[0]}, {info[1]})" if info else code
        if code in self.zcta:
            lat, lon = self.zcta[code]
            return Place(label, lat, lon, "US", "zip", info[1] if info else None)
        if info:
            return Place(label, info[2], info[3], "US", "zip_approx", info[1])
        return None

    def outcode(self, code: str) -> Place | None:
        """A UK postcode district (outward code such as SW1A) as a point, or None."""
        code = code.strip().upper()
        if code in self.outcodes:
            lat, lon = self.outcodes[code]
            return Place(code, lat, lon, "GB", "postcode_district", self.nation_of(code))
        return None

    def nation_of(self, outcode: str) -> str:
        """ENG, SCT or WLS for a Great Britain postcode district (see WELSH_AREAS)."""
        if re.match(r"[A-Z]+", outcode).group(0) in WELSH_AREAS:
            return "WLS"
        lat, lon = self.outcodes[outcode]
        k = math.cos(math.radians(lat))
        nearest = min((t for towns in self.uk_towns.values() for t in towns
                       if t.state in ("ENG", "SCT", "WLS")),
                      key=lambda t: (t.lat - lat) ** 2 + ((t.lon - lon) * k) ** 2)
        return nearest.state

    def postcode(self, text: str) -> Place | None:
        """A full UK postcode or an outward code, located by its district."""
        text = text.strip().upper()
        m = UK_POSTCODE.fullmatch(text)
        place = self.outcode(m.group(1) if m else text)
        if place and m:
            return Place(f"{m.group(1)} {m.group(2)}", place.lat, place.lon, "GB",
                         place.precision, place.state)
        return place

    def place_names(self) -> set[str]:
        """Lower-case town and state names, for a phrase matcher."""
        return set(self.us_towns) | set(self.uk_towns) | set(STATE_BY_NAME)

    # -- free text ---------------------------------------------------------------------
    def resolve(self, text: str, prefer_country: str = "US") -> Place:
        """Turn what someone typed into a Place, or raise LocationError saying why not."""
        raw = (text or "").strip()
        if not raw or not re.search(r"[A-Za-z0-9]", raw):
            raise LocationError("empty", raw)
        raw = raw[:200]
        upper = raw.upper()

        m = UK_POSTCODE.search(upper)
        if m:
            if m.group(1).startswith("BT"):
                raise LocationError("northern_ireland", m.group(0))
            place = self.postcode(f"{m.group(1)} {m.group(2)}")
            if place is None:
                raise LocationError("unknown_postcode", m.group(0))
            return place

        m = US_ZIP.search(raw)
        if m:
            place = self.zip(m.group(1))
            if place is None:
                raise LocationError("unknown_zip", m.group(1))
            return place

        tokens = _spell_out(WORD.findall(raw.lower()))
        words = [t for t in tokens if t != ","]
        outcodes = [w.upper() for w in words if UK_OUTCODE.match(w.upper())]
        if outcodes and len(words) <= 4:
            if outcodes[0].startswith("BT"):
                raise LocationError("northern_ireland", outcodes[0])
            place = self.outcode(outcodes[0])
            if place:
                return place
        digits = DIGITS.search(raw)
        if digits and not self._find_towns(tokens):
            raise LocationError("invalid_zip", digits.group(0))
        return self._resolve_town(tokens, raw, prefer_country)

    def _find_towns(self, tokens: list[str]) -> list[tuple[int, int, str]]:
        """(start, end, name) of town names in tokens, longest first, not overlapping."""
        found: list[tuple[int, int, str]] = []
        taken: set[int] = set()
        for n in range(min(self.max_words, len(tokens)), 0, -1):
            for i in range(len(tokens) - n + 1):
                if taken & set(range(i, i + n)):
                    continue
                name = " ".join(t.rstrip(".") for t in tokens[i:i + n])
                if name in self.us_towns or name in self.uk_towns:
                    found.append((i, i + n, name))
                    taken |= set(range(i, i + n))
        return sorted(found)

    def _state_after(self, tokens: list[str], end: int) -> str | None:
        """A US state named right after a town: 'IL', 'il', ', Illinois', 'new york'."""
        j = end + (1 if end < len(tokens) and tokens[end] == "," else 0)
        for n in (3, 2, 1):
            name = " ".join(tokens[j:j + n])
            if name in STATE_BY_NAME and len(tokens[j:j + n]) == n:
                return STATE_BY_NAME[name]
        if j < len(tokens) and tokens[j].rstrip(".").upper() in US_STATES:
            return tokens[j].rstrip(".").upper()
        return None

    def _resolve_town(self, tokens: list[str], raw: str, prefer: str) -> Place:
        text = " ".join(tokens)
        nations = {code for word, code in NATION_WORDS.items()
                   if re.search(rf"\b{word}\b", text)}
        towns = [t for t in self._find_towns(tokens)
                 if t[2] not in NATION_WORDS or self._state_after(tokens, t[1])]
        if "northern" in text and "ireland" in text:  # "Ireland, WV" is not meant
            towns = [t for t in towns if t[2] not in ("northern", "ireland")]
        state_only = [STATE_BY_NAME[" ".join(tokens[i:i + n])]
                      for n in (3, 2, 1) for i in range(len(tokens) - n + 1)
                      if " ".join(tokens[i:i + n]) in STATE_BY_NAME]
        uk_hint = any(t in UK_WORDS for t in tokens) or bool(nations)
        for _start, end, name in towns:
            state = self._state_after(tokens, end)
            if state:
                match = [t for t in self.us_towns.get(name, []) if t.state == state]
                if match:
                    return self._town_place(match[0])
                if name not in STATE_BY_NAME:
                    raise LocationError("not_in_state", f"{_title(name)}, {state}")
        # bare town names: skip a match that is only a state's name ("ohio")
        bare = [(s, e, n) for s, e, n in towns
                if not (n in STATE_BY_NAME and n not in ("new york", "washington")
                        and not self.uk_towns.get(n))]
        if not bare:
            if state_only:
                raise LocationError("need_town", US_STATES[state_only[0]])
            if nations:
                raise LocationError("need_uk_town", UK_NATIONS[sorted(nations)[0]])
            raise LocationError("unknown_place", raw)
        _, _, name = max(bare, key=lambda t: (t[1] - t[0], t[0]))
        cands = list(self.us_towns.get(name, [])) + list(self.uk_towns.get(name, []))
        if uk_hint:
            cands = [c for c in cands if c.country == "GB"] or cands
            cands = [c for c in cands if c.state in nations] or cands
        elif state_only:
            cands = [c for c in cands if c.state in state_only] or cands
        cands.sort(key=lambda t: (t.population, t.country == prefer), reverse=True)
        if len(cands) == 1:
            return self._town_place(cands[0])
        top, second = cands[0], cands[1]
        if top.population >= 50_000 and top.population >= 5 * second.population:
            return self._town_place(top)
        same_country = [c for c in cands if c.country == top.country]
        if top.country == "GB" and len(same_country) > 1 and top.population >= 5 * max(
            c.population for c in same_country[1:]
        ) and second.country == "GB":
            return self._town_place(top)
        raise LocationError("ambiguous", _title(name), [self._town_label(c) for c in cands[:4]])

    @staticmethod
    def _town_label(t: _Town) -> str:
        if t.country == "US":
            return f"{t.name}, {t.state}"
        return f"{t.name}, {UK_NATIONS.get(t.state, 'UK')}"

    def _town_place(self, t: _Town) -> Place:
        precision = "city" if t.country == "US" else "town"
        return Place(self._town_label(t), t.lat, t.lon, t.country, precision, t.state)


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The shared gazetteer over the bundled data."""
    return Gazetteer()
