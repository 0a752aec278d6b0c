#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on loopback for the test suite (or reuses the one running
# there) and prints the URL of its maintenance database, for TRAINSERVE_TEST_POSTGRES_URL.
# Usage: scripts/postgres.sh [DATA_DIR] [PORT]   (defaults: /tmp/trainserve-postgres, 5433)
set -euo pipefail
dir=${1:-/tmp/trainserve-postgres}
port=${2:-5433}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
    echo "no PostgreSQL server installed: apt-get install postgresql" >&2
    exit 1
fi
as_owner=()
if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
    as_owner=(runuser -u postgres --)
fi
if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    "${as_owner[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust >/dev/null
fi
if ! "${as_owner[@]}" "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    # fsync off: a test server's data need not outlive a power cut, and tests run faster.
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w start -o \
        "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
        >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
