"""One FAQ entry as a channel-neutral reply: its text for the reader's region, its sources
and follow-up buttons, with the payloads those buttons send back.

A :class:`Reply` is rendered once and shaped by each channel (:mod:`knowledge.shapes`): the
web widget draws its parts (cards, titled source links), SMS gets short numbered lines, and
channels without rich display (Rasa's REST channel) get :func:`knowledge.shapes.plain_text`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from knowledge.loader import Entry, KnowledgeBase


@dataclass(frozen=True)
class Button:
    """A quick reply: what the user sees and what is sent back when it is chosen."""

    title: str
    payload: str


@dataclass(frozen=True)
class Link:
    """A source shown under an answer: its page title, a short name (the publisher) and URL."""

    title: str
    url: str

    @property
    def short(self) -> str:
        """'National Institute on Aging: What Are ...' -> 'National Institute on Aging'."""
        return self.title.split(": ", 1)[0]


@dataclass(frozen=True)
class Reply:
    """A channel-neutral answer: the lead text, structured cards (provider results), text
    after the cards (where the list comes from, caveats), sources, and quick replies.
    Every channel can show it as text alone (:func:`knowledge.shapes.plain_text`)."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    cards: list[dict] = field(default_factory=list)
    after: str = ""
    sources: list[Link] = field(default_factory=list)
    printable: bool = False  # worth printing though it has no cards or sources (a summary)

    def payload(self) -> dict[str, Any]:
        """The reply's parts as JSON-safe data (Rasa's custom payload under ``reply``)."""
        return {"text": self.text, "cards": self.cards, "after": self.after,
                "sources": [{"title": s.title, "short": s.short, "url": s.url}
                            for s in self.sources]}


def faq_payload(entry_id: str) -> str:
    """The message a button sends to ask for one entry."""
    return f'/faq{{"faq_id":"{entry_id}"}}'


def more_payload(entry_id: str) -> str:
    """The message a button sends to ask for an entry's longer text."""
    return f'/tell_me_more{{"faq_id":"{entry_id}"}}'


def render(
    kb: KnowledgeBase, entry: Entry, language: str, region: str, more: bool = False
) -> Reply:
    """Render an entry: the text for the reader's region, its sources, follow-up buttons."""
    body = (entry.text("more", language, region) if more else None) or entry.text(
        "answer", language, region
    )
    sources = [Link(s.title, str(s.url)) for s in entry.sources_for(region)]
    buttons = []
    if not more and entry.more:
        buttons.append(Button("Tell me more", more_payload(entry.id)))
    for rel in entry.related:
        buttons.append(Button(kb.entries[rel].label(language), faq_payload(rel)))
    return Reply(text=body, buttons=buttons, sources=sources)
