#!/usr/bin/env bash
# Installs what is missing, and is quick and silent when nothing is: npm packages, the Python environment of the
# trainer, a Redis server. Called by `npm start`, `npm run runner` and `npm test`; safe to run again.
#
# The Python environment lives in a cache folder keyed by the requirements file (and the Python version), so a
# fresh clone on the same machine reuses it: ${CHATOPS_CACHE:-~/.cache/gpt-oss-chatops}/venv-<hash>; .venv links there.
# Each step prints one line to stderr; what the installers (npm, pip, apt-get) print goes to setup.log in that
# cache folder, appended, under a dated header for each run that installed something. A step that fails prints the
# end of its output and the log's path, and the script exits with the installer's status.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[setup] $*" >&2; }

# Settings: the environment first, then .env (as the bot reads its own). .env.example describes them.
from_env_file() { [ -f .env ] && sed -n "s/^$1=//p" .env | tail -n 1 | tr -d '"'"'\r" || true; }
CHATOPS_REQUIREMENTS=${CHATOPS_REQUIREMENTS:-$(from_env_file CHATOPS_REQUIREMENTS)}
CHATOPS_BASE_PYTHON=${CHATOPS_BASE_PYTHON:-$(from_env_file CHATOPS_BASE_PYTHON)}
CHATOPS_CACHE=${CHATOPS_CACHE:-$(from_env_file CHATOPS_CACHE)}
REDIS_URL=${REDIS_URL:-$(from_env_file REDIS_URL)}
cache=${CHATOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpt-oss-chatops}
cache=${cache/#\~/$HOME}

# ---- steps: one line each on stderr, the installers' output in the log ------------------------------------------
log=$cache/setup.log
log_opened=""
open_log() {
  [ -n "$log_opened" ] && return
  mkdir -p "$cache"
  printf '\n===== %s: scripts/bootstrap.sh in %s\n' "$(date '+%Y-%m-%d %H:%M:%S %z')" "$PWD" >>"$log"
  log_opened=1
}

# step "what it does" COMMAND [ARGS]: runs the command (or a function) with its output in the log. The command runs
# under set -e in a subshell, so every failing line of a function fails the step. Call step as a statement of its own,
# never as the condition of an if, && or || (bash ignores set -e inside those, and a failed line would go unnoticed).
step() {
  local what=$1 started=$SECONDS status from
  shift
  open_log
  printf '%s\n' "--- $what" >>"$log"
  from=$(($(wc -l <"$log") + 1))
  printf '[setup] %s … ' "$what" >&2
  set +e
  (set -e; "$@") >>"$log" 2>&1 </dev/null
  status=$?
  set -e
  if [ "$status" = 0 ]; then
    echo "done ($((SECONDS - started)) s)" >&2
    return 0
  fi
  echo "failed ($((SECONDS - started)) s, exit status $status)" >&2
  tail -n "+$from" "$log" | tail -n 20 | sed 's/^/    /' >&2
  say "the whole output is in $log"
  exit "$status"
}

# apt_install PACKAGE...: as root on Debian/Ubuntu, installs the packages without starting or enabling a service they
# ship (redis-server's would run a system Redis on :6379 that this project never uses); otherwise says what to install.
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing $* with apt-get" apt_get_install "$@"
  else
    say "missing: $* (Debian/Ubuntu: sudo apt-get install $*)"
    exit 1
  fi
}
apt_get_install() {
  # The Debian way to keep maintainer scripts from starting services: a policy-rc.d that exits 101, for the length
  # of the install, and only when the host has none of its own. The trap removes it on failure and on a signal too.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    printf '#!/bin/sh\n# gpt-oss-chatops scripts/bootstrap.sh: no service starts during its apt-get install\nexit 101\n' \
      >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
  fi
  # policy-rc.d stops the start, not the enable (deb-systemd-helper enables a new unit for the next boot): a unit of
  # these packages that was not enabled before is disabled again after.
  local pkg units=()
  if command -v systemctl >/dev/null; then
    for pkg in "$@"; do
      if ! systemctl is-enabled --quiet "$pkg.service" 2>/dev/null; then units+=("$pkg.service"); fi
    done
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  for unit in ${units[@]+"${units[@]}"}; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
      echo "disabling $unit, which the package enabled: this project starts its own server when it needs one"
      systemctl disable "$unit"
    fi
  done
}

# ---- npm packages: install when package-lock.json changed since the last install -------------------------------
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat node_modules/.lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  step "installing npm packages" npm ci --no-audit --no-fund
  echo "$lock_hash" >node_modules/.lock-hash
fi

# ---- Python environment -------------------------------------------------------------------------------------------
requirements=gpu-runner/trainer/requirements-${CHATOPS_REQUIREMENTS:-cpu}.txt
[ -f "$requirements" ] || { say "CHATOPS_REQUIREMENTS must be cpu or gpu"; exit 1; }
python=${CHATOPS_BASE_PYTHON:-python3}
python=${python/#\~/$HOME}
command -v "$python" >/dev/null || { say "no $python (CHATOPS_BASE_PYTHON): Python 3.10+ is needed"; exit 1; }
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
env_hash=$( (cat "$requirements"; echo "$py_version") | sha256sum | cut -c1-16)
venv=$cache/venv-$env_hash
build_venv() {
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --progress-bar off --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --progress-bar off --disable-pip-version-check -r "$requirements"
  touch "$venv/.complete"
}
if [ ! -f "$venv/.complete" ]; then
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
  step "building the Python environment in $venv (torch and friends: about 6 GB, a few minutes, once)" build_venv
fi
if [ "$(readlink .venv 2>/dev/null)" != "$venv" ]; then
  rm -rf .venv && ln -s "$venv" .venv
fi

# ---- Redis: the embedded default and the tests start their own redis-server; a host given REDIS_URL needs none. ---
if ! command -v redis-server >/dev/null 2>&1 && { [ -z "${REDIS_URL:-}" ] || [ -n "${CHATOPS_NEED_REDIS_SERVER:-}" ]; }; then
  apt_install redis-server
fi
