"""The resident inference worker: loads the base model once, then answers asks from any adapter in models/.

    python -u gpu-runner/inference/worker.py --models-dir models --base-model tiny

Requests arrive on stdin, one JSON object per line:
    {"id": "7", "model": "latest" | "base" | "<folder name>", "messages": [{"role": "user", "content": "..."}],
     "max_new_tokens": 256, "reasoning_effort": "low" | "medium" | "high", "seed": 1}
Events leave on stdout, one JSON object per line (human logs go to stderr):
    {"v": 1, "type": "ready", "base_model": "...", "backend": "cpu", "load_s": 1.2}
    {"v": 1, "type": "token", "id": "7", "text": "The"}         new text of the answer (Harmony's final channel)
    {"v": 1, "type": "done", "id": "7", "model": "...", "answer": "...", "reasoning": "...", "complete": true,
     "tokens": 12, "ttft_s": 0.05, "duration_s": 0.4}
    {"v": 1, "type": "error", "id": "7", "kind": "bad_input" | "not_found" | "failed", "message": "..."}
Adapters are loaded on first use and kept; `latest` is resolved on every request, so a new training run is picked
up by the next ask. A bad request gets an error event; nothing a request does stops the worker.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "trainer"))
from harmony import HarmonyStream  # noqa: E402
from models_dir import read_training_info  # noqa: E402

VERSION = 1
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
MAX_PROMPT_CHARS = 16_000
MAX_SUGGESTED = 10          # models named in a "no model" answer
# {base}_{profile}_{YYYYMMDD_HHMM}, -N for a later folder of the same minute (gpu-runner/trainer/models_dir.py)
FOLDER_TIME = re.compile(r"^.+_.+_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(?:-(\d+))?$")
MAX_ADAPTERS = 4            # adapters kept loaded at once (--max-adapters); the least recently used one goes first
EFFORTS = ("low", "medium", "high")
_out = sys.stdout


def emit(type_: str, **fields) -> None:
    _out.write(json.dumps({"v": VERSION, "type": type_, **fields}, ensure_ascii=False) + "\n")
    _out.flush()


def log(*parts: object) -> None:
    print("[infer]", *parts, file=sys.stderr, flush=True)


class RequestError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Worker:
    def __init__(self, models_dir: Path, base_model: str, backend: str, max_adapters: int = MAX_ADAPTERS):
        import torch
        started = time.time()
        self.models_dir = models_dir
        self.backend = backend if backend != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        if base_model == "tiny":
            from tiny_model import ensure_tiny_model
            base_model = str(ensure_tiny_model(HERE.parent.parent / ".cache" / "tiny-gpt-oss"))
        self.model, self.tokenizer = self._load(base_model)
        self.peft = None            # the PeftModel wrapper, once an adapter has been loaded
        self.loaded: dict[str, float] = {}  # adapter folder name → mtime of its weights, least recently used first
        self.max_adapters = max_adapters
        self.load_s = time.time() - started
        self.base_model = base_model

    def _load(self, base_model: str):
        if self.backend == "cuda":
            from unsloth import FastLanguageModel
            model, tokenizer = FastLanguageModel.from_pretrained(base_model, max_seq_length=4096, load_in_4bit=True)
            FastLanguageModel.for_inference(model)
            return model, tokenizer
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
        model.eval()
        return model, AutoTokenizer.from_pretrained(base_model)

    def resolve(self, name: str) -> str | None:
        """The adapter folder a request names, None for the base model. Refuses paths and unknown names."""
        if name == "base":
            return None
        if name == "latest":
            link = self.models_dir / "latest"
            if not link.is_symlink():
                raise RequestError("not_found", "no model is latest yet; /train quick_test makes one")
            name = os.readlink(link).rstrip("/").split("/")[-1]
        if not SAFE_NAME.match(name) or ".." in name:
            raise RequestError("bad_input", "a model is named by its folder name (or latest, or base), not a path")
        folder = self.models_dir / name
        if not folder.is_dir() or name == "archive":
            known = usable_models(self.models_dir)[:MAX_SUGGESTED]
            raise RequestError("not_found", f"no model '{name}'; known: {', '.join(['latest', 'base', *known])}")
        missing = [f for f in ADAPTER_FILES if not (folder / f).is_file()]
        if missing:
            raise RequestError("not_found", f"{name} has no adapter files ({', '.join(missing)}): was its run finished?")
        return name

    def use(self, adapter: str | None):
        """The model to generate with: the base (adapters disabled) or the named adapter, loaded on first use."""
        if adapter is None:
            return self.peft or self.model
        weights = self.models_dir / adapter / "adapter_model.safetensors"
        mtime = weights.stat().st_mtime
        if self.loaded.get(adapter) != mtime:
            from peft import PeftModel
            path = str(self.models_dir / adapter)
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.model, path, adapter_name=adapter)
            else:
                if adapter in self.loaded:
                    self.peft.delete_adapter(adapter)
                    del self.loaded[adapter]
                while len(self.loaded) >= self.max_adapters:  # GPU memory is finite: unload the least recently used
                    oldest = next(iter(self.loaded))
                    self.peft.delete_adapter(oldest)
                    del self.loaded[oldest]
                    log(f"unloaded adapter {oldest}")
                self.peft.load_adapter(path, adapter_name=adapter)
            self.loaded[adapter] = mtime
            log(f"loaded adapter {adapter}")
        self.loaded[adapter] = self.loaded.pop(adapter)  # now the most recently used
        self.peft.set_adapter(adapter)
        return self.peft

    def answer(self, req: dict) -> None:
        rid = str(req.get("id", ""))
        messages = req.get("messages")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in ("system", "user", "assistant")
                for m in messages):
            raise RequestError("bad_input", "messages must be a list of {role, content}")
        if not messages[-1]["content"].strip():
            raise RequestError("bad_input", "the prompt is empty")
        if sum(len(m["content"]) for m in messages) > MAX_PROMPT_CHARS:
            raise RequestError("bad_input", f"the conversation is over {MAX_PROMPT_CHARS} characters")
        effort = req.get("reasoning_effort", "low")
        if effort not in EFFORTS:
            raise RequestError("bad_input", f"reasoning effort must be one of {', '.join(EFFORTS)}")
        adapter = self.resolve(str(req.get("model", "latest")))
        model = self.use(adapter)

        import torch
        from transformers import TextIteratorStreamer
        torch.manual_seed(int(req.get("seed", 0)))
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True, reasoning_effort=effort)
        ids = {k: v.to(model.device) for k, v in ids.items()}
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=False)
        kwargs = dict(**ids, max_new_tokens=int(req.get("max_new_tokens", 256)), streamer=streamer, do_sample=True,
                      temperature=float(req.get("temperature", 0.7)), pad_token_id=self.tokenizer.pad_token_id)
        started = time.time()
        first: float | None = None
        harmony = HarmonyStream()
        errors: list[BaseException] = []

        generated: list[int] = []

        def generate():
            try:
                if adapter is None and self.peft is not None:
                    with self.peft.disable_adapter():
                        out = self.peft.generate(**kwargs)
                else:
                    out = model.generate(**kwargs)
                generated.append(int(out.shape[-1] - ids["input_ids"].shape[-1]))  # tokens, not streamed pieces
            except BaseException as e:  # reported below, after the stream ends
                errors.append(e)
                streamer.on_finalized_text("", stream_end=True)

        thread = threading.Thread(target=generate, daemon=True)
        thread.start()
        for piece in streamer:
            first = first or time.time()
            shown = harmony.feed(piece)
            if shown:
                emit("token", id=rid, text=shown)
        thread.join()
        if errors:
            raise errors[0]
        parsed = harmony.close()
        tokens = generated[0] if generated else 0
        emit("done", id=rid, model=adapter or "base", answer=parsed.final, reasoning=parsed.analysis,
             complete=parsed.complete, tokens=tokens, ttft_s=round((first or time.time()) - started, 4),
             duration_s=round(time.time() - started, 4))


def usable_models(models_dir: Path) -> list[str]:
    """The models an ask can use, newest first as the bot lists them (src/shared/model-registry.ts: the folder name's time,
    then its -N): folders whose run succeeded and that hold the adapter files. archive/, hidden entries and links
    (latest) are no models; a usable folder whose name carries no time comes after the others."""
    found = []
    for p in (models_dir.iterdir() if models_dir.is_dir() else []):
        if p.name == "archive" or p.name.startswith(".") or p.is_symlink() or not p.is_dir():
            continue
        if not all((p / f).is_file() for f in ADAPTER_FILES):
            continue
        try:
            info = read_training_info(p)
        except (OSError, UnicodeDecodeError):
            continue
        # as the bot reads it: a folder from before status was recorded is finished when it has a final loss
        if info.get("status", "succeeded" if "final_loss" in info else "") != "succeeded":
            continue
        found.append((_folder_time(p.name), p.name))
    timed = sorted(sorted(t for t in found if t[0]), key=lambda t: t[0], reverse=True)  # a tie: by name (stable)
    return [name for _, name in timed] + sorted(name for when, name in found if not when)


def _folder_time(name: str) -> tuple[datetime, int] | None:
    """(the run's start, to the minute; its -N, 1 for none) from a folder name; None when the name has no time."""
    m = FOLDER_TIME.match(name)
    if not m:
        return None
    y, mo, d, h, mi, seq = m.groups()
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi)), int(seq or 1)
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    p.add_argument("--base-model", default="tiny")
    p.add_argument("--backend", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--max-adapters", type=int, default=MAX_ADAPTERS, help="adapters kept loaded at once")
    args = p.parse_args(argv)
    global _out
    fd = os.dup(1)          # stdout carries events alone; anything else printed goes to stderr
    os.dup2(2, 1)
    _out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
    worker = Worker(args.models_dir, args.base_model, args.backend, max(1, args.max_adapters))
    emit("ready", base_model=args.base_model, backend=worker.backend, load_s=round(worker.load_s, 3))
    for line in sys.stdin:
        if not line.strip():
            continue
        rid = ""
        try:
            req = json.loads(line)
            rid = str(req.get("id", "")) if isinstance(req, dict) else ""
            if not isinstance(req, dict):
                raise RequestError("bad_input", "a request is a JSON object")
            worker.answer(req)
        except RequestError as e:
            emit("error", id=rid, kind=e.kind, message=str(e))
        except json.JSONDecodeError:
            emit("error", id=rid, kind="bad_input", message="a request is one line of JSON")
        except Exception as e:  # the worker survives a failed request
            import traceback
            traceback.print_exc(file=sys.stderr)
            emit("error", id=rid, kind="failed", message=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
