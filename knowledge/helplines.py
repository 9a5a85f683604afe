"""Help-line numbers and the safety replies built from them (knowledge/helplines.yml)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

HELPLINES_FILE = Path(__file__).parent / "helplines.yml"
# The crisis detector's rule patterns (read by bot/nlu/safety.py).
SAFETY_PATTERNS_FILE = Path(__file__).parent / "safety_patterns.yml"
# Every kind of crisis, most urgent first: the order of the parts of a reply, and which kind
# names the intent when several are found. The one list of kinds.
CRISIS_ORDER = ("emergency", "overdose", "suicide", "abuse")
# The intent each kind is routed to (an overdose is routed as an emergency), and back.
INTENT_FOR_KIND = {"emergency": "crisis_emergency", "overdose": "crisis_emergency",
                   "suicide": "crisis_suicide", "abuse": "crisis_abuse"}
CRISIS_KIND_FOR_INTENT = {"crisis_suicide": "suicide", "crisis_emergency": "emergency",
                          "crisis_abuse": "abuse"}
REGIONS = ("US", "UK")


@dataclass(frozen=True)
class Helplines:
    """Numbers by region, reply templates by language, the numbers each kind must give."""

    numbers: dict[str, dict[str, dict]]
    replies: dict[str, dict]
    kinds: dict[str, list[str]] = field(default_factory=dict)
    countries: dict[str, str] = field(default_factory=dict)
    reply_sources: dict[str, list[dict]] = field(default_factory=dict)

    def _template(self, language: str, key: str, region: str) -> str:
        replies = self.replies.get(language) or self.replies["en"]
        template = replies.get(key) or self.replies["en"][key]
        return template[region] if isinstance(template, dict) else template

    def _fill(self, template: str, region: str) -> str:
        labels = {name: entry["label"] for name, entry in self.numbers[region].items()}
        return template.format(**labels)

    def crisis_reply(
        self, kinds: list[str], language: str, region: str, in_hospice: bool = False,
        other_region: str | None = None, medicines_taken: bool = False, paused: bool = False,
    ) -> str:
        """The crisis reply for the kinds found, most urgent first, numbers for ``region``.

        ``other_region``: nothing said where the person is, so one short line gives that
        country's numbers too. ``medicines_taken``: abuse that is medicines being taken gets
        practical steps. ``paused``: the conversation is waiting for staff (said at the end).
        """
        parts = []
        for kind in CRISIS_ORDER:
            if kind not in kinds:
                continue
            key = "medicines_taken" if kind == "abuse" and medicines_taken else kind
            parts.append(self._fill(self._template(language, key, region), region))
            for source in self.reply_sources.get(key, []) if key != kind else []:
                parts[-1] += f"\nSource: {source['title']} ({source['url']})"
        if in_hospice:
            parts.append(self._fill(self._template(language, "hospice", region), region))
        if other_region:
            parts.append(self.other_country_line(kinds, language, other_region))
        if paused:
            parts.append(self._template(language, "paused", region))
        parts.append(self._template(language, "carry_on", region))
        return "\n\n".join(parts)

    def other_country_line(self, kinds: list[str], language: str, region: str) -> str:
        """One short line with ``region``'s numbers for these kinds of crisis."""
        names: list[str] = []
        for kind in CRISIS_ORDER:
            if kind in kinds:
                names += [n for n in self.kinds[kind] if n not in names]
        numbers = ", ".join(self.numbers[region][n]["short"] for n in names)
        return self._template(language, "other_country", region).format(
            country=self.countries[region], numbers=numbers)

    def carries(self, reply: str, kind: str, region: str) -> bool:
        """Whether ``reply`` gives every number a ``kind`` of crisis needs in ``region``."""
        return all(_says(reply, self.numbers[region][n]["label"]) for n in self.kinds[kind])

    def other_country_start(self, language: str = "en") -> str:
        """How the other-country line begins ("If you are in "), to find it in a reply."""
        return self._template(language, "other_country", "US").split("{", 1)[0]

    def leads_with(self, reply: str, region: str, language: str = "en") -> bool:
        """Whether ``reply``'s main text (before any other-country line) uses ``region``'s
        emergency number and not another region's."""
        main = reply.split("\n\n" + self.other_country_start(language), 1)[0]
        others = [r for r in self.numbers if r != region]
        return _says(main, self.numbers[region]["emergency"]["label"]) and not any(
            _says(main, self.numbers[r]["emergency"]["label"]) for r in others)

    def medical_advice_reply(self, language: str, region: str) -> str:
        """Why the assistant cannot advise on medicines or symptoms, and who can."""
        return self._fill(self._template(language, "medical_advice", region), region)

    def placeholders(self) -> set[str]:
        """Every {name} used by any reply (each must be a number in every region)."""
        names: set[str] = set()
        for replies in self.replies.values():
            for key, template in replies.items():
                if key == "other_country":  # filled with a country and numbers, not labels
                    continue
                texts = template.values() if isinstance(template, dict) else [template]
                for text in texts:
                    names |= {f for _, f, _, _ in string.Formatter().parse(text) if f}
        return names


def _says(text: str, label: str) -> bool:
    """``label`` appears in ``text`` as itself, not inside a longer number."""
    return re.search(rf"(?<![\d-]){re.escape(label)}(?![\d-])", text) is not None


def load(path: Path = HELPLINES_FILE) -> Helplines:
    """Load the help-line file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Helplines(numbers=data["numbers"], replies=data["replies"], kinds=data["kinds"],
                     countries=data["countries"], reply_sources=data.get("reply_sources", {}))


@lru_cache(maxsize=1)
def _medicine_words() -> frozenset[str]:
    lists = yaml.safe_load(SAFETY_PATTERNS_FILE.read_text(encoding="utf-8"))["lists"]
    return frozenset(str(w).lower() for w in lists["meds"]) | {
        "oramorph", "syringe", "prescription", "prescriptions", "controlled", "doses"}


def mentions_medicines(text: str | None) -> bool:
    """Whether a message talks about medicines (for the "medicines being taken" reply)."""
    words = set(re.findall(r"[a-z-]+", (text or "").lower()))
    return bool(words & _medicine_words())


@lru_cache(maxsize=1)
def default_helplines() -> Helplines:
    """The bundled help lines, loaded once per process."""
    return load()
