#!/usr/bin/env bash
# Sets up ./.venv with the test tools and runs the linters and the whole test suite: against
# SQLite, and then against PostgreSQL too when TRAINSERVE_TEST_POSTGRES_URL names a server
# (`export TRAINSERVE_TEST_POSTGRES_URL=$(scripts/postgres.sh)` starts one on loopback).
# The browser tests (Debian's chromium and chromium-driver; skipped without them) leave their
# screenshots in docs/: dashboard.png (the picture in the README and docs/operations.md),
# compare.png and gallery.png (docs/operations.md), registry.png (docs/registry.md); the wine
# example leaves its loss curve in docs/wine-loss.png (docs/datasets.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
.venv/bin/ruff check .
.venv/bin/mypy app workers tests benchmarks
TRAINSERVE_SCREENSHOT_DIR=docs .venv/bin/python -m pytest --database=sqlite "$@"
if [ -n "${TRAINSERVE_TEST_POSTGRES_URL:-}" ]; then
    .venv/bin/python -m pytest --database=postgresql "$@"
fi
