#!/usr/bin/env bash
# Builds the test plugins, then runs every test in the workspace with the release profile, the same one
# `cargo run --release` uses, so DuckDB's C++ is compiled once for both
# (both build into ./target unless CARGO_TARGET_DIR points elsewhere).
# Ends with one line totalling every test binary's results.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The tests load real components; build them first, into the same target
# directory, and tell the tests where they are.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
scripts/build-plugins.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --release --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
