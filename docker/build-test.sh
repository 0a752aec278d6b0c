#!/usr/bin/env bash
# Builds the image and runs it for real, without a Docker engine: validates the Compose files,
# lints the Dockerfile, builds with buildah on a stand-in for the base image, then starts the
# image's own `trainserve` (the API and a worker, as `trainserve up`) with buildah run, trains a
# tiny job on a CIFAR-10 subset mounted in, and classifies an image over HTTP on loopback.
#
# Needs root, Debian's buildah, debootstrap and docker-compose, and the project's dev
# environment (scripts/setup.sh dev: hadolint). The stand-in base (Debian bookworm with its
# python3, 3.11, made by debootstrap from this machine's Debian mirror, with this machine's CA
# bundle so that pip inside the build trusts the package index) is kept in buildah's storage and
# made again only when missing. Usage: docker/build-test.sh [SHARED_DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared_data=${1:-$root/../shared/data}
base_image=docker.io/library/python:3.11-slim-bookworm
image=localhost/trainserve:build-test
standin_label=trainserve.standin
started=$(date +%s)

step() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d /tmp/trainserve-build-test.XXXXXX)
container=""
up_pid=""
up_command=""
stop_up() {
    # SIGTERM to `trainserve up` itself, which stops its worker and exits, and buildah run
    # with it. Not to buildah: it would SIGKILL what runs inside.
    pkill -TERM -f "python3 [^ ]*/bin/$up_command" || true
    for _ in $(seq 60); do
        if ! kill -0 "$up_pid" 2>/dev/null && ! pgrep -f "$up_command" >/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    echo "trainserve up did not stop in 30 s; killing it" >&2
    pkill -KILL -f "$up_command" || true
    kill -KILL "$up_pid" 2>/dev/null || true
}
cleanup() {
    [ -n "$up_pid" ] && stop_up
    [ -n "$container" ] && buildah rm "$container" >/dev/null 2>&1
    buildah rmi "$image" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

step "compose files"
mkdir "$work/compose"
cp docker/compose*.yaml "$work/compose/"
cp docker/.env.example "$work/compose/.env"
for file in docker/compose*.yaml; do
    docker-compose -f "$work/compose/$(basename "$file")" config -q \
        || fail "docker-compose config: $file is not a valid Compose file"
    echo "$file: valid"
done
# The stack of machines that share nothing but the database and the bucket: no named volume is
# mounted by two services (anchors expanded by `config`).
shared=$(docker-compose -f "$work/compose/compose.s3.yaml" config | grep -oE '^ *- [A-Za-z0-9_.-]+:/' \
    | sort | uniq -d)
[ -z "$shared" ] || fail "docker/compose.s3.yaml: a volume is mounted by two services: $shared"
echo "docker/compose.s3.yaml: no volume shared between services"

step "hadolint"
.venv/bin/hadolint docker/Dockerfile || fail "hadolint: docker/Dockerfile"
echo "docker/Dockerfile: clean"

step "stand-in for $base_image"
if buildah inspect --type image "$base_image" >/dev/null 2>&1; then
    echo "using the one already in buildah's storage (made by an earlier run, or the real one)"
else
    mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources \
        2>/dev/null | head -n 1)
    mirror=${mirror:-$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' \
        /etc/apt/sources.list 2>/dev/null)}
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "debootstrap bookworm from $mirror"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
        bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log"; fail "debootstrap of the stand-in base"; }
    cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$work/rootfs/etc/pip.conf"
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    base=$(buildah from scratch)
    mount=$(buildah mount "$base")
    cp -a "$work/rootfs/." "$mount/"
    buildah umount "$base" >/dev/null
    buildah config --annotation "$standin_label=$(date -u +%F)" --cmd python3 \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$base"
    buildah commit -q "$base" "$base_image" >/dev/null
    buildah rm "$base" >/dev/null
    rm -rf "$work/rootfs"
    echo "made and tagged $base_image"
fi

step "build"
buildah bud --isolation chroot --format docker --pull=never -f docker/Dockerfile -t "$image" . \
    >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; fail "buildah bud"; }
size=$(buildah images --format '{{.Size}}' "$image")
echo "built $image: $size"

step "run the image: the API and a worker (trainserve up)"
mkdir -p "$work/volume" "$work/data"
rebuild_tool=$root/../shared/tools/jpeg_to_cifar_batches.py
if [ -f "$shared_data/cifar10-jpeg.tar.gz" ] && [ -f "$rebuild_tool" ]; then
    .venv/bin/python "$rebuild_tool" "$shared_data/cifar10-jpeg.tar.gz" "$work/data" \
        --train 200 --test 100 >/dev/null || fail "making the CIFAR-10 subset"
    echo "data: real CIFAR-10, 200 training and 100 test images"
else
    # Without the shared data, images in the same layout whose class shows in their colour.
    .venv/bin/python - "$work/data" <<'PY' || fail "making a synthetic dataset"
import sys
from pathlib import Path

from tests.conftest import synthetic_split, write_cifar_layout

write_cifar_layout(Path(sys.argv[1]), synthetic_split(200, seed=1), synthetic_split(100, seed=2))
PY
    echo "data: no CIFAR-10 at $shared_data; synthetic images in its layout, 200 + 100"
fi
chown -R 10001:10001 "$work/volume"
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key=build-test-admin-key
container=$(buildah from --pull=never "$image")
# buildah run gives every run its own copy of an image's VOLUME (a Docker engine mounts the
# named volume there instead); drop the declaration in this working container, so that the
# folder mounted at that path is the one every run sees.
buildah config --volume /var/lib/trainserve- "$container"
run_in_image() {
    buildah run --isolation chroot --network host \
        -v "$work/volume:/var/lib/trainserve" -v "$work/data:/var/lib/trainserve/data:ro" \
        -e TRAINSERVE_DOWNLOAD=0 -e TRAINSERVE_ADMIN_KEY=$key -e TRAINSERVE_WORKER_POLL_SECONDS=0.5 \
        "$container" -- "$@"
}
up_command="trainserve up --host 127.0.0.1 --port $port"
# shellcheck disable=SC2086  # the words of the command, split on purpose
run_in_image $up_command >"$work/up.log" 2>&1 &
up_pid=$!
url=http://127.0.0.1:$port
for _ in $(seq 120); do
    curl -fsS "$url/healthz" >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS "$url/healthz" >/dev/null || { tail -n 40 "$work/up.log"; fail "the API never answered"; }
run_in_image trainserve check api --port "$port" || fail "the image's health check (api)"
echo "API up on $url; HEALTHCHECK command passes"

step "train a tiny job"
auth=(-H "Authorization: Bearer $key")
job=$(curl -fsS "${auth[@]}" -H 'Content-Type: application/json' "$url/jobs" -d \
    '{"epochs": 1, "batch_size": 10, "learning_rate": 0.01, "log_every": 5, "seed": 1}') \
    || fail "POST /jobs"
id=$(printf '%s' "$job" | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["id"])')
status=""
for _ in $(seq 300); do
    status=$(curl -fsS "${auth[@]}" "$url/jobs/$id" | .venv/bin/python -c \
        'import json, sys; print(json.load(sys.stdin)["status"])')
    case $status in succeeded | failed | cancelled) break ;; esac
    sleep 1
done
[ "$status" = succeeded ] || { tail -n 40 "$work/up.log"; fail "job $id ended $status"; }
run_in_image trainserve check worker || fail "the worker's health check"
curl -fsS "${auth[@]}" "$url/jobs/$id" | .venv/bin/python -c '
import json, sys
job = json.load(sys.stdin)
print("job {id} {status} on {device}: test accuracy {test_accuracy}".format(**job))'

step "classify an image over HTTP"
.venv/bin/python - "$work/data" "$work/image.png" <<'PY'
import pickle
import sys
from pathlib import Path

from PIL import Image

batch = pickle.loads((Path(sys.argv[1]) / "cifar-10-batches-py" / "test_batch").read_bytes())
pixels = batch["data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
Image.fromarray(pixels).save(sys.argv[2])
PY
answer=$(curl -fsS "${auth[@]}" -F "file=@$work/image.png;type=image/png" "$url/predict") \
    || fail "POST /predict"
printf '%s' "$answer" | .venv/bin/python -c '
import json, sys
answer = json.load(sys.stdin)
classes = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
assert answer["label"] in classes and abs(sum(answer["probabilities"].values()) - 1) < 1e-3, answer
print("predicted {label!r} by the model of job {job_id}".format(**answer))' || fail "the prediction"

step "stop the API and the worker"
stop_up
up_pid=""
! pgrep -f "$up_command" >/dev/null || fail "processes of the image outlived it"
grep -q "worker .* stopped" "$work/up.log" || { tail -n 20 "$work/up.log"; fail "no clean stop"; }
echo "stopped cleanly"

step "passed: image $size"
