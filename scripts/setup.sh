#!/usr/bin/env bash
# Installs what building and testing Sluice needs beyond the Rust toolchain.
# Safe to run again; it only adds what is missing.
set -euo pipefail
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "$component"
  fi
done
