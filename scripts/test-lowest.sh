#!/usr/bin/env bash
# Keeps the declared dependency floors true: installs every `name>=X` of pyproject.toml (the
# dependencies and the dev extra) as exactly `name==X` into a throwaway virtual environment,
# imports every module of app and workers, and runs the quick tests (the API, jobs, serving,
# storage, database, migration and sweep ones; not the ml ones, whose torch is the pinned pair,
# nor the workers' or the end-to-end ones) against them, the bucket tests against the floor's own
# SeaweedFS unless TRAINSERVE_TEST_S3_URL names a server. A floor that fails to install beside
# the others, or to work, fails here: raise it.
# Usage: scripts/test-lowest.sh [PYTEST_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=$(mktemp -d /tmp/trainserve-lowest.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$python" - >"$work/floors.txt" <<'PY'
import re
import sys
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
# torch and torchvision are left to constraints.txt, below.
for requirement in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
    floor = re.fullmatch(r"([A-Za-z0-9._-]+)(\[[^]]*\])?>=([^,;\s]+)", requirement)
    if floor is None:
        sys.exit(f"pyproject.toml: {requirement!r} is not of the form name>=version")
    name, _extras, version = floor.groups()
    if name not in ("torch", "torchvision"):
        print(f"{name}=={version}")
PY

"$python" -m venv "$work/venv"
# torch and torchvision are constraints.txt's pair, not their floors (2.10 and 0.25): a CUDA
# build of torch and the NVIDIA libraries it needs are several GB to download, while the pinned
# pair is the one the main virtual environment installs, found again where pip found it then
# (its cache, or a local index).
"$work/venv/bin/python" -m pip install --quiet --constraint constraints.txt \
    --constraint "$work/floors.txt" --editable ".[dev]"
echo "installed the floors: $(tr '\n' ' ' <"$work/floors.txt")"

"$work/venv/bin/python" - <<'PY'
import importlib
import pkgutil

import app
import workers

for package in (app, workers):
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if not module.name.endswith(".__main__"):  # workers.__main__ would start a worker
            importlib.import_module(module.name)
print("every module of app and workers imports")
PY

"$work/venv/bin/python" -m pytest tests/api tests/jobs tests/serving tests/storage \
    tests/test_db.py tests/test_migrations.py tests/test_sweep.py tests/test_bucket_sweep.py \
    -m "not e2e" -x -p no:cacheprovider --database=sqlite "$@"
