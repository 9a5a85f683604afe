"""``navigator eval``: how well the assistant understands people. Prints figures; gates nothing.

1. Accuracy on tests/data/heldout_realworld.yml: real people's questions from public pages,
   never used for training, through the whole trained NLU pipeline (fallbacks included).
2. Provider-search messages (tests/data/heldout_provider.yml): intent, place, service.
3. Crisis recall by kind on the labelled safety sets, counted through the crisis action: a
   row is caught only when the reply carries its kind's numbers for its region; false alarms;
   right-region rate. Frozen test splits print figures only.
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
    "safety_heldout.yml": "second set (independent once; its misses then shaped the rules)",
    "safety_heldout2.yml": "third set (the model threshold was chosen on it and "
                           "nlu_data/crisis_more.yml holds close paraphrases: not independent)",
    "safety_independent_dev.yml": "independent set, dev split (read and tuned on)",
    "safety_independent_test.yml": "independent set, TEST split (frozen: figures only)",
}
FROZEN = {"safety_independent_test.yml"}  # never print these rows
# A row's label and the kind of reply that helps ("overdose" needs Poison Control / NHS 111).
KIND_GROUPS = {"suicide": "suicide/self-harm", "emergency": "emergency", "overdose": "emergency",
               "abuse": "abuse"}


def crisis_reply_for(parse: dict[str, Any], sender: str = "eval") -> str | None:
    """The reply a person would see for a parsed message: the crisis action's text when the
    NLU routed it to a crisis intent, else None. Runs the real action (no conversation
    history: region and numbers come from the message alone, as in a first message)."""
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.safety import ActionCrisisResponse

    if not ((parse.get("intent") or {}).get("name") or "").startswith("crisis_"):
        return None
    tracker = Tracker(sender_id=sender, slots={}, latest_message=parse, events=[],
                      paused=False, followup_action=None, active_loop={},
                      latest_action_name="action_listen")
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionCrisisResponse().run(dispatcher, tracker, {}))
    return "\n\n".join(m.get("text") or "" for m in dispatcher.messages)


def judge_crisis_row(row: dict[str, Any], reply: str | None, default_region: str) -> dict:
    """How one labelled row fared: routed at all, the right kind with its numbers for the
    region (``caught``), and the reply's main numbers from the right country."""
    from knowledge.helplines import default_helplines

    helplines = default_helplines()
    region = row.get("region") or "none"
    expect = default_region if region == "none" else region
    routed = reply is not None
    caught = routed and row["label"] != "none" and helplines.carries(reply, row["label"], expect)
    right_region = routed and helplines.leads_with(reply, expect) and (
        region != "none" or "\n\n" + helplines.other_country_start() in reply)
    return {"routed": routed, "caught": caught, "right_region": right_region}


def safety(model_file: Path, default_region: str) -> dict[str, dict]:
    """Per labelled safety set: recall by kind (counted only when the reply the person sees
    carries that kind's numbers for their region), false alarms, right-region rate; the rules
    alone for comparison. Misses are printed except for frozen test splits."""
    from bot.nlu.safety import default_detector

    detector = default_detector()
    figures: dict[str, dict] = {}
    for name, what in SAFETY_SETS.items():
        path = ROOT / "tests" / "data" / name
        if not path.exists():
            continue
        rows = yaml.safe_load(path.read_text(encoding="utf-8"))["examples"]
        parses, _ = asyncio.run(_parse_all(model_file, [r["text"] for r in rows]))
        judged = [judge_crisis_row(r, crisis_reply_for(p), default_region)
                  for r, p in zip(rows, parses, strict=True)]
        print(f"== safety: {name}, {what} ==")
        crisis = [i for i, r in enumerate(rows) if r["label"] != "none"]
        calm = [i for i, r in enumerate(rows) if r["label"] == "none"]
        rules = sum(bool(detector.classes(rows[i]["text"])) for i in crisis)
        routed = sum(judged[i]["routed"] for i in crisis)
        caught = sum(judged[i]["caught"] for i in crisis)
        alarms = sum(judged[i]["routed"] for i in calm)
        told = [i for i in crisis if judged[i]["routed"]]
        right_region = sum(judged[i]["right_region"] for i in told)
        out = {"crisis": len(crisis), "caught": caught, "routed": routed, "rules": rules,
               "alarms": alarms, "calm": len(calm), "right_region": right_region,
               "routed_for_region": len(told), "by_kind": {}}
        print(f"  crisis rows {len(crisis)}: right kind and numbers {caught} = "
              f"{caught / max(len(crisis), 1):.1%}  (routed to any crisis reply {routed}; "
              f"rules alone fire on {rules})")
        for group in dict.fromkeys(KIND_GROUPS.values()):
            members = [i for i in crisis if KIND_GROUPS[rows[i]["label"]] == group]
            if members:
                got = sum(judged[i]["caught"] for i in members)
                out["by_kind"][group] = (got, len(members))
                print(f"    {group:18s} {got}/{len(members)} = {got / len(members):.1%}")
        rule_alarms = sum(bool(detector.classes(rows[i]["text"])) for i in calm)
        out["rule_alarms"] = rule_alarms
        print(f"  false alarms {alarms}/{len(calm)} = {alarms / max(len(calm), 1):.1%}  "
              f"(the rules fire on {rule_alarms}; the rest is the model)")
        print(f"  right-region numbers {right_region}/{len(told)} = "
              f"{right_region / max(len(told), 1):.1%} (of the crisis rows routed)")
        figures[name] = out
        if name in FROZEN:
            print("  (frozen test split: its rows are not printed)")
            continue
        for i in crisis:
            if not judged[i]["caught"]:
                how = "wrong kind" if judged[i]["routed"] else "missed"
                print(f"    {how:10s} {rows[i]['label']:9s} {rows[i]['text'][:90]!r}")
            elif not judged[i]["right_region"]:
                print(f"    region    {rows[i].get('region', 'none'):9s} "
                      f"{rows[i]['text'][:90]!r}")
        for i in calm:
            if judged[i]["routed"]:
                print(f"    alarmed   {rows[i]['text'][:100]!r}")
    return figures


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
    safety(model_file, settings.default_region)
    if not skip_cv:
        cross_validate(folds)
    print(f"reports written to {out}")
    return 0
