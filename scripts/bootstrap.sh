#!/usr/bin/env bash
# Installs what is missing, and is quick when nothing is: npm packages, the Python environment of the CPU backend,
# a Redis server. Called by `npm start`, `npm run runner` and `npm test`; safe to run again.
#
# The Python environment lives in a cache folder keyed by the requirements file (and the Python version), so a
# fresh clone on the same machine reuses it: ${CHATOPS_CACHE:-~/.cache/gpt-oss-chatops}/venv-<hash>; .venv links there.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[setup] $*" >&2; }
# The two settings this script needs may live in .env, as the bot's others do.
from_env_file() { [ -f .env ] && sed -n "s/^$1=//p" .env | tail -n 1 | tr -d '"'"'" || true; }
CHATOPS_REQUIREMENTS=${CHATOPS_REQUIREMENTS:-$(from_env_file CHATOPS_REQUIREMENTS)}
REDIS_URL=${REDIS_URL:-$(from_env_file REDIS_URL)}
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $*"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >&2
  else
    say "missing: $* (Debian/Ubuntu: sudo apt-get install $*)"
    exit 1
  fi
}

# npm packages: install when package-lock.json changed since the last install
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat node_modules/.lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$lock_hash" > node_modules/.lock-hash
fi

# Python environment
requirements=gpu-runner/trainer/requirements-${CHATOPS_REQUIREMENTS:-cpu}.txt
[ -f "$requirements" ] || { say "CHATOPS_REQUIREMENTS must be cpu or gpu"; exit 1; }
python=${CHATOPS_BASE_PYTHON:-python3}
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
env_hash=$( (cat "$requirements"; echo "$py_version") | sha256sum | cut -c1-16)
cache=${CHATOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpt-oss-chatops}
venv=$cache/venv-$env_hash
if [ ! -f "$venv/.complete" ]; then
  say "building the Python environment in $venv (torch and friends: a few minutes, once)"
  rm -rf "$venv" && mkdir -p "$cache"
  "$python" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -r "$requirements" >&2
  touch "$venv/.complete"
fi
if [ "$(readlink .venv 2>/dev/null)" != "$venv" ]; then
  rm -rf .venv && ln -s "$venv" .venv
fi

# Redis: the embedded default and the tests start their own redis-server; a host given REDIS_URL needs none.
if ! command -v redis-server >/dev/null 2>&1 && { [ -z "${REDIS_URL:-}" ] || [ -n "${CHATOPS_NEED_REDIS_SERVER:-}" ]; }; then
  apt_install redis-server
fi
