"""``navigator eval``: how well the assistant understands people. Prints figures; gates nothing.

1. Accuracy on the real-question corpus (tests/data/realworld/: questions people posted in
   public, never used for training), dev and frozen test splits, through the whole trained
   NLU pipeline: right first time, right entry among the buttons actually shown, wrong.
2. Provider-search messages (tests/data/heldout_provider.yml, navigator/provider_eval.py): intent,
   place and service, each counted over the rows it applies to; invented places on every row.
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
import re
import statistics
import time
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from navigator import training
from navigator.provider_eval import provider_search
from settings import ROOT, Settings

REAL_QUESTIONS = ROOT / "tests" / "data" / "realworld"
REAL_SPLITS = {"dev": "dev split (read and tuned on)",
               "test": "TEST split (frozen: figures only, its rows are never printed)"}
FROZEN_REAL = {"test"}
# Two texts are near-duplicates when their word sets overlap this much (Jaccard: shared words
# over all words), e.g. "who pays for palliative care?" and "Who pays for palliative care".
NEAR_DUP_JACCARD = 0.8


def predicted_label(parse: dict[str, Any]) -> str:
    """The label an answer would be given for: ``faq/<id>``, another intent, or the fallback."""
    intent = (parse.get("intent") or {}).get("name") or "none"
    if intent == "faq":
        key = parse.get("response_selector", {}).get("faq", {}).get("response", {})
        return key.get("intent_response_key") or "faq/?"
    return intent


def offered_labels(parse: dict[str, Any]) -> list[str]:
    """The labels of the "did you mean" buttons the person is actually shown (the action's own
    choice, so an offer counts only when it was on screen)."""
    from actions.faq import offer_buttons

    labels = []
    for button in offer_buttons(parse, "en"):
        payload = button.payload
        if payload.startswith('/faq{"faq_id":"'):
            labels.append("faq/" + payload.split('"')[3])
        else:
            labels.append(payload.lstrip("/"))
    return labels


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


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9']+", text.lower()))


def near_duplicates(rows: list[str], examples: list[str]) -> dict[int, str]:
    """Rows (by index) that are near-duplicates of a training example, with that example:
    evaluating on them would measure memory, not understanding."""
    index: dict[str, list[frozenset[str]]] = {}
    sets = [_words(e) for e in examples]
    for words in sets:
        for w in words:
            index.setdefault(w, []).append(words)
    found: dict[int, str] = {}
    by_set = dict(zip(sets, examples, strict=False))
    for i, text in enumerate(rows):
        words = _words(text)
        if not words:
            continue
        candidates = {id(c): c for w in words for c in index.get(w, ())}.values()
        for other in candidates:
            if len(words & other) / len(words | other) >= NEAR_DUP_JACCARD:
                found[i] = by_set[other]
                break
    return found


def training_texts() -> list[str]:
    """Every training example's text (entity markup removed)."""
    return [re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
            for texts in training.nlu_examples().values() for text in texts]


def real_question_rows(split: str) -> list[dict[str, Any]]:
    """One split of the real-question corpus."""
    path = REAL_QUESTIONS / f"{split}.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["examples"]


def judge_question(row: dict[str, Any], parse: dict[str, Any], key: str = "labels") -> str:
    """What the person would have got: ``right`` (an answer from a right entry), ``offered``
    (a "did you mean" whose buttons include a right entry), ``unsure`` (a "did you mean"
    without one), ``wrong`` (an answer from another entry or intent). ``key`` names the row's
    labels to judge by: ``labels`` (as collected) or ``reviewed_labels`` (second annotation)."""
    labels = set(row.get(key, row["labels"]))
    label = predicted_label(parse)
    if label in labels:
        return "right"
    if label == "nlu_fallback":
        return "offered" if labels & set(offered_labels(parse)) else "unsure"
    return "wrong"


OUTCOMES = ("right", "offered", "unsure", "wrong")


def _figures(outcomes: list[str]) -> dict[str, Any]:
    n = len(outcomes)
    counts = Counter(outcomes)
    return {"n": n, **{k: counts[k] for k in OUTCOMES},
            **{f"{k}_rate": round(counts[k] / n, 4) if n else None for k in OUTCOMES},
            "right_or_offered_rate": round((counts["right"] + counts["offered"]) / n, 4)
            if n else None}


def _print_figures(title: str, f: dict[str, Any]) -> None:
    n = f["n"]
    if not n:
        return
    print(f"  {title} ({n} questions)")
    print(f"    answered right first time      {f['right']:4d} = {f['right_rate']:.1%}")
    print(f"    right entry among the buttons  {f['offered']:4d} = {f['offered_rate']:.1%}")
    print(f"    right answer or right offer         = {f['right_or_offered_rate']:.1%}")
    print(f"    did you mean, no right button  {f['unsure']:4d} = {f['unsure_rate']:.1%}")
    print(f"    WRONG answer                   {f['wrong']:4d} = {f['wrong_rate']:.1%}")


def real_questions(model_file: Path, out: Path, dev_only: bool = False) -> dict[str, dict]:
    """Accuracy on the real-question corpus, dev and test splits (``dev_only``: the dev split
    alone); forum questions and the CLINC150 small-talk rows reported apart. Dev misses are
    printed; test rows never are."""
    examples = training_texts()
    results: dict[str, dict] = {}
    for split, what in REAL_SPLITS.items():
        if dev_only and split in FROZEN_REAL:
            continue
        rows = real_question_rows(split)
        dups = near_duplicates([r["text"] for r in rows], examples)
        kept = [r for i, r in enumerate(rows) if i not in dups]
        print(f"== real questions, {what}: {len(rows)} rows, {len(dups)} left out as "
              "near-duplicates of training examples ==", flush=True)
        parses, seconds = asyncio.run(_parse_all(model_file, [r["text"] for r in kept]))
        outcomes = [judge_question(r, p) for r, p in zip(kept, parses, strict=True)]
        groups = {"forum": [o for r, o in zip(kept, outcomes, strict=True)
                            if r.get("corpus") != "clinc150"],
                  "clinc150": [o for r, o in zip(kept, outcomes, strict=True)
                               if r.get("corpus") == "clinc150"]}
        no_entry = [o for r, o in zip(kept, outcomes, strict=True) if not r["labels"]]
        figures = {name: _figures(group) for name, group in groups.items()}
        _print_figures("forum and Q&A questions, labels as collected", figures["forum"])
        if any("reviewed_labels" in r for r in kept):
            reviewed = [judge_question(r, p, "reviewed_labels") for r, p
                        in zip(kept, parses, strict=True) if r.get("corpus") != "clinc150"]
            figures["forum_reviewed"] = _figures(reviewed)
            _print_figures("forum and Q&A questions, reviewed labels (second annotator, "
                           "blind to the assistant)", figures["forum_reviewed"])
        _print_figures("CLINC150 small talk and out-of-scope", figures["clinc150"])
        if no_entry:
            print(f"    of these, {len(no_entry)} have no entry that answers them yet "
                  f"({Counter(no_entry)['wrong']} got a wrong answer)")
        ms = sorted(s * 1000 for s in seconds)
        figures["parse_ms"] = {"median": round(statistics.median(ms), 1),
                               "p95": round(ms[int(0.95 * (len(ms) - 1))], 1)}
        figures["near_duplicates_left_out"] = len(dups)
        print(f"    NLU parse time                 median {figures['parse_ms']['median']} ms, "
              f"p95 {figures['parse_ms']['p95']} ms (one process, after warm-up)")
        if split not in FROZEN_REAL:
            print("    misses (expected -> got [buttons shown]):")
            for row, parse, outcome in zip(kept, parses, outcomes, strict=True):
                if outcome in ("right", "offered") or judge_question(
                        row, parse, "reviewed_labels") in ("right", "offered"):
                    continue
                expected = ",".join(row.get("reviewed_labels", row["labels"])) or (
                    f"(none: {row.get('missing_topic')})")
                got = predicted_label(parse)
                if got == "nlu_fallback":
                    got += " " + str(offered_labels(parse))
                print(f"      {outcome:6s} {expected[:40]:40s} -> {got[:60]:60s} "
                      f"{row['text'][:60]!r}")
        results[split] = figures
    out.mkdir(parents=True, exist_ok=True)
    (out / "real_questions.json").write_text(json.dumps(results, indent=1))
    return results


SAFETY_SETS = {
    "safety_set.yml": "tuning set (the rules were fitted to it)",
    "safety_heldout.yml": "second set (independent once; its misses then shaped the rules)",
    "safety_heldout2.yml": "third set (the model threshold was chosen on it and "
                           "nlu_data/crisis_more.yml holds close paraphrases: not independent)",
    "safety_independent_dev.yml": "independent set, dev split (read and tuned on)",
    "safety_negatives_dev.yml": "ordinary messages that share crisis words, dev (tuned on)",
    "safety_positives_dev.yml": "crisis messages in indirect wording, dev (tuned on)",
    "safety_fresh_dev.yml": "fresh set of 2026-12-07, dev (written without seeing the rules "
                            "or the training data; read to check wave 6)",
    "safety_lookalikes2_dev.yml": "fresh look-alikes of 2026-12-07, dev (written without seeing "
                                  "the rules; read to make the rules' weak tier)",
    "safety_fresh3_dev.yml": "third fresh set of 2026-12-07, dev (written without seeing the "
                             "rules or the training data; measured wave 8 before it was read)",
    "safety_fresh4_dev.yml": "fourth fresh set of 2026-12-07, dev (written without seeing the "
                             "rules or the training data; measured the outcome check before "
                             "it was read)",
    "safety_fresh5_dev.yml": "fifth fresh set of 2026-12-07, dev (written without seeing the "
                             "rules or the training data; measured before it was read)",
    "safety_fresh6_dev.yml": "sixth fresh set of 2026-12-07, dev (written without seeing the "
                             "rules or the training data; measured session 10's work before "
                             "it was read)",
    "safety_fresh7_dev.yml": "seventh fresh set of 2026-12-07, dev (written without seeing the "
                             "rules or the training data; texting style; measured session 11's "
                             "start before it was read)",
    "safety_fresh8_dev.yml": "eighth fresh set of 2026-12-07, dev (written without seeing the "
                             "rules or the training data; long posts; measured session 11's "
                             "start before it was read)",
    "safety_fresh9_dev.yml": "ninth fresh set of 2026-12-07, dev (written without seeing the "
                             "rules or the training data; measured session 11's rules from "
                             "sets 7 and 8 before it was read)",
    "safety_fresh10_dev.yml": "tenth fresh set of 2026-12-07, dev (written without seeing the "
                              "rules or the training data; voice-dictated, older writers, "
                              "illnesses beyond cancer; measured session 11's final work before "
                              "it was read)",
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


def safety(model_file: Path, default_region: str, dev_only: bool = False) -> dict[str, dict]:
    """Per labelled safety set: recall by kind (counted only when the reply the person sees
    carries that kind's numbers for their region), false alarms, right-region rate; the rules
    alone for comparison. Misses are printed except for frozen test splits (``dev_only``:
    frozen splits are not run at all)."""
    from bot.nlu.safety import default_detector

    detector = default_detector()
    figures: dict[str, dict] = {}
    for name, what in SAFETY_SETS.items():
        path = ROOT / "tests" / "data" / name
        if dev_only and name in FROZEN:
            continue
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


def main(settings: Settings, folds: int = 3, skip_cv: bool = False,
         dev_only: bool = False) -> int:
    """Print every figure; return 0 (evaluation informs, it does not gate). ``dev_only``
    leaves out the frozen test splits (for tuning: their figures are not read)."""
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    logging.getLogger("rasa").setLevel(logging.ERROR)
    out = settings.var_dir / "eval"
    model_file = training.ensure_model(settings.models_dir)
    if dev_only:
        print("== dev splits only: the frozen test splits are not run ==")
        out = out / "dev"
    real_questions(model_file, out, dev_only)
    (out / "provider_search.json").write_text(json.dumps(provider_search(model_file), indent=1))
    safety(model_file, settings.default_region, dev_only)
    if not skip_cv:
        cross_validate(folds)
    print(f"reports written to {out}")
    return 0
