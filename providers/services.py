"""The kinds of service the directory knows, and the words people use for them."""

from __future__ import annotations

import re

# code -> (label for people, words that name it). Add a kind here and in a migration's seed.
SERVICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "hospice": (
        "hospice",
        ("hospice", "hospices", "hospice care", "hospice agency", "hospice agencies",
         "home hospice", "inpatient hospice", "hospice at home", "hospis", "hospise",
         "hopsice", "hospic", "end of life care", "end-of-life care"),
    ),
    "palliative_care": (
        "palliative care",
        ("palliative", "palliative care", "palliative team", "palliative care team",
         "palliative program", "palliative care program", "palliative service",
         "palliative services", "comfort care", "supportive care", "paliative",
         "pallative", "palliative medicine", "palliative doctor", "palliative clinic"),
    ),
    "pain_management": (
        "pain clinic",
        ("pain clinic", "pain clinics", "pain management", "pain center", "pain centre",
         "pain doctor", "pain specialist", "pain service", "pain services", "pain team",
         "pain medicine", "pain management clinic", "pain managment"),
    ),
    "childrens_hospice": (
        "children's hospice",
        ("children's hospice", "childrens hospice", "children's hospices",
         "childrens hospices", "children hospice", "child hospice", "kids hospice",
         "hospice for children", "hospice for kids", "hospice for a child",
         "paediatric hospice", "pediatric hospice", "baby hospice", "hospice for babies"),
    ),
}
# The main kinds, offered to each other as "... instead" buttons.
MAIN = ("hospice", "palliative_care", "pain_management")
# Kinds of hospice a record may also carry (a record with one of them is also a hospice).
HOSPICE_KINDS = ("hospice_inpatient", "hospice_at_home", "childrens_hospice")
# Words that say the care is for a child: "hospice for my little boy" is a children's
# hospice search. "son" and "daughter" are left out: they are as often grown up.
CHILD = re.compile(
    r"\b(child|children|childrens|children's|kid|kids|baby|babies|infant|toddler|newborn|"
    r"teenager|teen|paediatric|pediatric|little (boy|girl|one)|([0-9]|1[0-7])[ -]years?[ -]old|"
    r"\d+[ -](month|week)s?[ -]old)\b",
    re.IGNORECASE,
)
# A search with no place named: "near me", "round here", "close by".
NEAR_ME = re.compile(
    r"\b(near|close to|around|round|nearest to|closest to) (me|us|here|where (i|we) (live|am|are))"
    r"\b|(?<!family )(?<!friends )(?<!relatives )(?<!anyone )(?<!nobody )(?<!no one )"
    r"\b(nearby|near by|close by|in my area|in our area|round here|around here)\b",
    re.IGNORECASE,
)


def label(code: str) -> str:
    """Plain name of a service code, e.g. 'pain clinic'."""
    return SERVICES[code][0] if code in SERVICES else code.replace("_", " ")


def plural(code: str) -> str:
    """Plural for headings: 'hospices', 'palliative care services', 'pain clinics'."""
    return {"hospice": "hospices", "palliative_care": "palliative care services",
            "pain_management": "pain clinics",
            "childrens_hospice": "children's hospices"}.get(code, label(code) + " services")


def synonyms() -> dict[str, str]:
    """Every lower-case phrase that names a service, mapped to its code."""
    return {phrase: code for code, (_, words) in SERVICES.items() for phrase in words}


def for_child(text: str | None) -> bool:
    """Whether a message says the care is for a child."""
    return bool(text and CHILD.search(text))


def near_me(text: str | None) -> bool:
    """Whether a message asks for somewhere near the person without naming the place."""
    return bool(text and NEAR_ME.search(text))
