"""Actions for finding services near a place. Thin: read slots, call `providers`, render with
`knowledge.directory`. Database work runs in a worker thread, off the action server's loop."""

from __future__ import annotations

import asyncio
import difflib
import re
from dataclasses import asdict
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

import knowledge
from actions.common import KB, SETTINGS, reader, send_reply
from knowledge import directory as render
from knowledge.replies import say
from providers import db, search
from providers.geo import LocationError, gazetteer
from providers.services import SERVICES

PAGE = 3
MAX_ATTEMPTS = 3  # wrong places in a row before the form gives up kindly
DEFAULT_SERVICE = "hospice"
REGION_OF_COUNTRY = {"US": "US", "GB": "UK"}


def _language(tracker: Tracker) -> str:
    return tracker.get_slot("language") or SETTINGS.language


def _service(tracker: Tracker) -> str:
    value = tracker.get_slot("service")
    return value if value in SERVICES else DEFAULT_SERVICE


async def _in_db(fn, *args: Any) -> Any:  # noqa: ANN001
    """Run fn(session, *args) on the directory in a worker thread."""

    def work() -> Any:
        with db.session_factory(SETTINGS.directory)() as session:
            return fn(session, *args)

    return await asyncio.to_thread(work)


def answer_question(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """A search message that also asks a question ("how does hospice work? we're in 60614")
    gets that question answered, or its likeliest topics offered (see render.question_in)."""
    part = render.question_part(tracker.latest_message or {})
    if part is None:
        return []
    language, region = reader(tracker)
    how, ids = part
    entries = [KB.get(e) for e in ids if KB.get(e)]
    if how == "answer" and entries:
        send_reply(dispatcher, knowledge.render(KB, entries[0], language, region))
        return [SlotSet("last_faq_id", entries[0].id)]
    if entries:
        send_reply(dispatcher, render.question_topics([(e.id, e.label(language))
                                                       for e in entries], language))
    return []


class ActionAskLocation(Action):
    """The form's question: where should I look? A question asked with the search is
    answered first."""

    def name(self) -> str:
        return "action_ask_location"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        # After a place was not understood, the validator's reply already asked again.
        if tracker.get_slot("location_attempts"):
            return []
        events = answer_question(dispatcher, tracker)
        dispatcher.utter_message(text=render.texts(_language(tracker))["ask_location"])
        return events


class ValidateProviderSearchForm(FormValidationAction):
    """Turns what people type into a place, or re-asks saying exactly what was wrong."""

    def name(self) -> str:
        return "validate_provider_search_form"

    def validate_location(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: DomainDict) -> dict[str, Any]:
        language = _language(tracker)
        prefer = "GB" if tracker.get_slot("region") == "UK" else "US"
        try:
            place = gazetteer().resolve(str(value or ""), prefer_country=prefer)
        except LocationError as err:
            if err.reason == "northern_ireland":  # no list there: the search signposts
                return {"location": err.text, "location_attempts": 0, "region": "UK",
                        "place": {"label": err.text, "lat": None, "lon": None,
                                  "country": "GB", "precision": "none", "state": "NIR"}}
            attempts = int(tracker.get_slot("location_attempts") or 0) + 1
            if attempts >= MAX_ATTEMPTS:
                dispatcher.utter_message(text=render.texts(language)["errors"]["gave_up"])
                return {"location": str(value)[:80], "place": None, "location_attempts": 0}
            send_reply(dispatcher, render.location_error(err.reason, err.text, err.candidates,
                                                    language))
            return {"location": None, "location_attempts": attempts}
        slots: dict[str, Any] = {"location": place.label, "place": asdict(place),
                                 "location_attempts": 0}
        region = REGION_OF_COUNTRY.get(place.country)
        if region and region != (tracker.get_slot("region") or SETTINGS.default_region):
            slots["region"] = region
        return slots


def _hospices_instead(session, place: dict, radius: int,  # noqa: ANN001
                      widen: tuple[int, ...]) -> search.SearchResult | None:
    """The nearest hospices, or None when the country has none listed."""
    if not search.holds(session, "hospice", place["country"]):
        return None
    return search.search(session, place["lat"], place["lon"], "hospice", radius_miles=radius,
                         limit=PAGE, widen=widen)


def _run_search(session, place: dict, service: str, radius: int, offset: int,  # noqa: ANN001
                widen: bool) -> tuple[search.SearchResult, str, str | None] | None:
    """(the page, the service searched, why another was searched) or None when the
    directory has no such service in that country.

    Palliative care with no palliative-care team near is answered with hospices (many run
    palliative care too); a child's search with children's hospices first, then hospices.
    """
    radii = search.widening(place["country"]) if widen else ()

    def run(code: str) -> search.SearchResult:
        return search.search(session, place["lat"], place["lon"], code, radius_miles=radius,
                             limit=PAGE, offset=offset, widen=radii)

    held = search.holds(session, service, place["country"])
    if service in ("palliative_care", "childrens_hospice") and offset == 0 and widen:
        result = run(service) if held else None
        if result is not None and result.hits:
            return result, service, None
        instead = _hospices_instead(session, place, radius, radii)
        if instead is None:
            return None
        if service == "palliative_care":
            return instead, "hospice", "palliative_none_near" if held else "palliative"
        return instead, "hospice", "child_none" if held else "child_not_listed"
    return (run(service), service, None) if held else None


def _reply(result: search.SearchResult, searched: str, why: str | None, place: dict,
           asked: str, language: str) -> knowledge.Reply:
    """The reply for a page of hits, saying why another service was searched if it was."""
    region = REGION_OF_COUNTRY.get(place["country"], "US")
    if why in ("palliative", "palliative_none_near"):
        return render.palliative_via_hospices(result, place["label"], region, language,
                                              listed=why == "palliative_none_near")
    if why in ("child_none", "child_not_listed") or searched == "childrens_hospice":
        source = None
        if why == "child_not_listed":
            source = sorted({h.source for h in result.hits})[0]
        return render.for_a_child(result, why is None, place["label"], source, language)
    return render.results(result, searched, place["label"], language,
                          asked=asked if asked != searched else None)


async def _search_and_reply(dispatcher: CollectingDispatcher, tracker: Tracker, place: dict,
                            service: str, radius: int, offset: int, widen: bool,
                            shown: list[int], asked: str | None = None) -> list[EventType]:
    language = _language(tracker)
    region = REGION_OF_COUNTRY.get(place["country"], "US")
    nation = render.no_list_nation(place.get("state")) if place["country"] == "GB" else None
    if nation or place.get("lat") is None:
        send_reply(dispatcher, render.no_list_here(nation or place["label"], place["label"],
                                                   service, language))
        return [SlotSet("search", None)]
    try:
        found = await _in_db(_run_search, place, service, radius, offset, widen)
    except SQLAlchemyError:
        dispatcher.utter_message(text=say("search_unavailable", _language(tracker)))
        return []
    if found is None:
        send_reply(dispatcher, render.no_data(service, region, language))
        return [SlotSet("search", None)]
    result, searched, why = found
    state = {"place": place, "service": searched, "asked": asked or service,
             "radius": result.radius_miles, "offset": result.offset, "total": result.total,
             "shown": [*shown, *(h.id for h in result.hits)]}
    if not result.hits:
        hospices = searched in ("hospice", "childrens_hospice")
        source = ("cms_hospice" if hospices and region == "US"
                  else "uk" if hospices and place["country"] == "GB" else "default")
        send_reply(dispatcher, render.nothing_near(searched, place["label"],
                                                   result.radius_miles, region, source,
                                                   language))
        return [SlotSet("search", state)]
    send_reply(dispatcher, _reply(result, searched, why, place, asked or service, language))
    return [SlotSet("search", state)]


class ActionSearchProviders(Action):
    """Search near the place the form found, for the service asked (hospice by default)."""

    def name(self) -> str:
        return "action_search_providers"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        place = tracker.get_slot("place")
        if not place:  # the form gave up on the place and has said so
            return []
        events = answer_question(dispatcher, tracker)
        return events + await _search_and_reply(
            dispatcher, tracker, place, _service(tracker),
            search.widening(place["country"])[0], 0, True, [])


class ActionProviderMore(Action):
    """The next page of the last search."""

    def name(self) -> str:
        return "action_provider_more"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        state = tracker.get_slot("search")
        t = render.texts(_language(tracker))
        if not state:
            dispatcher.utter_message(text=t["no_search_yet"])
            return []
        offset = state["offset"] + PAGE
        if offset >= state["total"]:
            widest = search.widening(state["place"]["country"])[-1]
            buttons = ([{"title": t["buttons"]["widen"], "payload": "/provider_widen"}]
                       if state["radius"] < widest else [])
            dispatcher.utter_message(text=t["no_more"].format(
                radius=state["radius"], place=state["place"]["label"]), buttons=buttons)
            return []
        return await _search_and_reply(dispatcher, tracker, state["place"], state["service"],
                                       state["radius"], offset, False, state["shown"],
                                       state.get("asked"))


class ActionProviderWiden(Action):
    """Search again with the next larger radius."""

    def name(self) -> str:
        return "action_provider_widen"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        state = tracker.get_slot("search")
        language = _language(tracker)
        t = render.texts(language)
        if not state:
            dispatcher.utter_message(text=t["no_search_yet"])
            return []
        country = state["place"]["country"]
        larger = [r for r in search.widening(country) if r > state["radius"]]
        if not larger:
            region = REGION_OF_COUNTRY.get(country, "US")
            text, url = render.signpost(state.get("asked") or state["service"], region,
                                        language)
            widest = t["widest"].format(radius=state["radius"], place=state["place"]["label"])
            if country == "GB":
                widest += " " + t["uk_max"].format(radius=state["radius"])
            dispatcher.utter_message(text=f"{widest}\n\n{text}\n{url}")
            return []
        return await _search_and_reply(dispatcher, tracker, state["place"], state["service"],
                                       larger[0], 0, False, [], state.get("asked"))


def _pick(text: str, ordinal: Any, names: list[str]) -> int | None:
    """Index into the shown list from 'the second one' or from a name ('Baptist Hospice')."""
    if ordinal is not None:
        try:
            n = int(ordinal)
        except (TypeError, ValueError):
            return None
        if n == -1:
            return len(names) - 1
        return n - 1 if 1 <= n <= len(names) else None
    words = set(re.findall(r"[a-z]{3,}", text.lower())) - {"hospice", "more", "about", "tell",
                                                            "the", "call", "details", "care"}
    if not words:
        return None
    scores = []
    for i, name in enumerate(names):
        name_words = set(re.findall(r"[a-z]{3,}", name.lower()))
        overlap = len(words & name_words)
        ratio = difflib.SequenceMatcher(None, " ".join(sorted(words)),
                                        " ".join(sorted(name_words))).ratio()
        scores.append((overlap, ratio, -i))
    best = max(scores)
    return -best[2] if best[0] > 0 else None


class ActionProviderDetail(Action):
    """'Call the second one', 'more about Baptist Hospice': one shown provider in full."""

    def name(self) -> str:
        return "action_provider_detail"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        state = tracker.get_slot("search")
        language = _language(tracker)
        t = render.texts(language)
        if not state or not state.get("shown"):
            dispatcher.utter_message(text=t["no_search_yet"])
            return []
        place = state["place"]
        try:
            hits = await _in_db(search.get_many, state["shown"], place["lat"], place["lon"])
        except SQLAlchemyError:
            dispatcher.utter_message(text=say("search_unavailable", _language(tracker)))
            return []
        ordinal = next(tracker.get_latest_entity_values("ordinal"), None)
        index = _pick(tracker.latest_message.get("text") or "", ordinal, [h.name for h in hits])
        if index is None:
            dispatcher.utter_message(text=t["which_one"])
            return []
        send_reply(dispatcher, render.detail(hits[index], place["label"], language))
        return []

