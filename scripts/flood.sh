#!/usr/bin/env bash
# The memory-budget load test behind BENCHMARKS.md ("Memory under a flood"):
# a release `sluice serve` on loopback with a 256 MiB request budget and a
# 256 MiB DuckDB limit; 1,000 clients each sending 4 MiB gzip OTLP/HTTP
# bodies as fast as they are let, and 100 slowloris clients dribbling
# headers or bodies; every second a /readyz and a query must answer. It
# fails when the server's RSS goes over the bound below, when a probe fails
# or when nothing is accepted. Extra arguments go to sluice-flood, e.g.
#   scripts/flood.sh --duration 120
#   scripts/flood.sh --clients 200 --slow 0
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked --workspace >&2

work="$(mktemp -d)"
server=""
cleanup() {
  [[ -n "$server" ]] && kill -9 "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
http=127.0.0.1:24618
api=127.0.0.1:24620
budget_mib=256
duckdb_mib=256
queue_items=65536
cat >"$work/sluice.toml" <<TOML
[receivers]
memory_budget = "${budget_mib}MiB"
# Short, so that the slow clients are cut off within the run.
body_timeout = "10s"

[store]
duckdb_memory_limit = "${duckdb_mib}MiB"
queue_max_items = $queue_items
TOML

# 1,100 connections plus the probes: more than the usual 1,024 descriptors.
ulimit -n 8192
RUST_LOG=warn "$target/release/sluice" serve --config "$work/sluice.toml" --db "$work/flood.duckdb" \
  --grpc-addr 127.0.0.1:0 --http-addr "$http" --api-addr "$api" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do
  curl -fsS "http://$api/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

# The bound: what the server holds idle, the request budget, the queue at
# about 1.2 KB a span (docs/operations.md, "Memory bounded"), DuckDB's limit,
# and 128 MiB for allocator slack and buffers that none of them counts.
idle_mib=$(awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$server/status")
queue_mib=$((queue_items * 1200 / 1048576))
limit_mib=$((idle_mib + budget_mib + queue_mib + duckdb_mib + 128))
echo "rss_bound_mib=$limit_mib (idle $idle_mib + budget $budget_mib + queue $queue_mib + duckdb $duckdb_mib + 128)"

status=0
"$target/release/sluice-flood" --http "$http" --api "$api" --server-pid "$server" \
  --rss-limit-mib "$limit_mib" "$@" || status=$?

metrics="$(curl -fsS "http://$api/metrics")"
# Requests by outcome (memory: refused by the budget; timeout: a body too
# slow), what they were refused, and what was stored.
echo "$metrics" | awk '/^sluice_(requests_total|items_refused_total|request_memory_bytes)/ {print}'
echo "$metrics" | awk '/^sluice_rows_written/ {print}'
kill -TERM "$server"
wait "$server" || true
server=""
if grep -q "panicked" "$work/server.log"; then
  grep -m5 "panicked" "$work/server.log"
  status=1
fi
exit "$status"
