"""``navigator eval``: how well the assistant understands people. Prints figures; gates nothing.

1. NLU cross-validation on the training data (intent and FAQ-entry accuracy and F1).
2. Accuracy on tests/data/heldout_realworld.yml: real people's questions from public pages,
   never used for training.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from bot import model
from bot.settings import ROOT, Settings

HELDOUT = ROOT / "tests" / "data" / "heldout_realworld.yml"


def predicted_label(parse: dict[str, Any]) -> str:
    """The label an answer would be given for: ``faq/<id>``, another intent, or the fallback."""
    intent = (parse.get("intent") or {}).get("name") or "none"
    if intent == "faq":
        key = parse.get("response_selector", {}).get("faq", {}).get("response", {})
        return key.get("intent_response_key") or "faq/?"
    return intent


def offered_labels(parse: dict[str, Any], n: int = 2) -> list[str]:
    """What the fallback would offer as buttons: the likeliest FAQ entries or intents."""
    labels: list[str] = []
    for item in parse.get("intent_ranking") or []:
        name = item.get("name")
        if name == "faq":
            ranking = parse.get("response_selector", {}).get("faq", {}).get("ranking", [])
            labels += [r["intent_response_key"] for r in ranking[:n]]
        elif name != "nlu_fallback":
            labels.append(name)
        if len(labels) >= n:
            break
    return labels[:n]


def cross_validate(out: Path, folds: int) -> None:
    """Run Rasa's NLU cross-validation and print the summary figures."""
    print(f"== NLU cross-validation ({folds} folds; trains {folds} models, takes a while) ==",
          flush=True)
    result = subprocess.run(
        [*model.rasa_command(), "test", "nlu", "--nlu", "nlu_data", "--config", "config.yml",
         "--domain", "domain.yml", "--cross-validation", "--folds", str(folds), "--out", str(out)],
        cwd=ROOT, env=model.rasa_env(), capture_output=True, text=True,
    )
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:])
        raise RuntimeError("cross-validation failed")
    for name, label in (("intent_report.json", "intent"),
                        ("response_selection_report.json", "FAQ entry (response selector)")):
        path = out / name
        if not path.exists():
            print(f"  {label}: no report ({name} missing)")
            continue
        report = json.loads(path.read_text())
        weighted = report.get("weighted avg", {})
        print(f"  {label:32s} accuracy {report.get('accuracy', 0):.3f}  "
              f"weighted F1 {weighted.get('f1-score', 0):.3f}  macro F1 "
              f"{report.get('macro avg', {}).get('f1-score', 0):.3f}")


async def _parse_all(model_file: Path, texts: list[str]) -> tuple[list[dict[str, Any]], float]:
    import structlog
    from rasa.core.agent import Agent

    # Rasa logs every parse (with the message text) at debug level through structlog.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    agent = Agent.load(str(model_file))
    started = time.perf_counter()
    parses = [await agent.parse_message(t) for t in texts]
    return parses, (time.perf_counter() - started) / max(1, len(texts))


def heldout(model_file: Path, out: Path) -> float:
    """Accuracy on the real-world held-out questions; prints the misses."""
    data = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    rows = data["examples"]
    print(f"== held-out real-world questions ({len(rows)} from {HELDOUT.relative_to(ROOT)}) ==",
          flush=True)
    parses, per_parse = asyncio.run(_parse_all(model_file, [r["text"] for r in rows]))
    right = offered = fell_back = 0
    misses = []
    for row, parse in zip(rows, parses, strict=True):
        label = predicted_label(parse)
        if label == row["label"]:
            right += 1
        elif label == "nlu_fallback":
            fell_back += 1
            if row["label"] in offered_labels(parse):
                offered += 1
            else:
                misses.append((row, label))
        else:
            misses.append((row, label))
    n = len(rows)
    print(f"  answered right first time          {right}/{n} = {right / n:.1%}")
    print(f"  unsure, right topic offered        {offered}/{n} = {offered / n:.1%}")
    print(f"  right answer or right offer        {(right + offered) / n:.1%}")
    print(f"  fallbacks in all                   {fell_back}/{n}")
    print(f"  mean NLU parse time                {per_parse * 1000:.1f} ms")
    confusions = Counter((row["label"], label) for row, label in misses)
    print("  misses (expected -> got):")
    for row, label in misses:
        print(f"    {row['label']:38s} -> {label:38s} {row['text'][:70]!r}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "heldout.json").write_text(json.dumps(
        {"n": n, "right": right, "offered": offered, "fallbacks": fell_back,
         "confusions": [[e, g, c] for (e, g), c in confusions.most_common()]}, indent=1))
    return right / n


def main(settings: Settings, folds: int = 3, skip_cv: bool = False) -> int:
    """Print every figure; return 0 (evaluation informs, it does not gate)."""
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    logging.getLogger("rasa").setLevel(logging.ERROR)
    out = settings.var_dir / "eval"
    model_file = model.ensure_model(settings.models_dir)
    heldout(model_file, out)
    if not skip_cv:
        cross_validate(out / "cv", folds)
    print(f"reports written to {out}")
    return 0
