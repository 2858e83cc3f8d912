"""Training throughput and peak GPU memory: Unsloth against plain transformers + peft, same model, data, batch and
steps, in one run.

    python bench/gpu/compare_backends.py --model /tmp/gpt-oss-bench              # a folder from build_model.py
    python bench/gpu/compare_backends.py --build bench --model /tmp/gpt-oss-bench # build it first (random weights)
    python bench/gpu/compare_backends.py --model DIR --backends unsloth,peft,unsloth-4bit --steps 10 --warmup 3

Each backend runs in a process of its own (Unsloth patches transformers, peft and trl when imported, so the plain
backend must never share a process with it), one after the other, on the same GPU:

  unsloth       FastLanguageModel.from_pretrained(load_in_16bit=True) + FastLanguageModel.get_peft_model
                (use_gradient_checkpointing="unsloth"), trained with trl's SFTTrainer as Unsloth patches it
  unsloth-4bit  the same with load_in_4bit=True (what train.py does for a bnb-4bit checkpoint)
  peft          AutoModelForCausalLM in bf16 + peft.get_peft_model, trained with trl's SFTTrainer, with
                transformers' gradient checkpointing (as trl's SFTConfig defaults to)
  peft-nogc     the same without gradient checkpointing

All four put LoRA of the same rank on the same weights: q/k/v/o_proj and the MoE experts (the fused gate_up_proj and
down_proj Parameters, through peft's target_parameters); each worker prints what it adapted, so that can be checked.
The data is the bundled sample chats, tokenized with the model's tokenizer, concatenated and cut into sequences of
exactly --seq tokens (no padding): every step trains on batch x seq tokens in every backend. Step times are taken
with the GPU synchronized at each step's start and end; the first --warmup steps (Unsloth compiles then) are left
out; tokens/s is tokens per step over the mean measured step time. Peak memory is torch.cuda.max_memory_allocated()
(and reserved) over the whole worker: weights, LoRA, optimizer state, activations.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SAMPLE = REPO / "gpu-runner" / "trainer" / "data" / "sample_conversations.jsonl"
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
EXPERTS = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
BACKENDS = ["unsloth", "unsloth-4bit", "peft", "peft-nogc"]


# ---- worker: one backend, in its own process ------------------------------------------------------------------
def load(backend: str, model_dir: str, seq: int, r: int):
    import torch
    if backend.startswith("unsloth"):
        from unsloth import FastLanguageModel
        four = backend == "unsloth-4bit"
        model, tok = FastLanguageModel.from_pretrained(model_dir, max_seq_length=seq, dtype=torch.bfloat16,
                                                       load_in_4bit=four, load_in_16bit=not four)
        names = [n for n, _ in model.named_parameters()]
        fused = [t for t in EXPERTS if any(n.endswith("." + t) for n in names)] or None
        model = FastLanguageModel.get_peft_model(model, r=r, lora_alpha=2 * r, lora_dropout=0.0, bias="none",
                                                 target_modules=ATTENTION + ["gate_proj", "up_proj", "down_proj"],
                                                 target_parameters=fused, use_gradient_checkpointing="unsloth",
                                                 random_state=3407)
        return model, tok
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16,
                                                 device_map={"": 0} if torch.cuda.is_available() else None)
    tok = AutoTokenizer.from_pretrained(model_dir)
    config = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, bias="none", target_modules=ATTENTION,
                        target_parameters=EXPERTS, task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    if backend == "peft":
        model.enable_input_require_grads()
    return model, tok


def make_rows(tok, seq: int, count: int) -> list[dict]:
    stream: list[int] = []
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    i = 0
    while len(stream) < seq * count:
        messages = json.loads(lines[i % len(lines)])["messages"]
        stream += tok.apply_chat_template(messages, tokenize=True, return_dict=False)
        i += 1
    return [{"input_ids": stream[k * seq:(k + 1) * seq]} for k in range(count)]


def worker(a: argparse.Namespace) -> None:
    import torch
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model, tok = load(a.worker, a.model, a.seq, a.r)
    load_s = time.perf_counter() - t0
    mem_loaded = torch.cuda.memory_allocated() / 2**30 if cuda else 0.0
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    lora = [n for n, p in model.named_parameters() if p.requires_grad]
    # how the experts' base weight is stored (bf16 3-D Parameter, or bnb's packed Params4bit)
    expert_weight = next(({"name": n, "class": type(p).__name__, "dtype": str(p.dtype), "shape": list(p.shape),
                           "device": str(p.device)}
                          for n, p in model.named_parameters() if "experts" in n and "gate_up_proj" in n
                          and "lora_" not in n), None)
    experts = [n for n in lora if ".experts." in n]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total_steps = a.warmup + a.steps
    rows = make_rows(tok, a.seq, a.batch * total_steps)
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *_, **__):
            if cuda:
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, _args, state, *_, **__):
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)
            print(f"[{a.worker}] step {state.global_step}: {times[-1]:.3f} s", file=sys.stderr, flush=True)

    config = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix=f"bench-{a.worker}-"), max_steps=total_steps,
        per_device_train_batch_size=a.batch, gradient_accumulation_steps=1, learning_rate=2e-4,
        lr_scheduler_type="constant", warmup_steps=0, logging_steps=1, save_strategy="no", report_to="none",
        disable_tqdm=True, bf16=cuda, use_cpu=not cuda, max_length=a.seq, packing=False,
        dataloader_num_workers=0, optim="adamw_torch", seed=3407,
        gradient_checkpointing=a.worker == "peft", shuffle_dataset=False,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         callbacks=[Clock()])
    out = trainer.train()
    measured = times[a.warmup:]
    tokens_per_step = a.batch * a.seq
    mean = statistics.mean(measured)
    result = {
        "backend": a.worker, "load_s": round(load_s, 1), "steps_measured": len(measured),
        "warmup_step_s": [round(t, 3) for t in times[:a.warmup]],
        "step_s_mean": round(mean, 4), "step_s_median": round(statistics.median(measured), 4),
        "step_s_min": round(min(measured), 4), "step_s_max": round(max(measured), 4),
        "tokens_per_step": tokens_per_step, "tokens_per_s": round(tokens_per_step / mean, 1),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2) if cuda else None,
        "allocated_after_load_gib": round(mem_loaded, 2),
        "trainable_parameters": trainable, "lora_tensors": len(lora), "expert_lora_tensors": len(experts),
        "expert_lora_example": experts[:2], "expert_base_weight": expert_weight,
        "train_loss": round(float(out.training_loss), 4),
    }
    print("RESULT " + json.dumps(result), flush=True)


# ---- orchestrator ---------------------------------------------------------------------------------------------
def versions() -> dict:
    code = ("import json, importlib.metadata as m, torch\n"
            "v = {}\n"
            "for n in ['unsloth', 'unsloth_zoo', 'trl', 'peft', 'bitsandbytes', 'transformers', 'accelerate',"
            " 'datasets', 'triton']:\n"
            "    try: v[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: v[n] = None\n"
            "v['torch'] = torch.__version__\n"
            "v['gpu'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'\n"
            "print(json.dumps(v))")
    try:
        return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                         check=True).stdout)
    except Exception as e:  # noqa: BLE001  (versions are a nicety; the figures matter)
        return {"error": str(e)}


def save(a: argparse.Namespace, env_versions: dict, info: dict, results: list, ratios: dict) -> None:
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "versions": env_versions,
                                     "model": info, "batch": a.batch, "seq": a.seq, "r": a.r, "steps": a.steps,
                                     "warmup": a.warmup, "results": results, "ratios": ratios}, indent=2) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a local gpt-oss folder (bench/gpu/build_model.py)")
    p.add_argument("--build", help="build the model first with this build_model.py preset")
    p.add_argument("--backends", default="unsloth,peft", help=f"comma-separated, of: {', '.join(BACKENDS)}")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--r", type=int, default=16)
    p.add_argument("--steps", type=int, default=10, help="measured steps")
    p.add_argument("--warmup", type=int, default=3, help="steps left out of the figures")
    p.add_argument("--timeout", type=int, default=900, help="seconds per backend")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a)
        return 0

    if a.build:
        from build_model import build
        build(a.build, Path(a.model))
    info = json.loads((Path(a.model) / "build_info.json").read_text()) if (Path(a.model) / "build_info.json").is_file() else {}
    env_versions = versions()
    print("versions:", json.dumps(env_versions), flush=True)
    print("model:", json.dumps(info), flush=True)
    results = []
    for backend in a.backends.split(","):
        args = [sys.executable, "-u", str(Path(__file__).resolve()), "--worker", backend, "--model",
                str(Path(a.model).resolve()), "--batch", str(a.batch), "--seq", str(a.seq), "--r", str(a.r),
                "--steps", str(a.steps), "--warmup", str(a.warmup)]
        print(f"== {backend}", flush=True)
        t0 = time.time()
        work = tempfile.mkdtemp(prefix=f"bench-{backend}-cwd-")  # Unsloth writes its compile cache into the cwd
        try:
            proc = subprocess.run(args, stdout=subprocess.PIPE, text=True, timeout=a.timeout, cwd=work,
                                  env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                      [str(HERE), os.environ.get("PYTHONPATH", "")])})
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(proc.stdout[-3000:])
                results.append({"backend": backend, "error": f"exit {proc.returncode}"})
            else:
                results.append(json.loads(lines[-1][len("RESULT "):]))
        except subprocess.TimeoutExpired:
            results.append({"backend": backend, "error": f"timed out after {a.timeout} s"})
        results[-1]["wall_s"] = round(time.time() - t0, 1)
        print(json.dumps(results[-1]), flush=True)
        save(a, env_versions, info, results, {})  # as it goes: a run cut short keeps what it measured

    print(f"\nmodel: {info.get('parameters', '?'):,} parameters, {info.get('layers')} layers, {info.get('experts')} "
          f"experts, hidden {info.get('hidden_size')}; batch {a.batch} x seq {a.seq} = {a.batch * a.seq} tokens/step; "
          f"LoRA r={a.r}; {a.steps} measured steps after {a.warmup} warm-up"
          if isinstance(info.get("parameters"), int) else "")
    print(f"{'backend':<13} {'tokens/s':>10} {'step s (mean)':>14} {'median':>8} {'min':>7} {'max':>7} "
          f"{'peak alloc GiB':>15} {'peak resv GiB':>14} {'expert LoRA':>12}")
    for r in results:
        if "error" in r:
            print(f"{r['backend']:<13} failed: {r['error']}")
            continue
        print(f"{r['backend']:<13} {r['tokens_per_s']:>10.0f} {r['step_s_mean']:>14.3f} {r['step_s_median']:>8.3f} "
              f"{r['step_s_min']:>7.3f} {r['step_s_max']:>7.3f} {r['peak_allocated_gib']!s:>15} "
              f"{r['peak_reserved_gib']!s:>14} {r['expert_lora_tensors']:>12}")
    ok = {r["backend"]: r for r in results if "error" not in r}
    ratios = {}
    for fast in ("unsloth", "unsloth-4bit"):
        for base in ("peft", "peft-nogc"):
            if fast in ok and base in ok:
                f, b = ok[fast], ok[base]
                ratios[f"{fast} / {base}"] = {
                    "speed (tokens/s ratio)": round(f["tokens_per_s"] / b["tokens_per_s"], 3),
                    "peak memory (allocated ratio)": round(f["peak_allocated_gib"] / b["peak_allocated_gib"], 3)
                    if f["peak_allocated_gib"] else None,
                    "memory saved": f"{100 * (1 - f['peak_allocated_gib'] / b['peak_allocated_gib']):.0f}%"
                    if f["peak_allocated_gib"] else None,
                }
    for name, r in ratios.items():
        print(f"{name}: {r}")
    save(a, env_versions, info, results, ratios)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
