"""One reply, shaped for each channel: full text with links (REST), short numbered lines and
source lines (SMS, WhatsApp). The widget's drawing of the same parts is in test_browser.py."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

import knowledge
from knowledge import directory, shapes
from providers import search
from providers.geo import gazetteer


@pytest.fixture
def results_36109(directory_engine) -> knowledge.Reply:
    place = gazetteer().resolve("36109")
    with Session(directory_engine) as s:
        result = search.search(s, place.lat, place.lon, "hospice")
    return directory.results(result, "hospice", place.label)


def test_plain_text_keeps_every_detail_of_the_results(results_36109):
    plain = shapes.plain_text(results_36109.payload())
    assert plain.startswith("Hospices near 36109")
    assert "1. Baptist Hospice, " in plain and "Phone (334) 395-5000 (tel:+13343955000)" in plain
    assert plain.count("Map: https://www.google.com/maps/search/") == 3
    assert plain.rstrip().endswith(results_36109.after)


def test_sms_results_are_one_short_line_each_numbered_as_options(results_36109):
    text = shapes.sms_text(results_36109.payload(), first=1)
    lines = [line for line in text.splitlines() if re.match(r"^\d\. ", line)]
    assert re.fullmatch(r"1\. Baptist Hospice, (<1|\d+) mi, \(334\) 395-5000", lines[0])
    assert [line[:2] for line in lines] == ["1.", "2.", "3."]
    assert all(len(line) <= 70 for line in lines)
    assert "google.com/maps" not in text and "tel:" not in text  # nothing longer than it must be
    assert "Medicare" in text  # where the list comes from stays
    whatsapp = shapes.sms_text(results_36109.payload(), whatsapp=True, first=4)
    assert re.search(r"^4\. \*Baptist Hospice\*, ", whatsapp, re.M)
    options = shapes.card_options(results_36109.payload())
    assert [o.payload for o in options] == [f'/provider_detail{{"ordinal":"{n}"}}'
                                            for n in (1, 2, 3)]


def test_one_provider_in_full_keeps_its_phone_and_map(results_36109, directory_engine):
    place = gazetteer().resolve("36109")
    with Session(directory_engine) as s:
        hit = search.search(s, place.lat, place.lon, "hospice").hits[0]
    payload = directory.detail(hit, place.label).payload()
    for text in (shapes.plain_text(payload), shapes.sms_text(payload)):
        assert text.startswith("Baptist Hospice\n")
        assert "tel:+13343955000" in text and "https://www.google.com/maps/" in text


def test_an_answer_names_its_source_by_title_on_sms_and_in_full_in_plain_text(
        kb: knowledge.KnowledgeBase) -> None:
    reply = knowledge.render(kb, kb.get("what_is_palliative_care"), "en", "US")
    source = reply.sources[0]
    assert source.url.startswith("https://") and source.short and ": " not in source.short
    sms = shapes.sms_text(reply.payload())
    assert sms.startswith(reply.text)
    assert f"Source: {source.short}\n{source.url}" in sms  # the URL on its own line
    plain = shapes.plain_text(reply.payload())
    assert f"Source: {source.title} {source.url}" in plain


def test_the_welcome_offers_topics_that_exist(kb: knowledge.KnowledgeBase) -> None:
    welcome = shapes.welcome()
    assert 4 <= len(welcome.buttons) <= 6
    for button in welcome.buttons:
        match = re.fullmatch(r'/faq\{"faq_id":"(\w+)"\}', button.payload)
        assert (match and match.group(1) in kb.entries) or button.payload.startswith(
            "/find_provider") or button.payload in ("/start_check", "/start_prepare")
    assert "911" not in welcome.text and "999" not in welcome.text  # numbers: helplines.yml
