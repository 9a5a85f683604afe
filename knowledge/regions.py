"""The regions the content is written for, and the country a reader's words name."""

from __future__ import annotations

import re

REGIONS = ("US", "UK")
AMBIGUOUS_IN_TEXT = {"us", "u.s.", "states", "nhs", "gb"}

# What people call each country. "us", "u.s.", "states", "nhs" and "gb" are too ambiguous in
# free text (region_in_message and region_cues skip them there; "US" in capitals counts).
REGION_WORDS = {
    "UK": {"uk", "u.k.", "united kingdom", "britain", "great britain", "gb", "england",
           "scotland", "wales", "northern ireland", "nhs"},
    "US": {"us", "u.s.", "usa", "u.s.a.", "united states", "united states of america",
           "america", "states", "the states"},
}


def region_in_message(text: str | None) -> str | None:
    """Find a country named anywhere in a message ("we're in the US", "mum lives in Wales")."""
    if not text:
        return None
    if re.search(r"\b(US|U\.S\.)(?![A-Za-z])", text):
        return "US"
    lowered = " ".join(text.lower().split())
    for region, names in REGION_WORDS.items():
        for name in sorted(names, key=len, reverse=True):
            if name not in AMBIGUOUS_IN_TEXT and re.search(
                rf"(?<![a-z]){re.escape(name)}(?![a-z])", lowered
            ):
                return region
    return None


def region_from_text(text: str | None) -> str | None:
    """Map what a user called their country ("England", "the States") to ``US``/``UK``."""
    if not text:
        return None
    words = " ".join(text.lower().replace("the ", " ").split())
    for region, names in REGION_WORDS.items():
        if words in names or text.strip().upper() == region:
            return region
    return None
