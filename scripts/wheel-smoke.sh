#!/usr/bin/env bash
# A normal install, tried as a new user would: builds the wheel, installs it (not editable) into
# a fresh virtual environment outside this tree and, from a folder outside it too, runs
# `trainserve migrate` and `trainserve up`; scripts/wheel_smoke.py then checks /readyz, uploads a
# tiny dataset, trains one epoch on it and classifies an image; `up` must then stop cleanly,
# its worker with it. Usage: scripts/wheel-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}
started=$(date +%s)
work=$(mktemp -d /tmp/trainserve-wheel.XXXXXX)
up_pid=""
cleanup() {
    [ -n "$up_pid" ] && kill -KILL "$up_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }
fail() {
    printf '\nFAILED: %s\n' "$*" >&2
    [ -f "$work/up.log" ] && tail -n 40 "$work/up.log" >&2
    exit 1
}

step "build the wheel"
# setuptools builds in build/ and keeps what it finds there: a module deleted since an earlier
# build would still go into the wheel.
rm -rf build
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" .
wheel=$(ls "$work"/dist/trainserve-*.whl)
echo "$(basename "$wheel")"

step "install it into a fresh virtual environment"
"$python" -m venv "$work/venv"
# With constraints.txt's torch/torchvision pair, which the main environment installs too: the
# newest torch would be a CUDA build of several GB to download.
"$work/venv/bin/python" -m pip install --quiet --constraint constraints.txt "$wheel"

mkdir "$work/home"
cd "$work/home"
export TRAINSERVE_DATABASE_URL=sqlite:///$work/home/trainserve.db \
    TRAINSERVE_DATA_DIR=$work/home/data \
    TRAINSERVE_ARTIFACTS_DIR=$work/home/artifacts \
    TRAINSERVE_DOWNLOAD=0 \
    TRAINSERVE_WORKER_POLL_SECONDS=0.5
installed=$("$work/venv/bin/python" -c 'import app; print(app.__file__)')
case $installed in
    "$work/venv/"*) echo "app is $installed" ;;
    *) fail "app is imported from $installed, not from the installed wheel" ;;
esac

step "trainserve migrate"
"$work/venv/bin/trainserve" migrate >"$work/migrate.log" 2>&1 \
    || { cat "$work/migrate.log" >&2; fail "trainserve migrate"; }
tail -n 1 "$work/migrate.log"

step "trainserve up, a dataset, a job, a prediction"
port=$("$work/venv/bin/python" -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$work/venv/bin/trainserve" up --host 127.0.0.1 --port "$port" >"$work/up.log" 2>&1 &
up_pid=$!
"$work/venv/bin/python" "$root/scripts/wheel_smoke.py" "http://127.0.0.1:$port" \
    || fail "the smoke check"

step "stop it"
kill -TERM "$up_pid"
for _ in $(seq 120); do
    kill -0 "$up_pid" 2>/dev/null || break
    sleep 0.5
done
kill -0 "$up_pid" 2>/dev/null && fail "trainserve up did not stop within 60 s of SIGTERM"
status=0
wait "$up_pid" || status=$?
up_pid=""
[ "$status" -eq 0 ] || fail "trainserve up exited with $status"
grep -q "worker .* stopped" "$work/up.log" || fail "its worker did not stop cleanly"
echo "stopped cleanly"

step "passed"
