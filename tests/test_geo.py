"""Offline geocoding of what people type: ZIPs, towns, UK postcodes, and clear failures."""

from __future__ import annotations

import pytest

from providers.geo import LocationError, distance_miles, gazetteer


@pytest.fixture(scope="module")
def gaz():
    return gazetteer()


@pytest.mark.parametrize(
    ("text", "label", "precision"),
    [
        ("60614", "60614 (Chicago, IL)", "zip"),
        ("60614-3302", "60614 (Chicago, IL)", "zip"),
        ("my zip code is 30303-1234", "30303 (Atlanta, GA)", "zip"),
        ("Boise, ID", "Boise, ID", "city"),
        ("tulsa ok", "Tulsa, OK", "city"),
        ("Columbus Ohio", "Columbus, OH", "city"),
        ("we live near springfield missouri", "Springfield, MO", "city"),
        ("St. Louis", "Saint Louis, MO", "city"),
        ("Boise", "Boise, ID", "city"),
        ("Leeds", "Leeds, England", "town"),
        ("Leeds, England", "Leeds, England", "town"),  # not England, AR
        ("cardiff wales", "Cardiff, Wales", "town"),  # not Wales, South Yorkshire
        ("Glasgow, Scotland", "Glasgow, Scotland", "town"),
        ("England, AR", "England, AR", "city"),
        ("SW1A 1AA", "SW1A 1AA", "postcode_district"),
        ("ls1 4dy", "LS1 4DY", "postcode_district"),
        ("M1", "M1", "postcode_district"),
    ],
)
def test_understands_places_people_type(gaz, text, label, precision):
    place = gaz.resolve(text)
    assert (place.label, place.precision) == (label, precision)


def test_zip_points_are_where_the_zip_is(gaz):
    chicago = gaz.resolve("60614")
    # Lincoln Park, Chicago: the ZCTA centroid is within a couple of miles of the park.
    assert distance_miles(chicago.lat, chicago.lon, 41.9214, -87.6513) < 2
    po_box = gaz.zip("00501")  # an IRS PO-box ZIP with no ZCTA: GeoNames point instead
    assert po_box is not None and po_box.precision == "zip_approx"


@pytest.mark.parametrize("town", ["Springfield", "Norwich", "Newcastle", "York"])
def test_each_which_one_button_finds_its_own_town(gaz, town):
    """The buttons offered for an ambiguous town send its label back: each must place it."""
    with pytest.raises(LocationError) as err:
        gaz.resolve(town)
    for label in err.value.candidates:
        assert gaz.resolve(label).label == label


def test_springfield_asks_which_state(gaz):
    with pytest.raises(LocationError) as err:
        gaz.resolve("Springfield")
    assert err.value.reason == "ambiguous"
    assert {"Springfield, IL", "Springfield, MO", "Springfield, MA"} <= set(err.value.candidates)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("?!", "empty"),
        ("6061", "invalid_zip"),
        ("606145", "invalid_zip"),
        ("99999", "unknown_zip"),
        ("ZZ9 9ZZ", "unknown_postcode"),
        ("BT1 1AA", "northern_ireland"),
        ("Ohio", "need_town"),
        ("England", "need_uk_town"),
        ("Springfield, AK", "not_in_state"),
        ("asdkjh qwpoeiru", "unknown_place"),
        ("x" * 10_000, "unknown_place"),
    ],
)
def test_bad_input_says_what_is_wrong(gaz, text, reason):
    with pytest.raises(LocationError) as err:
        gaz.resolve(text)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("text", "nation"),
    [
        ("SW1A 1AA", "ENG"), ("M1 1AE", "ENG"), ("G2 1AA", "SCT"), ("EH1 1YZ", "SCT"),
        ("CF10 1EP", "WLS"), ("LL11 1AA", "WLS"), ("CH5 1AA", "WLS"), ("CH1 1AA", "ENG"),
        ("SY23 1AA", "WLS"), ("TD15 1AA", "ENG"), ("Cardiff", "WLS"), ("Belfast", "NIR"),
    ],
)
def test_uk_places_know_their_nation(gaz, text, nation):
    """Wales and Northern Ireland have no hospice list: the search must know a place is there."""
    place = gaz.resolve(text)
    assert (place.country, place.state) == ("GB", nation)
