"""One FAQ entry as a channel-neutral reply: its text for the reader's region, a source line
and follow-up buttons, with the payloads those buttons send back."""

from __future__ import annotations

from dataclasses import dataclass, field

from knowledge.loader import Entry, KnowledgeBase


@dataclass(frozen=True)
class Button:
    """A quick reply: what the user sees and what is sent back when it is chosen."""

    title: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """A channel-neutral answer: text, then quick replies, and structured cards (provider
    results) that a rich channel may draw; every channel can show the text alone."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    cards: list[dict] = field(default_factory=list)


def faq_payload(entry_id: str) -> str:
    """The message a button sends to ask for one entry."""
    return f'/faq{{"faq_id":"{entry_id}"}}'


def more_payload(entry_id: str) -> str:
    """The message a button sends to ask for an entry's longer text."""
    return f'/tell_me_more{{"faq_id":"{entry_id}"}}'


def render(
    kb: KnowledgeBase, entry: Entry, language: str, region: str, more: bool = False
) -> Reply:
    """Render an entry: the text for the reader's region, its source line, follow-up buttons."""
    body = (entry.text("more", language, region) if more else None) or entry.text(
        "answer", language, region
    )
    sources = entry.sources_for(region)
    source_line = "Source: " + "; ".join(f"{s.title} {s.url}" for s in sources)
    buttons = []
    if not more and entry.more:
        buttons.append(Button("Tell me more", more_payload(entry.id)))
    for rel in entry.related:
        buttons.append(Button(kb.entries[rel].label(language), faq_payload(rel)))
    return Reply(text=f"{body}\n\n{source_line}", buttons=buttons)
