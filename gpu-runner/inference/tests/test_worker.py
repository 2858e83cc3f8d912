"""The resident inference worker with the tiny gpt-oss on the CPU and adapters trained for real by train.py."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INFERENCE = Path(__file__).resolve().parents[1]
REPO = INFERENCE.parents[1]
TRAIN = REPO / "gpu-runner" / "trainer" / "train.py"


def train(models: Path) -> str:
    proc = subprocess.run([sys.executable, "-u", str(TRAIN), "--profile", "quick_test", "--models-dir", str(models)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])["model_name"]


class Worker:
    def __init__(self, models: Path, *extra: str):
        self.proc = subprocess.Popen([sys.executable, "-u", str(INFERENCE / "worker.py"), "--models-dir", str(models), *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=REPO)
        self.ready = json.loads(self.proc.stdout.readline())

    def ask(self, rid: str, **req) -> tuple[list[dict], dict]:
        req.setdefault("messages", [{"role": "user", "content": "What is the capital of France?"}])
        self.proc.stdin.write(json.dumps({"id": rid, "seed": 3, "max_new_tokens": 24, **req}) + "\n")
        self.proc.stdin.flush()
        tokens = []
        while True:
            event = json.loads(self.proc.stdout.readline())
            assert event["id"] == rid
            if event["type"] == "token":
                tokens.append(event)
            else:
                return tokens, event

    def stop(self) -> str:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        return self.proc.stderr.read()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    first = train(models)
    worker = Worker(models)
    yield models, first, worker
    worker.stop()


def test_it_loads_once_and_answers_several_asks_streaming_the_answer(setup):
    models, first, worker = setup
    assert worker.ready["type"] == "ready" and worker.ready["load_s"] > 0
    for n in range(3):
        tokens, done = worker.ask(f"a{n}", model="latest")
        assert done["type"] == "done" and done["model"] == first
        assert "".join(t["text"] for t in tokens) == done["answer"]
        assert "<|" not in done["answer"]
        assert done["tokens"] > 0 and done["ttft_s"] <= done["duration_s"]


def test_base_and_adapter_answers_differ_for_the_same_prompt_and_seed(setup):
    _, first, worker = setup
    _, with_adapter = worker.ask("b1", model=first)
    _, base = worker.ask("b2", model="base")
    _, again = worker.ask("b3", model=first)
    assert base["model"] == "base"
    assert with_adapter["answer"] == again["answer"]  # the same seed gives the same answer
    assert (base["answer"], base["reasoning"]) != (with_adapter["answer"], with_adapter["reasoning"])


def test_bad_requests_get_an_error_and_the_worker_goes_on(setup):
    models, first, worker = setup
    (models / "tiny-gpt-oss_standard_20250101_0000").mkdir()
    cases = {
        "e1": ({"model": "../../etc"}, "bad_input", "not a path"),
        "e2": ({"model": "/etc/passwd"}, "bad_input", "not a path"),
        "e3": ({"model": "nope"}, "not_found", "known: latest, base"),
        "e4": ({"model": "tiny-gpt-oss_standard_20250101_0000"}, "not_found", "no adapter files"),
        "e5": ({"messages": [{"role": "user", "content": "   "}]}, "bad_input", "empty"),
        "e6": ({"messages": [{"role": "user", "content": "x" * 20_000}]}, "bad_input", "over 16000 characters"),
        "e7": ({"reasoning_effort": "extreme"}, "bad_input", "low, medium, high"),
    }
    for rid, (req, kind, words) in cases.items():
        _, event = worker.ask(rid, **req)
        assert event["type"] == "error" and event["kind"] == kind and words in event["message"], event
    _, ok = worker.ask("e8", model="latest")
    assert ok["type"] == "done"


def test_a_new_training_run_moves_latest_and_the_next_ask_uses_it_without_a_reload(setup):
    models, first, worker = setup
    second = train(models)
    assert second != first
    _, done = worker.ask("c1", model="latest")
    assert done["model"] == second
    log = worker.stop()
    loads = [line for line in log.splitlines() if line.startswith("[infer] loaded adapter ")]
    assert loads == [f"[infer] loaded adapter {first}", f"[infer] loaded adapter {second}"]  # once each, for all asks
    worker.__init__(models)  # the module fixture's teardown stops a live worker


def test_adapters_beyond_the_limit_are_unloaded_least_recently_used_first(setup):
    models, first, _ = setup
    names = sorted(p.name for p in models.iterdir() if not p.is_symlink() and (p / "adapter_model.safetensors").is_file())
    assert len(names) >= 2
    worker = Worker(models, "--max-adapters", "1")
    for rid, name in (("m1", names[0]), ("m2", names[1]), ("m3", names[0])):
        _, done = worker.ask(rid, model=name)
        assert done["model"] == name
    log = worker.stop()
    loads = [line for line in log.splitlines() if line.startswith("[infer] ")]
    assert loads == [f"[infer] loaded adapter {names[0]}", f"[infer] unloaded adapter {names[0]}",
                     f"[infer] loaded adapter {names[1]}", f"[infer] unloaded adapter {names[1]}",
                     f"[infer] loaded adapter {names[0]}"]


def test_an_unknown_model_is_answered_with_the_usable_models_newest_first_at_most_ten(setup):
    """Only models an ask can use (a succeeded run with its adapter files), in the bot's order (the folder name's
    time, then its -N), ten at most; archive/ and hidden folders are no models, even when asked for by name."""
    models, first, worker = setup
    made = []

    def folder(name, status, adapter=True):
        f = models / name
        f.mkdir()
        made.append(f)
        if adapter:
            for n in ("adapter_config.json", "adapter_model.safetensors"):
                shutil.copy(models / first / n, f / n)
        (f / "training_info.txt").write_text(f"status: {status}\nmodel_name: {name}\nfinal_loss: 0.5\n")
        return name

    try:
        days = [folder(f"tiny-gpt-oss_standard_2030010{d}_1200", "succeeded") for d in range(1, 10)]
        minute = [folder(f"tiny-gpt-oss_conservative_20300110_0900{n}", "succeeded") for n in ("", "-2", "-10")]
        folder("tiny-gpt-oss_standard_20300201_0000", "interrupted")         # newer, but not usable
        folder("tiny-gpt-oss_standard_20300202_0000", "cancelled", adapter=False)
        folder("tiny-gpt-oss_standard_20300203_0000", "succeeded", adapter=False)
        folder("archive", "succeeded")
        folder(".incoming-tiny-gpt-oss_standard_20300204_0000", "succeeded")
        newest = minute[::-1] + days[::-1]
        _, event = worker.ask("n1", model="nope")
        assert event["type"] == "error" and event["kind"] == "not_found"
        assert event["message"] == f"no model 'nope'; known: latest, base, {', '.join(newest[:10])}"
        _, event = worker.ask("n2", model="archive")
        assert event["kind"] == "not_found" and event["message"].startswith("no model 'archive'; known: latest, base")
        _, done = worker.ask("n3", model=newest[0])  # what it suggests works
        assert done["type"] == "done" and done["model"] == newest[0]
    finally:
        for f in made:
            shutil.rmtree(f)
