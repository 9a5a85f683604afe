"""Provider-search figures for ``navigator eval``, counted honestly.

Over tests/data/heldout_provider.yml (written apart from the training data), through the whole
trained NLU pipeline:

- rows whose text is exactly a training example (case and spacing aside) are left out;
- intent right, over every row;
- place right, over the rows that name a place (the place as geocoded: the label the search
  would show);
- places invented, counted on EVERY row that names none (a question with no place as well);
- service right, over the rows that name a service only (a row naming none cannot be "right");
  services invented, on search rows that name none;
- mixed rows (a question and a search, with `answers`): the search right (intent, place,
  service) and the question answered from a right entry, or a right entry offered, as the
  search actions would (knowledge.directory.question_part).

UK rows (the expected place is in the UK) and mixed rows are also reported apart.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from settings import ROOT

PROVIDER_SET = ROOT / "tests" / "data" / "heldout_provider.yml"
PROVIDER_INTENTS = {"find_provider", "inform_location", "provider_more", "provider_widen",
                    "provider_detail"}
SEARCH_INTENTS = {"find_provider", "inform_location"}


def normalise(text: str) -> str:
    """Lower case, single spaces, no surrounding punctuation: what "exactly" compares."""
    return " ".join(text.lower().split()).strip(" .?!,")


def without_training_duplicates(rows: list[dict[str, Any]],
                                examples: list[str]) -> tuple[list[dict[str, Any]], int]:
    """The rows whose text is not exactly a training example, and how many were dropped."""
    seen = {normalise(e) for e in examples}
    kept = [r for r in rows if normalise(r["text"]) not in seen]
    return kept, len(rows) - len(kept)


def place_label(parse: dict[str, Any]) -> str | None:
    """The place a search would use: the geocoded label of the first location entity; a
    Northern Ireland postcode as typed (the search signposts); `<reason>` if not placeable."""
    from providers.geo import LocationError, gazetteer

    value = next((e["value"] for e in parse.get("entities") or []
                  if e.get("entity") == "location"), None)
    if value is None:
        return None
    try:
        return gazetteer().resolve(str(value)).label
    except LocationError as err:
        return err.text if err.reason == "northern_ireland" else f"<{err.reason}>"


def is_uk(row: dict[str, Any]) -> bool:
    """Whether a row's expected place is in the UK."""
    from providers.geo import LocationError, gazetteer

    if not row.get("place"):
        return False
    try:
        return gazetteer().resolve(row["place"]).country == "GB"
    except LocationError as err:
        return err.reason == "northern_ireland"


def judge(row: dict[str, Any], parse: dict[str, Any]) -> dict[str, Any]:
    """How one row fared; None where a measure does not apply to the row."""
    from knowledge.directory import question_part

    intent = (parse.get("intent") or {}).get("name")
    intent = intent if intent in PROVIDER_INTENTS else "other"
    place = place_label(parse)
    service = next((e["value"] for e in parse.get("entities") or []
                    if e.get("entity") == "service"), None)
    out: dict[str, Any] = {
        "intent": intent, "place": place, "service": service,
        "intent_ok": intent == row["intent"],
        "place_ok": place == row["place"] if row.get("place") else None,
        "invented_place": bool(place) if not row.get("place") else None,
        "service_ok": service == row["service"] if row.get("service") else None,
        "invented_service": (service is not None if row["intent"] in SEARCH_INTENTS
                             and not row.get("service") else None),
        "question": None,
    }
    if row.get("answers"):
        part = question_part(parse)
        right = bool(part and set(part[1]) & set(row["answers"]))
        out["question"] = ("answered" if right and part[0] == "answer" else
                           "offered" if right else "missed")
        out["search_ok"] = (out["intent_ok"] and out["place_ok"] is not False
                            and out["service_ok"] is not False)
    return out


def _rate(judged: list[dict[str, Any]], key: str, value: Any = True) -> tuple[int, int]:
    counted = [j for j in judged if j[key] is not None]
    return sum(j[key] == value for j in counted), len(counted)


def figures(judged: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """(right, out of) per measure."""
    mixed = [j for j in judged if j["question"] is not None]
    return {
        "intent right": _rate(judged, "intent_ok"),
        "place right (rows naming a place)": _rate(judged, "place_ok"),
        "place invented (rows naming none)": _rate(judged, "invented_place"),
        "service right (rows naming one)": _rate(judged, "service_ok"),
        "service invented (searches naming none)": _rate(judged, "invented_service"),
        "mixed: search right": _rate(mixed, "search_ok") if mixed else (0, 0),
        "mixed: question answered right": _rate(mixed, "question", "answered"),
        "mixed: right entry offered": _rate(mixed, "question", "offered"),
        "mixed: both search and answer right": (
            sum(j["search_ok"] and j["question"] == "answered" for j in mixed), len(mixed)),
    }


def _print(title: str, figs: dict[str, tuple[int, int]]) -> None:
    print(f"  {title}")
    for name, (got, n) in figs.items():
        if n:
            print(f"    {name:42s} {got:3d}/{n:<3d} = {got / n:.1%}")


def provider_search(model_file: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """Print and return the provider-search figures (all rows, UK rows, mixed rows)."""
    from navigator.evaluate import _parse_all, training_texts

    if not PROVIDER_SET.exists():
        return {}
    rows = yaml.safe_load(PROVIDER_SET.read_text(encoding="utf-8"))["rows"]
    rows, dropped = without_training_duplicates(rows, training_texts())
    parses, _ = asyncio.run(_parse_all(model_file, [r["text"] for r in rows]))
    judged = [judge(r, p) for r, p in zip(rows, parses, strict=True)]
    print(f"== provider search ({len(rows)} rows from {PROVIDER_SET.relative_to(ROOT)}; "
          f"{dropped} left out as exact duplicates of training examples) ==")
    uk = [j for r, j in zip(rows, judged, strict=True) if is_uk(r)]
    mixed = [j for j in judged if j["question"] is not None]
    results = {"all": figures(judged), "uk": figures(uk), "mixed": figures(mixed)}
    _print(f"all rows ({len(judged)})", results["all"])
    _print(f"UK rows ({len(uk)})", {k: v for k, v in results["uk"].items()
                                    if not k.startswith("mixed")})
    print("  misses (expected -> got):")
    for row, j in zip(rows, judged, strict=True):
        bad = [k for k in ("intent_ok", "place_ok", "service_ok") if j[k] is False]
        bad += [k for k in ("invented_place", "invented_service") if j[k] is True]
        if j["question"] not in (None, "answered"):
            bad.append(f"question {j['question']}")
        if bad:
            text = " ".join(row["text"].split())[:60]
            print(f"    {row['intent']:15s} -> {j['intent']:15s} place {j['place']!s:24s} "
                  f"service {j['service']!s:17s} {','.join(bad):28s} {text!r}")
    return results
