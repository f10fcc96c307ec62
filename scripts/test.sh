#!/usr/bin/env bash
# Runs every test in the workspace with the release profile, the same one
# `cargo run --release` uses, so DuckDB's C++ is compiled once for both
# (both build into ./target unless CARGO_TARGET_DIR points elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --release --locked "$@"
