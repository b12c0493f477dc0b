// Kernels only the benchmark needs (bench/kernels.bench.ts).
//
// read_bandwidth: the memory read bandwidth the matrix kernels are measured against.
// It only loads and adds, so its time is the time to stream the buffer through the
// cores: a matrix-vector product over a weight matrix of the same size should not
// be faster than this on the same threads (the ratio to it says how close it comes). Reference: the read-only ("sum") kernel of
// the STREAM-like memory benchmarks (e.g. lmbench bw_mem rd); ggml has no equivalent.
#include "sy.h"

// Each thread sums its contiguous share of the buffer, in 64-byte chunks (a cache line),
// into four independent vector accumulators so the adds never limit the loads.
// args: 0 out u32 [nth] per-thread checksums (keeps the loads alive), 1 buf, 2 bytes
//       (a multiple of 64, as uint32)
SY_KERNEL(read_bandwidth) {
  uint32_t *out = ARG_P(uint32_t, 0);
  const uint8_t *buf = ARG_P(const uint8_t, 1);
  int32_t chunks = (int32_t)(a->s[2].u / 64);
  int lo, hi;
  sy_range(chunks, ith, nth, &lo, &hi);
  v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
  const uint8_t *p = buf + (size_t)lo * 64;
  const uint8_t *end = buf + (size_t)hi * 64;
  for (; p < end; p += 64) {
    a0 = wasm_i32x4_add(a0, wasm_v128_load(p));
    a1 = wasm_i32x4_add(a1, wasm_v128_load(p + 16));
    a2 = wasm_i32x4_add(a2, wasm_v128_load(p + 32));
    a3 = wasm_i32x4_add(a3, wasm_v128_load(p + 48));
  }
  out[ith] = (uint32_t)sy_hsum_i32x4(wasm_i32x4_add(wasm_i32x4_add(a0, a1), wasm_i32x4_add(a2, a3)));
}
