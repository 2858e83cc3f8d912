#!/usr/bin/env bash
# Every test: Biome (the format and lint rules of biome.json), the TypeScript type check, vitest (unit, integration
# against a real Redis and the real trainer on the CPU), and pytest for the trainer. Each part runs even if an earlier one failed; the exit code says if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
CHATOPS_NEED_REDIS_SERVER=1 bash scripts/bootstrap.sh || exit 1
failed=()
echo "== format and lint (npx biome check --write . fixes what it can)"
npx --no-install biome ci --reporter=summary . || failed+=("biome")
echo "== type check"
npx --no-install tsc --noEmit || failed+=("tsc")
echo "== vitest"
npx --no-install vitest run "$@" || failed+=("vitest")
echo "== pytest"
.venv/bin/python -m pytest -q gpu-runner/trainer/tests gpu-runner/inference/tests || failed+=("pytest")
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test suites passed"
