"""Train the Rasa model only when its inputs changed.

The model file is named after a hash of everything that shapes it (config, domain, training
data, our custom NLU components, the Rasa version), so an unchanged project never retrains
and a changed one never runs a stale model.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import yaml

import knowledge
from settings import ROOT

DATA_DIR = ROOT / "nlu_data"
FAQ_RESPONSES = DATA_DIR / "faq" / "responses.yml"
MODEL_PREFIX = "navigator-"
RESPONSES_HEADER = (
    "# Generated from knowledge/faq/*.yml by `navigator train`: do not edit.\n"
    "# Rasa's ResponseSelector needs one response per faq/<id>; the real answer is rendered\n"
    "# from the knowledge base by action_answer_faq, so each response only names its entry.\n"
)


def rasa_env() -> dict[str, str]:
    """Environment for anything that runs Rasa: no telemetry, our packages importable."""
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # One TensorFlow thread each way: a message is one small batch, and with several
    # processes on a few cores TF's thread pools only fight (measured: 12.1 ms a message
    # with 1 thread, 13.2 ms with the default). Read by Rasa at start; override if wanted.
    env.setdefault("TF_INTRA_OP_PARALLELISM_THREADS", "1")
    env.setdefault("TF_INTER_OP_PARALLELISM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def rasa_command() -> list[str]:
    """The ``rasa`` command of this interpreter's environment (with bot.rasa_main's fix)."""
    return [sys.executable, "-m", "bot.rasa_main"]


def faq_responses_text(kb: knowledge.KnowledgeBase) -> str:
    """The generated responses file for the knowledge base's ids."""
    responses = {f"utter_faq/{i}": [{"text": f"kb:{i}"}] for i in sorted(kb.entries)}
    body = yaml.safe_dump({"version": "3.1", "responses": responses}, sort_keys=False)
    return RESPONSES_HEADER + body


def sync_faq_responses(kb: knowledge.KnowledgeBase | None = None) -> bool:
    """Rewrite the generated responses file if the KB ids changed; True if it was rewritten."""
    text = faq_responses_text(kb or knowledge.load())
    if FAQ_RESPONSES.exists() and FAQ_RESPONSES.read_text(encoding="utf-8") == text:
        return False
    FAQ_RESPONSES.parent.mkdir(parents=True, exist_ok=True)
    FAQ_RESPONSES.write_text(text, encoding="utf-8")
    return True


def training_inputs() -> list[Path]:
    """Every file whose content shapes the trained model."""
    files = [ROOT / "config.yml", ROOT / "domain.yml"]
    files += sorted(DATA_DIR.rglob("*.yml"))
    files += sorted((ROOT / "bot" / "nlu").glob("*.py"))
    return files


def inputs_hash() -> str:
    """A short hash of the training inputs and the Rasa version."""
    digest = hashlib.sha256(f"rasa {metadata.version('rasa')}\n".encode())
    for path in training_inputs():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(models_dir: Path) -> Path:
    """Where the model for the current inputs is (or will be)."""
    return models_dir / f"{MODEL_PREFIX}{inputs_hash()}.tar.gz"


def ensure_model(models_dir: Path, force: bool = False) -> Path:
    """Return the model for the current inputs, training it first if it does not exist."""
    if sync_faq_responses():
        print(f"updated {FAQ_RESPONSES.relative_to(ROOT)} from the knowledge base", flush=True)
    target = model_path(models_dir)
    if target.exists() and not force:
        print(f"model up to date: {target.name}", flush=True)
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    print(f"training a new model ({target.name}); this takes a few minutes ...", flush=True)
    started = time.monotonic()
    command = [
        *rasa_command(), "train",
        "--config", "config.yml", "--domain", "domain.yml", "--data", str(DATA_DIR),
        "--out", str(models_dir), "--fixed-model-name", target.name.removesuffix(".tar.gz"),
    ]
    result = subprocess.run(command, cwd=ROOT, env=rasa_env())
    if result.returncode != 0 or not target.exists():
        raise RuntimeError(f"training failed (exit code {result.returncode}); see the output above")
    for old in models_dir.glob(f"{MODEL_PREFIX}*.tar.gz"):
        if old != target:
            old.unlink()
    print(f"trained {target.name} in {time.monotonic() - started:.0f} s", flush=True)
    return target


def nlu_examples() -> dict[str, list[str]]:
    """Training examples by intent (``faq/<id>`` for the retrieval intent), as written in
    ``nlu_data/`` (entity markup kept)."""
    examples: dict[str, list[str]] = {}
    for path in sorted(DATA_DIR.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            if "intent" in block:
                given = block["examples"]
                if isinstance(given, str):  # "- text" lines
                    lines = [ln.strip()[2:] for ln in given.splitlines() if ln.strip()]
                else:  # a list of {text, metadata}
                    lines = [str(example["text"]).strip() for example in given]
                examples.setdefault(block["intent"], []).extend(lines)
    return examples
