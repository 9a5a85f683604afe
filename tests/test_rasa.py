"""Rasa itself on our project: data validation and end-to-end test stories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from navigator.training import rasa_command, rasa_env
from settings import ROOT

pytestmark = pytest.mark.servers  # starts servers or loads a model: not in make check


def _rasa(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*rasa_command(), *args], cwd=ROOT, env=rasa_env(), capture_output=True, text=True,
        timeout=timeout,
    )


def test_rasa_data_validate_is_clean() -> None:
    result = _rasa("data", "validate", "--fail-on-warnings", "--data", "nlu_data",
                   "--domain", "domain.yml", "--config", "config.yml")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_conversation_stories_pass(trained_model: Path, tmp_path: Path) -> None:
    result = _rasa("test", "core", "--model", str(trained_model), "--stories", "tests/stories",
                   "--out", str(tmp_path),
                   "--fail-on-prediction-errors")
    failed = tmp_path / "failed_test_stories.yml"
    detail = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, detail + result.stdout[-3000:] + result.stderr[-3000:]
