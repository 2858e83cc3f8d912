"""Fine-tunes a LoRA adapter of gpt-oss on chat conversations and writes it into models/ by the seed's contract.

    # the embedded default: a tiny gpt-oss built on the spot, on the CPU, with the bundled sample conversations
    python -u gpu-runner/trainer/train.py --profile quick_test

    # a GPU host: Unsloth on CUDA, the real model, the team's data, overrides recorded in training_info.txt
    python -u gpu-runner/trainer/train.py --profile standard --r 32 --scheduler cosine --gpu 1 \
        --base-model unsloth/gpt-oss-20b-unsloth-bnb-4bit --dataset data/team.jsonl --models-dir /srv/models

    # a run that was interrupted (its runner died): the same folder, from its newest checkpoint-*
    python -u gpu-runner/trainer/train.py --profile standard --resume gpt-oss-20b_standard_20261125_0930 ...

Signals: SIGTERM cancels (the folder is marked cancelled); SIGINT interrupts (marked interrupted, resumable). The
trainer interrupts itself when its parent process dies, so a killed runner leaves no trainer holding the GPU.

stdout carries one JSON message per line (protocol/PROTOCOL.md); everything for people goes to stderr.
The run reads top to bottom: settings → data → model → LoRA → trainer → train → save → latest.
"""
from __future__ import annotations

import argparse
import errno
import fcntl
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import protocol  # noqa: E402
from models_dir import (  # noqa: E402
    INFO_FILE, base_name_for, final_loss, band_for, give_ordinary_modes, make_model_dir, move_latest,
    read_training_info, set_adapter_base, write_model_card, write_training_info,
)

# ---- settings -------------------------------------------------------------------------------------------------
TABLES = json.loads((HERE / "profiles.json").read_text(encoding="utf-8"))
PROFILES = TABLES["profiles"]            # the seed's table plus per-profile hyperparameters
OVERRIDES = TABLES["overrides"]          # what a user may override, with its allowed values
DEFAULT_DATASET = HERE / "data" / "sample_conversations.jsonl"
DEFAULT_TINY_DIR = HERE.parent.parent / ".cache" / "tiny-gpt-oss"
SEED = 3407
LORA_ALPHA_PER_RANK = 2                  # lora_alpha = 2 × r, as in Unsloth's gpt-oss notebook
WARMUP_FRACTION = 0.1                    # of max_steps, at most 10 steps
SAVE_TOTAL_LIMIT = 2                     # checkpoints kept per model folder (newest first)
ATTENTION_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
# gpt-oss keeps its experts as 3-D parameters, not Linear modules: peft reaches them with target_parameters.
EXPERT_PARAMETERS = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
# The CUDA backend (Unsloth) is given MLP leaf names and resolves them to gpt-oss's experts (see add_lora).
UNSLOTH_EXPERT_LEAVES = ["gate_proj", "up_proj", "down_proj"]
LOCK_FILE = ".trainer.lock"              # held for the whole run: two trainers never write one folder; removed at the end
LOCK_WAIT_S = 30                         # a resume waits this long for a dying trainer to let go of the folder
PARENT_POLL_S = 1.0
EVAL_FRACTION = 0.05                     # of the conversations, held out: the loss on data the adapter never saw
EVAL_MIN_CONVERSATIONS = 20              # fewer: no split, every conversation goes to training
EVAL_MAX_EXAMPLES = 200                  # the evaluation of a 20B model then takes a minute or two at most
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
EXIT_BAD_INPUT, EXIT_FAILED, EXIT_CANCELLED = 2, 1, 143


class Cancelled(BaseException):
    """SIGTERM (cancel) or SIGINT (interrupt) arrived before saving began: stop, mark the folder, never move latest.
    A BaseException, so that no library's `except Exception` swallows it."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind  # "cancelled" (final) or "interrupted" (the runner went away; the job resumes)


# Once the adapter is being saved, a signal no longer stops the run: it finishes, and latest moves with it.
SAVING = {"started": False}


def log(*parts: object) -> None:
    try:
        print("[train]", *parts, file=sys.stderr, flush=True)
    except OSError:  # the runner that read stderr is gone
        pass


def silence_pipes() -> None:
    """Point stdout and stderr at /dev/null: the runner that read them is gone, and a write to a broken pipe raises
    in whatever library makes it. What follows (marking the folder) must not fail for want of a reader."""
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", required=True, help=f"one of: {', '.join(PROFILES)}")
    p.add_argument("--r", type=int, help=f"LoRA rank ({OVERRIDES['r']['min']}-{OVERRIDES['r']['max']}; "
                                         "default: the profile's)")
    p.add_argument("--scheduler", help=f"one of: {', '.join(OVERRIDES['scheduler']['choices'])}")
    p.add_argument("--gpu", type=int, help="CUDA device index to train on (sets CUDA_VISIBLE_DEVICES)")
    p.add_argument("--backend", choices=["auto", "cpu", "cuda"], default="auto",
                   help="cuda: Unsloth; cpu: transformers + peft + trl; auto: cuda when a GPU is visible")
    p.add_argument("--base-model", default="tiny",
                   help="a local folder or hub id; 'tiny' builds the embedded tiny gpt-oss (default)")
    p.add_argument("--base-name", help="the {base} part of the folder name (default: derived from --base-model)")
    p.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="JSONL of {'messages': [...]} chats")
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    p.add_argument("--targets", choices=["all", "attention"], default="all",
                   help="all: attention and MoE experts (default); attention: attention only, on request")
    p.add_argument("--job-id", default="", help="recorded in training_info.txt")
    p.add_argument("--requested-by", default="", help="recorded in training_info.txt")
    p.add_argument("--resume", metavar="MODEL_NAME",
                   help="continue this folder of --models-dir from its newest checkpoint-* (a finished one is "
                        "reported done; a missing one starts a new folder)")
    args = p.parse_args(argv)
    problems = []
    if args.resume is not None:
        problems += resume_problems(args.resume)
    if args.profile not in PROFILES:
        problems.append(f"unknown profile '{args.profile}'; choose one of {', '.join(PROFILES)}")
    lo, hi = OVERRIDES["r"]["min"], OVERRIDES["r"]["max"]
    if args.r is not None and not lo <= args.r <= hi:
        problems.append(f"r must be a whole number from {lo} to {hi}")
    if args.scheduler is not None and args.scheduler not in OVERRIDES["scheduler"]["choices"]:
        problems.append(f"unknown scheduler '{args.scheduler}'; choose one of "
                        f"{', '.join(OVERRIDES['scheduler']['choices'])}")
    if not args.dataset.is_file():
        problems.append(f"dataset not found: {args.dataset}")
    if problems:
        raise ValueError("; ".join(problems))
    return args


def load_conversations(path: Path, limit: int) -> list[list[dict]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            messages = json.loads(line)["messages"]
            assert isinstance(messages, list) and any(m["role"] == "assistant" for m in messages)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise ValueError(f"{path.name} line {n}: expected {{\"messages\": [...]}} with an assistant turn")
        rows.append(messages)
        if len(rows) == limit:
            break
    if not rows:
        raise ValueError(f"{path.name} holds no conversations")
    return rows


def split_eval(conversations: list) -> tuple[list, list]:
    """(train, eval): EVAL_FRACTION of the conversations held out for evaluation, picked with the run's seed, so a
    resumed run holds out the same ones. Too few conversations to spare some: no evaluation split."""
    n = len(conversations)
    if n < EVAL_MIN_CONVERSATIONS:
        return conversations, []
    held = set(random.Random(SEED).sample(range(n), min(EVAL_MAX_EXAMPLES, max(1, round(n * EVAL_FRACTION)))))
    return [c for i, c in enumerate(conversations) if i not in held], [c for i, c in enumerate(conversations) if i in held]


def tokenize_assistant_only(tokenizer, messages: list[dict], max_len: int) -> dict:
    """input_ids of the whole chat (the tokenizer's own chat template) and a mask that is 1 on assistant tokens only:
    each assistant turn is what the template adds after the generation prompt of the turns before it."""
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    mask = [0] * len(ids)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = len(tokenizer.apply_chat_template(messages[:i], tokenize=True, add_generation_prompt=True,
                                                  return_dict=False))
        end = len(tokenizer.apply_chat_template(messages[: i + 1], tokenize=True, return_dict=False))
        mask[start:end] = [1] * (end - start)
    return {"input_ids": ids[:max_len], "assistant_masks": mask[:max_len]}


def load_model(backend: str, base_model: str, max_seq_length: int):
    """(model, tokenizer) on the chosen backend. Unsloth is imported here only: it raises on a machine without a GPU."""
    if backend == "cuda":
        from unsloth import FastLanguageModel  # noqa: F401  (must come before transformers on CUDA)
        load_in_4bit = unsloth_load_in_4bit()
        log(f"Unsloth: loading {base_model} {'in 4 bits (QLoRA)' if load_in_4bit else 'in 16 bits (bf16 LoRA)'}")
        return FastLanguageModel.from_pretrained(base_model, max_seq_length=max_seq_length, dtype=None,
                                                 load_in_4bit=load_in_4bit, load_in_16bit=not load_in_4bit)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(base_model)


def add_lora(model, backend: str, r: int, targets: str):
    """Wrap the model with LoRA; return it with the facts about what got adapters."""
    from peft import LoraConfig, get_peft_model
    config = LoraConfig(r=r, lora_alpha=LORA_ALPHA_PER_RANK * r, lora_dropout=0.0, bias="none",
                        target_modules=ATTENTION_TARGETS,
                        target_parameters=EXPERT_PARAMETERS if targets == "all" else None,
                        task_type="CAUSAL_LM")
    if backend == "cuda":
        # gpt-oss's experts come in two layouts. A bf16 checkpoint keeps them fused, as 3-D Parameters
        # (mlp.experts.gate_up_proj / down_proj): peft reaches them through target_parameters, named here when the
        # model has them. Unsloth's bnb-4bit checkpoint splits them into one Linear4bit per expert
        # (mlp.experts.gate_up_projs.<i> / down_projs.<i>): Unsloth adds those to target_modules itself when the
        # MLP leaf names are asked for. The check below refuses a run whose experts got nothing either way.
        from unsloth import FastLanguageModel
        model = FastLanguageModel.get_peft_model(
            model, r=r, lora_alpha=LORA_ALPHA_PER_RANK * r, lora_dropout=0.0, bias="none",
            target_modules=ATTENTION_TARGETS + (UNSLOTH_EXPERT_LEAVES if targets == "all" else []),
            target_parameters=fused_expert_parameters(model) if targets == "all" else None,
            use_gradient_checkpointing="unsloth", random_state=SEED)
    else:
        # LoRA's A matrices start random: seeded, as Unsloth's random_state does above, so the seed that
        # training_info.txt records makes the same run again (without it no two CPU runs shared a loss curve).
        from transformers import set_seed
        set_seed(SEED)
        model = get_peft_model(model, config)
    lora_names = [n for n, _ in model.named_parameters() if "lora_" in n]
    expert_names = [n for n in lora_names if ".experts." in n]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if targets == "all" and not expert_names:
        raise RuntimeError("no MoE expert got LoRA weights; pass --targets attention to train attention only")
    adapted = [t for t in ATTENTION_TARGETS if any(f".{t}." in n for n in lora_names)]
    if expert_names:
        adapted += [p.rsplit(".", 1)[-1] for p in EXPERT_PARAMETERS]
    return model, {"lora_targets": targets, "adapted_modules": ", ".join(adapted),
                   "adapted_expert_tensors": len(expert_names), "trainable_parameters": trainable}


def main(argv: list[str] | None = None) -> int:
    """Run the trainer; however the run ends (done, failed, cancelled, interrupted, diverged), the folder's lock file
    goes with it."""
    try:
        return run(argv)
    finally:
        unlock_folder()


def run(argv: list[str] | None) -> int:
    started = time.time()
    protocol.claim_stdout()
    try:
        args = parse_args(argv)
    except ValueError as e:
        protocol.emit("error", kind="bad_input", message=str(e))
        return EXIT_BAD_INPUT
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)
    signal.signal(signal.SIGTERM, _raise_cancelled)
    signal.signal(signal.SIGINT, _raise_cancelled)
    watch_parent()

    profile = PROFILES[args.profile]
    r = args.r or profile["lora_r"]
    scheduler = args.scheduler or OVERRIDES["scheduler"]["default"]
    base_model = str(ensure_tiny(DEFAULT_TINY_DIR)) if args.base_model == "tiny" else args.base_model
    base_name = args.base_name or base_name_for(args.base_model)
    folder: Path | None = None
    facts: dict = {}
    checkpoint, resumed_from, losses, step_count = None, None, [], 0
    try:
        earlier = args.models_dir / args.resume if args.resume else None
        if earlier is not None and not (earlier / INFO_FILE).is_file():
            protocol.emit("notice", message=f"the earlier attempt's folder {args.resume} is not in this runner's "
                                            "models folder: training again from step 0")
            earlier = None
        if earlier is not None:
            if not lock_folder(earlier, LOCK_WAIT_S):
                # Its trainer is still stopping (or a stale lock on shared storage): another try, a little later.
                protocol.emit("error", kind="interrupted", message=f"another trainer is still writing {earlier.name}; "
                                                                   "the job will be tried again")
                return EXIT_CANCELLED
            folder = earlier
            facts = read_training_info(folder)
            if facts.get("status") == "succeeded":  # it finished before its runner could say so
                return report_finished(args.models_dir, folder, facts)
            checkpoint = newest_checkpoint(folder)
            resumed_from = int(checkpoint.name.split("-")[1]) if checkpoint else 0
            losses = checkpoint_losses(checkpoint) if checkpoint else []
            facts.update(status="running", resumes=int(facts.get("resumes", 0)) + 1, resumed_from_step=resumed_from)
            for stale in ("error", "finished_at"):
                facts.pop(stale, None)
        else:
            folder = make_model_dir(args.models_dir, base_name, args.profile, datetime.now())
            lock_folder(folder, 0)
            # base_model: the name the operator gave (tiny, a hub id, a folder); base_model_path: where `tiny` was
            # loaded from on this host, when that differs
            facts = {"status": "running", "model_name": folder.name, "profile": args.profile,
                     "base_model": args.base_model,
                     **({"base_model_path": base_model} if base_model != args.base_model else {}),
                     "job_id": args.job_id, "requested_by": args.requested_by,
                     "started_at": datetime.now().astimezone().isoformat(timespec="seconds")}
        write_training_info(folder, facts)
        step_count = resumed_from or 0
    except Cancelled as c:  # a signal while waiting for the folder: nothing of ours to mark
        if folder is not None and facts.get("status") == "running":
            _finish_failed(folder, facts, step_count, c.kind, f"{c.kind} before training began")
        protocol.emit("error", kind=c.kind, message=f"{c.kind} before training began")
        return EXIT_CANCELLED
    try:
        import torch
        backend = args.backend if args.backend != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        defaults_file = Path(base_model) / "training_defaults.json"
        base_defaults = json.loads(defaults_file.read_text()) if defaults_file.is_file() else {}
        lr = base_defaults.get("learning_rate", profile["learning_rate"])
        facts.update(backend=backend, lora_r=r, lora_alpha=LORA_ALPHA_PER_RANK * r, scheduler=scheduler,
                     learning_rate=lr, max_steps=profile["steps"], batch_size=profile["batch_size"],
                     grad_accum=profile["grad_accum"], max_seq_length=profile["max_seq_length"], seed=SEED,
                     dataset=str(args.dataset), gpu=args.gpu if args.gpu is not None else "")

        # data → model → LoRA
        conversations = load_conversations(args.dataset, profile["dataset_examples"])
        train_set, eval_set = split_eval(conversations)
        per_step = profile["batch_size"] * profile["grad_accum"]
        epochs = profile["steps"] * per_step / len(train_set)
        facts.update(dataset_requested=profile["dataset_examples"], dataset_examples=len(conversations),
                     train_examples=len(train_set), eval_examples=len(eval_set), epochs_planned=round(epochs, 2))
        protocol.emit("start", model_name=folder.name, output_dir=str(folder.resolve()), profile=args.profile,
                      base_model=args.base_model, backend=backend, max_steps=profile["steps"],
                      dataset_examples=len(conversations), dataset_requested=profile["dataset_examples"],
                      eval_examples=len(eval_set), lora_r=r, scheduler=scheduler, resumed_from_step=resumed_from)
        if args.resume:
            protocol.emit("notice", message=f"resumed from step {resumed_from} ({checkpoint.name})" if checkpoint
                          else "no checkpoint had been written yet: training again from step 0 in the same folder")
        if len(conversations) < profile["dataset_examples"]:
            protocol.emit("notice", message=f"the dataset holds {len(conversations)} conversations; {args.profile} "
                                            f"asks for {profile['dataset_examples']}: training on "
                                            f"{len(train_set)} (about {epochs:.1f} epochs)")
        if not eval_set:
            protocol.emit("notice", message=f"{len(conversations)} conversations are too few to hold some out "
                                            f"(at least {EVAL_MIN_CONVERSATIONS}): no evaluation loss for this run")
        model, tokenizer = load_model(backend, base_model, profile["max_seq_length"])
        model, lora_facts = add_lora(model, backend, r, args.targets)
        facts.update(lora_facts)
        log(f"LoRA r={r} on {lora_facts['adapted_modules']}: {lora_facts['trainable_parameters']:,} trainable")

        # trainer → train
        from datasets import Dataset
        from transformers import TrainerCallback
        from trl import SFTConfig, SFTTrainer
        rows = [tokenize_assistant_only(tokenizer, c, profile["max_seq_length"]) for c in train_set]
        eval_rows = [tokenize_assistant_only(tokenizer, c, profile["max_seq_length"]) for c in eval_set]

        class Report(TrainerCallback):
            def on_log(self, _args, state, _control, logs=None, **_):
                nonlocal step_count
                if logs and "loss" in logs:
                    loss = protocol.finite_or_none(float(logs["loss"]))
                    losses.append(float(logs["loss"]))
                    step_count = state.global_step
                    failpoint(state.global_step)
                    protocol.emit("step", step=state.global_step, max_steps=state.max_steps, loss=loss,
                                  learning_rate=protocol.finite_or_none(logs.get("learning_rate")),
                                  epoch=round(float(state.epoch or 0), 4), elapsed_s=round(time.time() - started, 2))

            def on_save(self, _args, state, _control, **_):
                give_ordinary_modes(folder)  # the checkpoint's adapter was written 0600 (see give_ordinary_modes)
                protocol.emit("checkpoint", step=state.global_step,
                              path=str((folder / f"checkpoint-{state.global_step}").resolve()))

        config = SFTConfig(
            output_dir=str(folder), max_steps=profile["steps"], per_device_train_batch_size=profile["batch_size"],
            gradient_accumulation_steps=profile["grad_accum"], learning_rate=lr, lr_scheduler_type=scheduler,
            warmup_steps=min(10, int(profile["steps"] * WARMUP_FRACTION)), logging_steps=1,
            save_steps=profile["save_every"], save_total_limit=SAVE_TOTAL_LIMIT, seed=SEED,
            max_length=profile["max_seq_length"], report_to="none", disable_tqdm=True,
            use_cpu=backend == "cpu", bf16=backend == "cuda", dataloader_num_workers=0, optim="adamw_torch",
            per_device_eval_batch_size=profile["batch_size"],
        )
        class Trainer(SFTTrainer):
            def create_model_card(self, *_, **__):
                """TRL's card names a base model loaded from a folder as [None]: the folder gets ours when it is done
                (write_model_card)."""

        trainer = Trainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                             eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
                             processing_class=tokenizer, callbacks=[Report()])
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        eval_loss = held_out_loss(trainer) if eval_rows else None
        eval_band = band_for(eval_loss) if eval_loss is not None else None

        # save → facts → latest (from here on a cancel is too late: the run completes)
        SAVING["started"] = True
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        for saved in [folder, *folder.glob("checkpoint-*")]:
            if (saved / "adapter_config.json").is_file():
                set_adapter_base(saved, args.base_model)
        loss = final_loss(losses)
        band = band_for(loss)
        facts.update(status="succeeded", final_loss=_fmt(loss), quality=f"{band['emoji']} {band['label']}",
                     band=band["id"])
        if eval_band is not None:
            facts.update(eval_loss=_fmt(eval_loss), eval_quality=f"{eval_band['emoji']} {eval_band['label']}",
                         eval_band=eval_band["id"])
        facts.update(steps=step_count, epochs_seen=round(step_count * per_step / len(rows), 2),
                     duration_s=round(time.time() - started, 1),
                     finished_at=datetime.now().astimezone().isoformat(timespec="seconds"))
        write_training_info(folder, facts)
        # null for a loss that was not finite: strict JSON, readable by the runner (JSON.parse has no NaN)
        (folder / "loss_history.json").write_text(json.dumps([protocol.finite_or_none(x) for x in losses]) + "\n")
        write_model_card(folder, facts, load_base_from=DEFAULT_TINY_DIR.relative_to(HERE.parent.parent).as_posix()
                         if args.base_model == "tiny" else args.base_model)
        give_ordinary_modes(folder)
        moved = band["id"] != "diverged"
        if moved:
            move_latest(args.models_dir, folder)
        protocol.emit("done", model_name=folder.name, output_dir=str(folder.resolve()),
                      final_loss=protocol.finite_or_none(loss), band=band["id"],
                      eval_loss=protocol.finite_or_none(eval_loss), eval_band=eval_band and eval_band["id"],
                      eval_examples=len(eval_rows), steps=step_count,
                      epochs=facts["epochs_seen"], duration_s=facts["duration_s"], latest=moved)
        return 0
    except Cancelled as c:
        _finish_failed(folder, facts, step_count, c.kind, f"{c.kind} at step {step_count}")
        protocol.emit("error", kind=c.kind, message=f"{c.kind} at step {step_count}")
        return EXIT_CANCELLED
    except Exception as e:  # one line for the channel; the traceback for the log
        if isinstance(e, BrokenPipeError) or protocol.reader_gone():
            # The runner died (the pipes broke before the parent watch noticed): resumable, like an interrupt.
            silence_pipes()
            _finish_failed(folder, facts, step_count, "interrupted", f"interrupted at step {step_count}: the runner went away")
            return EXIT_CANCELLED
        import traceback
        traceback.print_exc(file=sys.stderr)
        kind, message = classify_failure(e, step_count)
        _finish_failed(folder, facts, step_count, kind, message)
        protocol.emit("error", kind=kind, message=message[:500])
        return EXIT_FAILED


def fused_expert_parameters(model) -> list[str] | None:
    """EXPERT_PARAMETERS that the model holds as fused 3-D Parameters (a bf16 gpt-oss), None when it has none (a
    bnb-4bit gpt-oss, whose experts are Linear modules)."""
    names = [n for n, _ in model.named_parameters()]
    found = [t for t in EXPERT_PARAMETERS if any(n == t or n.endswith("." + t) for n in names)]
    return found or None


def unsloth_load_in_4bit() -> bool:
    """The CUDA backend's precision: 4 bits (QLoRA) unless TRAINER_LOAD_IN_4BIT=0 asks for a 16-bit LoRA. A bnb-4bit
    checkpoint (the production base, unsloth/gpt-oss-20b-unsloth-bnb-4bit) loads as stored; a bf16 one (such as the
    random-weight models of bench/gpu/) is quantized on load, its fused experts too. Measured on an H100
    (docs/gpu.md): the same tokens/s as 16 bits with about 40% less peak memory."""
    return os.environ.get("TRAINER_LOAD_IN_4BIT", "1").strip() != "0"


def resume_problems(name: str) -> list[str]:
    """Why --resume cannot take `name`: it names a folder of the models folder, never a path. (A folder that is not
    there, or whose run succeeded, is main's to handle.)"""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or ".." in name:
        return [f"--resume takes a model folder's name, not '{name[:80]}'"]
    return []


def report_finished(models_dir: Path, folder: Path, facts: dict) -> int:
    """--resume of a folder whose run had already succeeded (its runner died between the trainer's end and telling
    the queue): say done again, from what the folder records, so the job succeeds instead of failing or training
    twice."""
    loss = float(facts.get("final_loss", "nan"))
    eval_loss = float(facts["eval_loss"]) if "eval_loss" in facts else None
    latest = models_dir / "latest"
    protocol.emit("done", model_name=folder.name, output_dir=str(folder.resolve()),
                  final_loss=protocol.finite_or_none(loss), band=facts.get("band", band_for(loss)["id"]),
                  eval_loss=protocol.finite_or_none(eval_loss), eval_band=facts.get("eval_band"),
                  eval_examples=int(facts.get("eval_examples", 0)),
                  steps=int(facts.get("steps", 0)), epochs=float(facts.get("epochs_seen", 0)),
                  duration_s=float(facts.get("duration_s", 0)),
                  latest=latest.is_symlink() and os.readlink(latest) == folder.name)
    return 0


def newest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint-N/ (its trainer state and adapter are written): one cut short by a crash while
    saving is passed over for the one before."""
    found = []
    for c in folder.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", c.name)
        if m and _complete_checkpoint(c, int(m.group(1))):
            found.append((int(m.group(1)), c))
    return max(found)[1] if found else None


def _complete_checkpoint(c: Path, step: int) -> bool:
    """Its trainer state reads back and names its step, and its adapter is there: a save that a kill cut short leaves
    an empty or half-written file."""
    try:
        state = json.loads((c / "trainer_state.json").read_text(encoding="utf-8"))
        return state.get("global_step") == step and (c / "adapter_model.safetensors").stat().st_size > 0
    except (OSError, ValueError):
        return False


def checkpoint_losses(checkpoint: Path) -> list[float]:
    """The step losses logged before the checkpoint, from its trainer state: the final loss (the mean of the last
    ten) and the loss curve span the whole run, not only the part after the resume."""
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    step = state.get("global_step", 0)
    return [float(e["loss"]) for e in state.get("log_history", []) if "loss" in e and e.get("step", 0) <= step]


# The folder lock this process holds: {"fd": the locked file's descriptor, "path": the lock file}; empty when none.
HELD_LOCK: dict = {}


def lock_folder(folder: Path, wait_s: float) -> bool:
    """Hold an exclusive lock on the folder until unlock_folder, at the latest until this process dies (the kernel
    drops it then, however it dies). False when another trainer still holds it after wait_s.

    The trainer that held it before removes the lock file when its run ends, while still holding the lock. A trainer
    that opened the file before that removal gets its lock once the holder lets go, but on a file no longer at the
    path, while a third trainer may create and lock a new one there: so the lock counts only when the file locked is
    the one at the path; otherwise it is opened and locked again."""
    path = folder / LOCK_FILE
    deadline = time.time() + wait_s
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.time() >= deadline:
                        os.close(fd)
                        return False
                    time.sleep(0.2)
        except BaseException:  # a cancel while waiting
            os.close(fd)
            raise
        if _is_file_at(fd, path):
            HELD_LOCK.update(fd=fd, path=path)  # the fd stays open (and locked) until unlock_folder or exit
            return True
        os.close(fd)  # its holder removed it: lock the file now at the path


def unlock_folder() -> None:
    """Remove the lock file, then let go of the lock: removed while still held, so no other trainer holds it between
    the two (one waiting on the removed file finds it gone, see lock_folder). Nothing when no lock is held."""
    fd, path = HELD_LOCK.pop("fd", None), HELD_LOCK.pop("path", None)
    if fd is None:
        return
    try:
        if _is_file_at(fd, path):
            os.unlink(path)
    except OSError as e:
        log(f"could not remove {path}: {e}")
    finally:
        os.close(fd)


def _is_file_at(fd: int, path: Path) -> bool:
    """Whether the open file fd is the file at path (not one removed from it, nor one created there since)."""
    held = os.fstat(fd)
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


def watch_parent() -> None:
    """Interrupt this run (SIGINT: resumable) when the process that started it dies: a runner killed with -9 cannot
    stop its trainer, and the trainer runs in its own process group, so nothing else would."""
    parent = os.getppid()

    def poll():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        silence_pipes()
        log(f"the parent process {parent} is gone: interrupting the run")
        os.kill(os.getpid(), signal.SIGINT)

    if parent > 1:
        threading.Thread(target=poll, name="parent-watch", daemon=True).start()


def classify_failure(e: BaseException, step: int) -> tuple[str, str]:
    """(protocol kind, one line for the channel) for a run that raised."""
    text = str(e)
    first = text.splitlines()[0] if text else ""
    if "out of memory" in text.lower():
        return "out_of_memory", (f"out of GPU memory at step {step}: try the conservative profile or a smaller r "
                                 f"({type(e).__name__}: {first[:200]})")
    if isinstance(e, OSError) and e.errno == errno.EROFS:
        return "failed", (f"the models folder is on a read-only filesystem (at step {step}): make it writable, then "
                          f"/train again")
    disk = isinstance(e, OSError) and e.errno in DISK_ERRNOS
    if disk or any(s in text for s in ("No space left on device", "File too large", "file write failed")):
        return "disk_full", f"the models disk is full (at step {step}): free some space, then /train again"
    return "failed", f"{type(e).__name__}: {first}".strip().rstrip(":")


def held_out_loss(trainer) -> float | None:
    """The loss on the held-out conversations, measured once after training: on data the adapter never trained on.
    An extra figure, so a failure here (out of memory on a long conversation) costs the figure, said in the channel,
    and never the trained adapter."""
    try:
        failpoint(None)
        return float(trainer.evaluate()["eval_loss"])
    except Exception as e:  # a cancel (Cancelled, a BaseException) still goes through
        protocol.emit("notice", message=f"no eval loss for this run: evaluating the held-out conversations failed "
                                        f"({type(e).__name__}: {str(e)[:200]}); the adapter is saved all the same")
        return None


def failpoint(step: int | None) -> None:
    """TRAINER_FAILPOINT=oom_at_step:N raises the error a GPU out of memory raises, at step N; oom_at_eval, in the
    evaluation after training (step None). Tests on machines without a GPU use it to run the trainer's real
    out-of-memory paths; nothing else sets it."""
    spec = os.environ.get("TRAINER_FAILPOINT", "")
    at_step = spec.startswith("oom_at_step:") and step is not None and step >= int(spec.split(":", 1)[1])
    if at_step or (spec == "oom_at_eval" and step is None):
        import torch
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (TRAINER_FAILPOINT)")


def ensure_tiny(path: Path) -> Path:
    from tiny_model import ensure_tiny_model
    return ensure_tiny_model(path)


def _raise_cancelled(signum, _frame):
    if SAVING["started"]:
        log("a cancel arrived while the adapter was being saved: the run finishes")
        return
    raise Cancelled("interrupted" if signum == signal.SIGINT else "cancelled")


def _fmt(loss: float) -> str:
    return f"{loss:.4f}" if math.isfinite(loss) else str(loss)


def _finish_failed(folder: Path, facts: dict, steps: int, status: str, reason: str) -> None:
    """Mark the folder as not usable; it keeps its checkpoints (for a resume) but never becomes latest."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    facts.update(status=status, error=reason, steps=steps,
                 finished_at=datetime.now().astimezone().isoformat(timespec="seconds"))
    if status == "disk_full":
        free_partial_writes(folder)  # what the full disk cut short, so that the status below has room
    try:
        write_training_info(folder, facts)
    except OSError as e:
        if e.errno not in DISK_ERRNOS or not _write_in_place(folder / INFO_FILE, facts):
            log(f"could not mark {folder} as {status}: {e}")
    give_ordinary_modes(folder)  # its checkpoints too, for a resume by another user of a shared models folder


def free_partial_writes(folder: Path) -> None:
    """Removes what a write cut short by a full disk left in the folder: temporary files (the adapter's, the facts')
    and checkpoints that never became whole. A resume starts from the newest whole checkpoint, which stays."""
    for p in folder.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        try:
            if m and p.is_dir() and not _complete_checkpoint(p, int(m.group(1))):
                shutil.rmtree(p, ignore_errors=True)
            elif p.is_file() and (p.name.endswith(".tmp") or p.name.startswith("tmp")):
                p.unlink()
        except OSError:
            pass


def _write_in_place(path: Path, facts: dict) -> bool:
    """The facts written over the file itself, for a disk too full for a temporary file beside it: the new text
    fills the blocks the file has, and only what goes past its old length needs more (the status line, near the top,
    never does). A reader may see it half written for that moment; True if it worked."""
    path.with_name(f".{path.name}.tmp").unlink(missing_ok=True)  # a cut-short temporary file: its blocks, back
    text = "# Written by gpu-runner/trainer/train.py. One fact per line: key: value\n"
    text += "".join(f"{key}: {value}\n" for key, value in facts.items())
    try:
        with open(path, "r+b") as f:
            f.write(text.encode("utf-8"))
            f.truncate()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
