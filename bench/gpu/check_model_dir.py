"""Checks a models folder after a GPU run against the seed's contract and prints what the adapter covers.

    python bench/gpu/check_model_dir.py /tmp/models [--stdout trainer-stdout.jsonl] [--expect-experts]

latest must be a symlink to a succeeded model folder holding adapter_config.json, adapter_model.safetensors,
tokenizer files, training_info.txt and checkpoint-*/; the adapter's tensor names are listed by kind (attention,
experts) and compared with training_info.txt's adapted_expert_tensors. With --stdout, every line of the trainer's
stdout must be one JSON object (the protocol). Exit 1 on any failure.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REQUIRED = ["adapter_config.json", "adapter_model.safetensors", "training_info.txt"]
TOKENIZER_ANY = ["tokenizer.json", "tokenizer_config.json"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models_dir", type=Path)
    p.add_argument("--stdout", type=Path, help="the trainer's stdout, to check the protocol")
    p.add_argument("--expect-experts", action="store_true", help="fail unless the experts got LoRA weights")
    a = p.parse_args()
    problems: list[str] = []
    latest = a.models_dir / "latest"
    if not latest.is_symlink():
        print(f"FAIL: {latest} is not a symlink")
        return 1
    folder = latest.resolve()
    print(f"latest -> {latest.readlink()} ({folder})")
    for name in REQUIRED:
        if not (folder / name).is_file():
            problems.append(f"missing {name}")
    if not all((folder / n).is_file() for n in TOKENIZER_ANY):
        problems.append(f"missing tokenizer files ({', '.join(TOKENIZER_ANY)})")
    checkpoints = sorted(d.name for d in folder.glob("checkpoint-*") if d.is_dir())
    if not checkpoints:
        problems.append("no checkpoint-*/")
    print("files:", ", ".join(sorted(x.name for x in folder.iterdir())))
    info = {}
    if (folder / "training_info.txt").is_file():
        for line in (folder / "training_info.txt").read_text(encoding="utf-8").splitlines():
            if ": " in line and not line.startswith("#"):
                k, v = line.split(": ", 1)
                info[k] = v
        if info.get("status") != "succeeded":
            problems.append(f"status is {info.get('status')}")
    for key in ("status", "backend", "lora_r", "adapted_modules", "adapted_expert_tensors", "trainable_parameters",
                "final_loss", "quality", "steps", "duration_s"):
        print(f"  {key}: {info.get(key)}")

    if (folder / "adapter_model.safetensors").is_file():
        from safetensors import safe_open
        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
            keys = list(f.keys())
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
        experts = [k for k in keys if ".experts." in k]
        attention = [k for k in keys if re.search(r"\.(q|k|v|o)_proj\.", k)]
        other = [k for k in keys if k not in experts and k not in attention]
        print(f"adapter tensors: {len(keys)} ({len(attention)} attention, {len(experts)} experts, {len(other)} other)")
        for k in (experts[:4] + attention[:2] + other[:4]):
            print(f"  {k} {shapes[k]}")
        if a.expect_experts and not experts:
            problems.append("the adapter has no expert tensors")
        if info.get("adapted_expert_tensors") not in (None, "0") and not experts:
            problems.append("training_info.txt says experts were adapted but the adapter has none")
    cfg = json.loads((folder / "adapter_config.json").read_text()) if (folder / "adapter_config.json").is_file() else {}
    print("adapter_config target_modules:", cfg.get("target_modules"), "target_parameters:",
          cfg.get("target_parameters"))

    if a.stdout:
        lines = [line for line in a.stdout.read_text(encoding="utf-8").splitlines() if line.strip()]
        bad = []
        for line in lines:
            try:
                json.loads(line)
            except ValueError:
                bad.append(line)
        types = [json.loads(line).get("type") for line in lines if line not in bad]
        print(f"protocol: {len(lines)} lines on stdout, {len(bad)} not JSON; types: "
              f"{ {t: types.count(t) for t in dict.fromkeys(types)} }")
        if bad:
            problems.append(f"{len(bad)} stdout lines are not JSON, e.g. {bad[0][:120]!r}")
        if not types or types[-1] != "done":
            problems.append("the last protocol message is not done")
    if problems:
        print("FAIL:", "; ".join(problems))
        return 1
    print("OK: the folder meets the seed's contract")
    return 0


if __name__ == "__main__":
    sys.exit(main())
