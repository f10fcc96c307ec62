#!/usr/bin/env bash
# A longer run of the fuzz tests that CI runs briefly: the OTLP decoders and
# gzip/zstd (sluice-otlp), rows and spool records (sluice-store), the query
# guard (sluice-query) and the config parser. Each prints its seed; a
# failure prints the seed and the input, and SLUICE_FUZZ_SEED=... repeats it.
#   scripts/fuzz.sh            # about ten minutes on two cores
#   SCALE=10 scripts/fuzz.sh   # ten times as many rounds
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${SCALE:-1}"
run() { # test-binary rounds
  SLUICE_FUZZ_ROUNDS=$(($2 * scale)) cargo test --release --locked --workspace --test "$1" -- --nocapture 2>&1 |
    grep -E "rounds|panicked|FAILED|test result"
}
run fuzz 1000000
run fuzz_rows 500000
run fuzz_config 300000
run fuzz_guard 100000
