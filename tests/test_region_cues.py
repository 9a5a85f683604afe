"""Which country a message comes from, for the crisis reply's numbers (knowledge/region_cues)."""

from __future__ import annotations

import pytest

from knowledge.region_cues import region_of_message


@pytest.mark.parametrize(("text", "region"), [
    ("im in glasgow and i cant go on", "UK"),              # a town, lower case, after "in"
    ("we live in Tulsa, OK and he has a gun", "US"),        # a town and its state
    ("Orange County, CA", "US"),                            # a state after a comma
    ("my mum's in Cardiff", "UK"),
    ("postcode LS6 2AB", "UK"), ("zip 60614", "US"),
    ("the GP won't listen", "UK"), ("they sent him home from the ER", "US"),
    ("medicare won't pay", "US"), ("we called 999", "UK"),
    ("Lincoln, Lincolnshire", "UK"),                        # the county qualifies the town
    ("we're in Yorkshire", "UK"), ("here in Ohio", "US"),
    ("We moved to Milwaukee from Manchester years ago", "US"),  # where they are now wins
    ("grew up in Glasgow but I'm in Chicago now", "US"),
    ("he fell in the Tesco car park", "UK"), ("sat on the bridge over the M6", "UK"),
    ("the lodger spent £900 on her card", "UK"), ("they charged mom $4,000", "US"),
    ("she has a temp of 101 and won't drink", "US"),   # only the US uses Fahrenheit
    ("she's on the ward at St Thomas' and won't eat", "UK"),
    # a name after a sentence end is a place, not "my daughter Fresno"
    ("pls dont call my daughter. Fresno", "US"),
    ("walked to the Clifton suspension bridge again", "UK"),   # not Clifton, NJ
    ("he spent it all at Target", "US"), ("my son takes my state pension", "UK"),
    ("his brother has the LPA and won't let us in", "UK"),
    ("his son has a brain tumor at St Jude", "US"),
    # dictated to a phone: numbers and letters spelled out
    ("should i ring the g p or one one one", "UK"), ("the doctor at the v a said no", "US"),
    ("she's been moved to Pinderfields", "UK"), ("a new Duragesic patch tonight", "US"),
])
def test_places_and_telling_words_give_the_country(text: str, region: str) -> None:
    assert region_of_message(text) == region


@pytest.mark.parametrize("text", [
    "I want to die", "she is in shock", "he's in hospital", "we're in march",
    "I live in reading the news all day",
    "My wife died in March and I can't go on without her",  # a month, not the town of March
    "my sister in Leeds and my brother in Texas won't help",  # they disagree: both numbers
    "my boots are soaked", "grandad is 101 years old", "her temp is 39.4",
    "my target is to walk to the shop", "my son Tyler is in hospital",
])
def test_no_country_when_nothing_or_conflicting_cues_tell(text: str) -> None:
    assert region_of_message(text) is None


@pytest.mark.parametrize(("text", "region"), [
    ("can't cope, standing on the bridge right now. gateshead", "UK"),  # lower case, no "in"
    ("he's not breathing. aberystwyth", "UK"),                 # a rare name, a smaller town
    ("help my dad collapsed, we're in sw19", "UK"),              # a postcode district alone
    ("postcode m145tq mum not responding", "UK"),
    ("my zip is 30303-1234 and he's unresponsive", "US"),
    ("Boston, MA. I want to die", "US"),                       # the state decides
    ("Boston, Lincolnshire and I want to die", "UK"),           # the county decides
    ("Birmingham AL, my son hits me", "US"),
    ("I live in Birmingham and my son hits me, the GP knows", "UK"),  # a second cue decides
    ("Perth, Scotland, and I can't go on", "UK"),
    ("We're in St. Louis and she's not breathing", "US"),
    ("Looking for a widows' group near Bury St Edmunds", "UK"),
    ("I'm in Tyler and my son keeps stealing my pills", "US"),  # "in": a place
    ("NYC here, my mom just took all her pills", "US"), ("we live in philly", "US"),
    ("calling from LA, my husband is having a seizure", "US"),
    ("Cook County, my uncle keeps taking her oxycodone", "US"),
    ("Kent County Council won't help", "UK"),
    ("we're in Hackney and he's not breathing", "UK"), ("i'm scottish and i want to die", "UK"),
    ("What is DNACPR?", "UK"), ("how much acetaminophen is too much", "US"),
])
def test_any_town_postcode_state_or_zip_tells_the_country(text: str, region: str) -> None:
    assert region_of_message(text) == region


@pytest.mark.parametrize("text", [
    "Boston. I want to die",            # Boston, MA or Boston, Lincolnshire
    "I live in Birmingham and my son hits me",
    "Perth, and I can't go on",         # Scotland or Western Australia
    "i'm in Cambridge and he's not breathing",
    "in dublin and want to end my life",  # Ireland, not Dublin, Ohio
    "my son Tyler keeps stealing my pills",  # a person, not Tyler, Texas
    "mum's in the bath and won't wake up",   # an everyday word, not Bath
    "vitamin b12 is low, she's collapsed",   # not the B12 postcode district
    "she has mets in L4 and can't walk",      # a vertebra, not Liverpool L4
])
def test_ambiguous_names_alone_tell_no_country(text: str) -> None:
    assert region_of_message(text) is None
