#!/usr/bin/env bash
# Ingest benchmark behind BENCHMARKS.md: starts a release `sluice serve` on
# loopback with a fresh database, drives it with sluice-loadgen over gRPC,
# prints the generator's report and the server's commit figures, and stops
# the server gracefully. Extra arguments go to sluice-loadgen, e.g.
#   scripts/bench-ingest.sh --clients 8 --duration 30
#   scripts/bench-ingest.sh --rate 150000 --duration 60
# SLUICE_CONFIG=FILE passes a config file to the server; SLUICE_DB=FILE starts
# from a copy of that database instead of an empty one.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked --workspace >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grpc=127.0.0.1:24317
api=127.0.0.1:24320
config=()
[[ -n "${SLUICE_CONFIG:-}" ]] && config=(--config "$SLUICE_CONFIG")
[[ -n "${SLUICE_DB:-}" ]] && cp "$SLUICE_DB" "$work/bench.duckdb"
RUST_LOG=warn "$target/release/sluice" serve "${config[@]}" --db "$work/bench.duckdb" \
  --grpc-addr "$grpc" --http-addr 127.0.0.1:0 --api-addr "$api" 2>"$work/server.log" &
server=$!
# A failing step must not leave the server running on the benchmark's ports.
trap 'kill -9 "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://$api/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

TIMEFORMAT='loadgen_cpu_s=%U user + %S sys'
time "$target/release/sluice-loadgen" --endpoint "http://$grpc" --server-pid "$server" "$@"

# CPU seconds of the server's threads by name (DuckDB's own threads carry
# the name of the thread that started them).
for t in /proc/"$server"/task/*; do
  echo "$(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"
done | awk '{cpu[$1] += $2} END {for (k in cpu) printf "cpu_s{thread=\"%s\"} %.2f\n", k, cpu[k] / 100}' |
  sort

metrics="$(curl -fsS "http://$api/metrics")"
echo "$metrics" | awk '/^sluice_commit_duration_seconds_(sum|count)/ {print}'
echo "$metrics" | awk '/^sluice_rows_written/ {print}'
echo "$metrics" | awk '/^sluice_spool_(bytes|sync_duration_seconds_(sum|count))/ {print}'
echo "$metrics" | awk '/^sluice_retention_(rows_deleted_total|duration_seconds_(sum|count))/ {print}'
kill -TERM "$server"
wait "$server"
echo "database_bytes=$(du -cb "$work"/bench.duckdb* | tail -1 | cut -f1)"
