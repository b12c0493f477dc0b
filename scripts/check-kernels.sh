#!/usr/bin/env bash
# Rebuilds the wasm kernels into a temporary folder and compares them with the committed
# ones (src/kernels/wasm/bin). Fails on a difference when the installed clang-19/lld-19
# are the versions recorded in src/kernels/wasm/bin/TOOLCHAIN; only warns otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=src/kernels/wasm/bin
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bash scripts/build-kernels.sh "$tmp" >/dev/null
same_toolchain=1
while read -r pkg version; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  have="$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo none)"
  if [[ "$have" != "$version" ]]; then
    echo "check-kernels: $pkg is $have here, the committed kernels were built with $version" >&2
    same_toolchain=0
  fi
done < "$bin/TOOLCHAIN"
status=0
for f in switchyard-simd128.wasm switchyard-relaxed.wasm; do
  if cmp -s "$tmp/$f" "$bin/$f"; then
    echo "check-kernels: $f rebuilt identical ($(stat -c %s "$bin/$f") bytes, sha256 $(sha256sum "$bin/$f" | cut -c1-16))"
  elif [[ $same_toolchain == 1 ]]; then
    echo "check-kernels: ERROR: $f differs from a rebuild with the recorded toolchain: run 'npm run build:kernels' and commit the result" >&2
    status=1
  else
    echo "check-kernels: WARNING: $f differs from this rebuild, but the toolchain differs too (see above); not an error" >&2
  fi
done
exit $status
