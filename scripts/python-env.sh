#!/usr/bin/env bash
# Creates (once) a cached Python virtual environment with the pinned scikit-learn used
# by the agreement test and the benchmark. Prints the environment's python path.
set -euo pipefail
VENV="${SKLEARN_VENV:-$HOME/.cache/infra-anomaly-detector/sklearn-venv}"
PINS=(scikit-learn==1.7.2 numpy==2.3.5 scipy==1.16.3)
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sklearn, sys; sys.exit(0 if sklearn.__version__ == "1.7.2" else 1)' 2>/dev/null; then
  echo "$VENV/bin/python"
  exit 0
fi
command -v "$PY" >/dev/null || { echo "python3 not found: install Python 3.10+ (apt-get install python3 python3-venv)" >&2; exit 1; }
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >&2
echo "$VENV/bin/python"
