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
//   dx_b, sx_b = the activation's fp16 d, s as float32, read from the row's side arrays
//   (types.h: the quantizer stores them beside the ggml blocks, with Σq, once per call);
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

// Four binary16 values at p, p + s, p + 2 s, p + 3 s in the high halves of the i32 lanes
// (h << 16; the low halves are left unset and ignored by f16hi_finite_to_f32).
SY_INLINE v128_t load_f16x4_hi(const uint8_t *p, int32_t s) {
  v128_t v = wasm_i32x4_splat(0);
  v = wasm_v128_load16_lane(p, v, 1);
  v = wasm_v128_load16_lane(p + s, v, 3);
  v = wasm_v128_load16_lane(p + 2 * s, v, 5);
  v = wasm_v128_load16_lane(p + 3 * s, v, 7);
  return v;
}

// Four finite binary16 values from load_f16x4_hi to float32, exactly: an arithmetic shift
// right by 3 puts sign | exponent | mantissa at float32's positions (the mask clears the
// copies of the sign and the low half), then a multiplication by 2^112 re-biases the
// exponent (exact; it also normalises subnormals and keeps the sign).
SY_INLINE v128_t f16hi_finite_to_f32(v128_t h) {
  v128_t bits = wasm_v128_and(wasm_i32x4_shr(h, 3), wasm_i32x4_splat((int32_t)0x8fffe000u));
  return wasm_f32x4_mul(bits, wasm_i32x4_splat(0x77800000));
}

// [Σa, Σb, Σc, Σd] from four vectors of partial sums (integer: order does not matter).
SY_INLINE v128_t hsum4_i32(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// The same from i16x8 partial sums: level 2 adds lanes in i16 twice (|lane| <= 8191), level
// 1 once (|lane| <= 16383), then widens; fewer widening steps than one per block.
SY_INLINE v128_t hsum4_i16(int level, v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_i16x8_add(wasm_i64x2_shuffle(a, b, 0, 2), wasm_i64x2_shuffle(a, b, 1, 3));  // [a a b b]
  v128_t cd = wasm_i16x8_add(wasm_i64x2_shuffle(c, d, 0, 2), wasm_i64x2_shuffle(c, d, 1, 3));
  if (level == 2) {
    v128_t r = wasm_i16x8_add(wasm_i32x4_shuffle(ab, cd, 0, 2, 4, 6), wasm_i32x4_shuffle(ab, cd, 1, 3, 5, 7));
    return wasm_i32x4_extadd_pairwise_i16x8(r);
  }
  ab = wasm_i32x4_extadd_pairwise_i16x8(ab);  // [a a b b] in i32
  cd = wasm_i32x4_extadd_pairwise_i16x8(cd);
  return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 2, 4, 6), wasm_i32x4_shuffle(ab, cd, 1, 3, 5, 7));
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
// Each returns a vector whose lanes add up to the block's exact isum (+ SUMK Σq), in both
// builds and for any bytes: i32x4 lanes where T_I16 is 0, else i16x8 lanes small enough
// that T_I16 rounds of pairwise i16 additions stay in range (1: |lane| <= 16383, 2: <= 8191;
// see hsum4_i16), except IQ4_NL's relaxed path, which needs activation codes != -128. The
// quantizer writes -128 only for a block with d = 0 (max|x| < 127 / FLT_MAX, where the
// term is 0 whatever isum is) or with an infinite or NaN input (see quantize_q8).
// Relaxed builds keep the unsigned operand of the i7 dot in [0, 127] (deterministic) and
// every i16 lane in range (no saturation); the bounds are noted per type.

// Σ c x over one block: codes c0 (elements 0-15) and c1 (16-31), in [0, 127] in the relaxed
// build (the i7 operand), any int8 in simd128, against the 32 activation codes at x.
// Relaxed: i16 lanes (each <= 2 * 128 * max c); simd128: i32 lanes.
SY_INLINE v128_t dot_codes(v128_t c0, v128_t c1, const uint8_t *x) {
  v128_t x0 = wasm_v128_load(x), x1 = wasm_v128_load(x + 16);
#ifdef SY_RELAXED
  return wasm_i16x8_add(DOT16(x0, c0), DOT16(x1, c1));
#else
  return dot_i8_wide(x1, c1, dot_i8_wide(x0, c0, wasm_i32x4_splat(0)));
#endif
}

// Q5 codes 0..31: low nibbles at qs, fifth bits in the uint32 at qh.
SY_INLINE void q5_codes(const uint8_t *qh, const uint8_t *qs, v128_t *c0, v128_t *c1) {
  v128_t lo, hi, h0, h1;
  nibbles(qs, &lo, &hi);
  fifth_bits(qh, &h0, &h1);
  v128_t sixteen = wasm_i8x16_splat(16);
  *c0 = wasm_v128_or(lo, wasm_v128_and(h0, sixteen));
  *c1 = wasm_v128_or(hi, wasm_v128_and(h1, sixteen));
}

// Q4_0: Σ (c - 8) x = Σ c x - 8 Σq: the lanes give Σ c x with unsigned codes c (the i7
// operand); the driver subtracts 8 Σq (Q4_0_SUMK) with the precomputed activation sums.
#define Q4_0_SUMK 8
#ifdef SY_RELAXED
#define Q4_0_I16 2
#else
#define Q4_0_I16 0
#endif
SY_INLINE v128_t q4_0_block(const uint8_t *w, const uint8_t *x) {
  v128_t lo, hi;
  nibbles(w + 2, &lo, &hi);
  return dot_codes(lo, hi, x + 2);  // relaxed i16 lanes <= 7680
}

// Q4_1: Σ c x, codes 0..15.
#define Q4_1_SUMK 0
#ifdef SY_RELAXED
#define Q4_1_I16 2
#else
#define Q4_1_I16 0
#endif
SY_INLINE v128_t q4_1_block(const uint8_t *w, const uint8_t *x) {
  v128_t lo, hi;
  nibbles(w + 4, &lo, &hi);
  return dot_codes(lo, hi, x + 4);  // relaxed i16 lanes <= 7680
}

// Q5_0: Σ (c - 16) x = Σ c x - 16 Σq with c = low4 + 16 * fifth bit in 0..31 (the driver
// subtracts 16 Σq).
#define Q5_0_SUMK 16
#ifdef SY_RELAXED
#define Q5_0_I16 1
#else
#define Q5_0_I16 0
#endif
SY_INLINE v128_t q5_0_block(const uint8_t *w, const uint8_t *x) {
  v128_t c0, c1;
  q5_codes(w + 2, w + 6, &c0, &c1);
  return dot_codes(c0, c1, x + 2);  // relaxed i16 lanes <= 15872
}

// Q5_1: Σ c x, codes 0..31.
#define Q5_1_SUMK 0
#ifdef SY_RELAXED
#define Q5_1_I16 1
#else
#define Q5_1_I16 0
#endif
SY_INLINE v128_t q5_1_block(const uint8_t *w, const uint8_t *x) {
  v128_t c0, c1;
  q5_codes(w + 4, w + 8, &c0, &c1);
  return dot_codes(c0, c1, x + 4);  // relaxed i16 lanes <= 15872
}

// Q8_0 x Q8_0: Σ w x. Weights may hold -128 and both operands are signed, so neither
// fits the relaxed i7 operand: widening products in both builds.
#define Q8_0_SUMK 0
#define Q8_0_I16 0
SY_INLINE v128_t q8_0_block(const uint8_t *w, const uint8_t *x) {
  v128_t acc = dot_i8_wide(wasm_v128_load(w + 2), wasm_v128_load(x + 2), wasm_i32x4_splat(0));
  return dot_i8_wide(wasm_v128_load(w + 18), wasm_v128_load(x + 18), acc);
}

// IQ4_NL: Σ T[c] x. Relaxed: the level's magnitude |T[c]| <= 127 is the i7 operand and its
// sign moves onto x (T[c] < 0 exactly for c < 8); i16 lanes <= 2 * 128 * 127.
#define IQ4_NL_SUMK 0
#define IQ4_NL_I16 0
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

// MXFP4: Σ K[c] x with the doubled E2M1 levels K. Relaxed: Σ (K[c] + 12) x - 12 Σq (the
// driver subtracts 12 Σq).
#ifdef SY_RELAXED
#define MXFP4_SUMK 12
#define MXFP4_I16 1
#else
#define MXFP4_SUMK 0
#define MXFP4_I16 0
#endif
SY_INLINE v128_t mxfp4_block(const uint8_t *w, const uint8_t *x) {
  v128_t lo, hi;
  nibbles(w + 1, &lo, &hi);
#ifdef SY_RELAXED
  // i16 lanes: |Σ (K + 12) x| <= 4 * 128 * 24 = 12288.
  v128_t levels = wasm_i8x16_const(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
#else
  v128_t levels = wasm_v128_load(MXFP4_LEVELS);
#endif
  return dot_codes(TBL16(levels, lo), TBL16(levels, hi), x + 2);
}

// ---- the dot-product driver -----------------------------------------------------------
// Four blocks per step: their integer sums side by side (hsum4_i32, minus SUMK Σq where the
// block function leaves that out), the four activation scales dx (and Q8_1's s) by one
// load each from the row's side arrays, the four weight scales converted at once, and the
// four terms added to the four lanes of acc (= acc[b % 4]). The fast weight scale conversion
// is exact for finite fp16 values only; instead of a branch per step (measured 15% slower),
// each step keeps the largest fp16 exponent field seen, and a row with an infinite or NaN
// weight scale is recomputed by the exact one-block-at-a-time loop, which has the same float
// order. Leftover blocks (nb % 4) take that loop too. (The activation floats are exact for
// any fp16 value: the quantizer converts them with sy_f16_to_f32.)

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
// wb + 2; the activation's s in the second side array); E8M0: 1 for MXFP4 (E8M0 exponent at
// wb, no fp16 weight scale); SUMK: T##_block's lanes add up to isum + SUMK Σq; I16: the kind
// of lanes T##_block returns (0: i32x4; 1, 2: i16x8, the hsum4_i16 level).
// Side arrays of the activation row (types.h): xd = float d[nb4], x2 = int32 Σq[nb4] (Q8_0)
// or float s[nb4] (Q8_1).
#define DEFINE_VEC_DOT(T, WB, XB, MIN, E8M0, SUMK, I16)                                                  \
  SY_INLINE float T##_scale1(const uint8_t *wb) {                                                    \
    return E8M0 ? e8m0_half(wb[0]) : sy_f16_to_f32(sy_load_u16(wb));                                 \
  }                                                                                                  \
  /* blocks [b, nb) one at a time into a[b % 4], exact for any scale */                             \
  SY_INLINE void T##_blocks1(int32_t b, int32_t nb, const uint8_t *w, const uint8_t *xq,            \
                             const uint8_t *xd, const uint8_t *x2, float *a) {                       \
    for (; b < nb; b++) {                                                                            \
      const uint8_t *wb = w + (size_t)b * (WB), *xb = xq + (size_t)b * (XB);                         \
      v128_t p = T##_block(wb, xb);                                                                  \
      int32_t is = sy_hsum_i32x4(I16 ? wasm_i32x4_extadd_pairwise_i16x8(p) : p);                 \
      if (SUMK) is -= SUMK * sy_load_i32(x2 + 4 * b);                                                   \
      float term = (T##_scale1(wb) * sy_load_f32(xd + 4 * b)) * (float)is;                              \
      if (MIN) term = term + sy_f16_to_f32(sy_load_u16(wb + 2)) * sy_load_f32(x2 + 4 * b);             \
      a[b & 3] = a[b & 3] + term;                                                                    \
    }                                                                                                \
  }                                                                                                  \
  __attribute__((noinline)) static float T##_dot_exact(int32_t nb, const uint8_t *w, const uint8_t *xq, \
                                                       const uint8_t *xd, const uint8_t *x2) {       \
    float a[4] = {0, 0, 0, 0};                                                                       \
    T##_blocks1(0, nb, w, xq, xd, x2, a);                                                            \
    return (a[0] + a[1]) + (a[2] + a[3]);                                                            \
  }                                                                                                  \
  float sy_vec_dot_##T(int32_t n, const uint8_t *w, const uint8_t *xq) {                             \
    int32_t nb = n / 32, b = 0;                                                                      \
    const uint8_t *xd = xq + SY_Q8_SIDE(nb, XB), *x2 = xd + 4 * SY_Q8_NB4(nb);                       \
    v128_t acc = wasm_f32x4_splat(0.0f), emax = wasm_i32x4_splat(0);                                 \
    v128_t efield = wasm_i32x4_splat(0x7c000000);                                                    \
    const uint8_t *wb = w, *xb = xq;                                                                 \
    for (; b + 4 <= nb; b += 4, wb += 4 * (WB), xb += 4 * (XB)) {                                    \
      v128_t i0 = T##_block(wb, xb), i1 = T##_block(wb + (WB), xb + (XB));                           \
      v128_t i2 = T##_block(wb + 2 * (WB), xb + 2 * (XB)), i3 = T##_block(wb + 3 * (WB), xb + 3 * (XB)); \
      v128_t is = I16 ? hsum4_i16(I16, i0, i1, i2, i3) : hsum4_i32(i0, i1, i2, i3);          \
      __asm__ __volatile__("" ::: "memory"); /* keep the scale loads below: fewer live registers */ \
      if (SUMK) is = wasm_i32x4_sub(is, wasm_i32x4_mul(wasm_v128_load(x2 + 4 * b), wasm_i32x4_splat(SUMK))); \
      v128_t dw;                                                                                     \
      if (E8M0) {                                                                                    \
        dw = e8m0x4_half(wb);                                                                        \
      } else {                                                                                       \
        v128_t h = load_f16x4_hi(wb, WB);                                                            \
        emax = wasm_u32x4_max(emax, wasm_v128_and(h, efield));                                       \
        dw = f16hi_finite_to_f32(h);                                                                 \
      }                                                                                              \
      v128_t dx = wasm_v128_load(xd + 4 * b);                                                        \
      v128_t term = wasm_f32x4_mul(wasm_f32x4_mul(dw, dx), wasm_f32x4_convert_i32x4(is));            \
      if (MIN) {                                                                                     \
        v128_t m = load_f16x4_hi(wb + 2, WB);                                                        \
        emax = wasm_u32x4_max(emax, wasm_v128_and(m, efield));                                       \
        term = wasm_f32x4_add(term, wasm_f32x4_mul(f16hi_finite_to_f32(m), wasm_v128_load(x2 + 4 * b))); \
      }                                                                                              \
      acc = wasm_f32x4_add(acc, term);                                                               \
    }                                                                                                \
    if (__builtin_expect(wasm_v128_any_true(wasm_i32x4_eq(emax, efield)), 0)) {                      \
      return T##_dot_exact(nb, w, xq, xd, x2);                                                       \
    }                                                                                                \
    float a[4];                                                                                      \
    wasm_v128_store(a, acc);                                                                         \
    T##_blocks1(b, nb, w, xq, xd, x2, a);                                                            \
    return (a[0] + a[1]) + (a[2] + a[3]);                                                            \
  }                                                                                                  \
  /* N rows at once (N constant): the same steps per row as above; the weight scales are */       \
  /* converted once, and the weight codes, the same loads and operations for every row, are */      \
  /* computed once by the compiler (common subexpressions of the unrolled row loop). */              \
  SY_INLINE void T##_dot_n(int32_t n, const uint8_t *w, const uint8_t *const *xq, float *out, const int N) { \
    int32_t nb = n / 32, b = 0;                                                                      \
    const int32_t side = SY_Q8_SIDE(nb, XB), nb4 = SY_Q8_NB4(nb);                                     \
    v128_t acc[SY_DOT_N], emax = wasm_i32x4_splat(0);                                                \
    const v128_t efield = wasm_i32x4_splat(0x7c000000);                                              \
    for (int j = 0; j < N; j++) acc[j] = wasm_f32x4_splat(0.0f);                                     \
    const uint8_t *wb = w;                                                                           \
    for (; b + 4 <= nb; b += 4, wb += 4 * (WB)) {                                                    \
      v128_t dw, mw = wasm_i32x4_splat(0);                                                           \
      if (E8M0) {                                                                                    \
        dw = e8m0x4_half(wb);                                                                        \
      } else {                                                                                       \
        v128_t h = load_f16x4_hi(wb, WB);                                                            \
        emax = wasm_u32x4_max(emax, wasm_v128_and(h, efield));                                       \
        dw = f16hi_finite_to_f32(h);                                                                 \
      }                                                                                              \
      if (MIN) {                                                                                     \
        v128_t m = load_f16x4_hi(wb + 2, WB);                                                        \
        emax = wasm_u32x4_max(emax, wasm_v128_and(m, efield));                                       \
        mw = f16hi_finite_to_f32(m);                                                                 \
      }                                                                                              \
      for (int j = 0; j < N; j++) {                                                                  \
        const uint8_t *xb = xq[j] + (size_t)b * (XB), *xd = xq[j] + side, *x2 = xd + 4 * nb4;       \
        v128_t i0 = T##_block(wb, xb), i1 = T##_block(wb + (WB), xb + (XB));                         \
        v128_t i2 = T##_block(wb + 2 * (WB), xb + 2 * (XB)), i3 = T##_block(wb + 3 * (WB), xb + 3 * (XB)); \
        v128_t is = I16 ? hsum4_i16(I16, i0, i1, i2, i3) : hsum4_i32(i0, i1, i2, i3);        \
        if (SUMK) is = wasm_i32x4_sub(is, wasm_i32x4_mul(wasm_v128_load(x2 + 4 * b), wasm_i32x4_splat(SUMK))); \
        v128_t term = wasm_f32x4_mul(wasm_f32x4_mul(dw, wasm_v128_load(xd + 4 * b)), wasm_f32x4_convert_i32x4(is)); \
        if (MIN) term = wasm_f32x4_add(term, wasm_f32x4_mul(mw, wasm_v128_load(x2 + 4 * b)));         \
        acc[j] = wasm_f32x4_add(acc[j], term);                                                       \
      }                                                                                              \
    }                                                                                                \
    const int exact = wasm_v128_any_true(wasm_i32x4_eq(emax, efield));                               \
    for (int j = 0; j < N; j++) {                                                                    \
      const uint8_t *xd = xq[j] + side, *x2 = xd + 4 * nb4;                                          \
      if (__builtin_expect(exact, 0)) {                                                              \
        out[j] = T##_dot_exact(nb, w, xq[j], xd, x2);                                                \
        continue;                                                                                    \
      }                                                                                              \
      float a[4];                                                                                    \
      wasm_v128_store(a, acc[j]);                                                                    \
      T##_blocks1(b, nb, w, xq[j], xd, x2, a);                                                       \
      out[j] = (a[0] + a[1]) + (a[2] + a[3]);                                                        \
    }                                                                                                \
  }                                                                                                  \
  void sy_vec_dot_n_##T(int32_t n, const uint8_t *w, const uint8_t *const *xq, int32_t count, float *out) { \
    switch (count) {                                                                                 \
      case 1: T##_dot_n(n, w, xq, out, 1); break;                                                    \
      case 2: T##_dot_n(n, w, xq, out, 2); break;                                                    \
      case 3: T##_dot_n(n, w, xq, out, 3); break;                                                    \
      default: T##_dot_n(n, w, xq, out, 4); break;                                                   \
    }                                                                                                \
  }

// ggml: "sumf += sumi*GGML_CPU_FP16_TO_FP32(x[ib].d)*GGML_CPU_FP16_TO_FP32(y[ib].d);" (Q4_0)
DEFINE_VEC_DOT(q4_0, 18, Q8_0_BYTES, 0, 0, Q4_0_SUMK, Q4_0_I16)
// ggml: "sumf += (GGML_CPU_FP16_TO_FP32(x[ib].d)*GGML_CPU_FP16_TO_FP32(y[ib].d))*sumi
//        + GGML_CPU_FP16_TO_FP32(x[ib].m)*GGML_CPU_FP16_TO_FP32(y[ib].s);" (Q4_1, Q5_1)
DEFINE_VEC_DOT(q4_1, 20, Q8_1_BYTES, 1, 0, Q4_1_SUMK, Q4_1_I16)
DEFINE_VEC_DOT(q5_0, 22, Q8_0_BYTES, 0, 0, Q5_0_SUMK, Q5_0_I16)
DEFINE_VEC_DOT(q5_1, 24, Q8_1_BYTES, 1, 0, Q5_1_SUMK, Q5_1_I16)
// ggml: "sumf += sumi*(GGML_CPU_FP16_TO_FP32(x[ib].d)*GGML_CPU_FP16_TO_FP32(y[ib].d));"
DEFINE_VEC_DOT(q8_0, 34, Q8_0_BYTES, 0, 0, Q8_0_SUMK, Q8_0_I16)
DEFINE_VEC_DOT(iq4_nl, 18, Q8_0_BYTES, 0, 0, IQ4_NL_SUMK, IQ4_NL_I16)
// ggml: "const float d = GGML_CPU_FP16_TO_FP32(y[ib].d)*GGML_E8M0_TO_FP32_HALF(x[ib].e);
//        ... sumf += d * (sumi1 + sumi2);"
DEFINE_VEC_DOT(mxfp4, 17, Q8_0_BYTES, 0, 1, MXFP4_SUMK, MXFP4_I16)

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
// Also returns in *qsum_out the sum of the stored (saturated) int8 codes, for the side array.
SY_INLINE void quantize_q8(const float *x, uint8_t *qs, float *d_out, int32_t *sum_out, int32_t *qsum_out) {
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
  *qsum_out = sy_hsum_i32x4(wasm_i32x4_extadd_pairwise_i16x8(
      wasm_i16x8_add(wasm_i16x8_extadd_pairwise_i8x16(a), wasm_i16x8_extadd_pairwise_i8x16(b))));
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

SY_INLINE void store_f32(uint8_t *p, float v) { __builtin_memcpy(p, &v, 4); }

// Zero bytes [p, end): the padding of a dot row, so that its bytes are fully determined.
SY_INLINE void zero_bytes(uint8_t *p, const uint8_t *end) {
  while (p < end) *p++ = 0;
}

// Our Q8_0 row (types.h): ggml blocks, then float d[nb4] and int32 Σq[nb4].
void sy_quantize_q8_0(const float *x, uint8_t *y, int32_t n) {
  int32_t nb = n / 32, nb4 = SY_Q8_NB4(nb);
  uint8_t *xd = y + SY_Q8_SIDE(nb, Q8_0_BYTES), *x2 = xd + 4 * nb4;
  zero_bytes(y + nb * Q8_0_BYTES, xd);
  for (int32_t b = 0; b < nb; b++) {
    uint8_t *yb = y + b * Q8_0_BYTES;
    float d;
    int32_t sum, qsum;
    quantize_q8(x + 32 * b, yb + 2, &d, &sum, &qsum);
    uint16_t h = sy_f32_to_f16(d);
    store_u16(yb, h);
    store_f32(xd + 4 * b, sy_f16_to_f32(h));
    __builtin_memcpy(x2 + 4 * b, &qsum, 4);
  }
  zero_bytes(xd + 4 * nb, xd + 4 * nb4);
  zero_bytes(x2 + 4 * nb, x2 + 4 * nb4);
}

// Our Q8_1 row (types.h): ggml blocks, then float d[nb4] and float s[nb4].
void sy_quantize_q8_1(const float *x, uint8_t *y, int32_t n) {
  int32_t nb = n / 32, nb4 = SY_Q8_NB4(nb);
  uint8_t *xd = y + SY_Q8_SIDE(nb, Q8_1_BYTES), *x2 = xd + 4 * nb4;
  zero_bytes(y + nb * Q8_1_BYTES, xd);
  for (int32_t b = 0; b < nb; b++) {
    uint8_t *yb = y + b * Q8_1_BYTES;
    float d;
    int32_t sum, qsum;
    quantize_q8(x + 32 * b, yb + 4, &d, &sum, &qsum);
    uint16_t hd = sy_f32_to_f16(d), hs = sy_f32_to_f16(d * (float)sum);
    store_u16(yb, hd);
    store_u16(yb + 2, hs);
    store_f32(xd + 4 * b, sy_f16_to_f32(hd));
    store_f32(x2 + 4 * b, sy_f16_to_f32(hs));
  }
  zero_bytes(xd + 4 * nb, xd + 4 * nb4);
  zero_bytes(x2 + 4 * nb, x2 + 4 * nb4);
}
