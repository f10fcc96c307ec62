#!/usr/bin/env bash
# Builds the WebAssembly plugins: the built-in ones (plugins/: sampler,
# redactor, enricher), the Rust test plugins (with sluice-sdk, for
# wasm32-wasip2) and the Python example (componentize-py).
# They land in $CARGO_TARGET_DIR/sluice-plugins (default: ./target/...).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target_dir/sluice-plugins"
mkdir -p "$out"

cargo build --release --locked --target wasm32-wasip2 \
  -p sluice-sampler -p sluice-redactor -p sluice-enricher \
  -p sluice-test-plugin-behaviour -p sluice-bench-proto-copy
for plugin in sampler redactor enricher; do
  cp "$target_dir/wasm32-wasip2/release/sluice_$plugin.wasm" "$out/$plugin.wasm"
done
cp "$target_dir/wasm32-wasip2/release/sluice_test_plugin_behaviour.wasm" "$out/behaviour.wasm"
cp "$target_dir/wasm32-wasip2/release/sluice_bench_proto_copy.wasm" "$out/proto_copy.wasm"

# componentize-py bundles CPython; rebuild only when the source or WIT changed.
# pip may have put it in a scripts directory that is not on PATH.
componentize_py="$(command -v componentize-py \
  || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/componentize-py")"
py_out="$out/python_add_attribute.wasm"
if [ ! -f "$py_out" ] || [ -n "$(find examples/python-add-attribute wit -newer "$py_out" -type f | head -1)" ]; then
  "$componentize_py" -d wit -w plugin componentize app \
    -p examples/python-add-attribute -o "$py_out.tmp"
  mv "$py_out.tmp" "$py_out"
fi
echo "plugins in $out: $(cd "$out" && ls *.wasm | tr '\n' ' ')"
