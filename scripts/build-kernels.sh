#!/usr/bin/env bash
# Builds the WebAssembly kernels from src/kernels/wasm/c into src/kernels/wasm/bin:
#   switchyard-simd128.wasm   SIMD128 + threads (shared memory, atomics)
#   switchyard-relaxed.wasm   the same with relaxed SIMD (relaxed dot products, fused multiply-add)
# Usage: scripts/build-kernels.sh [OUT_DIR]   (default src/kernels/wasm/bin)
# Needs Debian's clang-19 and lld-19; the version the committed files were built with is in
# src/kernels/wasm/bin/TOOLCHAIN. The build is deterministic: same compiler, same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-src/kernels/wasm/bin}"
mkdir -p "$out"
CC="${CC:-clang-19}"
command -v "$CC" >/dev/null || { echo "build-kernels: $CC not found (apt-get install clang-19 lld-19)" >&2; exit 2; }
srcs=(src/kernels/wasm/c/*.c)
common=(--target=wasm32 -std=c11 -O3 -ffreestanding -nostdlib -fno-exceptions -ffp-contract=off
  -matomics -mbulk-memory -mmutable-globals -msimd128 -Wall -Wextra -Wno-unused-parameter -Werror
  -fno-ident -ffile-prefix-map="$PWD"=.
  -Wl,--no-entry -Wl,--import-memory -Wl,--shared-memory -Wl,--max-memory=4294967296
  -Wl,-z,stack-size=262144 -Wl,--export=__heap_base -Wl,--export=__stack_pointer
  -Wl,--strip-all)
# Build into temporary files and rename, so a reader never sees a half-written module.
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$CC" "${common[@]}" -o "$tmp/simd128.wasm" "${srcs[@]}"
"$CC" "${common[@]}" -mrelaxed-simd -DSY_RELAXED=1 -o "$tmp/relaxed.wasm" "${srcs[@]}"
mv -f "$tmp/simd128.wasm" "$out/switchyard-simd128.wasm"
mv -f "$tmp/relaxed.wasm" "$out/switchyard-relaxed.wasm"
echo "build-kernels: wrote $out/switchyard-simd128.wasm ($(stat -c %s "$out/switchyard-simd128.wasm") bytes), $out/switchyard-relaxed.wasm ($(stat -c %s "$out/switchyard-relaxed.wasm") bytes)"
