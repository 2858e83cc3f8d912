"""The trainer's stdout protocol, version 1: one JSON object per line. protocol/PROTOCOL.md describes it for people;
this table checks it in Python, gpu-runner/trainer-protocol.ts in TypeScript, and both test against protocol/*.jsonl.

Every message has "v" (the version, 1) and "type". Fields may be added to a type without a new version; readers
ignore fields they do not know. Removing or changing a field needs a new version.
"""
from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

VERSION = 1
NUM = (int, float)
OPT_NUM = (int, float, type(None))
OPT_INT = (int, type(None))

# type -> {field: allowed Python types}; every listed field is required (None allowed only where the types say).
MESSAGES: dict[str, dict[str, tuple]] = {
    "start": {"model_name": (str,), "output_dir": (str,), "profile": (str,), "base_model": (str,), "backend": (str,),
              "max_steps": (int,), "dataset_examples": (int,), "dataset_requested": (int,), "lora_r": (int,),
              "scheduler": (str,), "resumed_from_step": OPT_INT},
    "notice": {"message": (str,)},
    "step": {"step": (int,), "max_steps": (int,), "loss": OPT_NUM, "learning_rate": OPT_NUM, "epoch": NUM,
             "elapsed_s": NUM},
    "checkpoint": {"step": (int,), "path": (str,)},
    "done": {"model_name": (str,), "output_dir": (str,), "final_loss": OPT_NUM, "band": (str,), "steps": (int,),
             "epochs": NUM, "duration_s": NUM, "latest": (bool,)},
    "error": {"kind": (str,), "message": (str,)},
}
# Fields added within version 1: checked when present (an older trainer does not send them).
OPTIONAL: dict[str, dict[str, tuple]] = {
    "start": {"eval_examples": (int,)},
    "done": {"eval_loss": OPT_NUM, "eval_band": (str, type(None)), "eval_examples": (int,)},
}
ERROR_KINDS = ("bad_input", "cancelled", "interrupted", "out_of_memory", "disk_full", "failed")
# Counts and times; a loss or a learning rate may be any finite number.
NON_NEGATIVE = {"max_steps", "dataset_examples", "dataset_requested", "lora_r", "resumed_from_step", "step", "epoch",
                "elapsed_s", "steps", "epochs", "duration_s", "eval_examples"}
_out = sys.stdout


def claim_stdout() -> None:
    """Keep file descriptor 1 for protocol messages alone: whatever else writes to stdout (libraries' prints,
    native code) lands on stderr instead, so it can never break the protocol."""
    global _out
    fd = os.dup(1)
    os.dup2(2, 1)
    _out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")


def problems(obj: Any) -> list[str]:
    """What is wrong with one decoded message; empty when it is valid."""
    if not isinstance(obj, dict):
        return ["a message is a JSON object"]
    if obj.get("v") != VERSION or isinstance(obj.get("v"), bool):
        return [f"v must be {VERSION}"]
    fields = MESSAGES.get(obj.get("type"))  # type: ignore[arg-type]
    if fields is None:
        return [f"type must be one of {', '.join(MESSAGES)}"]
    found = []
    optional = OPTIONAL.get(obj["type"], {})
    for name, types in {**fields, **optional}.items():
        value = obj.get(name, ...)
        if value is ... and name in optional:
            continue
        if value is ...:
            found.append(f"{name} is missing")
        elif isinstance(value, bool) and bool not in types:
            found.append(f"{name} has the wrong type")
        elif not isinstance(value, types):
            found.append(f"{name} has the wrong type")
        elif isinstance(value, float) and not math.isfinite(value):
            found.append(f"{name} is not finite (send null)")
        elif name in NON_NEGATIVE and value is not None and value < 0:
            found.append(f"{name} is negative")
    if obj.get("type") == "error" and obj.get("kind") not in ERROR_KINDS:
        found.append(f"kind must be one of {', '.join(ERROR_KINDS)}")
    return found


_reader_gone = False


def reader_gone() -> bool:
    """Whether the reader of stdout (the runner) has gone away: a write found the pipe broken."""
    return _reader_gone


def emit(type_: str, **fields: Any) -> None:
    """Write one message to stdout. An invalid message is a bug in the trainer: fail here, not in the runner.
    Once the reader is gone, messages are dropped: the run's own handling of that (train.py) decides what follows."""
    global _reader_gone
    msg = {"v": VERSION, "type": type_, **fields}
    wrong = problems(msg)
    if wrong:
        raise ValueError(f"invalid {type_} message: {'; '.join(wrong)}")
    if _reader_gone:
        return
    try:
        _out.write(json.dumps(msg, ensure_ascii=False) + "\n")
        _out.flush()
    except BrokenPipeError:
        _reader_gone = True


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
