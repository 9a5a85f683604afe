"""knowledge.privacy.mask: personal details in every format people write them are masked;
ordinary clinical numbers and words are left alone. Table-driven: one row per format."""

from __future__ import annotations

import socket
import time

import pytest

from knowledge.privacy import MASKS, mask

# (what someone wrote, the detail inside it, the mask it must become)
MASKED = [
    # phone numbers, US and UK, every separator
    ("call me on 07700 900123", "07700 900123", "[phone]"),
    ("ring 07700900123", "07700900123", "[phone]"),
    ("mobile 07700-900-123", "07700-900-123", "[phone]"),
    ("+44 7700 900123 any time", "+44 7700 900123", "[phone]"),
    ("+447700900123", "+447700900123", "[phone]"),
    ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958", "[phone]"),
    ("office (020) 7946 0958", "(020) 7946 0958", "[phone]"),
    ("landline 0161 496 0000", "0161 496 0000", "[phone]"),
    ("020-7946-0958 is the home number", "020-7946-0958", "[phone]"),
    ("call (312) 555-0199", "(312) 555-0199", "[phone]"),
    ("+1 312 555 0199", "+1 312 555 0199", "[phone]"),
    ("+1.312.555.0199", "+1.312.555.0199", "[phone]"),
    ("312.555.0199", "312.555.0199", "[phone]"),
    ("1-800-555-0199", "1-800-555-0199", "[phone]"),
    ("en dash 312\u2013555\u20130199", "312\u2013555\u20130199", "[phone]"),
    ("em dash 312\u2014555\u20140199", "312\u2014555\u20140199", "[phone]"),
    ("slashes 312/555/0199", "312/555/0199", "[phone]"),
    ("underscores 312_555_0199", "312_555_0199", "[phone]"),
    ("seven digits 555-0199", "555-0199", "[phone]"),
    ("seven digits 5550199", "5550199", "[phone]"),
    ("call 212.555.0147 ext. 12 please", "212.555.0147 ext. 12", "[phone]"),
    ("spaced out 0 7 7 0 0 9 0 0 1 2 3", "0 7 7 0 0 9 0 0 1 2 3", "[phone]"),
    # emails, plain and obfuscated
    ("write to mary.jones@example.org.", "mary.jones@example.org", "[email]"),
    ("john_smith99@hotmail.co.uk, thanks", "john_smith99@hotmail.co.uk", "[email]"),
    ("mary @ example.com", "mary @ example.com", "[email]"),
    ("mary (at) example", "mary (at) example", "[email]"),
    ("mary (at) gmail (dot) com", "mary (at) gmail (dot) com", "[email]"),
    ("Mary [at] example [dot] org", "Mary [at] example [dot] org", "[email]"),
    ("mary at gmail dot com", "mary at gmail dot com", "[email]"),
    ("mary dot jones at nhs dot net", "mary dot jones at nhs dot net", "[email]"),
    # UK postcodes, full and district
    ("we are in SW1A 1AA", "SW1A 1AA", "[postcode]"),
    ("postcode is sw1a1aa", "sw1a1aa", "[postcode]"),
    ("EC1A-1BB", "EC1A-1BB", "[postcode]"),
    ("GIR 0AA", "GIR 0AA", "[postcode]"),
    ("E1 6AN", "E1 6AN", "[postcode]"),
    ("hospice near ls6 2ab", "ls6 2ab", "[postcode]"),
    ("hospices near SW1A", "SW1A", "[postcode]"),
    ("I live in B12", "B12", "[postcode]"),
    ("M1", "M1", "[postcode]"),
    # US ZIP codes
    ("near 60614", "60614", "[zip]"),
    ("ZIP60614", "60614", "[zip]"),
    ("zip code: 60614-1234", "60614-1234", "[zip]"),
    ("NY 10118", "10118", "[zip]"),
    # dates, and dates of birth
    ("seen on 12/03/2026", "12/03/2026", "[date]"),
    ("12-03-2026", "12-03-2026", "[date]"),
    ("12\u201303\u20132026", "12\u201303\u20132026", "[date]"),
    ("12.03.26", "12.03.26", "[date]"),
    ("3/12/50", "3/12/50", "[date]"),
    ("2026-03-12", "2026-03-12", "[date]"),
    ("on 3 March 2026", "3 March 2026", "[date]"),
    ("March 3rd, 2026", "March 3rd, 2026", "[date]"),
    ("Mar 3, 2026", "Mar 3, 2026", "[date]"),
    ("the 3rd of march", "3rd of march", "[date]"),
    ("since May 2024", "May 2024", "[date]"),
    ("DOB: 12/03/1950", "12/03/1950", "[date]"),
    ("DOB 12 03 1950", "12 03 1950", "[date]"),
    ("born 1948", "1948", "[date]"),
    ("date of birth 120350", "120350", "[date]"),
    # NHS, Medicare and Social Security numbers
    ("my NHS number is 943 476 5919", "943 476 5919", "[nhs-number]"),
    ("9434765919", "9434765919", "[nhs-number]"),
    ("NHS no 485-777-3456", "485-777-3456", "[nhs-number]"),
    ("Medicare 1EG4-TE5-MK73", "1EG4-TE5-MK73", "[medicare-number]"),
    ("mbi 1eg4te5mk73", "1eg4te5mk73", "[medicare-number]"),
    ("old card 123-45-6789A", "123-45-6789A", "[medicare-number]"),
    ("123456789A", "123456789A", "[medicare-number]"),
    ("SSN 123-45-6789", "123-45-6789", "[ssn]"),
    ("social security number 123456789", "123456789", "[ssn]"),
    # street addresses
    ("I live at 12 Acacia Avenue", "12 Acacia Avenue", "[address]"),
    ("221B Baker St", "221B Baker St", "[address]"),
    ("1600 Pennsylvania Ave NW", "1600 Pennsylvania Ave NW", "[address]"),
    ("10 Downing Street, London", "10 Downing Street", "[address]"),
    ("Flat 3, 9 Mill Lane", "Flat 3, 9 Mill Lane", "[address]"),
    ("apt 4B, 350 5th Ave", "apt 4B, 350 5th Ave", "[address]"),
    ("1 The Green", "1 The Green", "[address]"),
    ("PO Box 12", "PO Box 12", "[address]"),
    ("14 oak road", "14 oak road", "[address]"),
    # names after a title or an introduction
    ("my name is Mary Jones and", "Mary Jones", "[name]"),
    ("Mrs Patel called", "Mrs Patel", "[name]"),
    ("Dr. Okafor said", "Dr. Okafor", "[name]"),
    # any other long number
    ("international 0044 7700 9001 23", "0044 7700 9001 23", "[phone]"),
    ("case ref 1234 5678 9012", "1234 5678 9012", None),
]

# Clinical and everyday wording that must come out unchanged.
KEPT = [
    "5 days", "stage 4", "12 weeks", "6 months", "age 87", "24/7", "pain is 8/10",
    "BP 120/80", "10 mg twice a day", "morphine 2.5 mg every 4 hours", "vitamin B12",
    "it may help", "3 times a day for 2 weeks", "12 weeks down the road", "5 days in a row",
    "between 2019-2021", "he is in his 70s", "room 12, ward 7B", "$15,000 a year",
    "costs 12000 dollars", "16000 people", "CA19-9 went up", "stage IV, 2-3 weeks, 4-6 hours",
    "PHQ-9 score 12", "since March", "in May", "COVID-19 in 2020", "March 12 weeks ago",
    "call 911 or 999 or 988 or 116 123 or 111", "she is at the hospice", "I'm at home now",
    "my dad is close to the end", "we are 2 close friends", "give 2 mg of morphine at 10 pm",
    "what is a DNR", "I'm scared", "my name is not important", "she is 87 years old",
    "the nurse comes 2 days a week", "is stage 4 cancer terminal", "£12,000 per year",
]


@pytest.mark.parametrize(("text", "detail", "word"), MASKED, ids=[r[0] for r in MASKED])
def test_each_format_is_masked(text: str, detail: str, word: str | None) -> None:
    masked = mask(text)
    assert detail not in masked
    assert masked == text.replace(detail, word or MASKS["number"])  # and nothing else changed


def test_there_are_at_least_forty_formats_of_every_kind_together() -> None:
    assert len(MASKED) >= 40
    assert {w for _, _, w in MASKED if w} == set(MASKS.values()) - {MASKS["number"]}


@pytest.mark.parametrize("text", KEPT)
def test_clinical_and_everyday_text_is_left_alone(text: str) -> None:
    assert mask(text) == text


def test_a_message_with_many_details() -> None:
    text = ("Hi, my name is Mary Jones, I live at 12 Acacia Avenue, Leeds LS6 2AB. Mum's NHS "
            "number is 943 476 5919, DOB 03/12/1938. Call 07700 900123 or email "
            "mary.jones@example.org. She has had stage 4 cancer for 6 months.")
    masked = mask(text)
    assert masked == ("Hi, my name is [name], I live at [address], Leeds [postcode]. Mum's NHS "
                      "number is [nhs-number], DOB [date]. Call [phone] or email [email]. "
                      "She has had stage 4 cancer for 6 months.")


def test_masking_is_stable_and_handles_empty_text() -> None:
    assert mask("") == ""
    once = mask("ring 07700 900123 at 12 Acacia Avenue")
    assert mask(once) == once


def test_nothing_is_fetched_from_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """phonenumbers' metadata ships in the package: other countries' numbers load offline."""
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("mask() tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert mask("+33 1 42 68 53 00 or +49 30 901820 or +61 2 9374 4000") == \
        "[phone] or [phone] or [phone]"


def test_the_hand_off_quote_uses_the_same_masking() -> None:
    from actions.handoff import MAX_QUOTE, redact

    text = "call 07700 900123 about mum, NHS 943 476 5919 " + "x" * 400
    assert redact(text) == mask(text)[:MAX_QUOTE]
    assert "900123" not in redact(text) and "5919" not in redact(text)


@pytest.mark.parametrize("text", [
    "a." * 2000, "a" * 4000, "1-" * 2000 + "x", "1" * 4000 + "x", "1 " * 2000 + "x",
    "a dot " * 800 + "at b", "SW1 " * 1000, "12 a " * 800, "a (at) " * 600,
], ids=["dots", "letters", "dashes", "digits", "spaced-digits", "spoken-dots", "districts",
        "numbers-and-words", "bracketed-at"])
def test_hostile_input_is_masked_quickly(text: str) -> None:
    """No pattern backtracks badly: 4,000 characters of the worst kinds in well under a
    second (it once took minutes on "a.a.a...": a dotted run tried two ways at each dot)."""
    started = time.perf_counter()
    mask(text)
    assert time.perf_counter() - started < 1.0
