#!/usr/bin/env bash
# The web benchmark (not a test): request rates of POST /subscribe and the RFC 8058 one-click
# POST /unsubscribe/{token} on loopback with wrk, against the release `tidings serve`, on SQLite
# and (when PostgreSQL's server binaries are installed) on a throwaway PostgreSQL cluster.
#
#   cargo build --release --bin tidings && cargo build --example web_bench_seed
#   benches/web/run.sh [duration, default 20s] [connections, default 16]
#
# Results go to stdout; copy them into BENCHMARKS.md "## Web".
set -euo pipefail
cd "$(dirname "$0")/../.."

duration="${1:-20s}"
conns="${2:-16}"
threads=2
seed_count="${SEED_COUNT:-200000}"
bin=target/release/tidings
seed=target/debug/examples/web_bench_seed
config=benches/web/bench.toml
url=http://127.0.0.1:18080
work=/tmp/tidings-bench
for f in "$bin" "$seed"; do
    [[ -x "$f" ]] || { echo "missing $f: build it first (see the top of this file)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}

pgbin=""; pgdir=""
as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_pg() {
    if [[ -n "$pgdir" ]]; then
        as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$pgdir"
    fi
}
trap 'stop_server; stop_pg' EXIT

start_server() {
    local label="$1"
    RUST_LOG=warn "$bin" --config "$config" serve 2>>"$work/serve-$label.log" &
    server_pid=$!
    for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
    curl -sf "$url/healthz" >/dev/null || { cat "$work/serve-$label.log" >&2; exit 1; }
}

# Waits until the delivery workers have written every queued confirmation to the outbox.
wait_for_outbox() {
    for _ in $(seq 600); do
        if ! curl -sf "$url/metrics" | grep -Eq '^tidings_deliveries\{status="(queued|sending)"\} [1-9]'; then
            return
        fi
        sleep 0.5
    done
    echo "the outbox did not drain" >&2; exit 1
}

bench_one() {
    local label="$1" db_url="$2" pool="$3"
    rm -rf "$work/outbox"; mkdir -p "$work"
    export TIDINGS__DATABASE__URL="$db_url" TIDINGS__DATABASE__MAX_CONNECTIONS="$pool"
    echo "### $label (pool of $pool connections): POST /subscribe"
    start_server "$label"
    wrk -t"$threads" -c"$conns" -d"$duration" --latency -s benches/web/subscribe.lua "$url"
    wait_for_outbox
    stop_server

    # Seeded while the server is stopped, so nothing else writes meanwhile.
    "$seed" --config "$config" --count "$seed_count" >"$work/tokens-$label.txt"
    echo "### $label (pool of $pool connections): POST /unsubscribe/{token} (one-click)"
    start_server "$label"
    TOKENS="$work/tokens-$label.txt" THREADS="$threads" \
        wrk -t"$threads" -c"$conns" -d"$duration" --latency -s benches/web/unsubscribe.lua "$url"
    stop_server
    echo "server errors logged: $(grep -c 'request failed' "$work/serve-$label.log" || true)"
    unset TIDINGS__DATABASE__URL TIDINGS__DATABASE__MAX_CONNECTIONS
}

echo "## $(date -u +%F) $(nproc) cores; wrk -t$threads -c$conns -d$duration"
rm -rf "$work"; mkdir -p "$work"
# SQLite pool size: 1 by default. With more connections, the store's deferred write transactions
# fail with SQLITE_BUSY / BUSY_SNAPSHOT under concurrent writers (HTTP 500s; see BENCHMARKS.md).
if [[ "${BACKENDS:-sqlite postgres}" == *sqlite* ]]; then
    bench_one sqlite "sqlite://$work/tidings.db" "${SQLITE_POOL:-8}"
fi
[[ "${BACKENDS:-sqlite postgres}" == *postgres* ]] || exit 0

for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then pgbin="$dir"; break; fi
done
if [[ -z "$pgbin" ]]; then
    echo "PostgreSQL server binaries not found: PostgreSQL half skipped" >&2
    exit 0
fi
pgdir="$(mktemp -d /tmp/tidings-bench-pg.XXXXXX)"
if [[ "$(id -u)" == 0 ]]; then chown postgres: "$pgdir"; fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust >"$pgdir/initdb.log" 2>&1
# synchronous_commit=off matches SQLite's WAL + synchronous=NORMAL (durable across a crash of
# the app, not of the machine); fsync stays on.
as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $pgdir -c synchronous_commit=off -c max_connections=100" start >/dev/null
as_pg "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE tidings_bench"
echo "## PostgreSQL: $("$pgbin/postgres" --version)"
bench_one postgres "postgres://postgres@127.0.0.1:$port/tidings_bench" "${POSTGRES_POOL:-16}"
