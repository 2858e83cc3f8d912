"""Real training runs of the tiny gpt-oss on the CPU, read the way the runner and a user would read them."""
import json
import os
import signal
import subprocess
import sys
import time

import protocol
from conftest import REPO, TRAINER, run_train
from models_dir import read_training_info

SEED_FILES = ["adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json", "tokenizer.json",
              "training_info.txt"]


def test_every_stdout_line_is_a_valid_protocol_message(trained):
    _, messages = trained
    assert all(protocol.problems(m) == [] for m in messages)
    types = [m["type"] for m in messages]
    assert types[0] == "start" and types[-1] == "done"
    assert types.count("step") == 30 and "checkpoint" in types


def test_quick_test_writes_the_seeds_folder_and_moves_latest(trained):
    models, messages = trained
    done = messages[-1]
    folder = models / done["model_name"]
    for name in SEED_FILES:
        assert (folder / name).is_file(), name
    assert list(folder.glob("checkpoint-*/adapter_model.safetensors"))
    assert os.readlink(models / "latest") == folder.name
    assert done["latest"] is True and done["steps"] == 30


def test_training_info_records_the_runs_facts(trained):
    models, messages = trained
    info = read_training_info(models / messages[-1]["model_name"])
    assert info["status"] == "succeeded" and info["profile"] == "quick_test" and info["job_id"] == "42"
    assert info["requested_by"] == "--models-dir=/tmp/x (console)"  # a value, never an option
    assert info["lora_r"] == "8" and info["scheduler"] == "linear" and info["backend"] == "cpu"
    assert float(info["final_loss"]) == messages[-1]["final_loss"] or abs(
        float(info["final_loss"]) - messages[-1]["final_loss"]) < 1e-4
    assert "gate_up_proj" in info["adapted_modules"] and "q_proj" in info["adapted_modules"]
    assert int(info["adapted_expert_tensors"]) > 0 and int(info["trainable_parameters"]) > 0


def test_the_loss_visibly_falls_and_the_final_loss_is_the_mean_of_the_last_ten(trained):
    _, messages = trained
    losses = [m["loss"] for m in messages if m["type"] == "step"]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 1.0
    assert abs(messages[-1]["final_loss"] - sum(losses[-10:]) / 10) < 1e-6


def test_overrides_are_used_and_recorded_and_a_small_dataset_is_reported(tmp_path):
    code, messages, err = run_train(tmp_path, "--profile", "standard", "--r", "32", "--scheduler", "cosine")
    assert code == 0, err[-2000:]
    notice = next(m for m in messages if m["type"] == "notice")
    assert "asks for 1000" in notice["message"]
    info = read_training_info(tmp_path / messages[-1]["model_name"])
    assert info["lora_r"] == "32" and info["scheduler"] == "cosine"
    assert info["dataset_requested"] == "1000" and int(info["dataset_examples"]) < 1000
    assert float(info["epochs_seen"]) > 1


def test_bad_input_is_one_error_line_and_nothing_is_written(tmp_path):
    code, messages, _ = run_train(tmp_path, "--profile", "huge", "--r", "0", "--scheduler", "zigzag")
    assert code == 2
    assert [m["type"] for m in messages] == ["error"] and messages[0]["kind"] == "bad_input"
    text = messages[0]["message"]
    assert "quick_test" in text and "r must be a whole number from 1 to 256" in text and "cosine" in text
    assert list(tmp_path.iterdir()) == []


def test_a_cancelled_run_is_marked_cancelled_and_never_becomes_latest(tmp_path):
    (tmp_path / "keep").mkdir()
    os.symlink("keep", tmp_path / "latest")
    proc = subprocess.Popen([sys.executable, "-u", str(TRAINER / "train.py"), "--profile", "standard",
                             "--models-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=REPO)
    for line in proc.stdout:
        if json.loads(line)["type"] == "step":
            break
    proc.send_signal(signal.SIGTERM)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=60) == 143
    assert rest[-1]["type"] == "error" and rest[-1]["kind"] == "cancelled"
    assert os.readlink(tmp_path / "latest") == "keep"
    folder = next(p for p in tmp_path.iterdir() if p.name.startswith("tiny-gpt-oss_standard_"))
    assert read_training_info(folder)["status"] == "cancelled"


def test_assistant_only_mask_covers_the_answers_and_nothing_else():
    from transformers import AutoTokenizer
    from train import DEFAULT_TINY_DIR, ensure_tiny, tokenize_assistant_only
    tok = AutoTokenizer.from_pretrained(ensure_tiny(DEFAULT_TINY_DIR))
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to Ada."},
            {"role": "assistant", "content": "Hello, Ada!"}, {"role": "user", "content": "Again."},
            {"role": "assistant", "content": "Hello again."}]
    row = tokenize_assistant_only(tok, chat, 2048)
    kept = tok.decode([t for t, m in zip(row["input_ids"], row["assistant_masks"]) if m])
    assert kept == "<|channel|>final<|message|>Hello, Ada!<|end|><|channel|>final<|message|>Hello again.<|end|>"


def test_attention_only_runs_only_when_asked(tmp_path):
    code, messages, err = run_train(tmp_path, "--profile", "quick_test", "--targets", "attention")
    assert code == 0, err[-2000:]
    info = read_training_info(tmp_path / messages[-1]["model_name"])
    assert info["lora_targets"] == "attention" and info["adapted_expert_tensors"] == "0"
    assert "gate_up_proj" not in info["adapted_modules"]


def test_a_signal_stops_the_run_until_saving_begins_and_not_after():
    import pytest
    import train
    with pytest.raises(train.Cancelled):
        train._raise_cancelled(15, None)
    train.SAVING["started"] = True
    try:
        train._raise_cancelled(15, None)  # too late: the run finishes and latest moves
    finally:
        train.SAVING["started"] = False
