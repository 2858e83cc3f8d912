"""The models folder contract (shared/seed/models-directory.md), trainer side: names, training_info.txt, bands,
latest. src/shared/model-names.ts and src/shared/model-registry.ts are the bot's side of the same contract.
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
BANDS = json.loads((HERE / "bands.json").read_text(encoding="utf-8"))
INFO_FILE = "training_info.txt"


def base_name_for(base_model: str) -> str:
    """The {base} of a folder name: gpt-oss-20b for any gpt-oss-20b checkpoint (Unsloth's 4-bit one too)."""
    if base_model == "tiny":
        return "tiny-gpt-oss"
    match = re.search(r"gpt-oss-\d+b", base_model.lower())
    if match:
        return match.group(0)
    tail = Path(base_model.rstrip("/")).name or "model"
    return re.sub(r"[^A-Za-z0-9.-]+", "-", tail).strip("-") or "model"


def make_model_dir(models_dir: Path, base: str, profile: str, when: datetime) -> Path:
    """Create {base}_{profile}_{YYYYMMDD_HHMM}. An existing folder is never reused: a second run in the same minute
    gets -2, -3, ... after the timestamp. mkdir is atomic, so two runners sharing the folder cannot collide."""
    models_dir.mkdir(parents=True, exist_ok=True)
    name = f"{base}_{profile}_{when:%Y%m%d_%H%M}"
    for n in range(1, 1000):
        folder = models_dir / (name if n == 1 else f"{name}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"no free folder name for {name} in {models_dir}")


def final_loss(losses: list[float]) -> float:
    """The mean of the last N logged step losses (fewer if fewer were logged). NaN when none were logged."""
    window = losses[-BANDS["final_loss_window"]:]
    return sum(window) / len(window) if window else math.nan


def band_for(loss: float | None) -> dict:
    if loss is None or not math.isfinite(loss):
        return BANDS["diverged"]
    for band in BANDS["bands"]:
        above = band["min"] is None or loss >= band["min"]
        below = band["max"] is None or loss < band["max"] or (band.get("max_inclusive") and loss == band["max"])
        if above and below:
            return band
    raise AssertionError(f"bands.json leaves {loss} without a band")


def write_training_info(folder: Path, facts: dict) -> None:
    """key: value lines, written to a temporary file and renamed, so a reader never sees half of it."""
    lines = ["# Written by gpu-runner/trainer/train.py. One fact per line: key: value"]
    lines += [f"{key}: {value}" for key, value in facts.items()]
    _write_whole(folder / INFO_FILE, "\n".join(lines) + "\n")


def ordinary_modes() -> tuple[int, int]:
    """(file mode, folder mode) that open() and mkdir() give under this process's umask: 0644 and 0755 under 022.
    Read from /proc, so that no other thread ever runs under a changed umask; where /proc has no Umask line, the
    umask is set and set back."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask, 0o777 & ~umask


def give_ordinary_modes(folder: Path) -> None:
    """Give the folder, and every file and folder under it, the mode an ordinary file or folder gets under the process
    umask. safetensors (0.8) writes a file as a temporary file of mode 0600, whatever the umask, then renames it into
    place: the adapter weights were readable by the trainer's user alone, while every other file of the folder was
    readable by all (a models folder shared with another user, the inference worker's, could not load them). Links
    are left alone; a file that went away meanwhile (a checkpoint rotated out) or one this user may not change is
    passed over."""
    file_mode, dir_mode = ordinary_modes()
    paths = [(str(folder), dir_mode)]
    for root, dirs, files in os.walk(folder):
        paths += [(os.path.join(root, d), dir_mode) for d in dirs] + [(os.path.join(root, f), file_mode) for f in files]
    for path, mode in paths:
        try:
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) != mode:
                os.chmod(path, mode)
        except OSError:
            continue


def set_adapter_base(folder: Path, base_model: str) -> None:
    """Name the base model in folder/adapter_config.json as the operator gave it (`tiny`, a hub id, a folder), not as
    it was loaded from (for `tiny`, a cache folder of this host). It is written after the last save: peft reads the
    name while saving (it looks a name that is no local folder up on the hub), so training keeps the loaded path."""
    config_file = folder / "adapter_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_model
    _write_whole(config_file, json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_model_card(folder: Path, facts: dict, load_base_from: str) -> None:
    """README.md of a finished folder: what the adapter is, how it did, how to load it. It replaces the card TRL and
    peft write, which name a base model loaded from a local folder as [None](https://huggingface.co/None)."""
    base = facts.get("base_model", "")
    tiny = " (the embedded tiny gpt-oss, built by gpu-runner/trainer/tiny_model.py)" if base == "tiny" else ""
    lines = ["---", "library_name: peft", f"base_model: {base}", "tags:", "- lora", "- sft", "- gpt-oss", "---", "",
             f"# {folder.name}", "",
             f"A LoRA adapter fine-tuned from **{base}**{tiny} with the `{facts.get('profile', '')}` profile: "
             f"{facts.get('steps', '?')} steps, rank {facts.get('lora_r', '?')} (alpha {facts.get('lora_alpha', '?')}), "
             f"{facts.get('scheduler', '?')} schedule, on {facts.get('train_examples', '?')} conversations.", ""]
    lines.append(f"- Final loss: {facts.get('final_loss', '?')} ({facts.get('quality', '?')})")
    if "eval_loss" in facts:
        lines.append(f"- Eval loss on {facts.get('eval_examples', '?')} held-out conversations: {facts['eval_loss']} "
                     f"({facts.get('eval_quality', '?')})")
    if facts.get("adapted_modules"):
        lines.append(f"- Adapted: {facts['adapted_modules']}")
    if facts.get("requested_by") or facts.get("job_id"):
        who = f" by {facts['requested_by']}" if facts.get("requested_by") else ""
        lines.append(f"- Requested{who}" + (f" (job {facts['job_id']})" if facts.get("job_id") else ""))
    if facts.get("finished_at"):
        lines.append(f"- Finished: {facts['finished_at']}")
    lines += ["", f"Every fact of the run is in `{INFO_FILE}`; the loss of every step in `loss_history.json`.", "",
              "## Loading", "", "```python", "from peft import PeftModel",
              "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
              f"model = AutoModelForCausalLM.from_pretrained({json.dumps(load_base_from)})"
              + (f"  # {base}" if load_base_from != base else ""),
              f"model = PeftModel.from_pretrained(model, \"models/{folder.name}\")",
              f"tokenizer = AutoTokenizer.from_pretrained(\"models/{folder.name}\")", "```", ""]
    _write_whole(folder / "README.md", "\n".join(lines))


def _write_whole(path: Path, text: str) -> None:
    """Write to a temporary file beside it (open(): the umask's mode), then rename: a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_training_info(folder: Path) -> dict:
    facts = {}
    for line in (folder / INFO_FILE).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or ": " not in line:
            continue
        key, value = line.split(": ", 1)
        facts[key.strip()] = value.strip()
    return facts


def move_latest(models_dir: Path, folder: Path) -> None:
    """Point models/latest at folder atomically: a new relative link beside it, then rename over the old one."""
    tmp = models_dir / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(folder.name, tmp)
    os.replace(tmp, models_dir / "latest")
