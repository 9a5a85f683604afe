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
])
def test_places_and_telling_words_give_the_country(text: str, region: str) -> None:
    assert region_of_message(text) == region


@pytest.mark.parametrize("text", [
    "I want to die", "she is in shock", "he's in hospital", "we're in march",
    "I live in reading the news all day",
    "my sister in Leeds and my brother in Texas won't help",  # they disagree: both numbers
])
def test_no_country_when_nothing_or_conflicting_cues_tell(text: str) -> None:
    assert region_of_message(text) is None
