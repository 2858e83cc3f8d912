#!/usr/bin/env bash
# Two runner processes pinned to the same GPU on a GPU host (issue 8's one-GPU part, and the heartbeat's device
# report on real hardware): one Redis, two `gpu-runner/main.ts` with GPU_ID=0, the console bot (no runner of its
# own) typing /runners and two /train quick_test (Unsloth on CUDA, a tiny gpt-oss of random weights). nvidia-smi is
# sampled every second for the processes on the GPU. First with JOBS_PER_GPU=1 (never two trainings on the GPU at
# once), then with JOBS_PER_GPU=2 (two at once). Same prerequisites as run_runner.sh.
#
#   bash bench/gpu/run_fleet.sh [work-dir] [out-dir]
set -u
WORK=${1:-/tmp/gpu-fleet}
OUT_DIR=${2:-$WORK/out}
PY=${PYTHON:-$(command -v python3)}
mkdir -p "$WORK" "$OUT_DIR"
source bench/gpu/env.sh
status=0

gpu_environment "$PY"
$PY bench/gpu/build_model.py --preset tiny --out "$WORK/gpt-oss-tiny" > /dev/null || exit 1
export TRAINER_BACKEND=cuda BASE_MODEL="$WORK/gpt-oss-tiny" PYTHON="$PY" LOG_LEVEL=info RUNNER_HEARTBEAT_S=2
PORT=${REDIS_PORT:-6399}
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no > "$OUT_DIR/redis.log" 2>&1 &
REDIS_PID=$!
sleep 1
export REDIS_URL="redis://127.0.0.1:$PORT"

phase() {  # $1: JOBS_PER_GPU; $2: seconds before the second /runners
  local per=$1 wait=$2 tag="jobs-per-gpu-$1"
  export MODELS_DIR="$WORK/models-$tag" QUEUE_PREFIX="fleet$per" JOBS_PER_GPU=$per
  rm -rf "$MODELS_DIR"
  echo "== JOBS_PER_GPU=$per: two runners on GPU 0, two quick_test jobs"
  GPU_ID=0 RUNNER_HOST=gpu-host node --import tsx gpu-runner/main.ts > "$OUT_DIR/$tag-runner-a.log" 2>&1 &
  local a=$!
  sleep 3  # the first takes gpu-host/gpu0, the second gpu-host/gpu0#2
  GPU_ID=0 RUNNER_HOST=gpu-host node --import tsx gpu-runner/main.ts > "$OUT_DIR/$tag-runner-b.log" 2>&1 &
  local b=$!
  sleep 8
  ( while true; do
      echo "$(date +%s) $(nvidia-smi --query-compute-apps=pid --format=csv,noheader | grep -c .)"
      sleep 1
    done ) > "$OUT_DIR/$tag-gpu-processes.log" &
  local sampler=$!
  local t0=$(date +%s)
  { echo /runners; echo /train quick_test; echo /train quick_test; sleep "$wait"; echo /runners; sleep 1; } \
    | EMBEDDED_RUNNER=false timeout 420 node --import tsx src/main.ts > "$OUT_DIR/$tag-console.log" 2>&1
  local rc=$?
  echo "console exit $rc after $(( $(date +%s) - t0 )) s"
  kill $sampler
  printf '/runners\n' | EMBEDDED_RUNNER=false node --import tsx src/main.ts >> "$OUT_DIR/$tag-console.log" 2>&1
  kill -TERM $a $b; wait $a $b
  cut -c1-400 "$OUT_DIR/$tag-console.log"
  echo "jobs started: runner a: $(grep -c 'quick_test for' "$OUT_DIR/$tag-runner-a.log"), runner b: $(grep -c 'quick_test for' "$OUT_DIR/$tag-runner-b.log")"
  grep -h 'is busy' "$OUT_DIR/$tag-runner-"*.log | cut -c1-200
  local most=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$OUT_DIR/$tag-gpu-processes.log")
  echo "most processes on the GPU at once (nvidia-smi, every 1 s): $most"
  [ "$rc" -eq 0 ] && [ "$(grep -c '^✅ job' "$OUT_DIR/$tag-console.log")" -eq 2 ] || status=1
  [ "$most" -le "$per" ] || status=1
  $PY bench/gpu/check_model_dir.py "$MODELS_DIR" --expect-experts > "$OUT_DIR/$tag-check.log" 2>&1 || status=1
  tail -3 "$OUT_DIR/$tag-check.log"
}

phase 1 100
phase 2 60
kill $REDIS_PID
echo "status $status"
exit $status
