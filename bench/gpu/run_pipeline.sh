#!/usr/bin/env bash
# The trainer's CUDA path (Unsloth) end to end on a GPU, on a gpt-oss of random weights: build a tiny model, run
# train.py --profile quick_test --backend cuda into a fresh models folder, check the folder against the seed's
# contract and the adapter's expert coverage. Run from the repository root on a GPU host whose Python has the
# packages of gpu-runner/trainer/requirements-gpu.txt.
#
#   bash bench/gpu/run_pipeline.sh [work-dir] [out-dir]
#
# Runs it twice: train.py's default (4-bit QLoRA: the bf16 checkpoint is quantized on load) and a 16-bit LoRA
# (TRAINER_LOAD_IN_4BIT=0). Nothing is downloaded (HF_HUB_OFFLINE=1).
set -u
WORK=${1:-/tmp/gpu-pipeline}
OUT_DIR=${2:-$WORK/out}
PY=${PYTHON:-python3}
mkdir -p "$WORK" "$OUT_DIR"
source bench/gpu/env.sh
status=0

gpu_environment "$PY"

echo "== build the tiny gpt-oss (bf16, random weights)"
$PY bench/gpu/build_model.py --preset tiny --out "$WORK/gpt-oss-tiny" || status=1

run_quick_test() {  # $1: label, $2: TRAINER_LOAD_IN_4BIT value ("" = train.py's own choice)
  local label=$1 models="$WORK/models-$1"
  echo "== train.py --profile quick_test --backend cuda ($label)"
  rm -rf "$models"
  local t0=$SECONDS
  TRAINER_LOAD_IN_4BIT=$2 timeout ${TRAIN_TIMEOUT:-420} $PY -u gpu-runner/trainer/train.py --profile quick_test --backend cuda \
    --base-model "$WORK/gpt-oss-tiny" --models-dir "$models" \
    > "$OUT_DIR/train-$label.stdout.jsonl" 2> "$OUT_DIR/train-$label.stderr.txt"
  local rc=$?
  echo "exit $rc after $((SECONDS - t0)) s (wall, imports included)"
  grep -E '"type": "(start|done|error)"' "$OUT_DIR/train-$label.stdout.jsonl" | cut -c1-400
  $PY - "$OUT_DIR/train-$label.stdout.jsonl" <<'EOF'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
steps = [m for m in msgs if m.get("type") == "step"]
if steps:
    first = steps[0]["elapsed_s"]
    print(f"first step at {first} s after the trainer started; last step ({steps[-1]['step']}) at "
          f"{steps[-1]['elapsed_s']} s; losses {steps[0]['loss']:.3f} -> {steps[-1]['loss']:.3f}")
EOF
  grep -E "Unsloth|\[train\]|Error|error" "$OUT_DIR/train-$label.stderr.txt" | grep -v "^{" | head -40
  if [ $rc -eq 0 ]; then
    $PY bench/gpu/check_model_dir.py "$models" --stdout "$OUT_DIR/train-$label.stdout.jsonl" --expect-experts \
      || return 1
  else
    tail -40 "$OUT_DIR/train-$label.stderr.txt"
    return 1
  fi
}

run_quick_test 4bit "" || status=1                                    # train.py's default: QLoRA
run_quick_test bf16 0 || echo "(16-bit LoRA, TRAINER_LOAD_IN_4BIT=0, failed: see above)"
exit $status
