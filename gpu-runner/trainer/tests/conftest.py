import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRAINER = Path(__file__).resolve().parents[1]
REPO = TRAINER.parents[1]
sys.path.insert(0, str(TRAINER))


def run_train(models_dir: Path, *args: str, timeout: int = 300, env: dict | None = None) -> tuple[int, list[dict], str]:
    """Run train.py as the runner does (python -u, a pipe); return its exit code, its decoded stdout messages and
    its stderr. Every stdout line must be JSON: a line that is not fails the test here."""
    proc = subprocess.run([sys.executable, "-u", str(TRAINER / "train.py"), "--models-dir", str(models_dir), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})})
    messages = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, messages, proc.stderr


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One real quick_test run of the tiny model on the CPU, shared by the tests that read its results."""
    models = tmp_path_factory.mktemp("models")
    code, messages, stderr = run_train(models, "--profile", "quick_test", "--job-id", "42",
                                       "--requested-by=--models-dir=/tmp/x (console)")
    assert code == 0, stderr[-3000:]
    return models, messages
