"""The models folder contract (shared/seed/models-directory.md), trainer side: names, training_info.txt, bands,
latest. src/model-names.ts and src/model-registry.ts are the bot's side of the same contract.
"""
from __future__ import annotations

import json
import math
import os
import re
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
    tmp = folder / f".{INFO_FILE}.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, folder / INFO_FILE)


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
