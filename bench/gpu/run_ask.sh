#!/usr/bin/env bash
# /ask on a GPU: the resident inference worker against a worker started per request (bench/ask_resident.py), on a
# gpt-oss of random weights with a quick_test adapter trained on it by train.py --backend cuda. Run from the
# repository root on a GPU host whose Python has gpu-runner/trainer/requirements-gpu.txt (docs/gpu.md):
#
#   bash bench/gpu/run_ask.sh PRESET WORK OUT [RESIDENT_ASKS] [PER_REQUEST_ASKS] [BUDGET_S]
#
# PRESET is build_model.py's (tiny, bench). Writes OUT/ask-PRESET.{txt,json}, the workers' stderr and the trainer's
# output. Nothing is downloaded.
set -u
PRESET=${1:-tiny}; WORK=${2:-/tmp/gpu-ask}; OUT_DIR=${3:-$WORK/out}
N=${4:-5}; NP=${5:-$N}; BUDGET=${6:-}
PY=${PYTHON:-python3}
mkdir -p "$WORK" "$OUT_DIR"
source bench/gpu/env.sh
t0=$SECONDS
echo "== $PRESET"
gpu_environment "$PY"
echo "== build ($((SECONDS - t0)) s)"
$PY bench/gpu/build_model.py --preset "$PRESET" --out "$WORK/gpt-oss-$PRESET" 2>&1 | tail -3 || exit 1
echo "== train quick_test --backend cuda ($((SECONDS - t0)) s)"
models="$WORK/models-$PRESET"; rm -rf "$models"; t1=$SECONDS
timeout ${TRAIN_TIMEOUT:-300} $PY -u gpu-runner/trainer/train.py --profile quick_test --backend cuda \
  --base-model "$WORK/gpt-oss-$PRESET" --models-dir "$models" \
  > "$OUT_DIR/train-$PRESET.stdout.jsonl" 2> "$OUT_DIR/train-$PRESET.stderr.txt"
rc=$?
echo "train exit $rc after $((SECONDS - t1)) s"
grep -E '"type": "(done|error)"' "$OUT_DIR/train-$PRESET.stdout.jsonl" | cut -c1-300
[ $rc -eq 0 ] || { tail -30 "$OUT_DIR/train-$PRESET.stderr.txt"; exit 1; }
echo "== ask_resident ($((SECONDS - t0)) s)"
$PY bench/ask_resident.py --models-dir "$models" --base-model "$WORK/gpt-oss-$PRESET" --backend cuda \
  --asks "$N" --per-request-asks "$NP" ${BUDGET:+--budget-s $BUDGET} --timeout 240 \
  --stderr-log "$OUT_DIR/ask-$PRESET.workers.stderr.txt" --json "$OUT_DIR/ask-$PRESET.json" \
  2>&1 | tee "$OUT_DIR/ask-$PRESET.txt"
rc=${PIPESTATUS[0]}
echo "ask_resident exit $rc; whole script $((SECONDS - t0)) s"
[ $rc -eq 0 ] || grep -vE "^\s*$" "$OUT_DIR/ask-$PRESET.workers.stderr.txt" | tail -40
exit $rc
