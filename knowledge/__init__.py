"""The content (YAML) and the small library that reads it. No Rasa import.

- :mod:`knowledge.loader`: the FAQ schema and loading knowledge/faq/*.yml;
- :mod:`knowledge.render` (the module): ``Reply``, ``Button``, ``render`` and the payloads;
- :mod:`knowledge.regions`: the regions, and the country a message names;
- :mod:`knowledge.helplines`, :mod:`knowledge.emergency`: help-line numbers (helplines.yml);
- :mod:`knowledge.replies`: the actions' wording; :mod:`knowledge.directory`: search replies.

The names below are re-exported so that callers keep writing ``knowledge.load()``,
``knowledge.render(...)``, ``knowledge.Reply`` and so on. Note that ``knowledge.render`` is the
function: import the module's other names with ``from knowledge.render import ...``.
"""

from __future__ import annotations

from knowledge.loader import (
    ALL,
    FAQ_DIR,
    MAX_ANSWER_WORDS,
    MAX_MORE_WORDS,
    MAX_RELATED,
    MAX_TITLE_CHARS,
    Entry,
    EntryId,
    KnowledgeBase,
    KnowledgeError,
    RegionalText,
    Source,
    default_kb,
    load,
    load_entries,
)
from knowledge.regions import REGIONS, region_from_text, region_in_message
from knowledge.render import Button, Reply, faq_payload, more_payload, render

__all__ = [
    "ALL", "FAQ_DIR", "MAX_ANSWER_WORDS", "MAX_MORE_WORDS", "MAX_RELATED", "MAX_TITLE_CHARS",
    "REGIONS", "Button", "Entry", "EntryId", "KnowledgeBase", "KnowledgeError", "RegionalText",
    "Reply", "Source", "default_kb", "faq_payload", "load", "load_entries", "more_payload",
    "region_from_text", "region_in_message", "render",
]
