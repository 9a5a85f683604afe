"""The guided conversations: "is palliative care right for us?" (with its hospice path) and
"help me get ready for the appointment". Thin: the steps' words and options come from
`knowledge.guides`; this module only keeps the place in the conversation.

One form, ``guide_form``, asks the slot ``guide_answer`` again and again. The state (which
guide, which step, what was answered) lives in the slot ``guide``; ``validate_guide_form``
reads each answer, moves the state on, and fills ``guide_answer`` only when the guide is
finished or stopped, so the form ends and ``action_guide_done`` shows the result or the
summary. A question asked in the middle is answered and the step asked again; a crisis or
asking for a person is not an answer, so the form rejects it and the rules answer.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

import knowledge
from actions.common import KB, entity, reader, selected_faq_ids, send_reply
from knowledge import guides
from knowledge.render import Button, Link, Reply, faq_payload
from knowledge.replies import say

ANSWER = "guide_answer"
CONTROLS = ("skip", "done", "stop")
FINISHED = "finished"
# A typed message that is not an answer is taken as a question when the FAQ classifier is
# at least this sure (the FaqConfidenceFallback threshold in config.yml).
QUESTION_CONFIDENCE = 0.2


def button(value: str, title: str) -> Button:
    """A guided step's button: the payload carries the answer as the guide_value entity."""
    return Button(title, f'/guide_answer{{"guide_value":"{value}"}}')


def _audience(state: dict[str, Any]) -> str | None:
    return state.get("audience")


def steps(state: dict[str, Any], region: str) -> list[str]:
    """Every step of the guide in order (the audience question first when not yet known)."""
    first = [] if state.get("audience") else ["audience"]
    if state["kind"] == "check":
        return [*first, *(f"q:{q.id}" for q in guides.check_questions(region=region))]
    symptoms = guides.symptoms(region=region)
    named = [f"name:{s.id}" if s.custom else f"score:{s.id}" for s in symptoms]
    custom = [s.id for s in symptoms if s.custom]
    named += [f"score:{c}" for c in custom]
    groups = [f"group:{g.id}" for g in guides.prompt_groups(region)]
    return [*first, "kind", *named, "matters", *groups, "medicines", "companions"]


def _next(state: dict[str, Any], region: str, section_done: bool = False) -> dict[str, Any]:
    """The state at the next step; `section_done` skips the rest of this step's section
    (all symptom scores, all question groups)."""
    order = steps(state, region)
    here = order.index(state["step"]) if state["step"] in order else -1
    section = state["step"].split(":", 1)[0]
    section = "symptom" if section in ("score", "name") else section
    for step in order[here + 1:]:
        kind = step.split(":", 1)[0]
        kind = "symptom" if kind in ("score", "name") else kind
        if section_done and kind == section:
            continue
        if step.startswith("score:") and step.split(":", 1)[1] in _customs(region) and not (
                state["prep"].get("other_symptom")):
            continue  # no symptom named: nothing to score
        return {**state, "step": step}
    return {**state, "step": FINISHED}


def _customs(region: str) -> set[str]:
    return {s.id for s in guides.symptoms(region=region) if s.custom}


def start(kind: str, audience: str | None) -> dict[str, Any]:
    """A new guide's state, at its first step."""
    return {"kind": kind, "audience": audience, "step": "", "answers": {},
            "prep": {"scores": {}, "matters": [], "questions": [], "medicines": [],
                     "companions": []}}


def _controls(language: str, *names: str) -> list[Button]:
    return [button(n, guides.control(n, language)) for n in names]


def ask(state: dict[str, Any], language: str, region: str, sms: bool) -> Reply:
    """The question for the state's step, with its buttons (numbered options on SMS)."""
    step, audience = state["step"], _audience(state)
    kind, _, key = step.partition(":")
    if kind == "audience":
        return Reply(say("ask_audience", language), [
            button(who, say(f"audience_{who}_button", language)) for who in guides.AUDIENCES])
    if kind == "q":
        question = next(q for q in guides.check_questions(audience, region, language)
                        if q.id == key)
        return Reply(question.text, [button(c.id, c.title) for c in question.choices]
                     + _controls(language, "stop"))
    if kind == "kind":
        return Reply(guides.prepare_prompt("appointments", audience, region, language),
                     [button(c.id, c.title) for c in guides.appointment_kinds(region, language)]
                     + _controls(language, "skip", "stop"))
    if kind in ("score", "name"):
        symptom = next(s for s in guides.symptoms(audience, region, language) if s.id == key)
        if kind == "name":
            return Reply(symptom.ask, _controls(language, "skip", "done"))
        text = (say("guide_other_symptom_score", language) if symptom.custom else symptom.ask)
        scale = say("guide_score_scale", language, low=symptom.low, high=symptom.high)
        if sms:  # numbered options would clash with the scores: the person types a number
            return Reply(f"{text}\n{scale}\n{say('guide_score_sms', language)}")
        return Reply(f"{text}\n{scale}", [button(str(n), str(n)) for n in range(11)]
                     + _controls(language, "skip", "done", "stop"))
    if kind in ("matters", "companions"):
        chosen = set(state["prep"][kind])
        return Reply(guides.prepare_prompt(kind, audience, region, language),
                     [button(c.id, c.title) for c in guides.options(kind, audience, region,
                                                                     language)
                      if c.id not in chosen]
                     + _controls(language, "done" if chosen else "skip", "stop"))
    if kind == "group":
        group = next(g for g in guides.prompt_groups(region, language) if g.id == key)
        chosen = set(state["prep"]["questions"])
        intro = (guides.prepare_prompt("questions", audience, region, language) + "\n\n"
                 if key == guides.prompt_groups(region, language)[0].id else "")
        return Reply(f"{intro}{group.title}:", [button(c.id, c.title) for c in group.questions
                                                 if c.id not in chosen]
                     + _controls(language, "skip", "done", "stop"))
    if kind == "medicines":
        text = (guides.prepare_prompt("medicines", audience, region, language) + "\n\n"
                + guides.prepare_prompt("no_advice", audience, region, language))
        return Reply(text, _controls(language, "done" if state["prep"]["medicines"] else "skip",
                                     "stop"))
    raise ValueError(f"unknown step {step!r}")


def _choices(state: dict[str, Any], language: str, region: str) -> dict[str, str]:
    """The step's options as {typed title, lowercased: option id}."""
    reply = ask(state, language, region, sms=False)
    found = {}
    for b in reply.buttons:
        match = re.search(r'"guide_value":"([^"]+)"', b.payload)
        if match:
            found[b.title.strip().lower()] = match.group(1)
    return found


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s'-]", " ", text.lower()).split())


def read_answer(value: str, state: dict[str, Any], language: str,
                region: str) -> str | None:
    """The answer a message gives to the state's step: an option id, a control (skip, done,
    stop), a score, or None when it is not an answer to this step."""
    choices = _choices(state, language, region)
    if value in choices.values():  # a button
        return value
    typed = _words(value)
    if typed in {guides.control(c, language).lower() for c in CONTROLS} | set(CONTROLS):
        return next(c for c in CONTROLS if typed in (c, guides.control(c, language).lower()))
    if typed in _words_map(choices):  # an option's title typed ("Not sure", "No")
        return _words_map(choices)[typed]
    if typed in ("next", "none", "no", "pass", "skip it", "skip this", "not sure"):
        return "skip"
    if typed in ("stop", "stop here", "quit", "cancel", "end", "exit", "finish"):
        return "stop"
    if state["step"].startswith("score:"):
        score = guides.parse_score(value)
        return None if score is None else str(score)
    return None


def _words_map(choices: dict[str, str]) -> dict[str, str]:
    return {_words(title): value for title, value in choices.items()}


def _is_question(message: dict[str, Any]) -> str | None:
    """The FAQ entry a message asks about, when it reads as a question to answer now."""
    intent = (message.get("intent") or {}).get("name")
    ranked = selected_faq_ids(message)
    if intent == "faq" and ranked and ranked[0][1] >= QUESTION_CONFIDENCE:
        return ranked[0][0]
    return None


def advance(state: dict[str, Any], answer: str, typed: str, language: str,
            region: str) -> tuple[dict[str, Any], list[str]]:
    """The state after an answer, and notes to say first (e.g. a high score's advice)."""
    step = state["step"]
    kind, _, key = step.partition(":")
    prep = {**state["prep"]}
    notes: list[str] = []
    if answer == "stop":
        return {**state, "step": FINISHED, "stopped": True}, notes
    if answer == "done":
        if kind == "q":  # the check: done means show the result now
            return {**state, "step": FINISHED}, notes
        return _next({**state, "prep": prep}, region, section_done=True), notes
    if answer == "skip":
        return _next(state, region), notes
    if kind == "audience":
        return _next({**state, "audience": answer}, region), notes
    if kind == "q":
        return _next({**state, "answers": {**state["answers"], key: answer}}, region), notes
    if kind == "kind":
        prep["appointment"] = answer
        return _next({**state, "prep": prep}, region), notes
    if kind == "name":
        prep["other_symptom"] = typed.strip()[:60]
        return _next({**state, "prep": prep}, region), notes
    if kind == "score":
        prep["scores"] = {**prep["scores"], key: int(answer)}
        if int(answer) >= 7:
            notes.append(guides.high_score_text(region, language))
        return _next({**state, "prep": prep}, region), notes
    if kind in ("matters", "companions", "group"):
        field = "questions" if kind == "group" else kind
        prep[field] = [*prep[field], answer]
        state = {**state, "prep": prep}
        if kind == "companions":  # the last step: one answer is enough
            return _next(state, region), notes
        return state, notes  # several may be chosen: the same step again, without this one
    if kind == "medicines":
        names = [n.strip()[:60] for n in re.split(r",|;|\n|\band\b", typed) if n.strip()]
        prep["medicines"] = [*prep["medicines"], *names][:30]
        return {**state, "prep": prep}, notes
    return _next(state, region), notes


def _free_text(step: str) -> bool:
    """Steps where the person's own words are an answer."""
    return step.split(":", 1)[0] in ("name", "matters", "group", "medicines", "companions")


def _own_words(typed: str) -> str:
    return " ".join(typed.split())[:200]


class ActionStartGuide(Action):
    """Start a guide: its introduction, then the form asks the first step. The hospice path
    has no questions: its answer is shown at once."""

    def name(self) -> str:
        return "action_start_guide"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        language, region = reader(tracker)
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        audience = tracker.get_slot("audience")
        if intent == "start_hospice_check":
            send_reply(dispatcher, result_reply(guides.hospice_result(region, audience,
                                                                      language), language,
                                                "hospice"))
            return [SlotSet("guide", None)]
        kind = "prepare" if intent == "start_prepare" else "check"
        state = start(kind, audience)
        intro = guides.default_guides()
        block = intro.check.intro if kind == "check" else intro.prepare.intro
        dispatcher.utter_message(text=intro.say(block, language, region,
                                                audience or guides.DEFAULT_AUDIENCE))
        state = _next(state, region)
        return [SlotSet("guide", state), SlotSet(ANSWER, None)]


class ActionAskGuideAnswer(Action):
    """The form's question: the current step of the guide."""

    def name(self) -> str:
        return "action_ask_guide_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        state = tracker.get_slot("guide")
        if not state or state.get("step") in (None, "", FINISHED):
            return []
        language, region = reader(tracker)
        sms = tracker.get_latest_input_channel() == "twilio"
        send_reply(dispatcher, ask(state, language, region, sms))
        return []


class ValidateGuideForm(FormValidationAction):
    """Reads each answer and moves the guide on; answers a question asked in the middle."""

    def name(self) -> str:
        return "validate_guide_form"

    def validate_guide_answer(self, value: Any, dispatcher: CollectingDispatcher,
                              tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        state = tracker.get_slot("guide")
        if not state or state.get("step") in (None, "", FINISHED):
            return {ANSWER: FINISHED}
        language, region = reader(tracker)
        message = tracker.latest_message or {}
        typed = str(message.get("text") or value or "")
        pressed = entity(tracker, "guide_value")
        answer = read_answer(pressed or typed, state, language, region)
        events: dict[str, Any] = {}
        if answer is None:
            step_kind = state["step"].split(":", 1)[0]
            asks = not _free_text(state["step"]) or (typed.rstrip().endswith("?")
                                                     and step_kind != "group")
            faq_id = _is_question(message) if asks else None
            if faq_id and KB.get(faq_id):
                # a question in the middle: answer it, then ask the same step again
                send_reply(dispatcher, knowledge.render(KB, KB.get(faq_id), language, region))
                dispatcher.utter_message(text=say("guide_back", language))
                return {ANSWER: None}
            if not _free_text(state["step"]) or pressed or typed.startswith("/"):
                text = (say("guide_score_help", language) if state["step"].startswith("score:")
                        else say("guide_not_understood", language))
                dispatcher.utter_message(text=text)
                return {ANSWER: None}
            answer = _own_words(typed)
            if state["step"].split(":")[0] in ("matters", "group"):
                dispatcher.utter_message(text=say("guide_added", language, item=answer))
        if state["step"] == "audience" and answer in guides.AUDIENCES:
            events["audience"] = answer
        state, notes = advance(state, answer, typed, language, region)
        for note in notes:
            dispatcher.utter_message(text=note)
        events["guide"] = state
        events[ANSWER] = FINISHED if state["step"] == FINISHED else None
        return events


def result_reply(result: guides.Result, language: str, kind: str) -> Reply:
    """A check's or the hospice path's result: its text, sources and next steps."""
    buttons = [Button(KB.entries[r].label(language), faq_payload(r))
               for r in result.related if r in KB.entries][:2]
    g = guides.default_guides()
    if kind == "check":
        buttons.append(Button(g.hospice.button.get(language), "/start_hospice_check"))
    buttons.append(Button(g.prepare.button.get(language), "/start_prepare"))
    return Reply(result.text, buttons, sources=[Link(s.title, s.url) for s in result.sources])


class ActionGuideDone(Action):
    """The end of a guide: the check's result, or the appointment summary (printable on the
    web, a message on SMS); a stop with nothing gathered just says so."""

    def name(self) -> str:
        return "action_guide_done"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        state = tracker.get_slot("guide")
        language, region = reader(tracker)
        reset: list[EventType] = [SlotSet("guide", None), SlotSet(ANSWER, None)]
        if not state:
            dispatcher.utter_message(text=say("guide_none_open", language), buttons=[
                {"title": b.title, "payload": b.payload}
                for b in knowledge.shapes.welcome(language).buttons[:4]])
            return reset
        audience = _audience(state)
        prep = state.get("prep") or {}
        gathered = any(prep.get(k) for k in ("appointment", "scores", "matters", "questions",
                                             "medicines", "companions"))
        if state.get("stopped") and not (state["kind"] == "prepare" and gathered):
            dispatcher.utter_message(text=say("guide_stopped", language))
            return reset
        if state["kind"] == "check":
            result = guides.check_result(state.get("answers") or {}, region, audience, language)
            send_reply(dispatcher, result_reply(result, language, "check"))
            return reset
        summary = guides.summary_text({**prep, "audience": audience}, region, language)
        send_reply(dispatcher, Reply(summary, printable=True))
        return reset

