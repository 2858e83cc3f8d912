#!/usr/bin/env bash
# Runs CI as CI runs it, several times in a row: each time a fresh clone of this repository's committed HEAD (nothing
# uncommitted, nothing installed by hand in the clone), then `.ci/run` in it. A test that fails one run in three shows
# here before it blocks everyone. Usage: bash scripts/ci-loop.sh [runs, default 5]. Logs: $TMPDIR/ci-loop-*/run-N.log
set -uo pipefail
runs=${1:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/ci-loop-XXXXXX")
commit=$(git -C "$repo" rev-parse --short HEAD)
echo "ci-loop: $runs runs of .ci/run on $commit, logs in $out"
failed=0
for i in $(seq 1 "$runs"); do
  clone=$out/clone-$i
  git clone -q "$repo" "$clone"
  start=$(date +%s)
  if (cd "$clone" && bash .ci/run) >"$out/run-$i.log" 2>&1; then result=green; else result=RED; failed=$((failed + 1)); fi
  echo "run $i/$runs: $result in $(($(date +%s) - start)) s"
  [ "$result" = RED ] && grep -E 'FAIL|✗|×|failed|Error' "$out/run-$i.log" | head -20 | sed 's/^/    /'
  rm -rf "$clone"
done
echo "ci-loop: $((runs - failed)) of $runs green"
[ "$failed" -eq 0 ]
