// F32, F16 and BF16 weights: dequantization, dot products and activation rounding.
//
// As in ggml's CPU backend, the activations of an F16 (BF16) product are first
// rounded to F16 (BF16); products are accumulated in float32. The rounded
// activations are kept as float32 values so the inner loop converts only weights.
// Also the conversion of float32 rows to F32 / F16 / BF16 (op_convert, the KV cache writes).
// Reference: ggml-cpu vec.cpp (ggml_vec_dot_f16, ggml_vec_dot_bf16), ops.cpp (set_rows).
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

// Dot products of one F16 weight row with `count` (2..SY_DOT_N) activation rows (types.h
// vec_dot_n; prompts and batched decode steps): each tile of the row is converted once into a
// float buffer, then met by every activation row with that row's own four accumulators, which
// run in vec_dot_f16's order, so out[j] equals vec_dot_f16(n, w, xq[j]) bit for bit. A row
// holding an infinity or NaN is recomputed by the exact path, as there.
#define F16_TILE 256
void sy_vec_dot_n_f16(int32_t n, const uint8_t *w, const uint8_t *const *xq, int32_t count, float *out) {
  const v128_t efield = wasm_i16x8_splat(0x7c00);
  v128_t emax = wasm_i16x8_splat(0);
  v128_t acc[SY_DOT_N][4];
  for (int32_t j = 0; j < count; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = wasm_f32x4_splat(0);
  float tile[F16_TILE] __attribute__((aligned(16)));
  const int32_t n16 = n & ~15;
  for (int32_t t0 = 0; t0 < n16; t0 += F16_TILE) {
    const int32_t len = n16 - t0 < F16_TILE ? n16 - t0 : F16_TILE;
    for (int32_t i = 0; i < len; i += 16) {
      v128_t h0 = wasm_v128_load(w + 2 * (t0 + i)), h1 = wasm_v128_load(w + 2 * (t0 + i) + 16);
      emax = wasm_u16x8_max(emax, wasm_u16x8_max(wasm_v128_and(h0, efield), wasm_v128_and(h1, efield)));
      wasm_v128_store(tile + i, f16x4_finite_to_f32x4(wasm_i32x4_extend_low_i16x8(h0)));
      wasm_v128_store(tile + i + 4, f16x4_finite_to_f32x4(wasm_i32x4_extend_high_i16x8(h0)));
      wasm_v128_store(tile + i + 8, f16x4_finite_to_f32x4(wasm_i32x4_extend_low_i16x8(h1)));
      wasm_v128_store(tile + i + 12, f16x4_finite_to_f32x4(wasm_i32x4_extend_high_i16x8(h1)));
    }
    for (int32_t j = 0; j < count; j++) {
      const float *x = (const float *)xq[j] + t0;
      v128_t a0 = acc[j][0], a1 = acc[j][1], a2 = acc[j][2], a3 = acc[j][3];
      for (int32_t i = 0; i < len; i += 16) {
        a0 = sy_madd_f32x4(wasm_v128_load(tile + i), wasm_v128_load(x + i), a0);
        a1 = sy_madd_f32x4(wasm_v128_load(tile + i + 4), wasm_v128_load(x + i + 4), a1);
        a2 = sy_madd_f32x4(wasm_v128_load(tile + i + 8), wasm_v128_load(x + i + 8), a2);
        a3 = sy_madd_f32x4(wasm_v128_load(tile + i + 12), wasm_v128_load(x + i + 12), a3);
      }
      acc[j][0] = a0, acc[j][1] = a1, acc[j][2] = a2, acc[j][3] = a3;
    }
  }
  const int exact = wasm_v128_any_true(wasm_i16x8_eq(emax, efield));
  for (int32_t j = 0; j < count; j++) {
    const float *x = (const float *)xq[j];
    if (__builtin_expect(exact, 0)) {
      out[j] = vec_dot_f16_exact(n, w, x);
      continue;
    }
    float sum = sy_hsum_f32x4(wasm_f32x4_add(wasm_f32x4_add(acc[j][0], acc[j][1]), wasm_f32x4_add(acc[j][2], acc[j][3])));
    for (int32_t i = n16; i < n; i++) sum += sy_f16_to_f32(sy_load_u16(w + 2 * i)) * x[i];
    out[j] = sum;
  }
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

// ---- float32 -> F32 / F16 / BF16 rows (the KV cache writes) --------------------
// As ggml's set_rows / cpy into an F16 or BF16 tensor (ggml-cpu ops.cpp
// ggml_compute_forward_set_rows_impl: `from_float(src row, dst row, nc)` with the
// destination type's from_float, ggml_cpu_fp32_to_fp16 / ggml_cpu_fp32_to_bf16): every
// value rounded to nearest even. Bit for bit with sy_f32_to_f16 / sy_f32_to_bf16 (sy.h)
// and the twin (src/kernels/ref/float.ts); the vector forms below were checked against
// the scalar ones on all 2^32 inputs.

// Four float32 -> binary16 (in the low halves of four u32 lanes), round to nearest even.
// The float additions do the rounding, after ggml_compute_fp32_to_fp16 (ggml-impl.h):
//   float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
//   base = fp32_from_bits((bias >> 1) + UINT32_C(0x07800000)) + base;
// Scaling |f| by 2^112 then 2^-110 sends values too large for binary16 to inf (and keeps
// the rest exact); adding a power of two whose exponent is |f|'s (at least 2^-14, the
// binary16 subnormal range) + 11 leaves exactly the 10 mantissa bits binary16 keeps,
// rounded to nearest even by the float adder. The sum's exponent and mantissa bits then
// add up to the binary16 magnitude (a rounding carry moves into the exponent field).
SY_INLINE v128_t f32x4_to_f16x4(v128_t f) {
  v128_t w2 = wasm_i32x4_add(f, f);  // the bits without the sign, shifted left by one
  v128_t mag = wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_abs(f), wasm_i32x4_splat(0x77800000)),  // 2^112
                              wasm_i32x4_splat(0x08800000));                                      // 2^-110
  v128_t bias = wasm_u32x4_max(wasm_v128_and(w2, wasm_i32x4_splat((int32_t)0xff000000u)), wasm_i32x4_splat(0x71000000));
  v128_t sum = wasm_f32x4_add(wasm_i32x4_add(wasm_u32x4_shr(bias, 1), wasm_i32x4_splat(0x07800000)), mag);
  v128_t h = wasm_i32x4_add(wasm_v128_and(wasm_u32x4_shr(sum, 13), wasm_i32x4_splat(0x7c00)),
                            wasm_v128_and(sum, wasm_i32x4_splat(0x0fff)));
  v128_t nan = wasm_u32x4_gt(w2, wasm_i32x4_splat((int32_t)0xff000000u));
  h = wasm_v128_bitselect(wasm_i32x4_splat(0x7e00), h, nan);  // every NaN -> quiet NaN 0x7e00
  return wasm_v128_or(h, wasm_u32x4_shr(wasm_v128_and(f, wasm_i32x4_splat((int32_t)0x80000000u)), 16));
}

// Four float32 -> bfloat16 (low halves of four u32 lanes), as sy_f32_to_bf16: add half an
// ulp minus one, plus the kept lowest bit (ties to even), and keep the upper half; a NaN
// keeps its upper half with the quiet bit set.
SY_INLINE v128_t f32x4_to_bf16x4(v128_t u) {
  v128_t lsb = wasm_v128_and(wasm_u32x4_shr(u, 16), wasm_i32x4_splat(1));
  v128_t r = wasm_u32x4_shr(wasm_i32x4_add(u, wasm_i32x4_add(wasm_i32x4_splat(0x7fff), lsb)), 16);
  v128_t nan = wasm_i32x4_gt(wasm_v128_and(u, wasm_i32x4_splat(0x7fffffff)), wasm_i32x4_splat(0x7f800000));
  return wasm_v128_bitselect(wasm_v128_or(wasm_u32x4_shr(u, 16), wasm_i32x4_splat(64)), r, nan);
}

// out = x converted to the type of out, element by element; each thread takes a
// contiguous range of whole groups of eight.
// args: 0 out [n] (F32, F16 or BF16), 1 x f32 [n], 2 n, 3 out type (SY_F32, SY_F16 or SY_BF16)
SY_KERNEL(op_convert) {
  uint8_t *y = ARG_P(uint8_t, 0);
  const float *x = ARG_P(const float, 1);
  int n = ARG_I(2), type = ARG_I(3);
  int lo, hi;
  sy_range((n + 7) / 8, ith, nth, &lo, &hi);
  lo = lo * 8 < n ? lo * 8 : n;
  hi = hi * 8 < n ? hi * 8 : n;
  int i = lo;
  if (type == SY_F32) {
    // A copy of the bits (NaN payloads included).
    float *d = (float *)y;
    for (; i + 4 <= hi; i += 4) wasm_v128_store(d + i, wasm_v128_load(x + i));
    for (; i < hi; i++) d[i] = x[i];
  } else if (type == SY_F16) {
    for (; i + 8 <= hi; i += 8) {
      v128_t a = f32x4_to_f16x4(wasm_v128_load(x + i)), b = f32x4_to_f16x4(wasm_v128_load(x + i + 4));
      wasm_v128_store(y + 2 * i, wasm_u16x8_narrow_i32x4(a, b));  // lanes are in [0, 0xffff]: kept as they are
    }
    for (; i < hi; i++) {
      uint16_t h = sy_f32_to_f16(x[i]);
      __builtin_memcpy(y + 2 * i, &h, 2);
    }
  } else if (type == SY_BF16) {
    for (; i + 8 <= hi; i += 8) {
      v128_t a = f32x4_to_bf16x4(wasm_v128_load(x + i)), b = f32x4_to_bf16x4(wasm_v128_load(x + i + 4));
      wasm_v128_store(y + 2 * i, wasm_u16x8_narrow_i32x4(a, b));
    }
    for (; i < hi; i++) {
      uint16_t h = sy_f32_to_bf16(x[i]);
      __builtin_memcpy(y + 2 * i, &h, 2);
    }
  }
}
