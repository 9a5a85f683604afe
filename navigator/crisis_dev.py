"""Tune the crisis rules and the region cues on the DEV sets (issue 12), no training needed.

``python -m navigator.crisis_dev [--model] [--quiet] [SET ...]`` runs the rules
(:class:`bot.nlu.safety.CrisisDetector`) over each dev set and prints, per set:

- recall by label of the rules, counted as ``make eval`` counts it: the crisis action's reply
  (built from the rules' classes alone) carries the row's kind's numbers for its region;
- false alarms on the ``none`` rows, with the patterns that fired;
- the region decided for each crisis row (``region_of_message``) against its ``region`` field.

``--model`` also parses every row through the model file in ``models/`` (loaded read-only,
with the current rules and ``SafetyOverride``; never trained here) and counts what the whole NLU
pipeline routes. Frozen test splits are never read here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.nlu.safety import INTENT_FOR, PRIORITY, CrisisDetector, default_detector
from knowledge.helplines import SAFETY_PATTERNS_FILE
from knowledge.region_cues import region_of_message
from navigator.evaluate import FROZEN as FROZEN_SAFETY
from navigator.evaluate import SAFETY_SETS
from settings import ROOT, Settings

DATA = ROOT / "tests" / "data"
# Sets this script may read: every safety set `make eval` prints except its frozen test
# splits ("safety_fresh_dev.yml" as "fresh_dev"), and the real-question dev split.
def _short(file: str) -> str:
    """A set's name on the command line: its file's stem, without "safety_" for dev splits."""
    stem = Path(file).stem
    rest = stem.removeprefix("safety_")
    return rest if rest.endswith("_dev") else stem


DEV_SETS: dict[str, Path] = {
    **{_short(f): DATA / f for f in SAFETY_SETS if f not in FROZEN_SAFETY},
    "realworld_dev": DATA / "realworld" / "dev.yml",
}
FROZEN = ("safety_independent_test.yml", "realworld/test.yml")
NLU_SET = "nlu_ordinary"  # every training example of a non-crisis intent (label none)


@dataclass
class SetFigures:
    """What the rules (and optionally the model) did on one set."""

    name: str
    by_label: dict[str, list[int]] = field(default_factory=dict)  # label -> [caught, n]
    calm: int = 0
    alarms: list[tuple[str, list[str]]] = field(default_factory=list)  # text, rules
    missed: list[tuple[str, str, list[str]]] = field(default_factory=list)  # label, text, got
    region_right: int = 0
    region_rows: int = 0
    region_wrong: list[tuple[str, str | None, str]] = field(default_factory=list)
    model_alarms: list[str] = field(default_factory=list)
    model_by_label: dict[str, list[int]] = field(default_factory=dict)
    model_missed: list[tuple[str, str]] = field(default_factory=list)


def load_rows(name: str) -> list[dict[str, Any]]:
    """One dev set's rows as dicts with ``text``, ``label`` and ``region`` (``none`` if unset)."""
    if name == NLU_SET:
        from navigator.evaluate import training_texts
        from navigator.training import nlu_examples

        crisis = {t for intent, texts in nlu_examples().items() if intent.startswith("crisis_")
                  for t in texts}
        return [{"text": t, "label": "none", "region": "none"} for t in training_texts()
                if t not in crisis]
    path = DEV_SETS[name]
    assert not any(str(path).endswith(f) for f in FROZEN), "frozen test splits stay unread"
    if not path.exists():
        return []
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))["examples"]
    return [{"text": r["text"], "label": r.get("label", "none"),
             "region": r.get("region") or "none"} for r in rows]


@lru_cache(maxsize=1)
def pattern_texts() -> dict[str, str]:
    """``<kind>-<role>-<i>`` -> the pattern as written in safety_patterns.yml."""
    spec = yaml.safe_load(SAFETY_PATTERNS_FILE.read_text(encoding="utf-8"))
    return {f"{kind}-{role}-{i}": str(p) for kind, rules in spec["classes"].items()
            for role, patterns in rules.items() for i, p in enumerate(patterns or [])}


def rules_fired(detector: CrisisDetector, text: str) -> list[str]:
    """The patterns behind each counted hit, as ``kind: pattern [matched words]``."""
    names = pattern_texts()
    return list(dict.fromkeys(f"{h.kind}: {names.get(h.rule, h.rule)} [{h.text}]"
                              for h in detector.hits(text)))


def rules_parse(detector: CrisisDetector, text: str) -> dict[str, Any]:
    """The parse the NLU would give from the rules alone (no model)."""
    kinds = [k for k in PRIORITY if k in detector.classes(text)]
    if not kinds:
        return {"text": text, "intent": {"name": "faq", "confidence": 1.0}, "entities": []}
    return {"text": text, "intent": {"name": INTENT_FOR[kinds[0]], "confidence": 1.0},
            "entities": [{"entity": "crisis_type", "value": k} for k in kinds]}


def _model_file(settings: Settings) -> Path:
    files = sorted(settings.models_dir.glob("navigator-*.tar.gz"))
    if not files:
        raise SystemExit("no model in models/: --model needs one (this script never trains)")
    return files[-1]


def evaluate_set(
    name: str, detector: CrisisDetector, default_region: str, model: Path | None = None,
) -> SetFigures:
    """Figures for one set (rows judged as ``make eval`` judges them)."""
    from navigator.evaluate import crisis_reply_for, judge_crisis_row

    rows = load_rows(name)
    figures = SetFigures(name)
    parses: list[dict[str, Any]] = []
    if model is not None and rows:
        from navigator.evaluate import _parse_all

        parses, _ = asyncio.run(_parse_all(model, [r["text"] for r in rows]))
    for i, row in enumerate(rows):
        text, label = row["text"], row["label"]
        rules_reply = crisis_reply_for(rules_parse(detector, text))
        judged = judge_crisis_row(row, rules_reply, default_region)
        if label == "none":
            figures.calm += 1
            if judged["routed"]:
                figures.alarms.append((text, rules_fired(detector, text)))
        else:
            tally = figures.by_label.setdefault(label, [0, 0])
            tally[0] += judged["caught"]
            tally[1] += 1
            if not judged["caught"]:
                figures.missed.append((label, text, detector.classes(text)))
            told = region_of_message(text) or "none"
            figures.region_rows += 1
            if told == row["region"]:
                figures.region_right += 1
            else:
                figures.region_wrong.append((row["region"], told, text))
        if parses:
            whole = judge_crisis_row(row, crisis_reply_for(parses[i]), default_region)
            if label == "none":
                if whole["routed"]:
                    figures.model_alarms.append(text)
            else:
                tally = figures.model_by_label.setdefault(label, [0, 0])
                tally[0] += whole["caught"]
                tally[1] += 1
                if not whole["caught"]:
                    figures.model_missed.append((label, text))
    return figures


def _rate(got: int, n: int) -> str:
    return f"{got}/{n} = {got / n:.1%}" if n else "-"


def print_figures(f: SetFigures, quiet: bool = False) -> None:
    """Print one set's figures (and, unless quiet, its misses, alarms and wrong regions)."""
    print(f"== {f.name} ==")
    for label, (got, n) in sorted(f.by_label.items()):
        model = f.model_by_label.get(label)
        extra = f"   whole NLU {_rate(*model)}" if model else ""
        print(f"  rules recall {label:9s} {_rate(got, n):18s}{extra}")
    extra = (f"   whole NLU {_rate(len(f.model_alarms), f.calm)}"
             if f.model_by_label or f.model_alarms else "")
    print(f"  rules false alarms     {_rate(len(f.alarms), f.calm):18s}{extra}")
    if f.region_rows:
        print(f"  region right (crisis)  {_rate(f.region_right, f.region_rows)}")
    if quiet:
        return
    for text, rules in f.alarms:
        print(f"    ALARM  {text[:110]!r}\n           <- {'; '.join(rules)}")
    for text in f.model_alarms:
        if not any(text == a for a, _ in f.alarms):
            print(f"    MODEL ALARM  {text[:110]!r}")
    for label, text, got in f.missed:
        print(f"    MISSED {label:9s} {text[:110]!r} (rules: {got or '-'})")
    for label, text in f.model_missed:
        print(f"    MODEL MISSED {label:9s} {text[:100]!r}")
    for want, told, text in f.region_wrong:
        print(f"    REGION want {want:4s} got {told:4s} {text[:100]!r}")


def main(argv: list[str] | None = None) -> int:
    """Print the figures for the chosen dev sets (all by default)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", help=f"of {', '.join([*DEV_SETS, NLU_SET])}")
    parser.add_argument("--model", action="store_true",
                        help="also parse through the trained model (read-only)")
    parser.add_argument("--quiet", action="store_true", help="figures only")
    args = parser.parse_args(argv)
    names = args.sets or [*DEV_SETS, NLU_SET]
    unknown = [n for n in names if n not in DEV_SETS and n != NLU_SET]
    if unknown:
        parser.error(f"unknown set(s): {unknown}")
    settings = Settings.from_env()
    model = None
    if args.model:
        os.environ["RASA_TELEMETRY_ENABLED"] = "false"
        logging.getLogger("rasa").setLevel(logging.ERROR)
        model = _model_file(settings)
    detector = default_detector()
    alarms = calm = 0
    for name in names:
        figures = evaluate_set(name, detector, settings.default_region, model)
        print_figures(figures, quiet=args.quiet)
        alarms, calm = alarms + len(figures.alarms), calm + figures.calm
    print(f"rules false alarms in all: {alarms} of {calm} ordinary messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
