#!/usr/bin/env bash
# The whole path on a GPU host: a Redis, the bot's console adapter, the runner and the trainer on CUDA (Unsloth),
# started by `/train quick_test` typed into the console, ending with a model folder checked against the seed's
# contract; then the runner's overhead against train.py alone (bench/overhead.ts: time to the first step and to the
# end, the same arguments, alternating). Run from the repository root on a GPU host with Node 20, the npm packages
# (`npm ci --omit=dev`), redis-server on PATH and the Python packages of gpu-runner/trainer/requirements-gpu.txt.
#
#   bash bench/gpu/run_runner.sh [work-dir] [out-dir]        # RUNS=2: overhead runs of each arm
#
# Nothing is downloaded (HF_HUB_OFFLINE=1): the base is a tiny gpt-oss of random weights built here.
set -u
WORK=${1:-/tmp/gpu-runner}
OUT_DIR=${2:-$WORK/out}
PY=${PYTHON:-$(command -v python3)}  # an absolute path: the config resolves a relative one from the repository
mkdir -p "$WORK" "$OUT_DIR"
source bench/gpu/env.sh
status=0

gpu_environment "$PY"
echo "node $(node --version), $(redis-server --version | cut -d' ' -f1-3)"

echo "== build the tiny gpt-oss (bf16, random weights)"
$PY bench/gpu/build_model.py --preset tiny --out "$WORK/gpt-oss-tiny" || exit 1

# The bot's configuration for this host: the CUDA backend, the local base, Python with the GPU packages.
export TRAINER_BACKEND=cuda BASE_MODEL="$WORK/gpt-oss-tiny" PYTHON="$PY" LOG_LEVEL=info

echo "== console: /train quick_test, then /models list (embedded Redis, runner and trainer on CUDA)"
rm -rf "$WORK/models"
t0=$(date +%s%N)
printf '/train quick_test\n/wait\n/models list\n' | MODELS_DIR="$WORK/models" EMBEDDED_REDIS_DIR="$WORK/redis" timeout ${CONSOLE_TIMEOUT:-300} \
  node --import tsx src/main.ts > "$OUT_DIR/console.log" 2>&1
rc=$?
echo "exit $rc after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
cat "$OUT_DIR/console.log" | cut -c1-300 | tail -40
if [ $rc -eq 0 ]; then
  $PY bench/gpu/check_model_dir.py "$WORK/models" --expect-experts || status=1
else
  status=1
fi

echo "== runner overhead: train.py alone against /train through the queue and the runner (${RUNS:-2} runs each)"
BENCH_WARMUP=0 BENCH_OUT="$OUT_DIR/overhead.jsonl" timeout ${OVERHEAD_TIMEOUT:-480} \
  node --import tsx bench/overhead.ts "${RUNS:-2}" 2>&1 | grep -v '^{' || status=1
exit $status
