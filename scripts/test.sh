#!/usr/bin/env bash
# Sets up ./.venv with the test tools and runs the linters and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
.venv/bin/ruff check .
.venv/bin/mypy app workers tests benchmarks
exec .venv/bin/python -m pytest "$@"
