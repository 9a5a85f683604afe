"""Replies around a provider search: asking where, results as short cards, honest signposts.

The wording lives in directory.yml; providers come from `providers.search` hits, never from
here. Output is channel-neutral text with `tel:` and map links, plus structured cards that a
rich channel (the web widget) may draw instead.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import yaml

from knowledge import Button, Reply
from providers import services
from providers.search import Hit, SearchResult

FILE = Path(__file__).parent / "directory.yml"
SMALL_WORDS = {"of", "and", "the", "at", "for", "in", "on", "by", "to", "a"}
KEEP_UPPER = {"LLC", "INC", "LP", "LLP", "PC", "PLLC", "USA", "VNA", "VITAS", "II", "III", "IV",
              "SE", "NE", "NW", "SW", "N", "S", "E", "W", "HHC", "UAB", "OSF", "HCA", "CHI"}


@lru_cache(maxsize=1)
def _content() -> dict[str, Any]:
    return yaml.safe_load(FILE.read_text(encoding="utf-8"))


def texts(language: str = "en") -> dict[str, Any]:
    """The wording for a language (English when the language has none yet)."""
    content = _content()
    return content.get(language) or content["en"]


def nice_case(name: str) -> str:
    """'BAPTIST HOSPICE OF THE SOUTH, LLC' -> 'Baptist Hospice of the South, LLC'."""
    if not name.isupper():
        return name
    words = []
    for i, word in enumerate(name.split()):
        bare = word.strip(",.()&-")
        if bare in KEEP_UPPER:
            words.append(word)
        elif i and bare.lower() in SMALL_WORDS:
            words.append(word.lower())
        else:
            words.append("-".join(p[:1].upper() + p[1:].lower() for p in word.split("-")))
    return " ".join(words)


def phone_display(e164: str) -> str:
    """'+13343955000' -> '(334) 395-5000'; '+441134960000' -> '0113 496 0000'."""
    if e164.startswith("+1") and len(e164) == 12:
        d = e164[2:]
        return f"({d[:3]}) {d[3:6]}-{d[6:]}"
    if e164.startswith("+44"):
        d = "0" + e164[3:]
        return f"{d[:4]} {d[4:7]} {d[7:]}" if len(d) == 11 else d
    return e164


def address(hit: Hit) -> str:
    """One line: street, town, state and ZIP (or postcode)."""
    street = ", ".join(nice_case(p) for p in (hit.address_line1, hit.address_line2) if p)
    town = nice_case(hit.city or "")
    tail = " ".join(p for p in (hit.region, hit.postal_code) if p)
    return ", ".join(p for p in (street, town, tail) if p)


def map_url(hit: Hit) -> str:
    """A map search for the provider's name and address (opens the phone's map app)."""
    query = f"{nice_case(hit.name)}, {address(hit)}"
    return f"https://www.google.com/maps/search/?api=1&query={quote_plus(query)}"


def source_name(source: str, language: str = "en") -> str:
    """Who the data comes from, in words."""
    names = _content()["sources"]
    return names.get(source, names["default"])


def distance_text(miles: float) -> str:
    """'less than a mile', 'about 1 mile', 'about 12 miles': rough, so no decimals."""
    if miles < 1:
        return "less than a mile"
    return "about 1 mile" if round(miles) == 1 else f"about {miles:.0f} miles"


def card(hit: Hit) -> dict[str, Any]:
    """A structured card for rich channels."""
    return {"id": hit.id, "name": nice_case(hit.name), "miles": round(hit.distance_miles, 1),
            "address": address(hit), "phone": phone_display(hit.phone) if hit.phone else None,
            "tel": f"tel:{hit.phone}" if hit.phone else None, "map": map_url(hit),
            "source": hit.source}


def results(result: SearchResult, service: str, place_label: str,
            language: str = "en") -> Reply:
    """Cards for a page of hits, with the widening note, the source and follow-ups."""
    t = texts(language)
    lines = []
    if result.widened_from and result.offset == 0:
        lines.append(t["widened"].format(asked=result.widened_from, radius=result.radius_miles))
    plural = services.plural(service)
    lines.append(t["results"].format(plural=plural[:1].upper() + plural[1:], place=place_label))
    for n, hit in enumerate(result.hits, start=result.offset + 1):
        fmt = t["card"] if hit.phone else t["card_no_phone"]
        lines.append(fmt.format(
            n=n, name=nice_case(hit.name), distance=distance_text(hit.distance_miles),
            address=address(hit), phone=phone_display(hit.phone) if hit.phone else "",
            tel=hit.phone or "", map=map_url(hit)))
    sources = sorted({h.source for h in result.hits})
    lines.append(t["footer"].format(source=" and ".join(source_name(s) for s in sources)))
    return Reply("\n\n".join(lines), _follow_ups(result, service, t),
                   [card(h) for h in result.hits])


def _follow_ups(result: SearchResult, service: str, t: dict[str, Any]) -> list[Button]:
    buttons = []
    if result.has_more:
        buttons.append(Button(t["buttons"]["more"], "/provider_more"))
    elif result.radius_miles < 100:
        buttons.append(Button(t["buttons"]["widen"], "/provider_widen"))
    for other in services.SERVICES:
        if other != service and len(buttons) < 3:
            buttons.append(Button(t["buttons"][other], f'/find_provider{{"service":"{other}"}}'))
    return buttons


def signpost(service: str, region: str, language: str = "en") -> tuple[str, str]:
    """(text, url) of the national route for a service in a region."""
    posts = texts(language)["signposts"]
    by_service = posts.get(region) or posts["US"]
    post = by_service.get(service) or by_service["hospice"]
    return post["text"], post["url"]


def nothing_near(service: str, place_label: str, radius: int, region: str, source: str,
                 language: str = "en") -> Reply:
    """None within the widest radius: say so, and where else to look."""
    t = texts(language)
    text, url = signpost(service, region, language)
    head = t["none_near"].format(plural=services.plural(service), radius=radius,
                                 place=place_label, source=source_name(source, language))
    return Reply(f"{head}\n\n{text}\n{url}", _other_services(service, t))


def no_data(service: str, region: str, language: str = "en") -> Reply:
    """The directory holds nothing of this kind for this country: say so honestly."""
    t = texts(language)
    where = t["where_uk"] if region == "UK" else t["where_us"]
    text, url = signpost(service, region, language)
    head = t["no_data"].format(plural=services.plural(service), where=where)
    return Reply(f"{head} {text}\n{url}", _other_services(service, t) if region == "US" else [])


def _other_services(service: str, t: dict[str, Any]) -> list[Button]:
    return [Button(t["buttons"][o], f'/find_provider{{"service":"{o}"}}')
            for o in services.SERVICES if o != service]


def detail(hit: Hit, place_label: str, language: str = "en") -> Reply:
    """Everything the directory knows about one provider."""
    t = texts(language)
    distance = distance_text(hit.distance_miles)
    lines = [t["detail"].format(name=nice_case(hit.name), address=address(hit),
                                distance=distance[:1].upper() + distance[1:], place=place_label)]
    if hit.phone:
        lines.append(t["detail_phone"].format(phone=phone_display(hit.phone), tel=hit.phone))
    else:
        lines.append(t["detail_no_phone"])
    lines.append(t["detail_map"].format(map=map_url(hit)))
    if hit.source == "cms_hospice" and hit.certified_on:
        lines.append(t["detail_cms"].format(year=hit.certified_on[:4],
                                            ownership=(hit.ownership or "not given").lower()))
    lines.append(t["detail_source"].format(source=source_name(hit.source, language),
                                           updated=hit.updated_on))
    return Reply("\n".join(lines), [], [card(hit)])


def location_error(reason: str, text: str, candidates: list[str],
                   language: str = "en") -> Reply:
    """A specific, friendly re-ask for a place that could not be understood."""
    t = texts(language)["errors"]
    message = t.get(reason, t["unknown_place"]).format(text=text[:40])
    buttons = [Button(c, f'/inform_location{{"location":"{c}"}}') for c in candidates[:4]]
    return Reply(message, buttons)
