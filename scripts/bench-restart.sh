#!/usr/bin/env bash
# Restart time after kill -9 with the write-ahead log nearly full: the worst
# case a crash leaves for the next start (BENCHMARKS.md, "Restart").
#
# Each run starts a release `sluice serve` on loopback with a fresh
# database, loads it with sluice-loadgen at a steady rate (each 1 s load is
# smaller than a row group, so it goes through the WAL), waits until the WAL
# reaches 90% of store.checkpoint_threshold, kills the server with SIGKILL,
# and times the next start until /readyz answers 200 (the WAL replayed by
# DuckDB, the spool's unloaded records loaded).
#   scripts/bench-restart.sh                 # 3 runs at the default 512 MiB
#   RUNS=5 THRESHOLD=256MiB RATE=40000 scripts/bench-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked --workspace >&2

runs="${RUNS:-3}"
threshold="${THRESHOLD:-512MiB}"
rate="${RATE:-60000}"
grpc=127.0.0.1:24417
api=127.0.0.1:24420
work="$(mktemp -d)"
server=""
loadgen=""
cleanup() {
  [[ -n "$loadgen" ]] && kill "$loadgen" 2>/dev/null || true
  [[ -n "$server" ]] && kill -9 "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bytes() { # "512MiB" -> bytes
  local n="${1%[KMG]iB}"
  case "$1" in *KiB) echo $((n << 10)) ;; *MiB) echo $((n << 20)) ;; *GiB) echo $((n << 30)) ;; *) echo "$1" ;; esac
}
limit=$(( $(bytes "$threshold") * 9 / 10 ))
cat >"$work/sluice.toml" <<TOML
[store]
checkpoint_threshold = "$threshold"
TOML

start() {
  RUST_LOG=warn "$target/release/sluice" serve --config "$work/sluice.toml" --db "$work/bench.duckdb" \
    --grpc-addr "$grpc" --http-addr 127.0.0.1:0 --api-addr "$api" 2>>"$work/server.log" &
  server=$!
}
wait_ready() { # prints seconds until /readyz is 200
  local t0 t1
  t0=$(date +%s.%N)
  for _ in $(seq 1200); do
    if curl -fsS "http://$api/readyz" >/dev/null 2>&1; then
      t1=$(date +%s.%N)
      awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", b - a}'
      return
    fi
    sleep 0.05
  done
  echo "not ready after 60 s; log:" >&2
  tail -20 "$work/server.log" >&2
  exit 1
}

results=()
for run in $(seq "$runs"); do
  rm -rf "$work"/bench.duckdb*
  start
  wait_ready >/dev/null
  "$target/release/sluice-loadgen" --endpoint "http://$grpc" --rate "$rate" --duration 600 >/dev/null 2>&1 &
  loadgen=$!
  wal=0
  for _ in $(seq 3000); do
    wal=$(stat -c %s "$work/bench.duckdb.wal" 2>/dev/null || echo 0)
    (( wal >= limit )) && break
    sleep 0.1
  done
  (( wal >= limit )) || { echo "the WAL did not reach $limit bytes" >&2; exit 1; }
  kill -9 "$server"
  wait "$server" 2>/dev/null || true
  kill "$loadgen" 2>/dev/null || true
  wait "$loadgen" 2>/dev/null || true
  loadgen=""
  spool=$(du -cb "$work"/bench.duckdb.spool/*.spool 2>/dev/null | tail -1 | cut -f1)
  start
  took=$(wait_ready)
  echo "run $run: wal_bytes=$wal spool_bytes=$spool restart_s=$took"
  results+=("$took")
  kill -TERM "$server"
  wait "$server" || true
  server=""
done
printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print "median_restart_s=" a[int((NR+1)/2)]}'
