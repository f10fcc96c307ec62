#!/usr/bin/env bash
# Soak: a release `sluice serve` under steady load for an hour, with the
# redactor and enricher on every span and retention deleting as it goes.
# Prints one line a minute (RSS, files on disk, accepted, refused, loaded),
# then whether anything acknowledged was lost and whether RSS stayed flat:
# over the last 45 minutes within 10% of its level after 15 (BENCHMARKS.md,
# "Soak").
#   scripts/soak.sh                           # 60 minutes at 17,500 spans/s
#   MINUTES=10 RATE=30000 scripts/soak.sh     # a shorter look
# The rate defaults to half of what this configuration (the two plugins on
# every span) takes on the 2-core machine, about 35,000 spans/s
# (BENCHMARKS.md, "Soak"); the load generator runs on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked --workspace >&2
scripts/build-plugins.sh >&2

minutes="${MINUTES:-60}"
rate="${RATE:-17500}"
retention="${RETENTION:-5m}"
grpc=127.0.0.1:24517
api=127.0.0.1:24520
work="$(mktemp -d)"
server=""
loadgen=""
cleanup() {
  [[ -n "$loadgen" ]] && kill "$loadgen" 2>/dev/null || true
  [[ -n "$server" ]] && kill -9 "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

plugins="$(cd "$target/sluice-plugins" && pwd)"
cat >"$work/sluice.toml" <<TOML
[store]
# A bound a small team would set; RSS above it is Sluice's own.
duckdb_memory_limit = "512MiB"
# Retention deletes as many spans a minute as arrive; with the TraceId
# index deletes run at about 40,000 rows/s and slow ingestion to a third
# while they run, so docs/operations.md ("Retention") advises it off here.
trace_id_index = false
# Rows committed below a row group (122,880) go through the WAL, and DuckDB
# holds them in memory until the checkpoint: at this rate each 64 MiB of
# WAL is about 55,000 spans, or three seconds. At the default 512 MiB the
# process's RSS rose and fell by about 500 MiB every 25 s.
checkpoint_threshold = "64MiB"

[retention]
# The generator's spans carry the time it started, so after five minutes
# every pass deletes what came since the last one.
traces = "$retention"
check_interval = "1m"

[plugins]
cache_dir = "$work/plugin-cache"

[[pipelines.traces]]
name = "redactor"
path = "$plugins/redactor.wasm"
[pipelines.traces.config]
detectors = ["all"]
hash_secret = "soak-test-secret-soak-test-secret"

[[pipelines.traces]]
name = "enricher"
path = "$plugins/enricher.wasm"
[pipelines.traces.config]
[[pipelines.traces.config.rules]]
action = "upsert"
target = "resource"
key = "deployment.environment"
value = "soak"
TOML

RUST_LOG=warn "$target/release/sluice" serve --config "$work/sluice.toml" --db "$work/soak.duckdb" \
  --grpc-addr "$grpc" --http-addr 127.0.0.1:0 --api-addr "$api" 2>"$work/server.log" &
server=$!
for _ in $(seq 600); do
  curl -fsS "http://$api/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://$api/readyz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

"$target/release/sluice-loadgen" --endpoint "http://$grpc" --rate "$rate" \
  --duration $((minutes * 60)) >"$work/loadgen.out" 2>"$work/loadgen.err" &
loadgen=$!

metric() { # name-prefix: sum of matching samples
  awk -v p="$1" 'index($0, p) == 1 {s += $NF} END {printf "%d", s}' "$work/metrics"
}
rss_mib() { awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' /proc/"$server"/status; }
rss=()
medians=()
# RSS moves by hundreds of MiB within seconds (batches, loads, deletes), so
# besides the sample at the end of each minute the minute's twelve 5-second
# samples give its median and peak.
echo "minute rss_mib rss_median_mib rss_peak_mib disk_mib accepted refused loaded deleted retention_failed"
for minute in $(seq "$minutes"); do
  samples=()
  for _ in $(seq 12); do
    sleep 5
    samples+=("$(rss_mib)")
  done
  curl -fsS "http://$api/metrics" >"$work/metrics"
  r=${samples[11]}
  rss+=("$r")
  read -r median peak < <(printf '%s\n' "${samples[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)], v[NR]}')
  medians+=("$median")
  disk=$(du -cm "$work"/soak.duckdb* | tail -1 | cut -f1)
  echo "$minute $r $median $peak $disk $(metric 'sluice_items_accepted_total{signal="traces"}') \
$(metric 'sluice_items_refused_total{signal="traces"') \
$(metric 'sluice_rows_written_total{table="otel_traces"}') \
$(metric 'sluice_retention_rows_deleted_total{table="otel_traces"}') \
$(metric 'sluice_retention_runs_total{outcome="failed"}')"
done
wait "$loadgen"
loadgen=""
acked=$(awk -F= '/^accepted_spans=/ {print $2}' "$work/loadgen.out")
# A query waits until everything acknowledged is loaded (read-your-writes).
curl -fsS "http://$api/api/v1/query" -H 'Content-Type: text/plain' --data-binary 'SELECT 1' >/dev/null
curl -fsS "http://$api/metrics" >"$work/metrics"
loaded=$(metric 'sluice_rows_written_total{table="otel_traces"}')
kill -TERM "$server"
wait "$server"
server=""
cat "$work/loadgen.out"
grep -i retention "$work/server.log" | sort | uniq -c | sort -rn | head -5 || true
echo "acknowledged_spans=$acked loaded_spans=$loaded lost=$((acked - loaded))"
flat() { # label base values...: the range of the values around base
  local label=$1 base=$2
  shift 2
  printf '%s\n' "$@" | awk -v base="$base" -v label="$label" '
    {if ($1 > max) max = $1; if (min == "" || $1 < min) min = $1}
    END {printf "%s: at_15_min=%d last_45_min min=%d max=%d (%+.1f%% .. %+.1f%%)\n",
         label, base, min, max, (min - base) * 100 / base, (max - base) * 100 / base}'
}
if (( minutes >= 16 )); then
  flat rss_mib "${rss[14]}" "${rss[@]:15}"
  flat rss_minute_median_mib "${medians[14]}" "${medians[@]:15}"
fi
