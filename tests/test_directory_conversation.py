"""Finding services over the REST channel, with the real Rasa server, action server and
directory database (SQLite file imported from the bundled CMS list on first start)."""

from __future__ import annotations

import csv
import json
import math
import urllib.request
import uuid
from typing import Any

import pytest

from knowledge.directory import distance_text, nice_case
from navigator import stack
from settings import ROOT

# The files themselves, not the search's loaders (providers.bundled, providers.geo)
CMS_CSV = ROOT / "providers" / "data" / "cms_hospice_general_information.csv"
ZCTA_FILE = ROOT / "providers" / "data" / "us_zcta_2023_centroids.csv"
UK_CSV = ROOT / "providers" / "data" / "uk_hospices.csv"
OUTCODES_CSV = ROOT / "providers" / "data" / "uk_outcode_centroids.csv"
UK_CAVEAT = "This UK list is not complete"


class User:
    """One person chatting over the REST channel; replies joined into one text."""

    def __init__(self, servers: stack.Stack | str, sender: str | None = None) -> None:
        self.url = servers if isinstance(servers, str) else servers.rest_url
        self.id = sender or f"test-{uuid.uuid4().hex}"
        self.last: list[dict[str, Any]] = []

    def say(self, text: str) -> str:
        body = json.dumps({"sender": self.id, "message": text}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            self.last = json.loads(response.read())
        return "\n".join(m.get("text") or "" for m in self.last)

    def buttons(self) -> dict[str, str]:
        return {b["title"]: b["payload"] for m in self.last for b in m.get("buttons") or []}


EARTH_RADIUS_MILES = 3958.7613  # the mean radius (IUGG), in miles


def _haversine_miles(here: tuple[float, float], there: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points in degrees."""
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (here, there))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(h))


def _nearest_hospices(zip_code: str) -> list[dict[str, str]]:
    """The CMS rows sorted by distance from a ZIP, computed independently of the search: the
    CMS CSV and the Census ZCTA centroid CSV read here, distances by the haversine above.

    Rows whose ZIP has no ZCTA centroid (PO boxes and the like, 35 of 4643) are left out;
    the search places those by GeoNames instead. None may be in the asked ZIP's own 3-digit
    area (for 60614 the nearest such row is about 130 miles away, in Peoria).
    """
    with ZCTA_FILE.open(encoding="utf-8") as fh:
        centroids = {r["GEOID"]: (float(r["LAT"]), float(r["LONG"]))
                     for r in csv.DictReader(fh)}
    with CMS_CSV.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    here = centroids[zip_code]
    placed, skipped = [], []
    for row in rows:
        there = centroids.get(row["Zip Code"][:5])
        if there is None:
            skipped.append(row["Zip Code"])
            continue
        placed.append({**row, "miles": _haversine_miles(here, there)})
    assert len(rows) == 4643 and len(skipped) < 50, (len(rows), skipped)
    assert not [z for z in skipped if z[:3] == zip_code[:3]], skipped
    return sorted(placed, key=lambda r: (r["miles"], r["CMS Certification Number (CCN)"]))


def test_hospices_near_a_real_zip_name_the_nearest_facility(servers):
    nearest = _nearest_hospices("60614")
    user = User(servers)
    reply = user.say("find hospice care near 60614")
    first = nice_case(nearest[0]["Facility Name"])
    assert f"1. {first}, " in reply
    digits = "".join(c for c in nearest[0]["PhoneNumber"] if c.isdigit())
    assert f"tel:+1{digits}" in reply
    assert "Medicare's list of certified hospices" in reply
    assert "Show more" in user.buttons()

    more = user.say("show more")
    assert f"4. {nice_case(nearest[3]['Facility Name'])}, " in more
    again = user.say("more please")  # after results, "more" means more results
    assert f"7. {nice_case(nearest[6]['Facility Name'])}, " in again
    second = user.say("call the second one")
    assert second.startswith(nice_case(nearest[1]["Facility Name"]))
    assert "tel:+1" in second


def test_near_me_asks_where_and_reasks_on_bad_input(servers):
    user = User(servers)
    assert "Where should I look?" in user.say("is there a pain clinic near me")
    bad = user.say("6061")
    assert "doesn't look like a ZIP code" in bad and "Where should I look?" not in bad
    assert "more than one Springfield" in user.say("Springfield")
    payload = user.buttons()["Springfield, IL"]
    honest = user.say(payload)
    assert honest.startswith("I don't have a list of pain clinics in the US yet")
    assert "\n1. " not in honest


def _nearest_uk(postcode: str) -> list[tuple[float, dict[str, str]]]:
    """The UK file's hospices by distance from a postcode's district centre, measured here
    from the CSVs: a row's own lat/long (England), else its district's centre (Scotland).
    Two Scottish rows are not hospices (a care home, a housing-support registration) and are
    not imported; none is near the postcodes asked."""
    with OUTCODES_CSV.open(encoding="utf-8") as fh:
        centres = {r["outcode"]: (float(r["latitude"]), float(r["longitude"]))
                   for r in csv.DictReader(fh)}
    with UK_CSV.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["nation"] == "England"
                or "Care at Home" in r["service_type"]]
    here = centres[postcode.split()[0]]
    placed = [(_haversine_miles(here, (float(r["latitude"]), float(r["longitude"]))
                                if r["latitude"] else centres[r["postcode"].split()[0]]), i, r)
              for i, r in enumerate(rows)]  # ties (one address) in the file's order
    return [(miles, row) for miles, _, row in sorted(placed, key=lambda p: p[:2])]


@pytest.mark.parametrize(("postcode", "source"), [
    ("SW1A 1AA", "the Care Quality Commission's register of hospices in England "
                 "(as at 1 November 2025)"),
    ("M1 1AE", "the Care Quality Commission's register of hospices in England "
               "(as at 1 November 2025)"),
    ("G2 1AA", "the Care Inspectorate's register of care services in Scotland "
               "(as at 31 May 2026)"),
])
def test_uk_postcodes_name_real_hospices_from_the_file(servers, postcode, source):
    user = User(servers)
    reply = user.say(f"hospice near {postcode}")
    assert reply.startswith(f"Hospices near {postcode}, nearest first:")
    for n, (miles, row) in enumerate(_nearest_uk(postcode)[:2], start=1):
        assert f"{n}. {row['name']}, {distance_text(round(miles, 1))} away\n" in reply
        assert f"tel:+44{row['phone'].replace(' ', '')[1:]}" in reply
    assert f"From {source}." in reply and "Open Government Licence v3.0" in reply
    assert UK_CAVEAT in reply and "Hospice UK" in reply and "district nurse" in reply


@pytest.mark.parametrize(("message", "nation"), [("hospice near CF10 1EP", "Wales"),
                                                  ("hospices near BT9 6AD", "Northern Ireland")])
def test_wales_and_northern_ireland_postcodes_get_the_signpost(servers, message, nation):
    reply = User(servers).say(message)
    assert reply.startswith(f"I don't have a list of hospices or palliative care services in "
                            f"{nation}")
    assert "https://www.hospiceuk.org/" in reply and "GP or district nurse" in reply
    assert "\n1. " not in reply and "miles" not in reply


def test_a_uk_town_lists_hospices_with_the_caveat(servers):
    reply = User(servers).say("are there any hospices in Leeds")
    assert reply.startswith("Hospices near Leeds, England, nearest first:")
    assert "\n1. Sue Ryder - Wheatfields Hospice, about " in reply
    assert UK_CAVEAT in reply and "https://www.hospiceuk.org/" in reply


def test_a_childrens_hospice_search_lists_childrens_hospices_first(servers):
    user = User(servers)
    reply = user.say("is there a children's hospice near M1 1AE")
    assert "Children's hospices near M1 1AE, nearest first:" in reply
    assert "1. Francis House Children's Hospice, about 5 miles away" in reply
    assert "All hospices" in user.buttons()


def test_palliative_care_near_a_zip_names_real_hospices_with_the_caveat(servers):
    nearest = _nearest_hospices("60614")
    reply = User(servers).say("palliative care near 60614")
    assert reply.startswith("I don't have a list of palliative care teams in the US")
    assert "Many hospices also run palliative care for people who are not in hospice" in reply
    assert f"1. {nice_case(nearest[0]['Facility Name'])}, " in reply
    assert f"3. {nice_case(nearest[2]['Facility Name'])}, " in reply
    assert "Ask the doctor for a referral to a palliative care team" in reply


def test_a_question_with_a_place_gets_the_answer_and_the_search(servers):
    reply = User(servers).say("can mum's GP refer her to the hospice in Leeds or do we have "
                              "to do it ourselves")
    assert "Source:" in reply and "GP" in reply[:reply.index("Source:")]
    assert "\n1. Sue Ryder - Wheatfields Hospice, about " in reply
    assert reply.index("Source:") < reply.index("Hospices near Leeds, England")


def test_an_unclear_question_with_a_search_gets_the_search_and_topics_not_did_you_mean(
        servers):
    user = User(servers)
    reply = user.say("how does hospice actually work? we live in 60614")
    assert f"1. {nice_case(_nearest_hospices('60614')[0]['Facility Name'])}, " in reply
    assert "Did you mean" not in reply and "didn't quite get that" not in reply
    if "Source:" not in reply:  # the classifier is unsure of the question: topics offered
        assert "You also asked a question. Is it one of these?" in reply
        assert any(p.startswith('/faq{"faq_id":') for p in user.buttons().values())


def test_a_question_with_near_me_gets_the_answer_then_where(servers):
    user = User(servers)
    reply = user.say("is palliative care only for people who are dying? is there any near me")
    assert "Source:" in reply and reply.rstrip().endswith(
        "Where should I look? Send a ZIP code (like 60614), a town and state (like Tulsa, OK),"
        " or a UK postcode.")
    assert "Many hospices also run palliative care" in user.say("36109")


def test_a_crisis_in_the_middle_of_a_search_wins_and_the_search_ends(servers):
    user = User(servers)
    assert "Where should I look?" in user.say("find a hospice for my mom")
    crisis = user.say("I don't want to live anymore")
    assert "988" in crisis and "Hospices near" not in crisis
    # The form is over: a place now starts a fresh search instead of being an answer to it.
    assert "Hospices near 36109" in user.say("36109")


def test_a_question_while_asked_where_is_answered_then_asked_again(servers):
    user = User(servers)
    user.say("find a hospice near me")
    reply = user.say("does medicare pay for hospice?")
    assert "Source:" in reply and "Where should I look?" in reply
    assert "Hospices near 83702 (Boise, ID)" in user.say("83702")


def test_asking_for_a_person_while_asked_where_ends_the_search(servers):
    user = User(servers)
    assert "Where should I look?" in user.say("find a hospice near me")
    person = user.say("can I talk to a real person please")
    assert "doctor, nurse or GP" in person and "Where should I look?" not in person
    # The form is over: the next question is just answered, not followed by "where?"
    answer = user.say("what is palliative care?")
    assert "Source:" in answer and "Where should I look?" not in answer


def test_nowhere_near_says_so_and_points_to_care_compare(servers):
    user = User(servers)
    reply = user.say("hospice near 99723")
    assert "couldn't find any hospices within 100 miles of 99723" in reply
    assert "https://www.medicare.gov/care-compare/" in reply
    assert "as far as I search" in user.say("widen the search")


def test_about_the_data_carries_the_os_attribution(servers):
    reply = User(servers).say("where does your information come from?")
    assert "Contains OS data © Crown copyright and database right" in reply
