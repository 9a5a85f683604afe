"""The FAQ schema and its loader: parse and validate the YAML files in knowledge/faq/.

Content is keyed by language, then by region (``all``, or ``US`` and ``UK``), so that a
Spanish text can later sit beside the English one. No Rasa import: the action server calls
:func:`load` (or :func:`default_kb`) once, then :func:`knowledge.render.render` per answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Extra, HttpUrl, ValidationError, constr, validator

from knowledge.regions import REGIONS

FAQ_DIR = Path(__file__).parent / "faq"
ALL = "all"  # the region key of a text that holds in every region
MAX_ANSWER_WORDS = 120
MAX_MORE_WORDS = 200
MAX_RELATED = 3
MAX_TITLE_CHARS = 40

EntryId = constr(regex=r"^[a-z][a-z0-9_]*$", max_length=60)


class KnowledgeError(ValueError):
    """The content files are missing or break the schema (message names file and entry)."""


class Source(BaseModel, extra=Extra.forbid):
    """Where an answer's facts come from."""

    title: constr(strip_whitespace=True, min_length=3)
    url: HttpUrl
    regions: tuple[str, ...] | None = None

    @validator("regions")
    def _known_regions(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or set(value) - set(REGIONS)):
            raise ValueError(f"regions must be a non-empty subset of {REGIONS}")
        return value

    def applies_to(self, region: str) -> bool:
        """Whether this source should be shown to a reader in ``region``."""
        return self.regions is None or region in self.regions


RegionalText = dict[str, dict[str, str]]  # language -> region ("all" | "US" | "UK") -> text


def _check_regional(value: RegionalText, max_words: int) -> RegionalText:
    if not value:
        raise ValueError("needs at least one language")
    for lang, by_region in value.items():
        keys = set(by_region)
        if keys != {ALL} and keys != set(REGIONS):
            raise ValueError(
                f"{lang}: give either 'all' or both of {REGIONS} (got {sorted(keys)})"
            )
        for region, text in by_region.items():
            words = len(text.split())
            if not text.strip():
                raise ValueError(f"{lang}/{region}: empty text")
            if words > max_words:
                raise ValueError(f"{lang}/{region}: {words} words, at most {max_words}")
    return value


class Entry(BaseModel, extra=Extra.forbid):
    """One FAQ entry (see knowledge/README.md for the schema)."""

    id: EntryId
    reviewed: dt.date
    title: dict[str, constr(strip_whitespace=True, min_length=3, max_length=MAX_TITLE_CHARS)]
    answer: RegionalText
    more: RegionalText | None = None
    sources: list[Source]
    related: list[EntryId] = []

    @validator("answer")
    def _answer_shape(cls, value: RegionalText) -> RegionalText:
        return _check_regional(value, MAX_ANSWER_WORDS)

    @validator("more")
    def _more_shape(cls, value: RegionalText | None) -> RegionalText | None:
        return None if value is None else _check_regional(value, MAX_MORE_WORDS)

    @validator("sources")
    def _has_source(cls, value: list[Source]) -> list[Source]:
        if not value:
            raise ValueError("at least one source is required")
        return value

    @validator("related")
    def _few_related(cls, value: list[str], values: dict) -> list[str]:
        if len(value) > MAX_RELATED:
            raise ValueError(f"at most {MAX_RELATED} related entries")
        if values.get("id") in value:
            raise ValueError("an entry cannot be related to itself")
        return value

    def text(self, part: str, language: str, region: str) -> str | None:
        """The ``answer`` or ``more`` text for a language and region, if there is one."""
        by_lang = getattr(self, part) or {}
        by_region = by_lang.get(language) or by_lang.get("en") or {}
        return by_region.get(region) or by_region.get(ALL)

    def sources_for(self, region: str) -> list[Source]:
        """Sources to show in ``region`` (all of them if none is specific to it)."""
        return [s for s in self.sources if s.applies_to(region)] or list(self.sources)

    def label(self, language: str) -> str:
        """Short button label in ``language`` (English if not translated)."""
        return self.title.get(language) or self.title["en"]


class KnowledgeBase:
    """All FAQ entries, by id."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries: dict[str, Entry] = {}
        for entry in entries:
            if entry.id in self.entries:
                raise KnowledgeError(f"duplicate FAQ id {entry.id!r}")
            self.entries[entry.id] = entry
        for entry in self.entries.values():
            missing = [r for r in entry.related if r not in self.entries]
            if missing:
                raise KnowledgeError(
                    f"{entry.id}: related ids not in the knowledge base: {missing}"
                )

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, entry_id: str | None) -> Entry | None:
        """The entry with this id, or None."""
        return self.entries.get(entry_id) if entry_id else None


def load_entries(path: Path) -> list[Entry]:
    """Parse and validate one YAML file of entries."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, list):
        raise KnowledgeError(f"{path}: expected a list of entries")
    entries = []
    for i, item in enumerate(raw):
        name = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
        try:
            entries.append(Entry.parse_obj(item))
        except ValidationError as exc:
            raise KnowledgeError(f"{path.name}: entry {name}: {exc}") from exc
    return entries


def load(directory: Path = FAQ_DIR) -> KnowledgeBase:
    """Load every ``*.yml`` file in ``directory`` into a validated knowledge base."""
    files = sorted(directory.glob("*.yml"))
    if not files:
        raise KnowledgeError(f"no FAQ files in {directory}")
    return KnowledgeBase(e for f in files for e in load_entries(f))


@lru_cache(maxsize=1)
def default_kb() -> KnowledgeBase:
    """The bundled knowledge base, loaded once per process."""
    return load()
