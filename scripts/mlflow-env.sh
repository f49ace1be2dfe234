#!/usr/bin/env bash
# Creates (once) a cached Python virtual environment with a pinned MLflow, for the
# integration tests' tracking server and for running a local server by hand.
# Prints the environment's path (its last line of stdout); everything else goes to stderr.
# Safe to run repeatedly: a cached environment with the pinned version returns at once;
# a missing, broken or other-version environment is re-created.
set -euo pipefail
MLFLOW_VERSION="3.17.2"
VENV="${MLFLOW_VENV:-$HOME/.cache/infra-anomaly-detector/mlflow-venv}"
PY="${PYTHON:-python3}"
MARKER="$VENV/.mlflow-version"

cached() {
  [ -x "$VENV/bin/mlflow" ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$MLFLOW_VERSION" ] &&
    "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(0 if m.version("mlflow") == sys.argv[1] else 1)' "$MLFLOW_VERSION" 2>/dev/null
}

if cached; then echo "$VENV"; exit 0; fi

command -v "$PY" >/dev/null || { echo "python3 not found: install Python 3.10+ with venv (apt-get install python3 python3-venv)" >&2; exit 1; }
mkdir -p "$(dirname "$VENV")"
# Two test processes may provision at once: one builds, the other waits and reuses it.
exec 9>"$VENV.lock"
command -v flock >/dev/null && flock 9
if cached; then echo "$VENV"; exit 0; fi

# Only ever delete what looks like a venv this script made (MLFLOW_VENV may be mistyped).
if [ -e "$VENV" ] && [ -n "$(ls -A "$VENV" 2>/dev/null)" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
  echo "$VENV exists and is not a Python venv; refusing to replace it (set MLFLOW_VENV elsewhere)" >&2
  exit 1
fi
start=$(date +%s)
echo "creating $VENV with mlflow==$MLFLOW_VERSION (one time, a few minutes)" >&2
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION" >&2
got="$("$VENV/bin/mlflow" --version 2>/dev/null | awk '{print $NF}')"
if [ "$got" != "$MLFLOW_VERSION" ]; then
  echo "mlflow --version reports '$got', expected $MLFLOW_VERSION" >&2
  exit 1
fi
echo "$MLFLOW_VERSION" >"$MARKER"
echo "mlflow $MLFLOW_VERSION ready in $(( $(date +%s) - start )) s" >&2
echo "$VENV"
