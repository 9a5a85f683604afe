"""``navigator eval``: how well the assistant understands people. Prints figures; gates nothing.

1. Accuracy on tests/data/heldout_realworld.yml: real people's questions from public pages,
   never used for training, through the whole trained NLU pipeline (fallbacks included).
2. Provider-search messages (tests/data/heldout_provider.yml): intent, place, service.
3. Crisis recall and false alarms on the labelled safety sets (rules alone, whole pipeline).
4. Cross-validation on the training data (intent and FAQ-entry accuracy and F1).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import time
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from navigator import training
from settings import ROOT, Settings

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


def cross_validate(folds: int) -> None:
    """Stratified k-fold cross-validation of the intent/FAQ classifier on the training data.

    The sentence embeddings are computed once (they are not trained); each fold fits its own
    character TF-IDF and logistic regression, exactly as training does.
    """
    import tempfile

    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    from bot.nlu.faq_classifier import IntentAndFaqClassifier
    from bot.nlu.sentence_embeddings import SentenceEmbeddingFeaturizer

    print(f"== cross-validation of the intent/FAQ classifier ({folds} folds) ==", flush=True)
    data = TrainingDataImporter.load_from_config(
        str(ROOT / "config.yml"), str(ROOT / "domain.yml"), [str(training.DATA_DIR)]
    ).get_nlu_data()
    examples = [m for m in data.intent_examples if m.get("text")]
    featurizer_config = SentenceEmbeddingFeaturizer.get_default_config()
    SentenceEmbeddingFeaturizer("minilm", featurizer_config).process(examples)
    gold = [m.get_full_intent() for m in examples]
    predicted = [""] * len(examples)
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0).split(examples, gold)
    config = IntentAndFaqClassifier.get_default_config()
    with tempfile.TemporaryDirectory() as tmp:
        for fold, (train_idx, test_idx) in enumerate(splits):
            storage = Path(tmp) / str(fold)
            storage.mkdir()
            classifier = IntentAndFaqClassifier.create(
                config, LocalModelStorage(storage), Resource("cv"), None
            )
            classifier.train(TrainingData(training_examples=[examples[i] for i in train_idx]))
            probs = classifier.predict_proba([examples[i] for i in test_idx])
            for i, row in zip(test_idx, probs, strict=True):
                predicted[i] = classifier.labels[int(row.argmax())]
    entries = [i for i, g in enumerate(gold) if g.startswith("faq/")]

    def report(name: str, g: list[str], p: list[str]) -> None:
        print(f"  {name:30s} accuracy {accuracy_score(g, p):.3f}  "
              f"weighted F1 {f1_score(g, p, average='weighted'):.3f}  "
              f"macro F1 {f1_score(g, p, average='macro'):.3f}  ({len(g)} examples)")

    report("intent (faq or another)", [g.split("/")[0] for g in gold],
           [p.split("/")[0] for p in predicted])
    report("FAQ entry (faq/<id>)", [gold[i] for i in entries], [predicted[i] for i in entries])


@lru_cache(maxsize=1)
def _agent(model_file: Path) -> Any:
    """The trained model, loaded once for every evaluation in this run."""
    import structlog
    from rasa.core.agent import Agent

    # Rasa logs every parse (with the message text) at debug level through structlog.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return Agent.load(str(model_file))


async def _parse_all(
    model_file: Path, texts: list[str]
) -> tuple[list[dict[str, Any]], list[float]]:
    agent = _agent(model_file)
    await agent.parse_message("warm up")
    parses, seconds = [], []
    for text in texts:
        started = time.perf_counter()
        parses.append(await agent.parse_message(text))
        seconds.append(time.perf_counter() - started)
    return parses, seconds


def heldout(model_file: Path, out: Path) -> float:
    """Accuracy on the real-world held-out questions; prints the misses."""
    data = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    rows = data["examples"]
    print(f"== held-out real-world questions ({len(rows)} from {HELDOUT.relative_to(ROOT)}) ==",
          flush=True)
    parses, seconds = asyncio.run(_parse_all(model_file, [r["text"] for r in rows]))
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
    ms = sorted(s * 1000 for s in seconds)
    print(f"  NLU parse time                     median {statistics.median(ms):.1f} ms, "
          f"p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms (one process, after warm-up)")
    confusions = Counter((row["label"], label) for row, label in misses)
    print("  misses (expected -> got):")
    for row, label in misses:
        print(f"    {row['label']:38s} -> {label:38s} {row['text'][:70]!r}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "heldout.json").write_text(json.dumps(
        {"n": n, "right": right, "offered": offered, "fallbacks": fell_back,
         "confusions": [[e, g, c] for (e, g), c in confusions.most_common()]}, indent=1))
    return right / n


SAFETY_SETS = {
    "safety_set.yml": "tuning set (the rules were fitted to it)",
    "safety_heldout.yml": "second set (independent; its misses then shaped the rules)",
    "safety_heldout2.yml": "third set (independent, harder; never used to tune anything)",
}


def safety(model_file: Path) -> None:
    """Crisis recall and false alarms: the rules alone, and the whole NLU pipeline."""
    from bot.nlu.safety import default_detector

    detector = default_detector()
    for name, what in SAFETY_SETS.items():
        path = ROOT / "tests" / "data" / name
        if not path.exists():
            continue
        rows = yaml.safe_load(path.read_text(encoding="utf-8"))["examples"]
        parses, _ = asyncio.run(_parse_all(model_file, [r["text"] for r in rows]))
        print(f"== safety: {name}, {what} ==")
        crisis = [i for i, r in enumerate(rows) if r["label"] != "none"]
        calm = [i for i, r in enumerate(rows) if r["label"] == "none"]
        by_rules = [bool(detector.classes(r["text"])) for r in rows]
        by_pipeline = [(p.get("intent") or {}).get("name", "").startswith("crisis_")
                       for p in parses]
        for label, fired in (("rules alone", by_rules), ("whole pipeline", by_pipeline)):
            caught = sum(fired[i] for i in crisis)
            alarms = sum(fired[i] for i in calm)
            print(f"  {label:15s} crisis recall {caught}/{len(crisis)} = "
                  f"{caught / len(crisis):.1%}   false alarms {alarms}/{len(calm)}")
        for i in crisis:
            if not by_pipeline[i]:
                print(f"    missed   {rows[i]['label']:9s} {rows[i]['text'][:90]!r}")
        for i in calm:
            if by_pipeline[i]:
                print(f"    alarmed  {rows[i]['text'][:100]!r}")


PROVIDER_SET = ROOT / "tests" / "data" / "heldout_provider.yml"
PROVIDER_INTENTS = {"find_provider", "inform_location", "provider_more", "provider_widen",
                    "provider_detail"}


def provider_search(model_file: Path) -> None:
    """Provider-search messages: intent, the place (as geocoded) and the service."""
    from providers.geo import LocationError, gazetteer

    if not PROVIDER_SET.exists():
        return
    rows = yaml.safe_load(PROVIDER_SET.read_text(encoding="utf-8"))["rows"]
    parses, _ = asyncio.run(_parse_all(model_file, [r["text"] for r in rows]))
    print(f"== provider search ({len(rows)} from {PROVIDER_SET.relative_to(ROOT)}) ==")
    intent_ok = place_ok = place_n = service_ok = spurious = 0
    misses = []
    for row, parse in zip(rows, parses, strict=True):
        intent = (parse.get("intent") or {}).get("name")
        intent = intent if intent in PROVIDER_INTENTS else "other"
        entities = {e["entity"]: e["value"] for e in parse.get("entities") or []}
        place = None
        if "location" in entities:
            try:
                place = gazetteer().resolve(str(entities["location"])).label
            except LocationError as err:
                place = f"<{err.reason}>"
        ok_intent = intent == row["intent"]
        intent_ok += ok_intent
        if row.get("place"):
            place_n += 1
            place_ok += place == row["place"]
        elif place and row["intent"] != "other":
            spurious += 1
        ok_service = entities.get("service") == row.get("service") or (
            row["intent"] not in ("find_provider", "inform_location"))
        service_ok += ok_service
        if not ok_intent or (row.get("place") and place != row["place"]) or not ok_service:
            misses.append((row, intent, place, entities.get("service")))
    n = len(rows)
    print(f"  intent right                       {intent_ok}/{n} = {intent_ok / n:.1%}")
    print(f"  place right (rows naming a place)  {place_ok}/{place_n} = "
          f"{place_ok / max(place_n, 1):.1%}")
    print(f"  place found where none was given   {spurious}")
    print(f"  service right                      {service_ok}/{n} = {service_ok / n:.1%}")
    for row, intent, place, service in misses:
        print(f"    {row['intent']:15s} -> {intent:15s} place {place!s:24s} service "
              f"{service!s:15s} {row['text'][:60]!r}")


def main(settings: Settings, folds: int = 3, skip_cv: bool = False) -> int:
    """Print every figure; return 0 (evaluation informs, it does not gate)."""
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    logging.getLogger("rasa").setLevel(logging.ERROR)
    out = settings.var_dir / "eval"
    model_file = training.ensure_model(settings.models_dir)
    heldout(model_file, out)
    provider_search(model_file)
    safety(model_file)
    if not skip_cv:
        cross_validate(folds)
    print(f"reports written to {out}")
    return 0
