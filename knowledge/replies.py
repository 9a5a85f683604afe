"""The actions' own wording (knowledge/replies.yml), by language."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPLIES_FILE = Path(__file__).parent / "replies.yml"


@lru_cache(maxsize=1)
def _load() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(REPLIES_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def phrase(key: str, language: str = "en") -> Any:
    """The raw entry ``key`` (text or a mapping) in ``language``, else in English."""
    texts = _load()
    return (texts.get(language) or {}).get(key, texts["en"][key])


def say(key: str, language: str = "en", **fields: str) -> str:
    """The text ``key`` in ``language`` (English if missing), with ``{fields}`` filled in."""
    return str(phrase(key, language)).format(**fields)


def keys(language: str = "en") -> list[str]:
    """Every key of the wording in ``language`` (English's when it has none)."""
    texts = _load()
    return list((texts.get(language) or texts["en"]).keys())
