"""Help-line numbers and the safety replies built from them (knowledge/helplines.yml)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

HELPLINES_FILE = Path(__file__).parent / "helplines.yml"
CRISIS_ORDER = ("emergency", "overdose", "suicide", "abuse")
# The crisis intents and the reply each gets (an overdose is routed as an emergency).
CRISIS_KIND_FOR_INTENT = {"crisis_suicide": "suicide", "crisis_emergency": "emergency",
                          "crisis_abuse": "abuse"}


@dataclass(frozen=True)
class Helplines:
    """Numbers by region, reply templates by language."""

    numbers: dict[str, dict[str, dict]]
    replies: dict[str, dict]

    def _template(self, language: str, key: str, region: str) -> str:
        replies = self.replies.get(language) or self.replies["en"]
        template = replies[key]
        return template[region] if isinstance(template, dict) else template

    def _fill(self, template: str, region: str) -> str:
        labels = {name: entry["label"] for name, entry in self.numbers[region].items()}
        return template.format(**labels)

    def crisis_reply(
        self, kinds: list[str], language: str, region: str, in_hospice: bool = False
    ) -> str:
        """The crisis reply for the classes found, most urgent first, numbers for ``region``."""
        parts = [self._template(language, k, region) for k in CRISIS_ORDER if k in kinds]
        if in_hospice:
            parts.append(self._template(language, "hospice", region))
        parts.append(self._template(language, "carry_on", region))
        return "\n\n".join(self._fill(p, region) for p in parts)

    def medical_advice_reply(self, language: str, region: str) -> str:
        """Why the assistant cannot advise on medicines or symptoms, and who can."""
        return self._fill(self._template(language, "medical_advice", region), region)

    def placeholders(self) -> set[str]:
        """Every {name} used by any reply (each must be a number in every region)."""
        names: set[str] = set()
        for replies in self.replies.values():
            for template in replies.values():
                texts = template.values() if isinstance(template, dict) else [template]
                for text in texts:
                    names |= {f for _, f, _, _ in string.Formatter().parse(text) if f}
        return names


def load(path: Path = HELPLINES_FILE) -> Helplines:
    """Load the help-line file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Helplines(numbers=data["numbers"], replies=data["replies"])


@lru_cache(maxsize=1)
def default_helplines() -> Helplines:
    """The bundled help lines, loaded once per process."""
    return load()
