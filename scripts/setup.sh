#!/usr/bin/env bash
# Installs what building and testing Sluice needs beyond the Rust toolchain:
# rustfmt and clippy, the wasm32-wasip2 target (plugins), and componentize-py
# (the Python example plugin). Safe to run again; it only adds what is missing.
set -euo pipefail
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "$component"
  fi
done
if ! rustup target list --installed 2>/dev/null | grep -q "^wasm32-wasip2$"; then
  rustup target add wasm32-wasip2
fi
# Pinned: the version PLUGIN-NOTES.md records as working with wasmtime 48.
if ! command -v componentize-py >/dev/null 2>&1 \
  || [ "$(componentize-py --version 2>/dev/null)" != "componentize-py 0.25.1" ]; then
  python3 -m pip install --quiet componentize-py==0.25.1
  # pyenv puts new commands on PATH only after a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
