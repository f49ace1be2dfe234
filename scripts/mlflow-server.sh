#!/usr/bin/env bash
# Runs a local MLflow tracking server for development, from the pinned venv
# (scripts/mlflow-env.sh), with its SQLite store and proxied artifacts under ./mlflow.
# Extra arguments go to `mlflow server` (e.g. --allowed-hosts). Ctrl-C stops it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$(bash "$ROOT/scripts/mlflow-env.sh" | tail -n 1)"
DATA="$(mkdir -p "${MLFLOW_DATA_DIR:-$ROOT/mlflow}" && cd "${MLFLOW_DATA_DIR:-$ROOT/mlflow}" && pwd)"
HOST="${MLFLOW_HOST:-127.0.0.1}"
PORT="${MLFLOW_PORT:-5000}"
mkdir -p "$DATA/artifacts"
# The job runner (a dozen huey consumers) serves GenAI features this project does not use.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
echo "MLflow tracking URI http://$HOST:$PORT (store $DATA/mlflow.db, artifacts $DATA/artifacts)" >&2
exec "$VENV/bin/mlflow" server --host "$HOST" --port "$PORT" --workers "${MLFLOW_WORKERS:-1}" \
  --backend-store-uri "sqlite:///$DATA/mlflow.db" --artifacts-destination "$DATA/artifacts" "$@"
