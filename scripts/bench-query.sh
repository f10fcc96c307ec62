#!/usr/bin/env bash
# Query benchmark behind BENCHMARKS.md ("Queries"): seeds a fresh database
# with N spans over the last hour (sluice-seed), starts a release server on
# it, measures the full ingest rate with sluice-loadgen, then keeps ingestion
# running at half that rate while it times three queries over the query API,
# one after another, RUNS times each:
#   service_summary      the per-service p50/p95/p99 view over the last hour
#   trace by id          SELECT * FROM trace('<id>') for a random stored trace
#   attribute filter     spans of one user id (a MAP lookup over the table)
# and prints p50/p95 of each (wall time as curl sees it).
#   scripts/bench-query.sh [SPANS] [RUNS]     (defaults: 10000000 30)
set -euo pipefail
cd "$(dirname "$0")/.."
spans="${1:-10000000}"
runs="${2:-30}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked --workspace >&2

work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
"$target/release/sluice-seed" --db "$work/bench.duckdb" --spans "$spans"
grpc=127.0.0.1:24317
api=127.0.0.1:24320
RUST_LOG=warn "$target/release/sluice" serve --db "$work/bench.duckdb" \
  --grpc-addr "$grpc" --http-addr 127.0.0.1:0 --api-addr "$api" 2>"$work/server.log" &
server=$!
for _ in $(seq 300); do
  curl -fsS "http://$api/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

q() { # SQL -> seconds
  curl -sS -o /dev/null -w '%{time_total}\n' -H 'Content-Type: text/plain' \
    --data-binary "$1" "http://$api/api/v1/query"
}
stats() { # label, file of seconds
  sort -n "$2" | awk -v label="$1" '{ a[NR] = $1 }
    END { p50 = a[int((NR - 1) * 0.50) + 1]; p95 = a[int((NR - 1) * 0.95) + 1];
          printf "%-18s runs=%d p50_ms=%.1f p95_ms=%.1f\n", label, NR, p50 * 1000, p95 * 1000 }'
}

max="$("$target/release/sluice-loadgen" --endpoint "http://$grpc" --duration 20 \
  | awk -F= '/^accepted_spans_per_s=/ { print $2 }')"
half=$((max / 2))
# Long enough for the queries below; the loadgen's report comes at its end.
load_seconds=$((runs * 3 + 30))
echo "full_ingest_spans_per_s=$max; measuring with ingestion at $half spans/s"
"$target/release/sluice-loadgen" --endpoint "http://$grpc" --rate "$half" \
  --duration "$load_seconds" >"$work/loadgen.out" &
load=$!
sleep 5

ids="$(curl -sS -H 'Content-Type: text/plain' -H 'Accept: text/csv' \
  --data-binary "SELECT TraceId FROM otel_traces USING SAMPLE $runs ROWS" "http://$api/api/v1/query" | tail -n +2 | tr -d '\r')"
: >"$work/summary"; : >"$work/trace"; : >"$work/attr"
i=0
for id in $ids; do
  q "SELECT * FROM service_summary" >>"$work/summary"
  q "SELECT * FROM trace('$id')" >>"$work/trace"
  q "SELECT start_time, trace_id, name FROM spans WHERE attributes['user.id'] = 'user-$((i * 37 % 10000))'" >>"$work/attr"
  i=$((i + 1))
done
stats service_summary "$work/summary"
stats trace_by_id "$work/trace"
stats attribute_filter "$work/attr"
curl -sS -H 'Content-Type: text/plain' -H 'Accept: text/csv' \
  --data-binary "SELECT count(*) AS spans_now FROM otel_traces" "http://$api/api/v1/query"
# Ingestion must outlast the queries; its report comes when it ends.
if ! kill -0 "$load" 2>/dev/null; then echo "warning: ingestion ended before the queries did" >&2; fi
wait "$load"
echo "ingestion during the queries (sluice-loadgen):"
sed 's/^/  /' "$work/loadgen.out"
kill -TERM "$server"
wait "$server"
echo "database_bytes=$(du -cb "$work"/bench.duckdb* | tail -1 | cut -f1)"
