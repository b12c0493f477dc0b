// Start-up self-check of a kernel build: exercises the instructions whose behaviour
// differs between engines (relaxed dot products, fused multiply-add) on fixed inputs.
// JS compares the result with the value computed in TypeScript (capabilities.ts);
// a relaxed build that disagrees is not used.
#include "sy.h"

SY_EXPORT(sy_probe) int32_t sy_probe(void) {
  int8_t a[16], b[16];
  for (int i = 0; i < 16; i++) {
    a[i] = (int8_t)(i * 17 - 128);  // -128 .. 127
    b[i] = (int8_t)(i * 8 + 3);     // 3 .. 123 (i7)
  }
  v128_t va = wasm_v128_load(a), vb = wasm_v128_load(b);
  int32_t s1 = sy_hsum_i32x4(sy_dot_i8_u7(va, vb, wasm_i32x4_splat(0)));
  // signed x signed, both in [-127, 127]
  v128_t vc = wasm_i8x16_sub(vb, wasm_i8x16_splat(60));
  v128_t va2 = wasm_i8x16_max(va, wasm_i8x16_splat(-127));
  int32_t s2 = sy_hsum_i32x4(sy_dot_i8_i8(va2, vc, wasm_i32x4_splat(0)));
  // a*b+c with exactly representable values: same result fused or not
  v128_t m = sy_madd_f32x4(wasm_f32x4_make(1.5f, -2.0f, 3.25f, 4.0f), wasm_f32x4_splat(2.0f),
                           wasm_f32x4_splat(0.5f));
  int32_t s3 = (int32_t)sy_hsum_f32x4(m);  // 3.5 - 3.5 + 7 + 8.5 = 15.5 -> 15
  return s1 * 3 + s2 * 7 + s3;
}
