"""Each channel's shape of a channel-neutral reply (:meth:`knowledge.render.Reply.payload`).

- :func:`plain_text`: everything as text, with ``tel:`` and map links written out (Rasa's REST
  channel during development, and the ``text`` every message carries as a fallback);
- :func:`sms_text`: short for a phone: one line per result, numbered as the options a person
  replies with, each source as a short title and its URL on its own line; bold names on
  WhatsApp;
- the web widget draws the parts itself (cards with Call and Map, titled source links), with
  the words from :func:`labels`.
"""

from __future__ import annotations

from typing import Any

from knowledge import directory
from knowledge.render import Button, Reply, faq_payload
from knowledge.replies import phrase


def labels(language: str = "en") -> dict[str, str]:
    """Every word a rich channel writes around a reply's parts (cards, sources, print)."""
    return {**directory.labels(language), **phrase("reply_labels", language)}


def _sources(payload: dict[str, Any]) -> list[dict[str, str]]:
    return [s for s in payload.get("sources") or [] if isinstance(s, dict) and s.get("url")]


def plain_text(payload: dict[str, Any], language: str = "en") -> str:
    """The whole reply as text: lead, cards in full, what follows them, one source line."""
    parts = [payload.get("text") or ""]
    parts += [directory.card_text(c, language) for c in payload.get("cards") or []]
    parts.append(payload.get("after") or "")
    sources = _sources(payload)
    if sources:
        head = (payload.get("labels") or {}).get("source") or labels(language)["source"]
        parts.append(f"{head} " + "; ".join(f"{s['title']} {s['url']}" for s in sources))
    return "\n\n".join(p for p in parts if p.strip())


def sms_text(payload: dict[str, Any], language: str = "en", whatsapp: bool = False,
             first: int = 1) -> str:
    """The reply for SMS or WhatsApp: each result one short numbered line (the numbers are the
    options a person replies with, from `first`), each source a short title then its URL."""
    parts = [payload.get("text") or ""]
    cards = payload.get("cards") or []
    listed = [c for c in cards if c.get("n") is not None]
    if listed:
        parts.append("\n".join(directory.card_text(c, language, short=True, bold=whatsapp,
                                                   number=first + i)
                               for i, c in enumerate(listed)))
    parts += [directory.card_text(c, language) for c in cards if c.get("n") is None]
    parts.append(payload.get("after") or "")
    sources = _sources(payload)
    if sources:
        head = labels(language)["source"]
        parts.append("\n".join(f"{head} {s.get('short') or s['title']}\n{s['url']}"
                                for s in sources))
    return "\n\n".join(p for p in parts if p.strip())


def card_options(payload: dict[str, Any]) -> list[Button]:
    """The result cards as options (their name, the payload asking for them in full)."""
    return [Button(str(c["name"]), str(c["detail"])) for c in payload.get("cards") or []
            if isinstance(c, dict) and c.get("detail") and c.get("name")]


def welcome(language: str = "en") -> Reply:
    """The first message, with its topic buttons (knowledge/replies.yml)."""
    buttons = []
    for b in phrase("welcome_buttons", language):
        if b.get("faq_id"):
            payload = faq_payload(b["faq_id"])
        elif b.get("service"):
            payload = f'/find_provider{{"service":"{b["service"]}"}}'
        elif b.get("guide") in ("check", "prepare"):
            payload = f"/start_{b['guide']}"
        else:
            raise ValueError(f"welcome button {b.get('title')!r} has no payload")
        buttons.append(Button(b["title"], payload))
    return Reply(str(phrase("welcome", language)).strip(), buttons)
