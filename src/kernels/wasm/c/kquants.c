// 256-element super-block weight types: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0 and
// TQ2_0 (exact dequantization, and dot products with Q8_K activations), plus the Q8_K
// activation quantizer.
//
// References (llama.cpp d32676d77): ggml/src/ggml-common.h (block_* layouts),
// ggml/src/ggml-quants.c (dequantize_row_*, quantize_row_q8_K_ref),
// ggml/src/ggml-cpu/quants.c (ggml_vec_dot_*_q8_K_generic),
// ggml/src/ggml-cpu/arch/x86/quants.c (quantize_row_q8_K, which calls the reference).
// The block layouts are also spelled out in the golden data's quants/README.md.
// The TypeScript twin is src/kernels/ref/kquants.ts.
//
// Dot products (the bit-exactness contract with the twin). Per super-block, exact
// integer sums
//   isum  = sum_s scale_s * sum_{i in s} q8_i * q_i   (q_i: the signed integer code the
//                                                       dequantizer multiplies)
//   summs = sum_s min_s * bsum_s                        (Q2_K, Q4_K, Q5_K: the mins)
// then one float32 combination per block, in this order (no fused multiply-add):
//   Q2_K, Q4_K, Q5_K:           sumf = sumf + ((dx * (float)isum) - (dm * (float)summs))
//   Q3_K, Q6_K, IQ4_XS, TQ*:    sumf = sumf + (dx * (float)isum)
// with dx = y.d * fp16(x.d) and dm = y.d * fp16(x.dmin); sumf starts at 0.
// This is ggml's generic Q2_K formula (`sumf += dall * isum - dmin * summs`); for the
// other types ggml splits isum over lanes or sub-blocks, we keep it whole (exact).
//
// SIMD: codes that can be negative are dotted as unsigned codes u = q + k (k = 4 for
// Q3_K, 32 for Q6_K, 1 for TQ*), and k * sum(q8) is taken back with the Q8_K bsums, so
// the unsigned operand of the byte dot product stays in [0, 127] (see dot16). This
// relies on the bsums being the sums of qs, as sy_quantize_q8_k writes them (the twin
// dots the signed codes directly, so a test catches any disagreement).
#include "types.h"

#define Q8K_QS(p) ((const int8_t *)((p) + 4))
#define Q8K_BSUMS(p) ((const int16_t *)((p) + 260))


// fp16 -> float32, exact: the 15 magnitude bits placed at float32's exponent/mantissa
// boundary and scaled by 2^112 (exact, and it normalises fp16 subnormals); inf/NaN apart.
SY_INLINE float fp16_at(const uint8_t *p) {
  uint16_t h = sy_load_u16(p);
  if ((h & 0x7c00) == 0x7c00) return sy_f16_to_f32(h);
  uint32_t bits = (uint32_t)(h & 0x7fff) << 13;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  f *= 0x1p112f;
  __builtin_memcpy(&bits, &f, 4);
  bits |= (uint32_t)(h & 0x8000) << 16;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

// 16 byte products a[i] * b[i] (a signed, b in [0, 127]) added in pairs into eight int16
// lanes; which pairs share a lane differs between builds, only the total is used. A lane
// holds at most 2 * 127 * max(b), so callers may add a few before widening to int32.
// Unlike sy_dot_i8_u7 this stays in 16 bits, so the scale multiply can widen for free
// (i32x4.dot_i16x8).
SY_INLINE v128_t dot16(v128_t a, v128_t b) {
#ifdef SY_RELAXED
  return wasm_i16x8_relaxed_dot_i8x16_i7x16(a, b);
#else
  return wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(a, b), wasm_i16x8_extmul_high_i8x16(a, b));
#endif
}

// Broadcast int16 lane j (a literal) of v.
#define SPLAT16(v, j) wasm_i16x8_shuffle((v), (v), (j), (j), (j), (j), (j), (j), (j), (j))

// (v >> shift) & mask on every byte (16-bit shifts: the mask drops what crosses bytes).
SY_INLINE v128_t bits(v128_t v, int shift, int mask) {
  return wasm_v128_and(shift ? wasm_u16x8_shr(v, shift) : v, wasm_i8x16_splat((int8_t)mask));
}

// Bit `from` of every byte of v, moved to bit `to` (other bits cleared).
SY_INLINE v128_t bit_move(v128_t v, int from, int to) {
  v128_t t = from < to ? wasm_i16x8_shl(v, to - from) : from > to ? wasm_u16x8_shr(v, from - to) : v;
  return wasm_v128_and(t, wasm_i8x16_splat((int8_t)(1 << to)));
}

// Exact int32 totals of two vectors.
SY_INLINE void hsum2(v128_t a, v128_t b, int32_t *sa, int32_t *sb) {
  v128_t t = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 1, 4, 5), wasm_i32x4_shuffle(a, b, 2, 3, 6, 7));
  *sa = wasm_i32x4_extract_lane(t, 0) + wasm_i32x4_extract_lane(t, 1);
  *sb = wasm_i32x4_extract_lane(t, 2) + wasm_i32x4_extract_lane(t, 3);
}

// ---- Q8_K activations ------------------------------------------------------------

// x86 ggml uses quantize_row_q8_K_ref; its per-block steps, reproduced exactly:
//   if (ax > amax) { amax = ax; max = x[j]; }          (first element of largest |x|)
//   if (!amax) { y[i].d = 0; memset(y[i].qs, 0, QK_K); continue; }
//   const float iscale = -127.f/max;
//   int v = nearest_int(iscale*x[j]); y[i].qs[j] = MIN(127, v);
//   y[i].bsums[j] = sum of qs[16j .. 16j+15];  y[i].d = 1/iscale;
// with nearest_int(f): float val = f + 12582912.f; i = bits(val);
//   return (i & 0x007fffff) - 0x00400000;
// The all-zero block also gets zero bsums here (ggml leaves them unwritten; they only
// ever meet d = 0). Non-finite inputs give codes that are defined only as in ggml.
void sy_quantize_q8_k(const float *x, uint8_t *y, int32_t n) {
  for (int32_t b = 0; b < n / QK_K; b++, x += QK_K, y += Q8_K_BYTES) {
    int8_t *qs = (int8_t *)(y + 4);
    int16_t *bsums = (int16_t *)(y + 260);
    // pmax(m, v) = m < v ? v : m skips NaN exactly as the reference's `ax > amax` does.
    v128_t m = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < QK_K; j += 4) m = wasm_f32x4_pmax(m, wasm_f32x4_abs(wasm_v128_load(x + j)));
    float lanes[4];
    wasm_v128_store(lanes, m);
    float amax = lanes[0];
    for (int l = 1; l < 4; l++) amax = lanes[l] > amax ? lanes[l] : amax;
    if (amax == 0.0f) {
      float zero = 0.0f;
      __builtin_memcpy(y, &zero, 4);
      __builtin_memset(y + 4, 0, QK_K + 32);
      continue;
    }
    int first = 0;
    while (__builtin_fabsf(x[first]) != amax) first++;
    const float iscale = -127.f / x[first];
    const v128_t vs = wasm_f32x4_splat(iscale), magic = wasm_f32x4_splat(12582912.f);
    const v128_t mant = wasm_i32x4_splat(0x007fffff), bias = wasm_i32x4_splat(0x00400000);
    const v128_t top = wasm_i32x4_splat(127);
    for (int j = 0; j < QK_K; j += 16) {
      v128_t c[4];
      for (int k = 0; k < 4; k++) {
        v128_t v = wasm_f32x4_add(wasm_f32x4_mul(vs, wasm_v128_load(x + j + 4 * k)), magic);
        c[k] = wasm_i32x4_min(wasm_i32x4_sub(wasm_v128_and(v, mant), bias), top);
      }
      // Keep the low byte of each int32 (a wrapping store to int8_t, as in C).
      v128_t c01 = wasm_i8x16_shuffle(c[0], c[1], 0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
      v128_t c23 = wasm_i8x16_shuffle(c[2], c[3], 0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
      v128_t q = wasm_i64x2_shuffle(c01, c23, 0, 2);
      wasm_v128_store(qs + j, q);
      v128_t s = wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extadd_pairwise_i8x16(q));
      bsums[j / 16] = (int16_t)sy_hsum_i32x4(s);
    }
    const float d = 1 / iscale;
    __builtin_memcpy(y, &d, 4);
  }
}

// ---- Q2_K: 84 bytes = scales[16] (low nibble scale, high nibble min), qs[64], d, dmin ----

void sy_dequant_q2_k(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / QK_K; b++, x += 84) {
    const float d = fp16_at(x + 80), dmin = fp16_at(x + 82);
    const uint8_t *q = x + 16;
    for (int i = 0; i < QK_K; i++) {
      int h = i / 128, r = i % 128, g = r / 32, l = r % 32;
      uint8_t sc = x[i / 16];
      // ref: dl = d * (sc & 0xF); ml = min * (sc >> 4); *y++ = dl * code - ml;
      const float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
      *y++ = dl * (float)((q[32 * h + l] >> (2 * g)) & 3) - ml;
    }
  }
}

float sy_vec_dot_q2_k(int32_t n, const uint8_t *w, const uint8_t *xq) {
  float sumf = 0.0f;
  for (int32_t b = 0; b < n / QK_K; b++, w += 84, xq += Q8_K_BYTES) {
    const int8_t *q8 = Q8K_QS(xq);
    const int16_t *bs = Q8K_BSUMS(xq);
    v128_t s8 = wasm_v128_load(w);
    v128_t sc = bits(s8, 0, 15), mn = bits(s8, 4, 15);
    v128_t sc_lo = wasm_u16x8_extend_low_u8x16(sc), sc_hi = wasm_u16x8_extend_high_u8x16(sc);
    v128_t macc = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_load(bs), wasm_u16x8_extend_low_u8x16(mn)),
                                 wasm_i32x4_dot_i16x8(wasm_v128_load(bs + 8), wasm_u16x8_extend_high_u8x16(mn)));
    v128_t acc = wasm_i32x4_splat(0);
    // Half h, shift group g, 16-byte part p: sub-block 8h + 2g + p, q8 at 128h + 32g + 16p.
#define Q2K_SUB(v, h, g, p, S)                                                              \
  acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(dot16(wasm_v128_load(q8 + 128 * (h) + 32 * (g) + 16 * (p)), \
                                                       bits((v), 2 * (g), 3)),                \
                                                 SPLAT16(S, 2 * (g) + (p))))
#define Q2K_HALF(h, S)                                                         \
  {                                                                            \
    v128_t v0 = wasm_v128_load(w + 16 + 32 * (h)), v1 = wasm_v128_load(w + 32 + 32 * (h)); \
    Q2K_SUB(v0, h, 0, 0, S); Q2K_SUB(v1, h, 0, 1, S);                          \
    Q2K_SUB(v0, h, 1, 0, S); Q2K_SUB(v1, h, 1, 1, S);                          \
    Q2K_SUB(v0, h, 2, 0, S); Q2K_SUB(v1, h, 2, 1, S);                          \
    Q2K_SUB(v0, h, 3, 0, S); Q2K_SUB(v1, h, 3, 1, S);                          \
  }
    Q2K_HALF(0, sc_lo)
    Q2K_HALF(1, sc_hi)
#undef Q2K_HALF
#undef Q2K_SUB
    int32_t isum, summs;
    hsum2(acc, macc, &isum, &summs);
    const float yd = sy_load_f32(xq);
    const float dx = yd * fp16_at(w + 80), dm = yd * fp16_at(w + 82);
    sumf = sumf + (dx * (float)isum - dm * (float)summs);
  }
  return sumf;
}

// ---- Q3_K: 110 bytes = hmask[32], qs[64], scales[12] (16 x 6 bits), d ----------------

// The sixteen 6-bit scale codes minus 32, as int8. ref (dequantize_row_q3_K):
//   aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
//   aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
//   aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
//   aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
SY_INLINE v128_t q3k_scales(const uint8_t *sc) {
  uint32_t a0 = sy_load_u32(sc), a1 = sy_load_u32(sc + 4), t = sy_load_u32(sc + 8);
  uint32_t s0 = (a0 & 0x0f0f0f0f) | ((t & 0x03030303) << 4);
  uint32_t s1 = (a1 & 0x0f0f0f0f) | (((t >> 2) & 0x03030303) << 4);
  uint32_t s2 = ((a0 >> 4) & 0x0f0f0f0f) | (((t >> 4) & 0x03030303) << 4);
  uint32_t s3 = ((a1 >> 4) & 0x0f0f0f0f) | (((t >> 6) & 0x03030303) << 4);
  return wasm_i8x16_sub(wasm_u32x4_make(s0, s1, s2, s3), wasm_i8x16_splat(32));
}

void sy_dequant_q3_k(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / QK_K; b++, x += 110) {
    const float d_all = fp16_at(x + 108);
    int8_t scales[16];
    wasm_v128_store(scales, q3k_scales(x + 96));
    const uint8_t *hm = x, *q = x + 32;
    for (int i = 0; i < QK_K; i++) {
      int h = i / 128, r = i % 128, g = r / 32, l = r % 32;
      // ref: dl = d_all * (scales[is++] - 32); *y++ = dl * ((q >> shift) & 3) - ((hm & m) ? 0 : 4));
      const float dl = d_all * (float)scales[i / 16];
      int code = ((q[32 * h + l] >> (2 * g)) & 3) - ((hm[l] >> (4 * h + g)) & 1 ? 0 : 4);
      *y++ = dl * (float)code;
    }
  }
}

float sy_vec_dot_q3_k(int32_t n, const uint8_t *w, const uint8_t *xq) {
  float sumf = 0.0f;
  for (int32_t b = 0; b < n / QK_K; b++, w += 110, xq += Q8_K_BYTES) {
    const int8_t *q8 = Q8K_QS(xq);
    const int16_t *bs = Q8K_BSUMS(xq);
    v128_t s8 = q3k_scales(w + 96);
    v128_t sc_lo = wasm_i16x8_extend_low_i8x16(s8), sc_hi = wasm_i16x8_extend_high_i8x16(s8);
    // sum_s scale_s * bsum_s, for the -4 that an unset hmask bit means.
    v128_t off = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_load(bs), sc_lo),
                                wasm_i32x4_dot_i16x8(wasm_v128_load(bs + 8), sc_hi));
    v128_t acc = wasm_i32x4_splat(0);
    const v128_t hm0 = wasm_v128_load(w), hm1 = wasm_v128_load(w + 16);
    // Unsigned code u = low2 | hbit << 2 = q + 4 (0..7).
#define Q3K_SUB(v, hm, h, g, p, S)                                                              \
  acc = wasm_i32x4_add(                                                                         \
      acc, wasm_i32x4_dot_i16x8(dot16(wasm_v128_load(q8 + 128 * (h) + 32 * (g) + 16 * (p)),      \
                                      wasm_v128_or(bits((v), 2 * (g), 3), bit_move((hm), 4 * (h) + (g), 2))), \
                                SPLAT16(S, 2 * (g) + (p))))
#define Q3K_HALF(h, S)                                                                  \
  {                                                                                     \
    v128_t v0 = wasm_v128_load(w + 32 + 32 * (h)), v1 = wasm_v128_load(w + 48 + 32 * (h)); \
    Q3K_SUB(v0, hm0, h, 0, 0, S); Q3K_SUB(v1, hm1, h, 0, 1, S);                         \
    Q3K_SUB(v0, hm0, h, 1, 0, S); Q3K_SUB(v1, hm1, h, 1, 1, S);                         \
    Q3K_SUB(v0, hm0, h, 2, 0, S); Q3K_SUB(v1, hm1, h, 2, 1, S);                         \
    Q3K_SUB(v0, hm0, h, 3, 0, S); Q3K_SUB(v1, hm1, h, 3, 1, S);                         \
  }
    Q3K_HALF(0, sc_lo)
    Q3K_HALF(1, sc_hi)
#undef Q3K_HALF
#undef Q3K_SUB
    acc = wasm_i32x4_sub(acc, wasm_i32x4_shl(off, 2));
    const int32_t isum = sy_hsum_i32x4(acc);
    const float dx = sy_load_f32(xq) * fp16_at(w + 108);
    sumf = sumf + dx * (float)isum;
  }
  return sumf;
}

// ---- Q4_K / Q5_K: d, dmin, 12 bytes of 6-bit scales and mins, codes ---------------

// Scales and mins of the eight sub-blocks as bytes [s0..s7, m0..m7]. ref get_scale_min_k4:
//   if (j < 4) { *d = q[j] & 63; *m = q[j + 4] & 63; }
//   else { *d = (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4); *m = (q[j+4] >> 4) | ((q[j-0] >> 6) << 4); }
SY_INLINE v128_t k4_scales_mins(const uint8_t *sm) {
  uint32_t a0 = sy_load_u32(sm), a1 = sy_load_u32(sm + 4), a2 = sy_load_u32(sm + 8);
  uint32_t s_lo = a0 & 0x3f3f3f3f;
  uint32_t s_hi = (a2 & 0x0f0f0f0f) | (((a0 >> 6) & 0x03030303) << 4);
  uint32_t m_lo = a1 & 0x3f3f3f3f;
  uint32_t m_hi = ((a2 >> 4) & 0x0f0f0f0f) | (((a1 >> 6) & 0x03030303) << 4);
  return wasm_u32x4_make(s_lo, s_hi, m_lo, m_hi);
}

// sum_j bsums[j] * min[j / 2] as int32 lanes.
SY_INLINE v128_t k4_min_sums(v128_t sm, const int16_t *bs) {
  v128_t m2 = wasm_i8x16_shuffle(sm, sm, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_load(bs), wasm_u16x8_extend_low_u8x16(m2)),
                        wasm_i32x4_dot_i16x8(wasm_v128_load(bs + 8), wasm_u16x8_extend_high_u8x16(m2)));
}

// Q4_K and Q5_K dequantization; qh = NULL for Q4_K. ref (dequantize_row_q5_K):
//   const float d1 = d * sc; const float m1 = min * m;
//   *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
SY_INLINE void dequant_k4(const uint8_t *x, const uint8_t *qh, const uint8_t *qs, float *y) {
  const float d = fp16_at(x), dmin = fp16_at(x + 2);
  uint8_t sm[16];
  wasm_v128_store(sm, k4_scales_mins(x + 4));
  for (int j = 0; j < 8; j++) {
    const float dl = d * (float)sm[j], ml = dmin * (float)sm[8 + j];
    const uint8_t *q = qs + 32 * (j / 2);
    for (int l = 0; l < 32; l++) {
      int code = (q[l] >> (4 * (j % 2))) & 15;
      if (qh) code += ((qh[l] >> j) & 1) << 4;
      *y++ = dl * (float)code - ml;
    }
  }
}

void sy_dequant_q4_k(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / QK_K; b++, x += 144, y += QK_K) dequant_k4(x, 0, x + 16, y);
}

void sy_dequant_q5_k(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / QK_K; b++, x += 176, y += QK_K) dequant_k4(x, x + 16, x + 48, y);
}

// Chunk c (64 elements) of a Q4_K/Q5_K block: sub-block 2c is the low nibbles of
// qs[32c ..], sub-block 2c+1 the high nibbles; their fifth bits are bits 2c, 2c+1 of qh.
// A sub-block's two dot16 lanes add to at most 2 * 2 * 127 * 31 < 32768.
#define K4_CHUNK(c, Q5)                                                                      \
  {                                                                                          \
    v128_t q0 = wasm_v128_load(qs + 32 * (c)), q1 = wasm_v128_load(qs + 32 * (c) + 16);      \
    v128_t l0 = bits(q0, 0, 15), l1 = bits(q1, 0, 15), h0 = bits(q0, 4, 15), h1 = bits(q1, 4, 15); \
    if (Q5) {                                                                                \
      l0 = wasm_v128_or(l0, bit_move(qh0, 2 * (c), 4));                                      \
      l1 = wasm_v128_or(l1, bit_move(qh1, 2 * (c), 4));                                      \
      h0 = wasm_v128_or(h0, bit_move(qh0, 2 * (c) + 1, 4));                                  \
      h1 = wasm_v128_or(h1, bit_move(qh1, 2 * (c) + 1, 4));                                  \
    }                                                                                        \
    v128_t pl = wasm_i16x8_add(dot16(wasm_v128_load(q8 + 64 * (c)), l0),                     \
                               dot16(wasm_v128_load(q8 + 64 * (c) + 16), l1));               \
    v128_t ph = wasm_i16x8_add(dot16(wasm_v128_load(q8 + 64 * (c) + 32), h0),                \
                               dot16(wasm_v128_load(q8 + 64 * (c) + 48), h1));               \
    acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(pl, SPLAT16(sc16, 2 * (c))));             \
    acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(ph, SPLAT16(sc16, 2 * (c) + 1)));         \
  }

#define K4_DOT(BLOCK_BYTES, QS_OFF, Q5)                                          \
  float sumf = 0.0f;                                                             \
  for (int32_t b = 0; b < n / QK_K; b++, w += (BLOCK_BYTES), xq += Q8_K_BYTES) { \
    const uint8_t *qs = w + (QS_OFF);                                            \
    const int8_t *q8 = Q8K_QS(xq);                                               \
    const v128_t sm = k4_scales_mins(w + 4);                                     \
    const v128_t sc16 = wasm_u16x8_extend_low_u8x16(sm);                         \
    const v128_t macc = k4_min_sums(sm, Q8K_BSUMS(xq));                          \
    const v128_t qh0 = wasm_v128_load(w + 16), qh1 = wasm_v128_load(w + 32);     \
    (void)qh0;                                                                   \
    (void)qh1;                                                                   \
    v128_t acc = wasm_i32x4_splat(0);                                            \
    K4_CHUNK(0, Q5) K4_CHUNK(1, Q5) K4_CHUNK(2, Q5) K4_CHUNK(3, Q5)              \
    int32_t isum, summs;                                                         \
    hsum2(acc, macc, &isum, &summs);                                             \
    const float yd = sy_load_f32(xq);                                                  \
    const float dx = yd * fp16_at(w), dm = yd * fp16_at(w + 2);                  \
    sumf = sumf + (dx * (float)isum - dm * (float)summs);                        \
  }                                                                              \
  return sumf;

float sy_vec_dot_q4_k(int32_t n, const uint8_t *w, const uint8_t *xq) { K4_DOT(144, 16, 0) }

float sy_vec_dot_q5_k(int32_t n, const uint8_t *w, const uint8_t *xq) { K4_DOT(176, 48, 1) }

#undef K4_DOT
#undef K4_CHUNK

// ---- Q6_K: 210 bytes = ql[128], qh[64], int8 scales[16], d --------------------------

void sy_dequant_q6_k(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / QK_K; b++, x += 210) {
    const float d = fp16_at(x + 208);
    const uint8_t *ql = x, *qh = x + 128;
    const int8_t *sc = (const int8_t *)(x + 192);
    for (int i = 0; i < QK_K; i++) {
      int h = i / 128, r = i % 128, g = r / 32, l = r % 32;
      int low4 = (ql[64 * h + 32 * (g & 1) + l] >> (4 * (g / 2))) & 15;
      int q = (low4 | ((qh[32 * h + l] >> (2 * g)) & 3) << 4) - 32;
      // ref: y[l + 0] = d * sc[is + 0] * q1;  i.e. (d * sc) * q
      *y++ = d * (float)sc[i / 16] * (float)q;
    }
  }
}

float sy_vec_dot_q6_k(int32_t n, const uint8_t *w, const uint8_t *xq) {
  float sumf = 0.0f;
  for (int32_t b = 0; b < n / QK_K; b++, w += 210, xq += Q8_K_BYTES) {
    const int8_t *q8 = Q8K_QS(xq);
    const int16_t *bs = Q8K_BSUMS(xq);
    v128_t s8 = wasm_v128_load(w + 192);
    v128_t sc_lo = wasm_i16x8_extend_low_i8x16(s8), sc_hi = wasm_i16x8_extend_high_i8x16(s8);
    v128_t off = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_load(bs), sc_lo),
                                wasm_i32x4_dot_i16x8(wasm_v128_load(bs + 8), sc_hi));
    v128_t acc = wasm_i32x4_splat(0);
    // Unsigned code u = low4 | high2 << 4 = q + 32 (0..63), one 16-element sub-block per vector.
#define Q6K_SUB(L, H, h, g, p, S)                                                                      \
  acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(                                                      \
                                dot16(wasm_v128_load(q8 + 128 * (h) + 32 * (g) + 16 * (p)),            \
                                      wasm_v128_or(bits((L), 4 * ((g) / 2), 15),                      \
                                                   (2 * (g) <= 4 ? wasm_v128_and(wasm_i16x8_shl((H), 4 - 2 * (g)), wasm_i8x16_splat(0x30)) \
                                                                 : bits((H), 2 * (g) - 4, 0x30)))),   \
                                SPLAT16(S, 2 * (g) + (p))))
#define Q6K_HALF(h, S)                                                                   \
  {                                                                                      \
    const uint8_t *ql = w + 64 * (h), *qh = w + 128 + 32 * (h);                          \
    v128_t L0 = wasm_v128_load(ql), L1 = wasm_v128_load(ql + 16);                        \
    v128_t L2 = wasm_v128_load(ql + 32), L3 = wasm_v128_load(ql + 48);                   \
    v128_t H0 = wasm_v128_load(qh), H1 = wasm_v128_load(qh + 16);                        \
    Q6K_SUB(L0, H0, h, 0, 0, S); Q6K_SUB(L1, H1, h, 0, 1, S);                            \
    Q6K_SUB(L2, H0, h, 1, 0, S); Q6K_SUB(L3, H1, h, 1, 1, S);                            \
    Q6K_SUB(L0, H0, h, 2, 0, S); Q6K_SUB(L1, H1, h, 2, 1, S);                            \
    Q6K_SUB(L2, H0, h, 3, 0, S); Q6K_SUB(L3, H1, h, 3, 1, S);                            \
  }
    Q6K_HALF(0, sc_lo)
    Q6K_HALF(1, sc_hi)
#undef Q6K_HALF
#undef Q6K_SUB
    acc = wasm_i32x4_sub(acc, wasm_i32x4_shl(off, 5));
    const int32_t isum = sy_hsum_i32x4(acc);
    const float dx = sy_load_f32(xq) * fp16_at(w + 208);
    sumf = sumf + dx * (float)isum;
  }
  return sumf;
}

// ---- multi-row dot products (prompt processing) -------------------------------------
// One weight block, unpacked once, meets N activation rows. Per row the integer sums are
// those of the single dot above (exact, so their order does not matter) and the float
// steps are the same operations in the same order, so out[j] equals vec_dot(w, xq[j]) bit
// for bit. N is a compile-time constant (the dispatch below), so the per-row accumulators
// stay in registers; the loops over c and j unroll. The per-block float steps of the N rows
// run side by side in the lanes of one f32x4 (lane j = row j; the same IEEE operations).

// [Σa, Σb, Σc, Σd] of four int32 vectors (exact: the order of integer adds does not matter).
SY_INLINE v128_t hsum4(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// Row j's activation scale y.d in lane j (0 for j >= N).
SY_INLINE v128_t row_scales(const uint8_t *const *xq, size_t xo, const int N) {
  v128_t v = wasm_f32x4_splat(0.0f);
  if (N > 0) v = wasm_f32x4_replace_lane(v, 0, sy_load_f32(xq[0] + xo));
  if (N > 1) v = wasm_f32x4_replace_lane(v, 1, sy_load_f32(xq[1] + xo));
  if (N > 2) v = wasm_f32x4_replace_lane(v, 2, sy_load_f32(xq[2] + xo));
  if (N > 3) v = wasm_f32x4_replace_lane(v, 3, sy_load_f32(xq[3] + xo));
  return v;
}

#define DOT_N_DISPATCH(CALL)  \
  switch (count) {            \
    case 1: CALL(1); break;   \
    case 2: CALL(2); break;   \
    case 3: CALL(3); break;   \
    default: CALL(4); break;  \
  }

// Q4_K (Q5 = 0) and Q5_K (Q5 = 1); BB block bytes, QS_OFF where the low nibbles start.
SY_INLINE void k4_dot_n(int32_t n, const uint8_t *w, const uint8_t *const *xq, float *out, const int N, const int BB,
                        const int QS_OFF, const int Q5) {
  v128_t sumf = wasm_f32x4_splat(0.0f);
  for (int32_t b = 0; b < n / QK_K; b++, w += BB) {
    const size_t xo = (size_t)b * Q8_K_BYTES;
    const uint8_t *qs = w + QS_OFF;
    const v128_t sm = k4_scales_mins(w + 4);
    int16_t sc[8];
    wasm_v128_store(sc, wasm_u16x8_extend_low_u8x16(sm));
    const v128_t qh0 = Q5 ? wasm_v128_load(w + 16) : wasm_i32x4_splat(0);
    const v128_t qh1 = Q5 ? wasm_v128_load(w + 32) : wasm_i32x4_splat(0);
    v128_t acc[SY_DOT_N], macc[SY_DOT_N];
    for (int j = 0; j < SY_DOT_N; j++) acc[j] = macc[j] = wasm_i32x4_splat(0);
    // Chunk c: as K4_CHUNK above, the codes built once for all rows.
    for (int c = 0; c < 4; c++) {
      v128_t q0 = wasm_v128_load(qs + 32 * c), q1 = wasm_v128_load(qs + 32 * c + 16);
      v128_t l0 = bits(q0, 0, 15), l1 = bits(q1, 0, 15), h0 = bits(q0, 4, 15), h1 = bits(q1, 4, 15);
      if (Q5) {
        l0 = wasm_v128_or(l0, bit_move(qh0, 2 * c, 4));
        l1 = wasm_v128_or(l1, bit_move(qh1, 2 * c, 4));
        h0 = wasm_v128_or(h0, bit_move(qh0, 2 * c + 1, 4));
        h1 = wasm_v128_or(h1, bit_move(qh1, 2 * c + 1, 4));
      }
      const v128_t s_lo = wasm_i16x8_splat(sc[2 * c]), s_hi = wasm_i16x8_splat(sc[2 * c + 1]);
      for (int j = 0; j < N; j++) {
        const int8_t *q8 = Q8K_QS(xq[j] + xo) + 64 * c;
        v128_t pl = wasm_i16x8_add(dot16(wasm_v128_load(q8), l0), dot16(wasm_v128_load(q8 + 16), l1));
        v128_t ph = wasm_i16x8_add(dot16(wasm_v128_load(q8 + 32), h0), dot16(wasm_v128_load(q8 + 48), h1));
        acc[j] = wasm_i32x4_add(acc[j], wasm_i32x4_dot_i16x8(pl, s_lo));
        acc[j] = wasm_i32x4_add(acc[j], wasm_i32x4_dot_i16x8(ph, s_hi));
      }
    }
    for (int j = 0; j < N; j++) macc[j] = k4_min_sums(sm, Q8K_BSUMS(xq[j] + xo));
    const v128_t isum = hsum4(acc[0], acc[1], acc[2], acc[3]), summs = hsum4(macc[0], macc[1], macc[2], macc[3]);
    const v128_t yd = row_scales(xq, xo, N);
    const v128_t dx = wasm_f32x4_mul(yd, wasm_f32x4_splat(fp16_at(w)));
    const v128_t dm = wasm_f32x4_mul(yd, wasm_f32x4_splat(fp16_at(w + 2)));
    // sumf = sumf + (dx * (float)isum - dm * (float)summs), per lane
    sumf = wasm_f32x4_add(sumf, wasm_f32x4_sub(wasm_f32x4_mul(dx, wasm_f32x4_convert_i32x4(isum)),
                                               wasm_f32x4_mul(dm, wasm_f32x4_convert_i32x4(summs))));
  }
  float r[4];
  wasm_v128_store(r, sumf);
  for (int j = 0; j < N; j++) out[j] = r[j];
}

void sy_vec_dot_n_q4_k(int32_t n, const uint8_t *w, const uint8_t *const *xq, int32_t count, float *out) {
#define CALL(N) k4_dot_n(n, w, xq, out, N, 144, 16, 0)
  DOT_N_DISPATCH(CALL)
#undef CALL
}

void sy_vec_dot_n_q5_k(int32_t n, const uint8_t *w, const uint8_t *const *xq, int32_t count, float *out) {
#define CALL(N) k4_dot_n(n, w, xq, out, N, 176, 48, 1)
  DOT_N_DISPATCH(CALL)
#undef CALL
}

// Q6_K: as sy_vec_dot_q6_k, the unsigned codes u = q + 32 of each 16-element sub-block
// built once for all rows.
SY_INLINE void q6k_dot_n(int32_t n, const uint8_t *w, const uint8_t *const *xq, float *out, const int N) {
  v128_t sumf = wasm_f32x4_splat(0.0f);
  for (int32_t b = 0; b < n / QK_K; b++, w += 210) {
    const size_t xo = (size_t)b * Q8_K_BYTES;
    const v128_t s8 = wasm_v128_load(w + 192);
    const v128_t sc_lo = wasm_i16x8_extend_low_i8x16(s8), sc_hi = wasm_i16x8_extend_high_i8x16(s8);
    int16_t sc[16];
    wasm_v128_store(sc, sc_lo);
    wasm_v128_store(sc + 8, sc_hi);
    v128_t acc[SY_DOT_N];
    for (int j = 0; j < SY_DOT_N; j++) acc[j] = wasm_i32x4_splat(0);
    for (int h = 0; h < 2; h++) {
      const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
      const v128_t L[4] = {wasm_v128_load(ql), wasm_v128_load(ql + 16), wasm_v128_load(ql + 32),
                           wasm_v128_load(ql + 48)};
      const v128_t H[2] = {wasm_v128_load(qh), wasm_v128_load(qh + 16)};
      // Sub-block 8h + 2g + p: low nibbles of L[2 (g & 1) + p] (high ones for g >= 2),
      // bits 2g, 2g + 1 of H[p] as bits 4, 5.
      for (int g = 0; g < 4; g++) {
        for (int p = 0; p < 2; p++) {
          const v128_t hi2 = 2 * g <= 4 ? wasm_v128_and(wasm_i16x8_shl(H[p], 4 - 2 * g), wasm_i8x16_splat(0x30))
                                        : bits(H[p], 2 * g - 4, 0x30);
          const v128_t u = wasm_v128_or(bits(L[2 * (g & 1) + p], 4 * (g / 2), 15), hi2);
          const v128_t S = wasm_i16x8_splat(sc[8 * h + 2 * g + p]);
          for (int j = 0; j < N; j++) {
            const int8_t *q8 = Q8K_QS(xq[j] + xo) + 128 * h + 32 * g + 16 * p;
            acc[j] = wasm_i32x4_add(acc[j], wasm_i32x4_dot_i16x8(dot16(wasm_v128_load(q8), u), S));
          }
        }
      }
    }
    for (int j = 0; j < N; j++) {
      const int16_t *bs = Q8K_BSUMS(xq[j] + xo);
      v128_t off = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_load(bs), sc_lo),
                                  wasm_i32x4_dot_i16x8(wasm_v128_load(bs + 8), sc_hi));
      acc[j] = wasm_i32x4_sub(acc[j], wasm_i32x4_shl(off, 5));
    }
    const v128_t isum = hsum4(acc[0], acc[1], acc[2], acc[3]);
    const v128_t dx = wasm_f32x4_mul(row_scales(xq, xo, N), wasm_f32x4_splat(fp16_at(w + 208)));
    sumf = wasm_f32x4_add(sumf, wasm_f32x4_mul(dx, wasm_f32x4_convert_i32x4(isum)));  // sumf + dx * (float)isum
  }
  float r[4];
  wasm_v128_store(r, sumf);
  for (int j = 0; j < N; j++) out[j] = r[j];
}

void sy_vec_dot_n_q6_k(int32_t n, const uint8_t *w, const uint8_t *const *xq, int32_t count, float *out) {
#define CALL(N) q6k_dot_n(n, w, xq, out, N)
  DOT_N_DISPATCH(CALL)
#undef CALL
}

// ---- IQ4_XS: 136 bytes = d, scales_h (u16), scales_l[4], qs[128] -------------------

static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                         1,    13,   25,  38,  53,  69,  89,  113};

// The eight sub-block scales ls - 32. ref:
//   ls = ((scales_l[ib/2] >> 4*(ib%2)) & 0xf) | (((scales_h >> 2*ib) & 3) << 4);
SY_INLINE int iq4xs_scale(const uint8_t *x, int j) {
  int ls = ((x[4 + j / 2] >> (4 * (j % 2))) & 15) | (((sy_load_u16(x + 2) >> (2 * j)) & 3) << 4);
  return ls - 32;
}

void sy_dequant_iq4_xs(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / QK_K; b++, x += 136) {
    const float d = fp16_at(x);
    for (int j = 0; j < 8; j++) {
      const float dl = d * (float)iq4xs_scale(x, j);
      const uint8_t *qs = x + 8 + 16 * j;
      for (int k = 0; k < 16; k++) y[k] = dl * (float)kvalues_iq4nl[qs[k] & 15];
      for (int k = 0; k < 16; k++) y[k + 16] = dl * (float)kvalues_iq4nl[qs[k] >> 4];
      y += 32;
    }
  }
}

// Dot of 16 activations with table values T[code] (signed, |T| <= 127). Relaxed: the
// table value's sign moves onto the activation (|q8| <= 127, so negation is exact)
// and |T| is the [0, 127] operand.
SY_INLINE v128_t dot16_iq4(v128_t q8, v128_t code) {
#ifdef SY_RELAXED
  const v128_t tabs = wasm_i8x16_make(127, 104, 83, 65, 49, 35, 22, 10, 1, 13, 25, 38, 53, 69, 89, 113);
  v128_t neg = wasm_i8x16_lt(code, wasm_i8x16_splat(8));  // T[code] < 0 exactly for code < 8
  v128_t a = wasm_i8x16_sub(wasm_v128_xor(q8, neg), neg);
  return wasm_i16x8_relaxed_dot_i8x16_i7x16(a, wasm_i8x16_swizzle(tabs, code));
#else
  v128_t t = wasm_i8x16_swizzle(wasm_v128_load(kvalues_iq4nl), code);
  return wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(q8, t), wasm_i16x8_extmul_high_i8x16(q8, t));
#endif
}

float sy_vec_dot_iq4_xs(int32_t n, const uint8_t *w, const uint8_t *xq) {
  float sumf = 0.0f;
  for (int32_t b = 0; b < n / QK_K; b++, w += 136, xq += Q8_K_BYTES) {
    const int8_t *q8 = Q8K_QS(xq);
    int16_t scv[8];
    for (int j = 0; j < 8; j++) scv[j] = (int16_t)iq4xs_scale(w, j);
    const v128_t sc16 = wasm_v128_load(scv);
    v128_t acc = wasm_i32x4_splat(0);
    // Sub-block j: 16 bytes, low nibbles = elements 32j + k, high nibbles = 32j + 16 + k.
    // One dot16 lane may reach 2 * 127 * 127, so each widens on its own.
#define IQ4_SUB(j)                                                                              \
  {                                                                                             \
    v128_t q = wasm_v128_load(w + 8 + 16 * (j));                                                \
    v128_t S = SPLAT16(sc16, j);                                                                \
    acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(dot16_iq4(wasm_v128_load(q8 + 32 * (j)), bits(q, 0, 15)), S)); \
    acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(dot16_iq4(wasm_v128_load(q8 + 32 * (j) + 16), bits(q, 4, 15)), S)); \
  }
    IQ4_SUB(0) IQ4_SUB(1) IQ4_SUB(2) IQ4_SUB(3) IQ4_SUB(4) IQ4_SUB(5) IQ4_SUB(6) IQ4_SUB(7)
#undef IQ4_SUB
    const int32_t isum = sy_hsum_i32x4(acc);
    const float dx = sy_load_f32(xq) * fp16_at(w);
    sumf = sumf + dx * (float)isum;
  }
  return sumf;
}

// ---- TQ1_0: 54 bytes = qs[48] (5 base-3 digits a byte), qh[4] (4 digits), d --------

// Digit k of a byte: ref `uint8_t q = x * pow3[k]; xi = ((uint16_t) q * 3) >> 8;`
SY_INLINE int tq1_digit(uint8_t byte, int k) {
  static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
  uint8_t q = (uint8_t)(byte * pow3[k]);
  return ((uint16_t)q * 3) >> 8;
}

// Element i of a TQ1_0 block as its digit (0..2): qs[m] digit k -> 32k + m (m < 32),
// qs[32 + m] digit k -> 160 + 16k + m (m < 16), qh[m] digit k -> 240 + 4k + m.
SY_INLINE int tq1_code(const uint8_t *x, int i) {
  if (i < 160) return tq1_digit(x[i % 32], i / 32);
  if (i < 240) return tq1_digit(x[32 + (i - 160) % 16], (i - 160) / 16);
  return tq1_digit(x[48 + (i - 240) % 4], (i - 240) / 4);
}

void sy_dequant_tq1_0(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / QK_K; b++, x += 54) {
    const float d = fp16_at(x + 52);
    // ref: *y++ = (float) (xi - 1) * d;
    for (int i = 0; i < QK_K; i++) *y++ = (float)(tq1_code(x, i) - 1) * d;
  }
}

// Digits of 16 bytes after multiplying them by 3^k (mod 256) into p:
// ((p * 3) >> 8) = (p > 85) + (p > 170), compared as signed bytes after flipping the top bit.
SY_INLINE v128_t tq1_digits(v128_t p) {
  v128_t s = wasm_v128_xor(p, wasm_i8x16_splat((int8_t)0x80));
  v128_t m1 = wasm_i8x16_gt(s, wasm_i8x16_splat(85 - 128)), m2 = wasm_i8x16_gt(s, wasm_i8x16_splat(170 - 128));
  return wasm_i8x16_sub(wasm_i8x16_sub(wasm_i8x16_splat(0), m1), m2);
}

// p * 3 on every byte, wrapping. Written as p + (2p via a 16-bit shift, masked) because
// clang folds byte adds into an i8x16 multiply, which wasm lacks and which it scalarizes.
SY_INLINE v128_t times3(v128_t p) {
  return wasm_i8x16_add(p, wasm_v128_and(wasm_i16x8_shl(p, 1), wasm_i8x16_splat((int8_t)0xfe)));
}

// -sum of all 256 activations, as int16 lanes (16 bsums of at most 16 * 127 each fit).
SY_INLINE v128_t neg_q8_total(const int16_t *bs) {
  return wasm_i16x8_neg(wasm_i16x8_add(wasm_v128_load(bs), wasm_v128_load(bs + 8)));
}

float sy_vec_dot_tq1_0(int32_t n, const uint8_t *w, const uint8_t *xq) {
  float sumf = 0.0f;
  for (int32_t b = 0; b < n / QK_K; b++, w += 54, xq += Q8_K_BYTES) {
    const int8_t *q8 = Q8K_QS(xq);
    // Dot with the digits (0..2), then subtract sum(q8). Lanes stay below 16 * 508 + 4064.
    v128_t acc = neg_q8_total(Q8K_BSUMS(xq));
    v128_t p0 = wasm_v128_load(w), p1 = wasm_v128_load(w + 16), p2 = wasm_v128_load(w + 32);
    for (int k = 0; k < 5; k++) {
      acc = wasm_i16x8_add(acc, dot16(wasm_v128_load(q8 + 32 * k), tq1_digits(p0)));
      acc = wasm_i16x8_add(acc, dot16(wasm_v128_load(q8 + 32 * k + 16), tq1_digits(p1)));
      acc = wasm_i16x8_add(acc, dot16(wasm_v128_load(q8 + 160 + 16 * k), tq1_digits(p2)));
      p0 = times3(p0), p1 = times3(p1), p2 = times3(p2);
    }
    // qh: the four bytes in every 32-bit lane, lane k multiplied by 3^k (elements 240 + 4k + m).
    v128_t h1 = wasm_i32x4_splat((int32_t)sy_load_u32(w + 48)), h3 = times3(h1), h9 = times3(h3), h27 = times3(h9);
    v128_t hp = wasm_i32x4_shuffle(wasm_i32x4_shuffle(h1, h3, 0, 5, 0, 0), wasm_i32x4_shuffle(h9, h27, 0, 0, 2, 7), 0, 1, 6, 7);
    acc = wasm_i16x8_add(acc, dot16(wasm_v128_load(q8 + 240), tq1_digits(hp)));
    const int32_t isum = sy_hsum_i32x4(wasm_i32x4_extadd_pairwise_i16x8(acc));
    const float dx = sy_load_f32(xq) * fp16_at(w + 52);
    sumf = sumf + dx * (float)isum;
  }
  return sumf;
}

// ---- TQ2_0: 66 bytes = qs[64] (2-bit codes), d ---------------------------------------

void sy_dequant_tq2_0(const uint8_t *x, float *y, int32_t n) {
  for (int32_t b = 0; b < n / QK_K; b++, x += 66) {
    const float d = fp16_at(x + 64);
    for (int i = 0; i < QK_K; i++) {
      int c = i / 128, r = i % 128;
      int q = (x[32 * c + r % 32] >> (2 * (r / 32))) & 3;
      // ref: *y++ = (float) (q - 1) * d;
      *y++ = (float)(q - 1) * d;
    }
  }
}

float sy_vec_dot_tq2_0(int32_t n, const uint8_t *w, const uint8_t *xq) {
  float sumf = 0.0f;
  for (int32_t b = 0; b < n / QK_K; b++, w += 66, xq += Q8_K_BYTES) {
    const int8_t *q8 = Q8K_QS(xq);
    v128_t acc = neg_q8_total(Q8K_BSUMS(xq));
    for (int c = 0; c < 2; c++) {
      v128_t v0 = wasm_v128_load(w + 32 * c), v1 = wasm_v128_load(w + 32 * c + 16);
      for (int l = 0; l < 4; l++) {
        acc = wasm_i16x8_add(acc, dot16(wasm_v128_load(q8 + 128 * c + 32 * l), bits(v0, 2 * l, 3)));
        acc = wasm_i16x8_add(acc, dot16(wasm_v128_load(q8 + 128 * c + 32 * l + 16), bits(v1, 2 * l, 3)));
      }
    }
    const int32_t isum = sy_hsum_i32x4(wasm_i32x4_extadd_pairwise_i16x8(acc));
    const float dx = sy_load_f32(xq) * fp16_at(w + 64);
    sumf = sumf + dx * (float)isum;
  }
  return sumf;
}
