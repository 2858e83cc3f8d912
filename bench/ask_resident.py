"""/ask latency: the resident inference worker against loading the model per request, as ratios in one run.

    .venv/bin/python bench/ask_resident.py --models-dir /tmp/m --base-model tiny --backend cpu --asks 5
    python bench/ask_resident.py --models-dir /tmp/m --base-model /tmp/gpt-oss-tiny --backend cuda --asks 5

The models folder needs a `latest` adapter (train.py --profile quick_test makes one). Two phases, same asks:

  resident     ONE gpu-runner/inference/worker.py process: its load (process start to "ready") is paid once, then N
               asks go through it one after the other.
  per request  a NEW worker process for each ask: process start, load, the ask, exit (what /ask would cost without
               the resident worker).

Each ask is the same request (model "latest", fixed prompt, fixed seed, sampling as the worker does it,
max_new_tokens 64 by default). Recorded per ask:

  first event  the time to first token as the client sees it: from writing the request (resident) or from starting
               the process (per request) to the first "token" event, or to "done" when no token event came (the
               worker only streams Harmony's final channel; an answer with no final text sends none).
  gen ttft     the worker's own `ttft_s` (request received to the first generated text piece), added to the time to
               "ready" for a per-request ask: the time to the first generated token whatever channel it is in.
  tokens/s     done.tokens / done.duration_s (the worker's count of streamed text pieces over its generation time).

It prints the medians side by side and the ratios (per request / resident for times; resident / per request for
tokens/s), and writes everything as JSON with --json. Nothing here needs a GPU; --backend is passed to the worker.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "gpu-runner" / "inference" / "worker.py"
PROMPT = "In one sentence: what is a LoRA adapter?"


class Proc:
    """A worker process with a thread reading its stdout into a queue of (arrival time, event)."""

    def __init__(self, args: argparse.Namespace, stderr):
        cmd = [args.python, "-u", str(WORKER), "--models-dir", str(args.models_dir), "--base-model", args.base_model,
               "--backend", args.backend]
        self.started = time.perf_counter()
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                  bufsize=1, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            now = time.perf_counter()
            try:
                self.events.put((now, json.loads(line)))
            except json.JSONDecodeError:
                self.events.put((now, {"type": "not_json", "line": line.rstrip()}))
        self.events.put((time.perf_counter(), {"type": "exited"}))

    def next(self, timeout: float):
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"no event from the worker within {timeout:.0f} s")

    def wait_ready(self, timeout: float) -> tuple[float, dict]:
        while True:
            at, ev = self.next(timeout)
            if ev["type"] == "ready":
                return at, ev
            if ev["type"] == "exited":
                raise RuntimeError(f"the worker exited before ready (code {self.p.wait()}); see its stderr")

    def ask(self, rid: str, args: argparse.Namespace, timeout: float) -> dict:
        req = {"id": rid, "model": args.model, "messages": [{"role": "user", "content": args.prompt}],
               "max_new_tokens": args.max_new_tokens, "seed": args.seed, "reasoning_effort": "low"}
        sent = time.perf_counter()
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        first_token = None
        while True:
            at, ev = self.next(timeout)
            if ev.get("id") not in (rid, None):
                continue
            if ev["type"] == "token" and first_token is None:
                first_token = at
            elif ev["type"] == "done":
                dur = ev.get("duration_s") or 0
                return {"sent": sent, "first_event": (first_token or at), "done": at, "streamed": first_token is not None,
                        "tokens": ev.get("tokens", 0), "duration_s": dur, "worker_ttft_s": ev.get("ttft_s"),
                        "tokens_per_s": (ev.get("tokens", 0) / dur) if dur else None, "model": ev.get("model"),
                        "complete": ev.get("complete"), "answer": (ev.get("answer") or "")[:200]}
            elif ev["type"] == "error":
                raise RuntimeError(f"the worker answered an error: {ev}")
            elif ev["type"] == "exited":
                raise RuntimeError(f"the worker exited during an ask (code {self.p.wait()}); see its stderr")

    def close(self, timeout: float = 60) -> int:
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, unit="s"):
    if x is None:
        return "-"
    return f"{x:.3f} {unit}" if unit == "s" else f"{x:.1f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, required=True)
    p.add_argument("--base-model", default="tiny")
    p.add_argument("--backend", choices=["auto", "cpu", "cuda"], default="cpu")
    p.add_argument("--asks", type=int, default=5, help="asks through the resident worker")
    p.add_argument("--per-request-asks", type=int, default=None, help="asks with a new process each (default: --asks)")
    p.add_argument("--model", default="latest")
    p.add_argument("--prompt", default=PROMPT)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--python", default=sys.executable, help="the Python that runs the worker")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for any one event")
    p.add_argument("--budget-s", type=float, default=None,
                   help="stop starting per-request asks when the run would pass this many seconds (at least one runs)")
    p.add_argument("--stderr-log", type=Path, help="the workers' stderr, appended (default: discarded)")
    p.add_argument("--json", type=Path, help="write all measurements here")
    args = p.parse_args(argv)
    n_per = args.asks if args.per_request_asks is None else args.per_request_asks
    if not (args.models_dir / args.model).exists() and args.model not in ("base",):
        print(f"{args.models_dir / args.model} does not exist: train a quick_test first", file=sys.stderr)
        return 2
    err = open(args.stderr_log, "a") if args.stderr_log else subprocess.DEVNULL

    print(f"# ask_resident: backend {args.backend}, base {args.base_model}, model {args.model}, "
          f"{args.asks} resident asks, {n_per} per-request asks, max_new_tokens {args.max_new_tokens}, seed {args.seed}",
          flush=True)
    t_run = time.perf_counter()
    # Phase 1: one resident worker
    w = Proc(args, err)
    ready_at, ready = w.wait_ready(args.timeout)
    resident_load = ready_at - w.started
    print(f"resident: ready after {resident_load:.2f} s (worker's load_s {ready.get('load_s')}, "
          f"backend {ready.get('backend')})", flush=True)
    resident = []
    for i in range(args.asks):
        r = w.ask(f"r{i}", args, args.timeout)
        r["first_event_s"] = r["first_event"] - r["sent"]
        r["total_s"] = r["done"] - r["sent"]
        r["gen_ttft_s"] = r["worker_ttft_s"]
        resident.append(r)
        print(f"  ask {i}: first event {r['first_event_s']:.3f} s ({'token' if r['streamed'] else 'done'}), "
              f"gen ttft {r['gen_ttft_s']} s, {r['tokens']} tokens in {r['duration_s']} s = "
              f"{fmt(r['tokens_per_s'], '')} tok/s, total {r['total_s']:.3f} s", flush=True)
    rc = w.close()
    print(f"resident worker exited {rc}", flush=True)

    # Phase 2: a new process per ask
    per = []
    for i in range(n_per):
        spent = time.perf_counter() - t_run
        if per and args.budget_s and spent + 1.2 * max(r["total_s"] for r in per) > args.budget_s:
            print(f"  (stopped after {len(per)} per-request asks: --budget-s {args.budget_s:.0f} s)", flush=True)
            break
        w = Proc(args, err)
        ready_at, ready = w.wait_ready(args.timeout)
        r = w.ask(f"p{i}", args, args.timeout)
        r["ready_s"] = ready_at - w.started
        r["first_event_s"] = r["first_event"] - w.started
        r["total_s"] = r["done"] - w.started
        r["gen_ttft_s"] = r["ready_s"] + (r["worker_ttft_s"] or 0) + (r["sent"] - ready_at)
        rc = w.close()
        per.append(r)
        print(f"  per-request ask {i}: ready {r['ready_s']:.2f} s, first event {r['first_event_s']:.3f} s "
              f"({'token' if r['streamed'] else 'done'}), gen ttft {r['gen_ttft_s']:.3f} s, "
              f"{fmt(r['tokens_per_s'], '')} tok/s, exit {rc}", flush=True)

    def summary(rows):
        return {k: median([r.get(k) for r in rows]) for k in
                ("first_event_s", "gen_ttft_s", "tokens_per_s", "total_s", "tokens", "duration_s")}

    res, pr = summary(resident), summary(per)
    # The resident worker's steady state: asks after the first (the first also loads the adapter).
    res_warm = summary(resident[1:]) if len(resident) > 1 else res

    def ratio(a, b):
        return (a / b) if a is not None and b else None

    ratios = {
        "first_event_per_request_over_resident": ratio(pr["first_event_s"], res["first_event_s"]),
        "gen_ttft_per_request_over_resident": ratio(pr["gen_ttft_s"], res["gen_ttft_s"]),
        "total_per_request_over_resident": ratio(pr["total_s"], res["total_s"]),
        "tokens_per_s_resident_over_per_request": ratio(res["tokens_per_s"], pr["tokens_per_s"]),
    }
    print()
    print("| median over the asks | resident | per request | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| time to first token (first event) | {fmt(res['first_event_s'])} | {fmt(pr['first_event_s'])} | "
          f"{fmt(ratios['first_event_per_request_over_resident'], '')}× |")
    print(f"| time to first generated token | {fmt(res['gen_ttft_s'])} | {fmt(pr['gen_ttft_s'])} | "
          f"{fmt(ratios['gen_ttft_per_request_over_resident'], '')}× |")
    print(f"| whole ask (to done) | {fmt(res['total_s'])} | {fmt(pr['total_s'])} | "
          f"{fmt(ratios['total_per_request_over_resident'], '')}× |")
    print(f"| tokens/s (done.tokens / done.duration_s) | {fmt(res['tokens_per_s'], '')} | {fmt(pr['tokens_per_s'], '')} | "
          f"{ratio(res['tokens_per_s'], pr['tokens_per_s']) or 0:.2f} (resident / per request) |")
    print(f"resident: load once {resident_load:.2f} s; first ask {resident[0]['first_event_s']:.3f} s to first event "
          f"(adapter load included); asks after the first: median first event {fmt(res_warm['first_event_s'])}, "
          f"gen ttft {fmt(res_warm['gen_ttft_s'])}, {fmt(res_warm['tokens_per_s'], '')} tok/s")
    print(f"streamed token events: resident {sum(r['streamed'] for r in resident)}/{len(resident)}, "
          f"per request {sum(r['streamed'] for r in per)}/{len(per)}")
    if args.json:
        clean = lambda rows: [{k: v for k, v in r.items() if k not in ("sent", "first_event", "done")} for r in rows]
        args.json.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "python": sys.version.split()[0],
            "args": {k: str(v) for k, v in vars(args).items()}, "resident_load_s": resident_load,
            "resident": clean(resident), "per_request": clean(per), "median_resident": res,
            "median_resident_after_first": res_warm, "median_per_request": pr, "ratios": ratios}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
