"""Real training runs of the tiny gpt-oss on the CPU, read the way the runner and a user would read them."""
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

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
    assert not (folder / ".trainer.lock").exists()


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


def _start(models, *args, env=None):
    return subprocess.Popen([sys.executable, "-u", str(TRAINER / "train.py"), "--models-dir", str(models), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})})


def _read_until_step(proc, step):
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["type"] == "step" and seen[-1]["step"] >= step:
            return seen
    raise AssertionError(f"the run ended before step {step}: {seen[-1:]}")


def test_an_interrupted_run_resumes_from_its_newest_checkpoint_and_ends_as_if_never_stopped(tmp_path, trained):
    proc = _start(tmp_path, "--profile", "quick_test")
    first = _read_until_step(proc, 14)  # quick_test saves every 10 steps: checkpoint-10 exists
    proc.send_signal(signal.SIGINT)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=60) == 143 and rest[-1]["kind"] == "interrupted"
    name = first[0]["model_name"]
    assert read_training_info(tmp_path / name)["status"] == "interrupted"
    assert not (tmp_path / "latest").exists()
    assert not (tmp_path / name / ".trainer.lock").exists()

    code, messages, err = run_train(tmp_path, "--profile", "quick_test", "--resume", name)
    assert code == 0, err[-2000:]
    assert messages[0]["type"] == "start" and messages[0]["resumed_from_step"] == 10
    assert messages[0]["model_name"] == name  # the same folder, not a new one
    assert "resumed from step 10" in messages[1]["message"]
    assert [m["step"] for m in messages if m["type"] == "step"] == list(range(11, 31))
    # The losses before the checkpoint come back from it, and the steps after it are the unbroken run's: the weights,
    # the optimizer, the schedule, the data order and the RNG all come back from checkpoint-10 (a run restarted from
    # scratch would be back near the first loss, ~6.8). The runs are seeded (LoRA's init included), so the two agree
    # to float rounding.
    history = json.loads((tmp_path / name / "loss_history.json").read_text())
    before = {m["step"]: m["loss"] for m in first if m["type"] == "step"}
    after = {m["step"]: m["loss"] for m in messages if m["type"] == "step"}
    _, unbroken = trained
    straight = [m["loss"] for m in unbroken if m["type"] == "step"]
    assert history[:10] == [before[s] for s in range(1, 11)]
    assert history[10:] == [after[s] for s in range(11, 31)]
    assert history == pytest.approx(straight, rel=1e-4)
    assert messages[-1]["final_loss"] == sum(history[-10:]) / 10
    assert messages[-1]["final_loss"] == pytest.approx(unbroken[-1]["final_loss"], rel=1e-4)
    assert messages[-1]["band"] == unbroken[-1]["band"]
    info = read_training_info(tmp_path / name)
    assert info["status"] == "succeeded" and info["resumes"] == "1" and info["resumed_from_step"] == "10"
    assert os.readlink(tmp_path / "latest") == name
    assert not (tmp_path / name / ".trainer.lock").exists()  # the resumed run took the lock, and removed it


def test_resume_refuses_paths_reports_a_finished_run_done_and_starts_afresh_without_its_folder(tmp_path, trained):
    models, messages = trained
    for bad in ["../etc", "/tmp", "a/b", ".hidden"]:
        code, out, _ = run_train(models, "--profile", "quick_test", "--resume", bad)
        assert code == 2 and out[0]["kind"] == "bad_input" and "model folder's name" in out[0]["message"]
    # finished before its runner could tell the queue: done again, from the folder's record, nothing trained
    name = messages[-1]["model_name"]
    code, out, _ = run_train(models, "--profile", "quick_test", "--resume", name)
    assert code == 0 and [m["type"] for m in out] == ["done"]
    assert out[0]["model_name"] == name and out[0]["final_loss"] == round(messages[-1]["final_loss"], 4)
    assert out[0]["latest"] is True and out[0]["steps"] == 30
    assert not (models / name / ".trainer.lock").exists()
    assert out[0]["eval_loss"] == round(messages[-1]["eval_loss"], 4) and out[0]["eval_band"] == messages[-1]["eval_band"]
    # the earlier attempt's folder is not here (another runner's disk): a new run, said so
    code, out, _ = run_train(tmp_path, "--profile", "quick_test", "--resume", "gone_quick_test_20260101_0000")
    assert code == 0 and "not in this runner's models folder" in out[0]["message"]
    assert out[1]["type"] == "start" and out[1]["resumed_from_step"] is None and out[-1]["type"] == "done"


def test_a_trainer_whose_parent_dies_interrupts_itself(tmp_path):
    """kill -9 of the runner cannot reach the trainer (its own process group): the trainer notices and stops."""
    out = tmp_path / "out.jsonl"
    shell = subprocess.Popen(["bash", "-c", f'"$0" -u "$1" --models-dir "$2" --profile standard > "$3" 2>/dev/null & '
                              f'echo $!; wait', sys.executable, str(TRAINER / "train.py"), str(tmp_path / "m"), str(out)],
                             stdout=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    trainer_pid = int(shell.stdout.readline())
    deadline = time.time() + 120
    while '"type": "step"' not in (out.read_text() if out.exists() else ""):
        assert time.time() < deadline, "no step"
        time.sleep(0.2)
    shell.kill()  # SIGKILL: the trainer's parent is gone
    shell.wait()
    deadline = time.time() + 30
    while _alive(trainer_pid):
        assert time.time() < deadline, "the orphaned trainer kept running"
        time.sleep(0.2)
    last = json.loads(out.read_text().splitlines()[-1])
    assert last["type"] == "error" and last["kind"] == "interrupted"
    folder = next((tmp_path / "m").glob("tiny-gpt-oss_standard_*"))
    assert read_training_info(folder)["status"] == "interrupted"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its new parent) is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_full_disk_fails_the_run_with_one_line_and_leaves_no_usable_model(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) stands in for a full disk: the checkpoint's write fails for real."""
    (tmp_path / "keep").mkdir()
    os.symlink("keep", tmp_path / "latest")
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
    proc = subprocess.run([sys.executable, "-u", str(TRAINER / "train.py"), "--models-dir", str(tmp_path),
                           "--profile", "quick_test"], capture_output=True, text=True, cwd=REPO, timeout=300,
                          preexec_fn=limit)
    last = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 1 and last["kind"] == "disk_full"
    assert last["message"] == "the models disk is full (at step 10): free some space, then /train again"
    folder = next(tmp_path.glob("tiny-gpt-oss_quick_test_*"))
    assert read_training_info(folder)["status"] == "disk_full"
    assert os.readlink(tmp_path / "latest") == "keep"


def test_a_disk_too_full_for_a_temporary_file_still_gets_its_status_and_loses_what_was_cut_short(tmp_path):
    """What a full disk leaves when the status is written: the partial checkpoint and the temporary files go, a whole
    checkpoint stays, and the facts are written over the file itself when no temporary file fits beside it."""
    import errno as errno_
    import train
    folder = tmp_path / "m"
    whole, cut = folder / "checkpoint-10", folder / "checkpoint-20"
    for c in (whole, cut):
        c.mkdir(parents=True)
    (whole / "trainer_state.json").write_text(json.dumps({"global_step": 10}))
    (whole / "adapter_model.safetensors").write_bytes(b"x")
    (cut / "adapter_model.safetensors").write_bytes(b"")  # its trainer state was never written
    (folder / ".training_info.txt.tmp").write_text("")
    (folder / "tmpab12cd.safetensors").write_bytes(b"half")
    (folder / "training_info.txt").write_text("status: running\nprofile: quick_test\n")
    train.free_partial_writes(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-10", "training_info.txt"]
    assert train._write_in_place(folder / "training_info.txt", {"profile": "quick_test", "status": "disk_full"})
    assert read_training_info(folder) == {"profile": "quick_test", "status": "disk_full"}
    assert (folder / "training_info.txt").read_text().startswith("# Written by")
    kind, line = train.classify_failure(OSError(errno_.ENOSPC, "No space left on device"), 20)
    assert (kind, line) == ("disk_full", "the models disk is full (at step 20): free some space, then /train again")


def test_a_models_folder_that_cannot_be_written_names_the_cause_and_the_fix():
    import errno as errno_
    import train
    kind, line = train.classify_failure(OSError(errno_.EROFS, "Read-only file system", "/models/x"), 0)
    assert kind == "failed"
    assert line == "the models folder is on a read-only filesystem (at step 0): make it writable, then /train again"
    # a permission error elsewhere (a dataset this user may not read) is not blamed on the models folder
    assert "models folder" not in train.classify_failure(PermissionError(errno_.EACCES, "Permission denied", "/data/x.jsonl"), 0)[1]


def test_out_of_gpu_memory_is_named_and_says_what_to_try(tmp_path):
    """TRAINER_FAILPOINT raises torch's own OutOfMemoryError at step 3: no GPU here to run out of."""
    code, messages, _ = run_train(tmp_path, "--profile", "quick_test", env={"TRAINER_FAILPOINT": "oom_at_step:3"})
    assert code == 1 and messages[-1]["kind"] == "out_of_memory"
    assert messages[-1]["message"].startswith("out of GPU memory at step 3: try the conservative profile")
    folder = next(tmp_path.glob("tiny-gpt-oss_quick_test_*"))
    assert read_training_info(folder)["status"] == "out_of_memory"
    assert not (tmp_path / "latest").exists()
    assert not (folder / ".trainer.lock").exists()


def test_an_evaluation_that_fails_costs_the_eval_loss_not_the_trained_adapter(tmp_path):
    """TRAINER_FAILPOINT raises torch's OutOfMemoryError in the evaluation after training."""
    code, messages, err = run_train(tmp_path, "--profile", "quick_test", env={"TRAINER_FAILPOINT": "oom_at_eval"})
    assert code == 0, err[-2000:]
    notice = [m["message"] for m in messages if m["type"] == "notice" and "no eval loss" in m["message"]]
    assert notice and "OutOfMemoryError" in notice[0] and "the adapter is saved all the same" in notice[0]
    done = messages[-1]
    assert done["type"] == "done" and done["eval_loss"] is None and done["eval_band"] is None
    folder = tmp_path / done["model_name"]
    info = read_training_info(folder)
    assert info["status"] == "succeeded" and "eval_loss" not in info
    assert (folder / "adapter_model.safetensors").is_file()
    assert os.readlink(tmp_path / "latest") == done["model_name"]


def test_a_checkpoint_cut_short_by_a_kill_is_passed_over_for_the_one_before(tmp_path):
    """A runner killed while its trainer saved leaves a checkpoint with an empty or partial state: resume must not
    trip on it (it did: JSONDecodeError) but take the newest whole one."""
    from train import newest_checkpoint
    for step, state in [(10, '{"global_step": 10, "log_history": []}'), (20, ""), (30, '{"global_step": 3')]:
        c = tmp_path / f"checkpoint-{step}"
        c.mkdir()
        (c / "trainer_state.json").write_text(state)
        (c / "adapter_model.safetensors").write_bytes(b"x" * 16)
    (tmp_path / "checkpoint-40").mkdir()  # the kill came before anything was written
    assert newest_checkpoint(tmp_path).name == "checkpoint-10"
    (tmp_path / "checkpoint-10" / "adapter_model.safetensors").write_bytes(b"")
    assert newest_checkpoint(tmp_path) is None


def test_five_percent_is_held_out_and_its_loss_is_reported_with_its_band(trained):
    models, messages = trained
    start, done = messages[0], messages[-1]
    assert start["eval_examples"] == 5 and done["eval_examples"] == 5
    bands = {b["id"] for b in json.loads((REPO / "gpu-runner/trainer/bands.json").read_text())["bands"]}
    assert isinstance(done["eval_loss"], float) and done["eval_band"] in bands
    info = read_training_info(models / done["model_name"])
    assert info["train_examples"] == "95" and info["eval_examples"] == "5"
    assert abs(float(info["eval_loss"]) - done["eval_loss"]) < 1e-4 and info["eval_band"] == done["eval_band"]
    assert info["eval_quality"].endswith(next(b["label"] for b in json.loads(
        (REPO / "gpu-runner/trainer/bands.json").read_text())["bands"] if b["id"] == done["eval_band"]))


def test_the_held_out_conversations_are_the_same_every_run_and_never_trained_on():
    import train
    rows = [[{"role": "user", "content": str(i)}] for i in range(100)]
    train_set, eval_set = train.split_eval(rows)
    again_train, again_eval = train.split_eval(rows)
    assert len(eval_set) == 5 and len(train_set) == 95 and eval_set == again_eval and train_set == again_train
    assert not any(c in train_set for c in eval_set)
    assert train.split_eval(rows[:19]) == (rows[:19], [])           # too few to spare any
    assert len(train.split_eval(rows * 50)[1]) == train.EVAL_MAX_EXAMPLES  # 5,000 conversations: capped


def test_a_dataset_too_small_to_hold_some_out_says_so_and_reports_no_eval_loss(tmp_path):
    sample = (REPO / "gpu-runner/trainer/data/sample_conversations.jsonl").read_text().splitlines()[:10]
    data = tmp_path / "small.jsonl"
    data.write_text("\n".join(sample) + "\n")
    models = tmp_path / "models"
    code, messages, err = run_train(models, "--profile", "quick_test", "--dataset", str(data))
    assert code == 0, err[-2000:]
    assert any(m["type"] == "notice" and "too few to hold some out" in m["message"] for m in messages)
    done = messages[-1]
    assert done["eval_loss"] is None and done["eval_band"] is None and done["eval_examples"] == 0
    assert "eval_loss" not in read_training_info(models / done["model_name"])


def test_every_file_of_a_finished_folder_has_the_mode_any_other_file_gets(trained, tmp_path):
    """safetensors wrote the adapter (and each checkpoint's) 0600, every other file 0644: another user of a shared
    models folder (the inference worker's) could read the folder but not load its weights."""
    models, messages = trained
    folder = models / messages[-1]["model_name"]
    with open(tmp_path / "ordinary", "w") as f:
        f.write("x")
    (tmp_path / "ordinary_dir").mkdir()
    file_mode = stat.S_IMODE((tmp_path / "ordinary").stat().st_mode)
    dir_mode = stat.S_IMODE((tmp_path / "ordinary_dir").stat().st_mode)
    found = {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*")}
    assert "adapter_model.safetensors" in found and "checkpoint-30/adapter_model.safetensors" in found
    assert {n: m for n, m in found.items() if (folder / n).is_file() and m != file_mode} == {}
    assert {n: m for n, m in found.items() if (folder / n).is_dir() and m != dir_mode} == {}
    assert stat.S_IMODE(folder.stat().st_mode) == dir_mode


def test_the_model_card_names_the_base_model_as_given_and_the_runs_result(trained):
    models, messages = trained
    done = messages[-1]
    card = (models / done["model_name"] / "README.md").read_text()
    assert "None" not in card and ".cache/tiny-gpt-oss\")" in card  # how to load it, from the repository
    assert f"# {done['model_name']}" in card and "fine-tuned from **tiny**" in card and "`quick_test` profile" in card
    assert "base_model: tiny" in card and str(REPO) not in card  # no host's absolute path
    assert f"Final loss: {done['final_loss']:.4f}" in card and "Eval loss on 5 held-out conversations" in card
    assert "Requested by --models-dir=/tmp/x (console) (job 42)" in card


def test_the_base_model_is_recorded_as_the_operator_gave_it(trained):
    """--base-model tiny (BASE_MODEL=tiny): `tiny` in training_info.txt and adapter_config.json, not this host's cache
    folder, which training_info.txt keeps apart as base_model_path."""
    models, messages = trained
    folder = models / messages[-1]["model_name"]
    for config in [folder / "adapter_config.json", *folder.glob("checkpoint-*/adapter_config.json")]:
        assert json.loads(config.read_text())["base_model_name_or_path"] == "tiny", config
    info = read_training_info(folder)
    assert info["base_model"] == "tiny"
    assert info["base_model_path"] == str(REPO / ".cache" / "tiny-gpt-oss")


def test_a_finished_folder_keeps_no_lock_file(trained):
    models, messages = trained
    assert not (models / messages[-1]["model_name"] / ".trainer.lock").exists()


def test_a_trainer_waiting_on_a_lock_file_that_was_removed_never_shares_the_lock(tmp_path):
    """A (this process) holds the folder; B waits on the same lock file; A's run ends: it removes the file, then lets
    go. C (this process again) takes the folder at once, on a new file. B gets the lock of the removed file: it must
    see that and wait for C instead of training the folder beside it."""
    import select
    import train
    lock = tmp_path / ".trainer.lock"
    assert train.lock_folder(tmp_path, 0)  # A
    waiter = subprocess.Popen([sys.executable, "-c", "import pathlib, sys, train\n"
                               "print(train.lock_folder(pathlib.Path(sys.argv[1]), 30), flush=True)\n"
                               "sys.stdin.readline()", str(tmp_path)],
                              cwd=TRAINER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while str(lock) not in _open_files(waiter.pid):  # B has the file open
            assert time.time() < deadline and waiter.poll() is None, "the waiting trainer never opened the lock file"
            time.sleep(0.05)
        train.unlock_folder()  # A ends
        assert not lock.exists()
        assert train.lock_folder(tmp_path, 0)  # C
        assert select.select([waiter.stdout], [], [], 1.0)[0] == [], "B took the folder while C held it"
        train.unlock_folder()  # C ends
        assert waiter.stdout.readline().strip() == "True"  # B now
        assert lock.exists()
        assert not train.lock_folder(tmp_path, 0.3)  # B holds it for real
    finally:
        train.unlock_folder()
        waiter.stdin.close()
        waiter.wait(timeout=30)


def _open_files(pid):
    """What the process's open file descriptors point at."""
    base = f"/proc/{pid}/fd"
    found = []
    for name in os.listdir(base):
        try:
            found.append(os.readlink(os.path.join(base, name)))
        except OSError:  # closed meanwhile
            continue
    return found
