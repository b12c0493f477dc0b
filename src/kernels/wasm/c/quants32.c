// 32-element block quant types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and MXFP4 weights
// (exact dequantization, dot products with quantized activations) and the Q8_0 / Q8_1
// activation quantizers.
//
// References: ggml/src/ggml-common.h (block layouts), ggml/src/ggml-quants.c
// (dequantize_row_*), ggml/src/ggml-cpu/quants.c (ggml_vec_dot_*_generic) and
// ggml/src/ggml-cpu/arch/x86/quants.c (quantize_row_q8_0 / q8_1, AVX path);
// layouts as described in shared/golden/quants/README.md. Twin: src/kernels/ref/quants32.ts.
//
// Dot products: weight type -> activation format, as ggml's CPU backend pairs them:
//   Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4 -> Q8_0;   Q4_1, Q5_1 -> Q8_1.
// FLOAT ORDER (the twin repeats it step by step, so results agree bit for bit):
//   isum_b = exact integer dot of block b's codes with its int8 activations;
//   term_b = (dw_b * dx_b) * (float)isum_b                  (Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4)
//   term_b = (dw_b * dx_b) * (float)isum_b + mw_b * sx_b     (Q4_1, Q5_1)
//   acc[b % 4] += term_b  (four float32 accumulators, starting at +0, blocks in order)
//   result = (acc[0] + acc[1]) + (acc[2] + acc[3]).
// Each step rounds to float32; no fused multiply-add (the build uses -ffp-contract=off).
// The four accumulators are the four lanes of one f32x4 when four blocks are done at once.
// ggml accumulates one sum (generic) or eight lanes with FMA (AVX2), so results agree with
// llama.cpp to float rounding, not bit for bit.
#include "types.h"

// IQ4_NL's non-uniform levels (ggml-common.h kvalues_iq4nl).
static const int8_t IQ4NL_LEVELS[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                        1,    13,   25,  38,  53,  69,  89,  113};
// MXFP4: twice the E2M1 value of each code (ggml kvalues_mxfp4); code 8 ("-0") is 0.
static const int8_t MXFP4_LEVELS[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// ---- scalar helpers -----------------------------------------------------------

// E8M0 exponent -> 2^(e - 128), half the block scale, matching the doubled levels above.
// ggml-impl.h ggml_e8m0_to_fp32_half: x < 2: "bits = 0x00200000 << x;"
//   else: "bits = (uint32_t)(x - 1) << 23;" (float32 subnormals for x = 0, 1; no NaN case)
SY_INLINE float e8m0_half(uint8_t e) {
  union {
    uint32_t u;
    float f;
  } v = {e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23};
  return v.f;
}

// ---- SIMD helpers -------------------------------------------------------------

// Eight binary16 scales: lanes 0-3 from a, a + sa, a + 2 sa, a + 3 sa; lanes 4-7 from b likewise.
SY_INLINE v128_t load_f16x8(const uint8_t *a, int32_t sa, const uint8_t *b, int32_t sb) {
  v128_t v = wasm_i16x8_splat(0);
  v = wasm_v128_load16_lane(a, v, 0);
  v = wasm_v128_load16_lane(a + sa, v, 1);
  v = wasm_v128_load16_lane(a + 2 * sa, v, 2);
  v = wasm_v128_load16_lane(a + 3 * sa, v, 3);
  v = wasm_v128_load16_lane(b, v, 4);
  v = wasm_v128_load16_lane(b + sb, v, 5);
  v = wasm_v128_load16_lane(b + 2 * sb, v, 6);
  v = wasm_v128_load16_lane(b + 3 * sb, v, 7);
  return v;
}

// Four finite binary16 values, sign-extended in the i32 lanes of h, to float32, exactly:
// sign | exponent | mantissa moved to float32's positions, then a multiplication by 2^112
// re-biases the exponent (exact; it also normalises subnormals and keeps the sign).
SY_INLINE v128_t f16x4_finite_to_f32(v128_t h) {
  v128_t bits = wasm_v128_and(wasm_i32x4_shl(h, 13), wasm_i32x4_splat((int32_t)0x8fffe000u));
  return wasm_f32x4_mul(bits, wasm_i32x4_splat(0x77800000));
}

// Lanes 0-3 times lanes 4-7 of eight finite binary16 values, as floats.
SY_INLINE v128_t f16x8_products(v128_t h) {
  return wasm_f32x4_mul(f16x4_finite_to_f32(wasm_i32x4_extend_low_i16x8(h)),
                        f16x4_finite_to_f32(wasm_i32x4_extend_high_i16x8(h)));
}

// [Σa, Σb, Σc, Σd] from four vectors of partial sums (integer: order does not matter).
SY_INLINE v128_t hsum4_i32(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// 16 bytes of packed nibbles: element j (0..15) is the low nibble of byte j, element
// j + 16 the high nibble (ggml's order for every 32-element type).
SY_INLINE void nibbles(const uint8_t *q, v128_t *lo, v128_t *hi) {
  v128_t raw = wasm_v128_load(q);
  v128_t m = wasm_i8x16_splat(0x0f);
  *lo = wasm_v128_and(raw, m);
  *hi = wasm_v128_and(wasm_u16x8_shr(raw, 4), m);
}

// Q5 fifth bits: qh is the little-endian uint32 at p; byte j of *b0 is 0xff if bit j is set
// (else 0), *b1 the same for bits 16..31. (ggml x86 bytes_from_bits_32 does the same with a
// shuffle, an or-mask and a compare.)
SY_INLINE void fifth_bits(const uint8_t *p, v128_t *b0, v128_t *b1) {
  v128_t v = wasm_v128_load32_splat(p);
  v128_t bit = wasm_i8x16_const(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  v128_t s0 = wasm_i8x16_shuffle(v, v, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  v128_t s1 = wasm_i8x16_shuffle(v, v, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  *b0 = wasm_i8x16_eq(wasm_v128_and(s0, bit), bit);
  *b1 = wasm_i8x16_eq(wasm_v128_and(s1, bit), bit);
}

// Exact dot product of 16 signed bytes by 16 signed bytes (any values), added to the
// four int32 lanes of acc. Widening multiply-add; used where neither operand fits i7.
SY_INLINE v128_t dot_i8_wide(v128_t a, v128_t b, v128_t acc) {
  v128_t lo = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b));
  v128_t hi = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b));
  return wasm_i32x4_add(acc, wasm_i32x4_add(lo, hi));
}

#ifdef SY_RELAXED
// Pairwise i16 dot: lane k = a[2k] b[2k] + a[2k+1] b[2k+1]; a any int8, b in [0, 127]
// (exact and deterministic there). Callers keep every i16 lane within range.
#define DOT16(a, b) wasm_i16x8_relaxed_dot_i8x16_i7x16((a), (b))
#define TBL16(t, i) wasm_i8x16_relaxed_swizzle((t), (i))  // i in [0, 15]: deterministic
#else
#define TBL16(t, i) wasm_i8x16_swizzle((t), (i))
#endif

// ---- per-block integer dot products -----------------------------------------------
// Each returns an i32x4 whose lanes add up to the block's exact isum, in both builds and
// for any bytes, except IQ4_NL's relaxed path, which needs activation codes != -128. The
// quantizer writes -128 only for a block with d = 0 (max|x| < 127 / FLT_MAX, where the
// term is 0 whatever isum is) or with an infinite or NaN input (see quantize_q8).
// Relaxed builds keep the unsigned operand of the i7 dot in [0, 127] (deterministic) and
// every i16 lane in range (no saturation); the bounds are noted per type.

// Q4_0: Σ (c - 8) x. Relaxed: Σ c x - 8 Σ x, both with unsigned codes as the i7 operand.
SY_INLINE v128_t q4_0_block(const uint8_t *w, const uint8_t *x) {
  v128_t lo, hi;
  nibbles(w + 2, &lo, &hi);
  v128_t x0 = wasm_v128_load(x + 2), x1 = wasm_v128_load(x + 18);
#ifdef SY_RELAXED
  // i16 lanes: |Σ c x| <= 4 * 128 * 15 = 7680, |8 Σ x| <= 4 * 8 * 128 = 4096.
  v128_t eight = wasm_i8x16_splat(8);
  v128_t p = wasm_i16x8_add(DOT16(x0, lo), DOT16(x1, hi));
  v128_t s = wasm_i16x8_add(DOT16(x0, eight), DOT16(x1, eight));
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_sub(p, s));
#else
  v128_t eight = wasm_i8x16_splat(8);
  v128_t acc = dot_i8_wide(x0, wasm_i8x16_sub(lo, eight), wasm_i32x4_splat(0));
  return dot_i8_wide(x1, wasm_i8x16_sub(hi, eight), acc);
#endif
}

// Q4_1: Σ c x, codes 0..15.
SY_INLINE v128_t q4_1_block(const uint8_t *w, const uint8_t *x) {
  v128_t lo, hi;
  nibbles(w + 4, &lo, &hi);
  v128_t x0 = wasm_v128_load(x + 4), x1 = wasm_v128_load(x + 20);
#ifdef SY_RELAXED
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_add(DOT16(x0, lo), DOT16(x1, hi)));  // <= 7680
#else
  return dot_i8_wide(x1, hi, dot_i8_wide(x0, lo, wasm_i32x4_splat(0)));
#endif
}

// Q5_0: Σ (c - 16) x with c = low4 + 16 * fifth bit, i.e. Σ low4 x - 16 Σ_(fifth bit clear) x.
SY_INLINE v128_t q5_0_block(const uint8_t *w, const uint8_t *x) {
  v128_t lo, hi, h0, h1;
  nibbles(w + 6, &lo, &hi);
  fifth_bits(w + 2, &h0, &h1);
  v128_t x0 = wasm_v128_load(x + 2), x1 = wasm_v128_load(x + 18);
  v128_t sixteen = wasm_i8x16_splat(16);
  v128_t n0 = wasm_v128_andnot(sixteen, h0), n1 = wasm_v128_andnot(sixteen, h1);  // 16 where the bit is clear
#ifdef SY_RELAXED
  // i16 lanes: |Σ low4 x| <= 4 * 128 * 15 = 7680, |Σ n x| <= 4 * 128 * 16 = 8192.
  v128_t p = wasm_i16x8_add(DOT16(x0, lo), DOT16(x1, hi));
  v128_t s = wasm_i16x8_add(DOT16(x0, n0), DOT16(x1, n1));
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_sub(p, s));
#else
  v128_t c0 = wasm_i8x16_sub(lo, n0), c1 = wasm_i8x16_sub(hi, n1);
  return dot_i8_wide(x1, c1, dot_i8_wide(x0, c0, wasm_i32x4_splat(0)));
#endif
}

// Q5_1: Σ c x, codes 0..31.
SY_INLINE v128_t q5_1_block(const uint8_t *w, const uint8_t *x) {
  v128_t lo, hi, h0, h1;
  nibbles(w + 8, &lo, &hi);
  fifth_bits(w + 4, &h0, &h1);
  v128_t sixteen = wasm_i8x16_splat(16);
  v128_t c0 = wasm_v128_or(lo, wasm_v128_and(h0, sixteen)), c1 = wasm_v128_or(hi, wasm_v128_and(h1, sixteen));
  v128_t x0 = wasm_v128_load(x + 4), x1 = wasm_v128_load(x + 20);
#ifdef SY_RELAXED
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_add(DOT16(x0, c0), DOT16(x1, c1)));  // <= 15872
#else
  return dot_i8_wide(x1, c1, dot_i8_wide(x0, c0, wasm_i32x4_splat(0)));
#endif
}

// Q8_0 x Q8_0: Σ w x. Weights may hold -128 and both operands are signed, so neither
// fits the relaxed i7 operand: widening products in both builds.
SY_INLINE v128_t q8_0_block(const uint8_t *w, const uint8_t *x) {
  v128_t acc = dot_i8_wide(wasm_v128_load(w + 2), wasm_v128_load(x + 2), wasm_i32x4_splat(0));
  return dot_i8_wide(wasm_v128_load(w + 18), wasm_v128_load(x + 18), acc);
}

// IQ4_NL: Σ T[c] x. Relaxed: the level's magnitude |T[c]| <= 127 is the i7 operand and its
// sign moves onto x (T[c] < 0 exactly for c < 8); i16 lanes <= 2 * 128 * 127.
SY_INLINE v128_t iq4_nl_block(const uint8_t *w, const uint8_t *x) {
  v128_t lo, hi;
  nibbles(w + 2, &lo, &hi);
  v128_t x0 = wasm_v128_load(x + 2), x1 = wasm_v128_load(x + 18);
#ifdef SY_RELAXED
  v128_t mag = wasm_i8x16_const(127, 104, 83, 65, 49, 35, 22, 10, 1, 13, 25, 38, 53, 69, 89, 113);
  v128_t eight = wasm_i8x16_splat(8);
  v128_t n0 = wasm_i8x16_lt(lo, eight), n1 = wasm_i8x16_lt(hi, eight);  // -1 where T < 0
  v128_t a0 = wasm_i8x16_sub(wasm_v128_xor(x0, n0), n0), a1 = wasm_i8x16_sub(wasm_v128_xor(x1, n1), n1);
  return wasm_i32x4_add(wasm_i32x4_extadd_pairwise_i16x8(DOT16(a0, TBL16(mag, lo))),
                        wasm_i32x4_extadd_pairwise_i16x8(DOT16(a1, TBL16(mag, hi))));
#else
  v128_t levels = wasm_v128_load(IQ4NL_LEVELS);
  return dot_i8_wide(x1, TBL16(levels, hi), dot_i8_wide(x0, TBL16(levels, lo), wasm_i32x4_splat(0)));
#endif
}

// MXFP4: Σ K[c] x with the doubled E2M1 levels K. Relaxed: Σ (K[c] + 12) x - 12 Σ x.
SY_INLINE v128_t mxfp4_block(const uint8_t *w, const uint8_t *x) {
  v128_t lo, hi;
  nibbles(w + 1, &lo, &hi);
  v128_t x0 = wasm_v128_load(x + 2), x1 = wasm_v128_load(x + 18);
#ifdef SY_RELAXED
  // i16 lanes: |Σ (K + 12) x| <= 4 * 128 * 24 = 12288, |12 Σ x| <= 6144.
  v128_t shifted = wasm_i8x16_const(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
  v128_t twelve = wasm_i8x16_splat(12);
  v128_t p = wasm_i16x8_add(DOT16(x0, TBL16(shifted, lo)), DOT16(x1, TBL16(shifted, hi)));
  v128_t s = wasm_i16x8_add(DOT16(x0, twelve), DOT16(x1, twelve));
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_sub(p, s));
#else
  v128_t levels = wasm_v128_load(MXFP4_LEVELS);
  return dot_i8_wide(x1, TBL16(levels, hi), dot_i8_wide(x0, TBL16(levels, lo), wasm_i32x4_splat(0)));
#endif
}

// ---- the dot-product driver -----------------------------------------------------------
// Four blocks per step: their integer sums side by side (hsum4_i32), their scales converted
// and multiplied four at a time, the four terms added to the four lanes of acc (= acc[b % 4]).
// The fast scale conversion is exact for finite fp16 values only; instead of a branch per
// step (measured 15% slower), each step keeps the largest fp16 exponent field seen, and a
// row with an infinite or NaN scale is recomputed by the exact one-block-at-a-time loop,
// which has the same float order. Leftover blocks (nb % 4) take that loop too.

SY_INLINE v128_t e8m0x4_half(const uint8_t *w) {
  v128_t e = wasm_i32x4_splat(0);
  e = wasm_v128_load8_lane(w, e, 0);
  e = wasm_v128_load8_lane(w + 17, e, 4);
  e = wasm_v128_load8_lane(w + 34, e, 8);
  e = wasm_v128_load8_lane(w + 51, e, 12);
  v128_t normal = wasm_i32x4_shl(wasm_i32x4_sub(e, wasm_i32x4_splat(1)), 23);
  v128_t tiny = wasm_i32x4_shl(wasm_i32x4_add(e, wasm_i32x4_splat(1)), 21);  // e = 0, 1: 0x200000 << e
  return wasm_v128_bitselect(normal, tiny, wasm_i32x4_gt(e, wasm_i32x4_splat(1)));
}

// T: type name; WB / XB: weight / activation block bytes; MIN: 1 for Q4_1 / Q5_1 (fp16 m at
// wb + 2, fp16 s at xb + 2); E8M0: 1 for MXFP4 (E8M0 exponent at wb, no fp16 weight scale).
#define DEFINE_VEC_DOT(T, WB, XB, MIN, E8M0)                                                        \
  SY_INLINE float T##_scale1(const uint8_t *wb) {                                                    \
    return E8M0 ? e8m0_half(wb[0]) : sy_f16_to_f32(sy_load_u16(wb));                                 \
  }                                                                                                  \
  /* blocks [b, nb) one at a time into a[b % 4], exact for any scale */                             \
  SY_INLINE void T##_blocks1(int32_t b, int32_t nb, const uint8_t *w, const uint8_t *xq, float *a) { \
    for (; b < nb; b++) {                                                                            \
      const uint8_t *wb = w + (size_t)b * (WB), *xb = xq + (size_t)b * (XB);                         \
      float isum = (float)sy_hsum_i32x4(T##_block(wb, xb));                                          \
      float term = (T##_scale1(wb) * sy_f16_to_f32(sy_load_u16(xb))) * isum;                         \
      if (MIN) term = term + sy_f16_to_f32(sy_load_u16(wb + 2)) * sy_f16_to_f32(sy_load_u16(xb + 2)); \
      a[b & 3] = a[b & 3] + term;                                                                    \
    }                                                                                                \
  }                                                                                                  \
  __attribute__((noinline)) static float T##_dot_exact(int32_t n, const uint8_t *w, const uint8_t *xq) { \
    float a[4] = {0, 0, 0, 0};                                                                       \
    T##_blocks1(0, n / 32, w, xq, a);                                                                \
    return (a[0] + a[1]) + (a[2] + a[3]);                                                            \
  }                                                                                                  \
  float sy_vec_dot_##T(int32_t n, const uint8_t *w, const uint8_t *xq) {                             \
    int32_t nb = n / 32, b = 0;                                                                      \
    v128_t acc = wasm_f32x4_splat(0.0f), emax = wasm_i16x8_splat(0);                                 \
    v128_t efield = wasm_i16x8_splat(0x7c00);                                                        \
    const uint8_t *wb = w, *xb = xq;                                                                 \
    for (; b + 4 <= nb; b += 4, wb += 4 * (WB), xb += 4 * (XB)) {                                    \
      v128_t i0 = T##_block(wb, xb), i1 = T##_block(wb + (WB), xb + (XB));                           \
      v128_t i2 = T##_block(wb + 2 * (WB), xb + 2 * (XB)), i3 = T##_block(wb + 3 * (WB), xb + 3 * (XB)); \
      v128_t isum = wasm_f32x4_convert_i32x4(hsum4_i32(i0, i1, i2, i3));                            \
      v128_t h = E8M0 ? load_f16x8(xb, XB, xb, XB) : load_f16x8(wb, WB, xb, XB);                     \
      emax = wasm_u16x8_max(emax, wasm_v128_and(h, efield));                                         \
      v128_t dx = f16x4_finite_to_f32(wasm_i32x4_extend_high_i16x8(h));                              \
      v128_t dw = E8M0 ? e8m0x4_half(wb) : f16x4_finite_to_f32(wasm_i32x4_extend_low_i16x8(h));      \
      v128_t term = wasm_f32x4_mul(wasm_f32x4_mul(dw, dx), isum);                                    \
      if (MIN) {                                                                                     \
        v128_t ms = load_f16x8(wb + 2, WB, xb + 2, XB);                                              \
        emax = wasm_u16x8_max(emax, wasm_v128_and(ms, efield));                                      \
        term = wasm_f32x4_add(term, f16x8_products(ms));                                             \
      }                                                                                              \
      acc = wasm_f32x4_add(acc, term);                                                               \
    }                                                                                                \
    if (__builtin_expect(wasm_v128_any_true(wasm_i16x8_eq(emax, efield)), 0)) return T##_dot_exact(n, w, xq); \
    float a[4];                                                                                      \
    wasm_v128_store(a, acc);                                                                         \
    T##_blocks1(b, nb, w, xq, a);                                                                    \
    return (a[0] + a[1]) + (a[2] + a[3]);                                                            \
  }

// ggml: "sumf += sumi*GGML_CPU_FP16_TO_FP32(x[ib].d)*GGML_CPU_FP16_TO_FP32(y[ib].d);" (Q4_0)
DEFINE_VEC_DOT(q4_0, 18, Q8_0_BYTES, 0, 0)
// ggml: "sumf += (GGML_CPU_FP16_TO_FP32(x[ib].d)*GGML_CPU_FP16_TO_FP32(y[ib].d))*sumi
//        + GGML_CPU_FP16_TO_FP32(x[ib].m)*GGML_CPU_FP16_TO_FP32(y[ib].s);" (Q4_1, Q5_1)
DEFINE_VEC_DOT(q4_1, 20, Q8_1_BYTES, 1, 0)
DEFINE_VEC_DOT(q5_0, 22, Q8_0_BYTES, 0, 0)
DEFINE_VEC_DOT(q5_1, 24, Q8_1_BYTES, 1, 0)
// ggml: "sumf += sumi*(GGML_CPU_FP16_TO_FP32(x[ib].d)*GGML_CPU_FP16_TO_FP32(y[ib].d));"
DEFINE_VEC_DOT(q8_0, 34, Q8_0_BYTES, 0, 0)
DEFINE_VEC_DOT(iq4_nl, 18, Q8_0_BYTES, 0, 0)
// ggml: "const float d = GGML_CPU_FP16_TO_FP32(y[ib].d)*GGML_E8M0_TO_FP32_HALF(x[ib].e);
//        ... sumf += d * (sumi1 + sumi2);"
DEFINE_VEC_DOT(mxfp4, 17, Q8_0_BYTES, 0, 1)

// ---- dequantization ---------------------------------------------------------------------
// Every product below is exact (README "Numerics"); the only rounding is Q4_1 / Q5_1's
// final "+ m". Integer codes are converted to float once, so a zero code times a negative
// scale gives -0.0, as ggml's dequantize_row_* do.

// y[0..15] = (float)q[i] * d (+ m when add_m) for 16 signed byte codes.
SY_INLINE void store16(float *y, v128_t q, v128_t d, v128_t m, int add_m) {
  v128_t q16[2] = {wasm_i16x8_extend_low_i8x16(q), wasm_i16x8_extend_high_i8x16(q)};
  for (int h = 0; h < 2; h++) {
    v128_t f0 = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(q16[h])), d);
    v128_t f1 = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(q16[h])), d);
    if (add_m) {
      f0 = wasm_f32x4_add(f0, m);
      f1 = wasm_f32x4_add(f1, m);
    }
    wasm_v128_store(y + 8 * h, f0);
    wasm_v128_store(y + 8 * h + 4, f1);
  }
}

// ggml: "y[i*qk + j + 0] = x0*d;" with "const int x0 = (x[i].qs[j] & 0x0F) - 8;"
void sy_dequant_q4_0(const uint8_t *x, float *y, int32_t n) {
  v128_t zero = wasm_f32x4_splat(0), eight = wasm_i8x16_splat(8);
  for (int32_t b = 0; b < n / 32; b++, x += 18, y += 32) {
    v128_t d = wasm_f32x4_splat(sy_f16_to_f32(sy_load_u16(x))), lo, hi;
    nibbles(x + 2, &lo, &hi);
    store16(y, wasm_i8x16_sub(lo, eight), d, zero, 0);
    store16(y + 16, wasm_i8x16_sub(hi, eight), d, zero, 0);
  }
}

// ggml: "y[i*qk + j + 0] = x0*d + m;"
void sy_dequant_q4_1(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / 32; b++, x += 20, y += 32) {
    v128_t d = wasm_f32x4_splat(sy_f16_to_f32(sy_load_u16(x)));
    v128_t m = wasm_f32x4_splat(sy_f16_to_f32(sy_load_u16(x + 2))), lo, hi;
    nibbles(x + 4, &lo, &hi);
    store16(y, lo, d, m, 1);
    store16(y + 16, hi, d, m, 1);
  }
}

// ggml: "const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16; y[i*qk + j + 0] = x0*d;"
void sy_dequant_q5_0(const uint8_t *x, float *y, int32_t n) {
  v128_t zero = wasm_f32x4_splat(0), sixteen = wasm_i8x16_splat(16);
  for (int32_t b = 0; b < n / 32; b++, x += 22, y += 32) {
    v128_t d = wasm_f32x4_splat(sy_f16_to_f32(sy_load_u16(x))), lo, hi, h0, h1;
    fifth_bits(x + 2, &h0, &h1);
    nibbles(x + 6, &lo, &hi);
    // code - 16 = low4 - (16 where the fifth bit is clear)
    store16(y, wasm_i8x16_sub(lo, wasm_v128_andnot(sixteen, h0)), d, zero, 0);
    store16(y + 16, wasm_i8x16_sub(hi, wasm_v128_andnot(sixteen, h1)), d, zero, 0);
  }
}

// ggml: "y[i*qk + j + 0] = x0*d + m;" (codes 0..31)
void sy_dequant_q5_1(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / 32; b++, x += 24, y += 32) {
    v128_t d = wasm_f32x4_splat(sy_f16_to_f32(sy_load_u16(x)));
    v128_t m = wasm_f32x4_splat(sy_f16_to_f32(sy_load_u16(x + 2))), lo, hi, h0, h1;
    fifth_bits(x + 4, &h0, &h1);
    nibbles(x + 8, &lo, &hi);
    v128_t sixteen = wasm_i8x16_splat(16);
    store16(y, wasm_v128_or(lo, wasm_v128_and(h0, sixteen)), d, m, 1);
    store16(y + 16, wasm_v128_or(hi, wasm_v128_and(h1, sixteen)), d, m, 1);
  }
}

// ggml: "y[i*qk + j] = x[i].qs[j]*d;"
void sy_dequant_q8_0(const uint8_t *x, float *y, int32_t n) {
  v128_t zero = wasm_f32x4_splat(0);
  for (int32_t b = 0; b < n / 32; b++, x += 34, y += 32) {
    v128_t d = wasm_f32x4_splat(sy_f16_to_f32(sy_load_u16(x)));
    store16(y, wasm_v128_load(x + 2), d, zero, 0);
    store16(y + 16, wasm_v128_load(x + 18), d, zero, 0);
  }
}

// ggml: "y[i*QK4_NL + j + 0] = d*kvalues_iq4nl[qs[j] & 0xf];"
void sy_dequant_iq4_nl(const uint8_t *x, float *y, int32_t n) {
  v128_t zero = wasm_f32x4_splat(0), levels = wasm_v128_load(IQ4NL_LEVELS);
  for (int32_t b = 0; b < n / 32; b++, x += 18, y += 32) {
    v128_t d = wasm_f32x4_splat(sy_f16_to_f32(sy_load_u16(x))), lo, hi;
    nibbles(x + 2, &lo, &hi);
    store16(y, TBL16(levels, lo), d, zero, 0);
    store16(y + 16, TBL16(levels, hi), d, zero, 0);
  }
}

// ggml: "const float d = GGML_E8M0_TO_FP32_HALF(x[i].e); ... y[i*qk + j + 0] = x0*d;"
// with "const int8_t x0 = kvalues_mxfp4[x[i].qs[j] & 0x0F];"
void sy_dequant_mxfp4(const uint8_t *x, float *y, int32_t n) {
  v128_t zero = wasm_f32x4_splat(0), levels = wasm_v128_load(MXFP4_LEVELS);
  for (int32_t b = 0; b < n / 32; b++, x += 17, y += 32) {
    v128_t d = wasm_f32x4_splat(e8m0_half(x[0])), lo, hi;
    nibbles(x + 1, &lo, &hi);
    store16(y, TBL16(levels, lo), d, zero, 0);
    store16(y + 16, TBL16(levels, hi), d, zero, 0);
  }
}

// ---- activation quantizers (ggml x86 AVX path) ---------------------------------------------
// ggml/src/ggml-cpu/arch/x86/quants.c quantize_row_q8_0 / quantize_row_q8_1:
//   "const float d = maxScalar / 127.f;"
//   "y[i].d = GGML_CPU_FP32_TO_FP16(d);"
//   "const float id = ( maxScalar != 0.0f ) ? 127.f / maxScalar : 0.0f;"
//   "v0 = _mm256_mul_ps( v0, mul );"  "v0 = _mm256_round_ps( v0, _MM_ROUND_NEAREST );"
//   "__m256i i0 = _mm256_cvtps_epi32( v0 );"  then _mm256_packs_epi32 / _mm256_packs_epi16
//   (Q8_1) "y[i].s = GGML_CPU_FP32_TO_FP16(d * hsum_i32_8(...(i0, i1)...(i2, i3)));"
// So: inverse scale 127 / max (not 1 / d as the reference quantize_row_q8_0_ref), rounding
// to nearest EVEN (not roundf), saturating packs; cvtps_epi32 turns NaN and values
// outside int32 into INT32_MIN (so an all-tiny block with id = inf packs to -128); s is
// the unrounded d times the int32 sum of the codes before packing (wrapping).
// fp16 conversion: F16C round to nearest even (sy_f32_to_f16). NaN inputs are not
// reproduced (x86 max_ps and wasm max treat NaN differently).
SY_INLINE void quantize_q8(const float *x, uint8_t *qs, float *d_out, int32_t *sum_out) {
  v128_t v[8];
  v128_t amax = wasm_f32x4_splat(0);
  for (int k = 0; k < 8; k++) {
    v[k] = wasm_v128_load(x + 4 * k);
    amax = wasm_f32x4_max(amax, wasm_f32x4_abs(v[k]));
  }
  amax = wasm_f32x4_max(amax, wasm_i32x4_shuffle(amax, amax, 2, 3, 0, 1));
  amax = wasm_f32x4_max(amax, wasm_i32x4_shuffle(amax, amax, 1, 0, 3, 2));
  float m = wasm_f32x4_extract_lane(amax, 0);
  float d = m / 127.f;
  float id = m != 0.0f ? 127.f / m : 0.0f;
  v128_t mul = wasm_f32x4_splat(id), limit = wasm_f32x4_splat(2147483648.0f);
  v128_t imin = wasm_i32x4_splat((int32_t)0x80000000u), sum = wasm_i32x4_splat(0);
  v128_t q[8];
  for (int k = 0; k < 8; k++) {
    v128_t r = wasm_f32x4_nearest(wasm_f32x4_mul(v[k], mul));
    v128_t in = wasm_f32x4_lt(wasm_f32x4_abs(r), limit);  // false for NaN and |r| >= 2^31
    q[k] = wasm_v128_bitselect(wasm_i32x4_trunc_sat_f32x4(r), imin, in);
    sum = wasm_i32x4_add(sum, q[k]);
  }
  v128_t a = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q[0], q[1]), wasm_i16x8_narrow_i32x4(q[2], q[3]));
  v128_t b = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q[4], q[5]), wasm_i16x8_narrow_i32x4(q[6], q[7]));
  wasm_v128_store(qs, a);
  wasm_v128_store(qs + 16, b);
  *d_out = d;
  // Lane adds wrap on overflow, as x86's do (only blocks with -2^31 codes get there).
  sum = wasm_i32x4_add(sum, wasm_i32x4_shuffle(sum, sum, 2, 3, 0, 1));
  sum = wasm_i32x4_add(sum, wasm_i32x4_shuffle(sum, sum, 1, 0, 3, 2));
  *sum_out = wasm_i32x4_extract_lane(sum, 0);
}

SY_INLINE void store_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

void sy_quantize_q8_0(const float *x, uint8_t *y, int32_t n) {
  for (int32_t b = 0; b < n / 32; b++, x += 32, y += Q8_0_BYTES) {
    float d;
    int32_t sum;
    quantize_q8(x, y + 2, &d, &sum);
    store_u16(y, sy_f32_to_f16(d));
  }
}

void sy_quantize_q8_1(const float *x, uint8_t *y, int32_t n) {
  for (int32_t b = 0; b < n / 32; b++, x += 32, y += Q8_1_BYTES) {
    float d;
    int32_t sum;
    quantize_q8(x, y + 4, &d, &sum);
    store_u16(y, sy_f32_to_f16(d));
    store_u16(y + 2, sy_f32_to_f16(d * (float)sum));
  }
}
