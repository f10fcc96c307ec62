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
for _ in $(seq 100); do
  curl -fsS "http://$api/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

"$target/release/sluice-loadgen" --endpoint "http://$grpc" --server-pid "$server" "$@"

for t in /proc/$server/task/*; do echo "$(cat $t/comm) $(awk "{print \$14+\$15}" $t/stat)"; done | sort | awk "{a[\$1]+=\$2} END {for (k in a) print k, a[k]/100 \"s\"}" | sort -k2 -n -r | head -12
metrics="$(curl -fsS "http://$api/metrics")"
echo "$metrics" | awk '/^sluice_commit_duration_seconds_(sum|count)/ {print}'
echo "$metrics" | awk '/^sluice_rows_written/ {print}'
echo "$metrics" | awk '/^sluice_retention_(rows_deleted_total|duration_seconds_(sum|count))/ {print}'
kill -TERM "$server"
wait "$server"
echo "database_bytes=$(du -cb "$work"/bench.duckdb* | tail -1 | cut -f1)"
