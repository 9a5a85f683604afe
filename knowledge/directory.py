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

from knowledge.render import Button, Reply, faq_payload
from providers import search, services
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
    """'+13343955000' -> '(334) 395-5000'; '+441134960000' -> '0113 496 0000' (UK numbers
    grouped by the length of their area code, near enough)."""
    if e164.startswith("+1") and len(e164) == 12:
        d = e164[2:]
        return f"({d[:3]}) {d[3:6]}-{d[6:]}"
    if e164.startswith("+44"):
        d = "0" + e164[3:]
        if len(d) != 11:
            return d
        if d.startswith("02"):  # London, Cardiff, ...: 020 7599 7777
            return f"{d[:3]} {d[3:7]} {d[7:]}"
        if d.startswith(("01", "07")) and not (d[2] == "1" or d[3] == "1"):
            return f"{d[:5]} {d[5:]}"  # 01922 422500, 07700 900123
        return f"{d[:4]} {d[4:7]} {d[7:]}"  # 0113 496 0000, 0300 123 4567
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


def long_date(iso: str, language: str = "en") -> str:
    """'2025-11-01' -> '1 November 2025'."""
    year, month, day = (int(p) for p in iso.split("-"))
    return f"{day} {texts(language)['months'][month - 1]} {year}"


def is_uk_source(source: str) -> bool:
    """Whether a source's records are from the (incomplete) UK hospice list."""
    return source in _content()["uk_sources"]


def no_list_nation(state: str | None) -> str | None:
    """The name of a UK nation the directory has no list for (Wales, Northern Ireland)."""
    return _content()["no_list_nations"].get(state or "")


def kind_text(hit: Hit, language: str = "en") -> str:
    """'In-patient hospice, 28 beds' or 'Children's hospice; Hospice at home'; '' if unknown."""
    t = texts(language)
    kinds = [t["kinds"][k] for k in services.HOSPICE_KINDS[::-1] if k in hit.kinds]
    text = "; ".join(k if i == 0 else k[:1].lower() + k[1:] for i, k in enumerate(kinds))
    if hit.beds and "hospice_inpatient" in hit.kinds:
        text += ", " + t["beds"].format(beds=hit.beds)
    return text


def _sources_line(hits: list[Hit], t: dict[str, Any], language: str) -> str:
    """'Medicare's list ...', or each UK source with the date its data is from."""
    parts = []
    for source in sorted({h.source for h in hits}):
        name = source_name(source, language)
        dates = sorted(h.as_of for h in hits if h.source == source and h.as_of)
        parts.append(t["as_of"].format(source=name, date=long_date(dates[-1], language))
                     if dates else name)
    return " and ".join(parts)


def footer(hits: list[Hit], language: str = "en") -> str:
    """Where the list comes from; for UK records also the licence lines and the caveat."""
    t = texts(language)
    lines = [t["footer"].format(source=_sources_line(hits, t, language))]
    attribution = _content()["attribution"]
    lines += [attribution[s] for s in sorted({h.source for h in hits}) if s in attribution]
    if any(is_uk_source(h.source) for h in hits):
        lines.append(t["uk_caveat"])
    return "\n".join(lines)


def distance_text(miles: float) -> str:
    """'less than a mile', 'about 1 mile', 'about 12 miles': rough, so no decimals."""
    if miles < 1:
        return "less than a mile"
    return "about 1 mile" if round(miles) == 1 else f"about {miles:.0f} miles"


def short_distance(miles: float) -> str:
    """'<1 mi', '2 mi': for a short line (SMS)."""
    return "<1 mi" if miles < 1 else f"{miles:.0f} mi"


def detail_payload(n: int) -> str:
    """The message a card's "More about this one" sends: the n-th provider shown."""
    return f'/provider_detail{{"ordinal":"{n}"}}'


def card(hit: Hit, language: str = "en", n: int | None = None) -> dict[str, Any]:
    """A structured card: `n` (its number in the list, with the payload that asks for it in
    full) for a result list, none for the one provider shown in full."""
    data = {"id": hit.id, "name": nice_case(hit.name), "miles": round(hit.distance_miles, 1),
            "distance": distance_text(hit.distance_miles), "address": address(hit),
            "phone": phone_display(hit.phone) if hit.phone else None,
            "tel": f"tel:{hit.phone}" if hit.phone else None, "map": map_url(hit),
            "source": hit.source, "kind": kind_text(hit, language) or None}
    if n is not None:
        data.update(n=n, detail=detail_payload(n))
    return data


def card_text(data: dict[str, Any], language: str = "en", short: bool = False,
              bold: bool = False, number: int | None = None) -> str:
    """A card as text: the full form (address, ``tel:`` and map links) for plain channels, or
    one short line for SMS ('1. Name, 2 mi, (312) 733-2233'; `bold` for WhatsApp; `number`
    is the option number the line answers to)."""
    t = texts(language)
    name = f"*{data['name']}*" if bold else data["name"]
    if short:
        fmt = t["card_sms"] if data.get("phone") else t["card_sms_no_phone"]
        return fmt.format(n=number or data.get("n") or 1, name=name,
                          miles=short_distance(float(data.get("miles") or 0)),
                          phone=data.get("phone") or "")
    tel = (data.get("tel") or "").removeprefix("tel:")
    if data.get("n") is None:  # the one provider in full: its phone and map lines
        lines = [t["detail_phone"].format(phone=data["phone"], tel=tel) if data.get("phone")
                 else t["detail_no_phone"]]
        return "\n".join([*lines, t["detail_map"].format(map=data["map"])])
    fmt = t["card"] if data.get("phone") else t["card_no_phone"]
    kind = data.get("kind")
    return fmt.format(n=data["n"], name=name, distance=data["distance"],
                      kind=f"{kind}\n" if kind else "", address=data["address"],
                      phone=data.get("phone") or "", tel=tel, map=data["map"])


def labels(language: str = "en") -> dict[str, str]:
    """The words a rich channel puts on a card's buttons and links."""
    return dict(texts(language)["labels"])


def results(result: SearchResult, service: str, place_label: str, language: str = "en",
            asked: str | None = None, before: tuple[str, ...] = (),
            after: tuple[str, ...] = ()) -> Reply:
    """Cards for a page of hits, with the widening note, the source and follow-ups.

    `asked` is the service the person asked for when another was searched (palliative care
    answered with hospices); `before` and `after` are paragraphs around the cards."""
    t = texts(language)
    lines = list(before)
    if result.widened_from and result.offset == 0:
        lines.append(t["widened"].format(asked=result.widened_from, radius=result.radius_miles))
        if any(is_uk_source(h.source) for h in result.hits):
            lines[-1] += " " + t["uk_max"].format(radius=widest(result.hits))
    plural = services.plural(service)
    lines.append(t["results"].format(plural=plural[:1].upper() + plural[1:], place=place_label))
    cards = [card(hit, language, n) for n, hit in enumerate(result.hits, start=result.offset + 1)]
    return Reply("\n\n".join(lines), _follow_ups(result, asked or service, t), cards,
                 after="\n\n".join([footer(result.hits, language), *after]))


def widest(hits: list[Hit]) -> int:
    """The farthest a search in these hits' country may look, in miles."""
    return search.widening(hits[0].country if hits else None)[-1]


def _follow_ups(result: SearchResult, service: str, t: dict[str, Any]) -> list[Button]:
    buttons = []
    if result.has_more:
        buttons.append(Button(t["buttons"]["more"], "/provider_more"))
    elif result.radius_miles < widest(result.hits):
        buttons.append(Button(t["buttons"]["widen"], "/provider_widen"))
    if service == "childrens_hospice":
        buttons.append(Button(t["buttons"]["all_hospices"], '/find_provider{"service":"hospice"}'))
    skip = {service, "hospice"} if service == "childrens_hospice" else {service}
    for other in services.MAIN:
        if other not in skip and len(buttons) < 3:
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
    if source == "uk":  # the caveat carries the UK route for hospices
        head += " " + t["uk_max"].format(radius=radius) + "\n\n" + t["uk_caveat"]
        if service == "hospice":
            return Reply(head, _other_services(service, t))
    return Reply(f"{head}\n\n{text}\n{url}", _other_services(service, t))


def no_data(service: str, region: str, language: str = "en") -> Reply:
    """The directory holds nothing of this kind for this country: say so honestly."""
    t = texts(language)
    where = t["where_uk"] if region == "UK" else t["where_us"]
    text, url = signpost(service, region, language)
    head = t["no_data"].format(plural=services.plural(service), where=where)
    return Reply(f"{head} {text}\n{url}", _other_services(service, t) if region == "US" else [])


def no_list_here(nation: str, place_label: str, service: str,
                 language: str = "en") -> Reply:
    """A place in a UK nation the directory has no list for: the honest route, no places."""
    t = texts(language)
    lines = [t["no_list_nation"].format(nation=nation, place=place_label)]
    if service == "pain_management":
        text, url = signpost(service, "UK", language)
        lines.append(f"{text}\n{url}")
    else:
        lines.append(t["no_list_nation_route"])
    return Reply("\n\n".join(lines), [])


def palliative_via_hospices(result: SearchResult, place_label: str, region: str,
                            language: str = "en", listed: bool = False) -> Reply:
    """No palliative-care list here (`listed`: a list, but no team near): say so, show the
    nearest hospices, keep the referral advice."""
    t = texts(language)
    where = t["where_uk"] if region == "UK" else t["where_us"]
    text, url = signpost("palliative_care", region, language)
    head = (t["palliative_none_near"].format(radius=result.widened_from or result.radius_miles,
                                             place=place_label)
            if listed else t["palliative_via_hospice"].format(where=where))
    return results(result, "hospice", place_label, language, asked="palliative_care",
                   before=(head,), after=(f"{text}\n{url}",))


def for_a_child(result: SearchResult, found_children: bool, place_label: str,
                source: str | None, language: str = "en") -> Reply:
    """A search for a child: children's hospices first; else the nearest hospices, saying
    that the list has no children's hospice near (or does not say which care for children)."""
    t = texts(language)
    if found_children:
        return results(result, "childrens_hospice", place_label, language,
                       before=(t["child_first"],))
    if source:
        name = source_name(source, language)
        note = t["child_not_listed"].format(source=name[:1].upper() + name[1:])
    else:
        note = t["child_none"].format(radius=result.radius_miles, place=place_label)
    return results(result, "hospice", place_label, language, before=(note,))


# A search message that also asks a question ("how does hospice work? we're in 60614") gets
# the question answered too: when the classifier gave the FAQ at least QUESTION_CONFIDENCE,
# its top entry is answered if that entry's confidence reaches ANSWER_CONFIDENCE (the
# FaqConfidenceFallback threshold in config.yml), else the likeliest entries are offered.
QUESTION_CONFIDENCE = 0.25
ANSWER_CONFIDENCE = 0.2


def question_in(message: dict[str, Any]) -> tuple[float, list[tuple[str, float]]]:
    """(FAQ intent confidence, [(entry id, confidence), ...]) of a parsed message."""
    faq = next((float(r.get("confidence") or 0) for r in message.get("intent_ranking") or []
                if r.get("name") == "faq"), 0.0)
    ranking = (message.get("response_selector") or {}).get("faq", {}).get("ranking") or []
    entries = [(str(r.get("intent_response_key") or "").split("/", 1)[-1],
                float(r.get("confidence") or 0)) for r in ranking]
    return faq, [(e, c) for e, c in entries if e]


def question_part(message: dict[str, Any]) -> tuple[str, list[str]] | None:
    """For a search message that also asks a question: ('answer', [entry id]) or ('offer',
    [the two likeliest entry ids]); None when it asks nothing the FAQ can answer."""
    if (message.get("intent") or {}).get("name") != "find_provider":
        return None
    faq, entries = question_in(message)
    if faq < QUESTION_CONFIDENCE or not entries:
        return None
    if entries[0][1] >= ANSWER_CONFIDENCE:
        return "answer", [entries[0][0]]
    return "offer", [e for e, _ in entries[:2]]


def question_topics(entries: list[tuple[str, Any]], language: str = "en") -> Reply:
    """'You also asked a question. Is it one of these?' with a button per entry (id, label)."""
    t = texts(language)
    return Reply(t["question_topics"], [Button(label, faq_payload(entry_id))
                                         for entry_id, label in entries])


def _other_services(service: str, t: dict[str, Any]) -> list[Button]:
    return [Button(t["buttons"][o], f'/find_provider{{"service":"{o}"}}')
            for o in services.MAIN if o != service]


def detail(hit: Hit, place_label: str, language: str = "en") -> Reply:
    """Everything the directory knows about one provider."""
    t = texts(language)
    distance = distance_text(hit.distance_miles)
    lines = [t["detail"].format(name=nice_case(hit.name), address=address(hit),
                                distance=distance[:1].upper() + distance[1:], place=place_label)]
    kind = kind_text(hit, language)
    if kind:
        lines.append(kind)
    notes = []
    if hit.source == "cms_hospice" and hit.certified_on:
        notes.append(t["detail_cms"].format(year=hit.certified_on[:4],
                                            ownership=(hit.ownership or "not given").lower()))
    source = source_name(hit.source, language)
    if hit.as_of:
        source = t["as_of"].format(source=source, date=long_date(hit.as_of, language))
    notes.append(t["detail_source"].format(source=source, updated=hit.updated_on))
    attribution = _content()["attribution"].get(hit.source)
    if attribution:
        notes.append(attribution)
    if is_uk_source(hit.source):
        notes.append(t["uk_caveat"])
    return Reply("\n".join(lines), [], [card(hit, language)], after="\n".join(notes))


def location_error(reason: str, text: str, candidates: list[str],
                   language: str = "en") -> Reply:
    """A specific, friendly re-ask for a place that could not be understood."""
    t = texts(language)["errors"]
    message = t.get(reason, t["unknown_place"]).format(text=text[:40])
    buttons = [Button(c, f'/inform_location{{"location":"{c}"}}') for c in candidates[:4]]
    return Reply(message, buttons)
