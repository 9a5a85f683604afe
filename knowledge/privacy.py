"""Mask personal details in free text before it is printed, logged or sent anywhere.

:func:`mask` is the one masking function of the project: the hand-off summary
(``actions.handoff.redact``) and the unanswered-question report (``navigator report``) use it.
It replaces each detail by a word from :data:`MASKS` ("[phone]", "[email]", ...).

What it finds, in this order (earlier kinds win where two overlap):

- emails, also written as ``name @ domain``, ``name (at) domain (dot) com`` and
  ``name at domain dot com``;
- Medicare numbers: the MBI (11 characters, ``1EG4-TE5-MK73``) and the old SSN-based HICN
  (``123-45-6789A``); Social Security numbers (``123-45-6789``);
- NHS numbers (10 digits, 3-3-4), when "NHS" is written just before or the check digit holds;
- dates: ``12/03/2026``, ``12.03.26``, ``2026-03-12``, ``3 March 2026``, ``March 3rd, 2026``,
  ``3rd of March``, ``Mar 2026``, and a year or digits after "born" / "DOB";
- phone numbers, US and UK, national or international, with spaces, dots, dashes of any kind,
  slashes, underscores or brackets, 7-digit local numbers and extensions;
- street addresses (``12 Acacia Avenue``, ``221B Baker St``, ``1600 Pennsylvania Ave NW``,
  ``Flat 3, 9 Mill Lane``, ``PO Box 12``);
- UK postcodes, full (``SW1A 1AA``, ``EC1A-1BB``, ``GIR 0AA``) and district only (``SW1A``)
  where the words around make it a place ("near SW1A", or the district alone);
- US ZIP and ZIP+4 codes (``60614``, ``60614-1234``, ``ZIP60614``);
- names after a title or "my name is" (``Mrs Patel``, ``my name is Mary Jones``);
- last, any other run of 7 or more digits ("[number]"): an identifier of some kind.

Ordinary clinical text is left alone: "5 days", "stage 4", "12 weeks", "6 months",
"age 87", "24/7", "8/10 pain", "BP 120/80", "10 mg", "vitamin B12", "may help".

Why regular expressions, and one library: phone numbers are found by ``phonenumbers`` (the
Python port of Google's libphonenumber; its metadata ships in the package, nothing is
downloaded), which knows each country's lengths and formats, trunk prefixes such as
"+44 (0)20" and extensions. Nothing well kept does the rest offline: ``usaddress`` parses a
string already known to be an address (a CRF model) but does not find one in a sentence;
``pyap`` finds addresses but has had no release since 2020; ``scrubadub`` and Presidio need
spaCy models downloaded; ``commonregex`` is US-only and unmaintained since 2014. UK postcodes,
NHS and Medicare numbers and the obfuscated emails have simple published formats, so they are
regular expressions here, each with the checks that keep clinical numbers out.

This is masking for reports and hand-off quotes, not anonymisation: a name without a title,
or a detail written in a way nobody foresaw, can get through. Never print raw messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import phonenumbers

# The words that replace each kind of detail (one table: change a word here only).
MASKS: dict[str, str] = {
    "email": "[email]",
    "phone": "[phone]",
    "postcode": "[postcode]",
    "zip": "[zip]",
    "date": "[date]",
    "nhs_number": "[nhs-number]",
    "medicare_number": "[medicare-number]",
    "ssn": "[ssn]",
    "address": "[address]",
    "name": "[name]",
    "number": "[number]",
}

_DASH = "\\-\u2010-\u2015\u2212\uFE58\uFE63\uFF0D"  # hyphen, en/em dashes, minus, full-width
_SEP = f"[\\s{_DASH}]"  # a separator inside an identifier
_ODD_SEPARATORS = re.compile(r"[_\\|\u00B7\u2022\u2027]")  # phonenumbers does not know these

# -- emails -----------------------------------------------------------------------------------
_AT_BRACKETED = r"\s*[(\[{<]\s*at\s*[)\]}>]\s*"
_DOT_SPOKEN = r"(?:\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+)"
_DOT_WORD = rf"(?:\.|{_DOT_SPOKEN})"
_TLD = (r"(?:com|org|net|edu|gov|mil|int|uk|us|co|ac|nhs|io|info|biz|me|ca|ie|au|de|fr|"
        r"email|online|live|mail)")
_EMAILS = [
    # name@domain.com, name @ domain . com
    re.compile(rf"(?<![\w.+'\-])[\w.+'\-]+\s*@\s*[\w\-]+(?:\.[\w\-]+)*(?:\s*\.\s*{_TLD}\b)?",
               re.IGNORECASE),
    # name (at) domain (dot) com, name [at] domain, name {at} domain.org
    re.compile(rf"(?<![\w.+'\-])[\w.+'\-]+(?:{_DOT_SPOKEN}[\w.+'\-]+)*{_AT_BRACKETED}"
               rf"[\w\-]+(?:{_DOT_WORD}[\w\-]+)*", re.IGNORECASE),
]
# name at domain dot com, mary dot jones at nhs dot net (needs a dot and a known ending)
_PLAIN_AT = re.compile(rf"(?<![\w.+'\-])([\w.+'\-]+)(?:\s+dot\s+[\w\-]+)*\s+at\s+[\w\-]+"
                       rf"(?:(?:\s+dot\s+|\.)[\w\-]+)*(?:\s+dot\s+|\.){_TLD}\b",
                       re.IGNORECASE)
_NOT_EMAIL_NAMES = {"is", "are", "was", "were", "am", "be", "been", "me", "us", "him", "her",
                    "them", "you", "i", "we", "they", "he", "she", "it", "look", "looked",
                    "looking", "go", "went", "see", "click", "info", "online", "site"}

# -- Medicare, Social Security and NHS numbers ------------------------------------------------
_MBI_A = "[AC-HJKMNP-RT-Y]"  # MBI letters: no S, L, O, I, B, Z
_MBI_AN = "[AC-HJKMNP-RT-Y0-9]"
_MBI = re.compile(
    rf"(?<![A-Za-z0-9])[1-9]{_MBI_A}{_MBI_AN}\d{_SEP}?{_MBI_A}{_MBI_AN}\d{_SEP}?"
    rf"{_MBI_A}{{2}}\d{{2}}(?![A-Za-z0-9])", re.IGNORECASE)
_HICN = re.compile(  # SSN-based Medicare number: the SSN and a letter (and digit) suffix
    rf"(?<![\w])\d{{3}}{_SEP}?\d{{2}}{_SEP}?\d{{4}}{_SEP}?[A-HJ-NP-Z]\d?(?![\w])")
_SSN = re.compile(rf"(?<![\w])\d{{3}}({_SEP})\d{{2}}\1\d{{4}}(?![\w])")
_SSN_WORDS = re.compile(
    r"\b(ssn|social security(?: number| no\.?)?)\s*(?:is|:|#)?\s*(\d{9})(?!\d)", re.IGNORECASE)
_NHS = re.compile(rf"(?<![\w])(\d{{3}})({_SEP}?)(\d{{3}})\2(\d{{4}})(?![\w])")
_NHS_CONTEXT = re.compile(r"\bnhs\b", re.IGNORECASE)

# -- dates --------------------------------------------------------------------------------------
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_ORD = r"(?:st|nd|rd|th)"
_DATE_NUMERIC = re.compile(
    rf"(?<![\w/.{_DASH}])(\d{{1,2}})([/.{_DASH}])(\d{{1,2}})\2(\d{{4}}|\d{{2}})"
    rf"(?![\w/]|[.{_DASH}]\d)")
_DATE_ISO = re.compile(
    rf"(?<![\w/.{_DASH}])(\d{{4}})([/.{_DASH}])(\d{{1,2}})\2(\d{{1,2}})(?![\w/]|[.{_DASH}]\d)")
_DATE_DAY_MONTH = re.compile(  # 3 March 2026, 3rd of March, 3 Mar '26
    rf"\b(\d{{1,2}})({_ORD})?(\s+of)?\s+({_MONTH})\b\.?(,?\s+(?:\d{{4}}|'\d{{2}})\b)?",
    re.IGNORECASE)
_DATE_MONTH_DAY = re.compile(  # March 3rd, 2026; March 3; Mar 2026
    rf"\b({_MONTH})\b\.?\s+(\d{{1,4}})({_ORD})?(?!\d)(,?\s+\d{{4}}\b)?", re.IGNORECASE)
_DURATION_AFTER = re.compile(r"^\s*(?:days?|weeks?|months?|years?|hours?|times?)\b",
                             re.IGNORECASE)
_BIRTH = re.compile(  # born 1948, DOB 120350, date of birth: 12 03 1950
    r"\b(?:d\.?o\.?b\.?|date of birth|birth ?date|born(?:\s+(?:on|in))?)\s*[:\-]?\s*"
    r"(\d{1,2}\s\d{1,2}\s\d{2,4}|\d{8}|\d{6}|\d{4})(?!\d)", re.IGNORECASE)

# -- street addresses -----------------------------------------------------------------------
# Street types that are plain street words whatever the case, and ones that are also ordinary
# words ("way", "close", "park"): those count only when the street is written with capitals.
_STREET_TYPES = ("street|avenue|road|lane|drive|boulevard|crescent|terrace|gardens|parkway|"
                 "highway|mews|st|ave|av|rd|ln|blvd|cres|terr|gdns|pkwy|hwy")
_STREET_TYPES_CAPITALISED = ("way|place|close|court|walk|hill|rise|park|green|view|row|grove|"
                             "square|circle|parade|trail|plaza|alley|heights|wharf|quay|"
                             "dr|pl|ct|cl|gr|sq|cir|pde|trl|ter")
_AMBIGUOUS_TYPES = set(_STREET_TYPES_CAPITALISED.split("|"))
_NOT_STREET_WORDS = {  # words around a number that make it a quantity, not a house number
    "a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "for", "from", "by", "with",
    "down", "up", "my", "his", "her", "their", "our", "your", "is", "was", "are", "be",
    "day", "days", "week", "weeks", "month", "months", "year", "years", "hour", "hours",
    "minute", "minutes", "time", "times", "mile", "miles", "km", "blocks", "block", "mg",
    "ml", "doses", "dose", "pills", "tablets", "people", "kids", "children", "nights",
}
_ADDRESS = re.compile(
    r"(?<![\w.,/])(?:(?:flat|apt\.?|apartment|unit|suite)\s*[\w\-]+,?\s+)?"
    r"(\d{1,5}[A-Za-z]?(?:[\-/]\d{1,5}[A-Za-z]?)?),?\s+"
    r"((?:(?:[A-Za-z][A-Za-z'.\-]*|\d{1,3}(?:st|nd|rd|th))\s+){1,4}?)"
    rf"({_STREET_TYPES}|{_STREET_TYPES_CAPITALISED})\b\.?"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\b)?"
    r"(?:,?\s+(?:apt\.?|apartment|unit|suite|ste\.?|flat|#)\s*[\w\-]+)?",
    re.IGNORECASE)
_PO_BOX = re.compile(r"\bP\.?\s?O\.?\s+Box\s+\d+\b", re.IGNORECASE)

# -- UK postcodes and US ZIP codes ------------------------------------------------------------
_UK_AREAS = frozenset(re.findall(r"[A-Z]+", (  # the 124 postcode areas (with GY, JE, IM)
    "AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT "
    "DY E EC EH EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA "
    "LD LE LL LN LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA "
    "SE SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS "
    "WV YO ZE")))
_POSTCODE = re.compile(
    rf"(?<![A-Za-z0-9])(?:GIR[\s{_DASH}_]{{0,2}}0AA|([A-Z]{{1,2}})\d[A-Z\d]?"
    rf"([\s{_DASH}_]{{0,2}})(\d[ABD-HJLNP-UW-Z]{{2}}))(?![A-Za-z0-9])", re.IGNORECASE)
_DISTRICT = re.compile(r"(?<![A-Za-z0-9\[])([A-Z]{1,2})\d[A-Z\d]?(?![A-Za-z0-9\]])",
                       re.IGNORECASE)
_PLACE_BEFORE = re.compile(
    r"\b(?:near|nr|in|around|postcode|post code|from|at|live|lives|living|area|district|of|to|"
    r"by)\s*[:,]?\s*$", re.IGNORECASE)
_PLACE_AFTER = re.compile(r"^\s*(?:area|postcode|post code|district)\b", re.IGNORECASE)
_ZIP_WORD = re.compile(rf"(?<=zip)\d{{5}}(?:[{_DASH}]\d{{4}})?(?!\d)", re.IGNORECASE)  # ZIP60614
_ZIP = re.compile(rf"(?<![\w$£€#.,])\d{{5}}(?:\s?[{_DASH}]\s?\d{{4}})?(?![\w]|[.,]\d)")
_QUANTITY_AFTER = re.compile(
    r"^\s*(?:mg|mcg|ml|iu|units?|steps|people|patients|dollars|pounds|calories|kcal|miles|km|"
    r"feet|ft|words|beds|cases|deaths|usd|gbp)\b", re.IGNORECASE)

# -- names ------------------------------------------------------------------------------------
_TITLED_NAME = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Nurse|Sister)\.?\s+[A-Z][A-Za-z'\-]+"
    r"(?:\s+[A-Z][A-Za-z'\-]+)?")
_NAME_INTRO = re.compile(r"\b(?:my name is|my name's|name\s*:|i am called|i'm called)\s+",
                         re.IGNORECASE)
_I_AM_FULL_NAME = re.compile(r"\b(?:I am|I'm|Im)\s+([A-Z][a-z'\-]+\s+[A-Z][a-z'\-]+)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_NOT_NAME_WORDS = {"and", "i", "im", "my", "but", "the", "a", "not", "from", "in", "at", "on",
                   "calling", "writing", "asking", "here", "with", "for", "to", "is", "was"}

_YEARS = re.compile(rf"(?:19|20)\d\d\s*[{_DASH}]\s*(?:19|20)\d\d")  # 2019-2021: not an id
_LONG_NUMBER = re.compile(rf"(?<![\w.,/])\+?\(?\d[\d\s{_DASH}_()]*\d\)?(?![\w/]|[.,]\d)")


def _sub(pattern: re.Pattern[str], kind: str,
         keep: Callable[[re.Match[str], str], bool] | None = None) -> Callable[[str], str]:
    """A step that masks each match of ``pattern`` (unless ``keep`` says to leave it)."""
    word = MASKS[kind]

    def step(text: str) -> str:
        return pattern.sub(
            lambda m: m.group(0) if keep is not None and keep(m, text) else word, text)

    return step


def _nhs_check_digit_ok(digits: str) -> bool:
    total = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9]))
    check = 11 - total % 11
    return check != 10 and (check % 11) == int(digits[9])


def _not_nhs(m: re.Match[str], text: str) -> bool:
    before = text[max(0, m.start() - 40):m.start()]
    if re.search(r"(\+\d{1,3}|\()\s*$", before):
        return True  # +1 312 555 0199, (0) ...: a phone number, masked as one later
    if _NHS_CONTEXT.search(before):
        return False
    return not _nhs_check_digit_ok(m.group(1) + m.group(3) + m.group(4))


def _not_a_date(day: int, month: int) -> bool:
    return not (1 <= month <= 12 and 1 <= day <= 31)


def _not_numeric_date(m: re.Match[str], _text: str) -> bool:
    a, b = int(m.group(1)), int(m.group(3))
    return _not_a_date(a, b) and _not_a_date(b, a)  # day/month or month/day


def _not_iso_date(m: re.Match[str], _text: str) -> bool:
    year, month, day = int(m.group(1)), int(m.group(3)), int(m.group(4))
    return not 1900 <= year <= 2099 or _not_a_date(day, month)


def _plain_may(month: str, rest_is_date: bool) -> bool:
    """"may" in lower case is the verb unless a year or an ordinal makes it a date."""
    return month == "may" and not rest_is_date


def _not_day_month(m: re.Match[str], _text: str) -> bool:
    if not 1 <= int(m.group(1)) <= 31:
        return True
    return _plain_may(m.group(4), bool(m.group(2) or m.group(3) or m.group(5)))


def _not_month_day(m: re.Match[str], text: str) -> bool:
    number = m.group(2)
    if _DURATION_AFTER.match(text[m.end():m.end() + 20]):
        return True  # "March 12 weeks ago": a month, then a duration
    if len(number) == 4:  # Mar 2026, may 2026
        return not 1900 <= int(number) <= 2099
    if len(number) > 2 or not 1 <= int(number) <= 31:
        return True
    return _plain_may(m.group(1), bool(m.group(3) or m.group(4)))


def _mask_birth(text: str) -> str:
    return _BIRTH.sub(lambda m: m.group(0)[:m.start(1) - m.start()] + MASKS["date"], text)


def _mask_ssn_words(text: str) -> str:
    return _SSN_WORDS.sub(lambda m: m.group(0)[:m.start(2) - m.start()] + MASKS["ssn"], text)


def _phone_spans(text: str) -> list[tuple[int, int]]:
    """Where phonenumbers finds US and UK (or any +country) numbers in ``text``."""
    # Same length, so the spans fit the original text: separators libphonenumber ignores.
    normal = _ODD_SEPARATORS.sub("-", text)
    spans = []
    for region in ("US", "GB"):
        for match in phonenumbers.PhoneNumberMatcher(
                normal, region, leniency=phonenumbers.Leniency.POSSIBLE):
            digits = sum(c.isdigit() for c in match.raw_string)
            if digits < 7:
                continue
            if region == "GB" and match.raw_string[0] not in "0+(" and \
                    not phonenumbers.is_valid_number(match.number):
                continue  # UK numbers are written with their 0 or +44
            spans.append((match.start, match.end))
    return spans


def _mask_phones(text: str) -> str:
    if not any(c.isdigit() for c in text):
        return text
    spans = sorted(_phone_spans(text))
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + MASKS["phone"] + text[end:]
    return text


def _not_address(m: re.Match[str], _text: str) -> bool:
    words = m.group(2).split()
    if any(w.lower().strip(".,'") in _NOT_STREET_WORDS and w != "The" for w in words):
        return True
    street_type = m.group(3)
    if street_type.lower() in _AMBIGUOUS_TYPES:
        return not (street_type[0].isupper() or words[0][0].isupper())
    return False


def _not_postcode(m: re.Match[str], _text: str) -> bool:
    if m.group(0).upper().startswith("GIR"):
        return False
    if m.group(1).upper() not in _UK_AREAS:
        return True
    inward = m.group(3)
    ordinal = re.fullmatch(r"\d(st|nd|rd|th)", inward)
    return bool(ordinal and m.group(2) and inward.islower())  # "b12 3rd", not "SW1A 1ST"


def _not_district(m: re.Match[str], text: str) -> bool:
    if m.group(1).upper() not in _UK_AREAS:
        return True
    before, after = text[max(0, m.start() - 30):m.start()], text[m.end():m.end() + 30]
    if not before.strip(" ,.!?") and not after.strip(" ,.!?"):
        return False  # the message is the district alone
    return not (_PLACE_BEFORE.search(before) or _PLACE_AFTER.match(after))


def _not_zip(m: re.Match[str], text: str) -> bool:
    return bool(_QUANTITY_AFTER.match(text[m.end():m.end() + 20]))


def _mask_named(text: str) -> str:
    out, pos = [], 0
    for m in _NAME_INTRO.finditer(text):
        if m.start() < pos:
            continue
        words, end = 0, m.end()
        for w in _WORD.finditer(text, m.end()):
            gap = text[end:w.start()]
            if words == 3 or w.group(0).lower() in _NOT_NAME_WORDS or (words and gap.strip()):
                break
            words, end = words + 1, w.end()
        if words:
            out.append(text[pos:m.end()] + MASKS["name"])
            pos = end
    return "".join(out) + text[pos:]


def _mask_i_am(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if any(w.lower() in _NOT_NAME_WORDS for w in m.group(1).split()):
            return m.group(0)
        return m.group(0)[:m.start(1) - m.start()] + MASKS["name"]

    return _I_AM_FULL_NAME.sub(repl, text)


def _mask_long_numbers(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        found = m.group(0)
        if sum(c.isdigit() for c in found) < 7 or _YEARS.fullmatch(found.strip()):
            return found
        return MASKS["number"]

    return _LONG_NUMBER.sub(repl, text)


_STEPS: tuple[Callable[[str], str], ...] = (
    *(_sub(p, "email") for p in _EMAILS),
    _sub(_PLAIN_AT, "email", lambda m, _t: m.group(1).lower() in _NOT_EMAIL_NAMES),
    _sub(_MBI, "medicare_number"),
    _sub(_HICN, "medicare_number"),
    _sub(_SSN, "ssn"),
    _mask_ssn_words,
    _sub(_NHS, "nhs_number", _not_nhs),
    _sub(_DATE_NUMERIC, "date", _not_numeric_date),
    _sub(_DATE_ISO, "date", _not_iso_date),
    _sub(_DATE_DAY_MONTH, "date", _not_day_month),
    _sub(_DATE_MONTH_DAY, "date", _not_month_day),
    _mask_birth,
    _mask_phones,
    _sub(_ADDRESS, "address", _not_address),
    _sub(_PO_BOX, "address"),
    _sub(_POSTCODE, "postcode", _not_postcode),
    _sub(_ZIP_WORD, "zip"),
    _sub(_ZIP, "zip", _not_zip),
    _sub(_DISTRICT, "postcode", _not_district),
    _sub(_TITLED_NAME, "name"),
    _mask_named,
    _mask_i_am,
    _mask_long_numbers,
)


def mask(text: str) -> str:
    """``text`` with personal details replaced by the words in :data:`MASKS`."""
    if not text:
        return text
    for step in _STEPS:
        text = step(text)
    return text
