#!/usr/bin/env bash
# Sets up ./.venv and starts the API (one server process per core; WORKERS=N to choose) with one
# training worker: http://127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/trainserve up --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" \
    --workers "${WORKERS:-auto}"
