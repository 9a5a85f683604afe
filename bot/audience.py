"""Who is writing: the patient, or someone caring for them? Read from what people say."""

from __future__ import annotations

import re

_PERSON = (r"(mum|mom|mother|mam|dad|father|husband|wife|partner|son|daughter|brother|sister|"
           r"grandma|grandmother|grandad|grandpa|grandfather|nan|nana|gran|granny|aunt|auntie|"
           r"uncle|friend|neighbou?r|parents?|in-laws?|mother-in-law|father-in-law|client|"
           r"resident|patient)")
CAREGIVER = re.compile(
    rf"\b(my|our)\s+(\w+\s+)?{_PERSON}\b|\b(i am|i'm|im) (a |the |her |his |their )?"
    rf"(carer|caregiver|care worker)\b|\bcaring for\b|\blooking after (my|her|him|them)\b",
    re.IGNORECASE,
)
PATIENT = re.compile(
    r"\b(i have|i've got|i was diagnosed|i am dying|i'm dying|my (cancer|illness|diagnosis|"
    r"pain|tumou?r|ms|copd|chemo|treatment|oncologist|consultant))\b",
    re.IGNORECASE,
)


def audience_of(text: str | None) -> str | None:
    """``caregiver``, ``patient``, or None when the message does not say."""
    if not text or text.startswith("/"):
        return None
    if CAREGIVER.search(text):
        return "caregiver"
    if PATIENT.search(text):
        return "patient"
    return None
