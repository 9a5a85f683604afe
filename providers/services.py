"""The kinds of service the directory knows, and the words people use for them."""

from __future__ import annotations

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
}


def label(code: str) -> str:
    """Plain name of a service code, e.g. 'pain clinic'."""
    return SERVICES[code][0] if code in SERVICES else code.replace("_", " ")


def plural(code: str) -> str:
    """Plural for headings: 'hospices', 'palliative care services', 'pain clinics'."""
    return {"hospice": "hospices", "palliative_care": "palliative care services",
            "pain_management": "pain clinics"}.get(code, label(code) + " services")


def synonyms() -> dict[str, str]:
    """Every lower-case phrase that names a service, mapped to its code."""
    return {phrase: code for code, (_, words) in SERVICES.items() for phrase in words}
