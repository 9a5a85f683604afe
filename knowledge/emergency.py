"""The emergency line every channel shows, built from the numbers in knowledge/helplines.yml
(so no channel writes 911 or 999 itself)."""

from __future__ import annotations

from typing import TypedDict

from knowledge.helplines import Helplines, default_helplines


class EmergencyNumber(TypedDict):
    region: str  # "US"
    label: str  # what is shown: "911"
    tel: str | None  # what is dialled: "911"


class EmergencyLine(TypedDict):
    text: str  # "In an emergency call 911 (US) or 999 (UK)."
    numbers: list[EmergencyNumber]


def emergency_line(helplines: Helplines | None = None) -> EmergencyLine:
    """Each region's emergency number, as one sentence and as data (for links):
    ``{"text": "In an emergency call 911 (US) or 999 (UK).",
    "numbers": [{"region": "US", "label": "911", "tel": "911"}, ...]}``, regions in the
    file's order. JSON-ready; a new dict on every call."""
    numbers: list[EmergencyNumber] = [
        {"region": region, "label": str(by_kind["emergency"]["label"]),
         "tel": str(by_kind["emergency"]["tel"]) if by_kind["emergency"].get("tel") else None}
        for region, by_kind in (helplines or default_helplines()).numbers.items()
    ]
    named = [f"{n['label']} ({n['region']})" for n in numbers]
    listed = " or ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
    return {"text": f"In an emergency call {listed}.", "numbers": numbers}
