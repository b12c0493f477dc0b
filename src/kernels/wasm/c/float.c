// F32, F16 and BF16 weights: dequantization, dot products and activation rounding.
//
// As in ggml's CPU backend, the activations of an F16 (BF16) product are first
// rounded to F16 (BF16); products are accumulated in float32. The rounded
// activations are kept as float32 values so the inner loop converts only weights.
// Reference: ggml-cpu vec.cpp (ggml_vec_dot_f16, ggml_vec_dot_bf16).
#include "types.h"

// Four bfloat16 values (low halves of four 32-bit lanes) -> float32; F16 is sy_f16x4_to_f32x4 (sy.h).
SY_INLINE v128_t bf16x4_to_f32x4(v128_t h32) { return wasm_i32x4_shl(h32, 16); }

void sy_dequant_f32(const uint8_t *x, float *y, int32_t n) {
  const float *s = (const float *)x;
  for (int32_t i = 0; i < n; i++) y[i] = s[i];
}

void sy_dequant_f16(const uint8_t *x, float *y, int32_t n) {
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    v128_t h = wasm_v128_load(x + 2 * i);
    wasm_v128_store(y + i, sy_f16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(h)));
    wasm_v128_store(y + i + 4, sy_f16x4_to_f32x4(wasm_u32x4_extend_high_u16x8(h)));
  }
  for (; i < n; i++) y[i] = sy_f16_to_f32(sy_load_u16(x + 2 * i));
}

void sy_dequant_bf16(const uint8_t *x, float *y, int32_t n) {
  for (int32_t i = 0; i < n; i++) y[i] = sy_bf16_to_f32(sy_load_u16(x + 2 * i));
}

void sy_quantize_f32(const float *x, uint8_t *y, int32_t n) {
  float *d = (float *)y;
  for (int32_t i = 0; i < n; i++) d[i] = x[i];
}

void sy_quantize_f16(const float *x, uint8_t *y, int32_t n) {
  float *d = (float *)y;
  for (int32_t i = 0; i < n; i++) d[i] = sy_f16_to_f32(sy_f32_to_f16(x[i]));
}

void sy_quantize_bf16(const float *x, uint8_t *y, int32_t n) {
  float *d = (float *)y;
  for (int32_t i = 0; i < n; i++) d[i] = sy_bf16_to_f32(sy_f32_to_bf16(x[i]));
}

// Four float accumulators of four lanes each, summed in a fixed order at the end.
#define DOT_LOOP(LOAD4)                                                      \
  v128_t acc0 = wasm_f32x4_splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0; \
  int32_t i = 0;                                                             \
  for (; i + 16 <= n; i += 16) {                                             \
    v128_t w0, w1, w2, w3;                                                   \
    LOAD4;                                                                   \
    acc0 = sy_madd_f32x4(w0, wasm_v128_load(x + i), acc0);                   \
    acc1 = sy_madd_f32x4(w1, wasm_v128_load(x + i + 4), acc1);               \
    acc2 = sy_madd_f32x4(w2, wasm_v128_load(x + i + 8), acc2);               \
    acc3 = sy_madd_f32x4(w3, wasm_v128_load(x + i + 12), acc3);              \
  }                                                                          \
  float sum = sy_hsum_f32x4(wasm_f32x4_add(wasm_f32x4_add(acc0, acc1), wasm_f32x4_add(acc2, acc3)));

float sy_vec_dot_f32(int32_t n, const uint8_t *wb, const uint8_t *xq) {
  const float *w = (const float *)wb, *x = (const float *)xq;
  DOT_LOOP(w0 = wasm_v128_load(w + i); w1 = wasm_v128_load(w + i + 4); w2 = wasm_v128_load(w + i + 8);
           w3 = wasm_v128_load(w + i + 12));
  for (; i < n; i++) sum += w[i] * x[i];
  return sum;
}

// Finite binary16 values, sign-extended into i32 lanes, to float32 exactly in four
// instructions: the sign lands in bit 31, exponent and mantissa move to float32's places
// (bits 28-30 hold sign-extension copies and are masked off), and the multiplication by
// 2^112 re-biases the exponent (exact; subnormals are normalised).
SY_INLINE v128_t f16x4_finite_to_f32x4(v128_t hs) {
  v128_t bits = wasm_v128_and(wasm_i32x4_shl(hs, 13), wasm_i32x4_splat((int32_t)0x8fffe000u));
  return wasm_f32x4_mul(bits, wasm_i32x4_splat(0x77800000));
}

// The exact path: every binary16 value, infinities and NaN included.
__attribute__((noinline)) static float vec_dot_f16_exact(int32_t n, const uint8_t *w, const float *x) {
  DOT_LOOP(v128_t h0 = wasm_v128_load(w + 2 * i); v128_t h1 = wasm_v128_load(w + 2 * i + 16);
           w0 = sy_f16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(h0));
           w1 = sy_f16x4_to_f32x4(wasm_u32x4_extend_high_u16x8(h0));
           w2 = sy_f16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(h1));
           w3 = sy_f16x4_to_f32x4(wasm_u32x4_extend_high_u16x8(h1)));
  for (; i < n; i++) sum += sy_f16_to_f32(sy_load_u16(w + 2 * i)) * x[i];
  return sum;
}

// The fast path converts finite weights only and remembers the largest exponent field it
// saw; a row holding an infinity or NaN is recomputed by the exact path, which gives the
// same bits for finite values (same conversion results, same accumulation order).
float sy_vec_dot_f16(int32_t n, const uint8_t *w, const uint8_t *xq) {
  const float *x = (const float *)xq;
  const v128_t efield = wasm_i16x8_splat(0x7c00);
  v128_t emax = wasm_i16x8_splat(0);
  DOT_LOOP(v128_t h0 = wasm_v128_load(w + 2 * i); v128_t h1 = wasm_v128_load(w + 2 * i + 16);
           emax = wasm_u16x8_max(emax, wasm_u16x8_max(wasm_v128_and(h0, efield), wasm_v128_and(h1, efield)));
           w0 = f16x4_finite_to_f32x4(wasm_i32x4_extend_low_i16x8(h0));
           w1 = f16x4_finite_to_f32x4(wasm_i32x4_extend_high_i16x8(h0));
           w2 = f16x4_finite_to_f32x4(wasm_i32x4_extend_low_i16x8(h1));
           w3 = f16x4_finite_to_f32x4(wasm_i32x4_extend_high_i16x8(h1)));
  if (__builtin_expect(wasm_v128_any_true(wasm_i16x8_eq(emax, efield)), 0)) return vec_dot_f16_exact(n, w, x);
  for (; i < n; i++) sum += sy_f16_to_f32(sy_load_u16(w + 2 * i)) * x[i];
  return sum;
}

float sy_vec_dot_bf16(int32_t n, const uint8_t *w, const uint8_t *xq) {
  const float *x = (const float *)xq;
  DOT_LOOP(v128_t h0 = wasm_v128_load(w + 2 * i); v128_t h1 = wasm_v128_load(w + 2 * i + 16);
           w0 = bf16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(h0));
           w1 = bf16x4_to_f32x4(wasm_u32x4_extend_high_u16x8(h0));
           w2 = bf16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(h1));
           w3 = bf16x4_to_f32x4(wasm_u32x4_extend_high_u16x8(h1)));
  for (; i < n; i++) sum += sy_bf16_to_f32(sy_load_u16(w + 2 * i)) * x[i];
  return sum;
}
