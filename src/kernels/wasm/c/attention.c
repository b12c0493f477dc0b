// Attention of a batch of queries against a KV cache: grouped-query, causal, optional
// sliding window, attention sinks and logit soft-capping; K and V in F32 or F16.
//
// Numerics follow ggml's non-flash path (llama.cpp build_attn_mha: kq = mul_mat(k, q),
// soft_max_ext, soft_max sinks, kqv = mul_mat(v, kq); ggml-cpu ops.cpp
// ggml_compute_forward_soft_max_f32): scores in float, softmax with the maximum
// subtracted, exp in float, the sum of the exponentials in double, probabilities
// scaled by (float)(1 / sum), then the weighted sum of V rows in float. With an F16
// cache, q (for K) and the probabilities (for V) are first rounded to F16, as ggml's
// mul_mat rounds its activations to the F16 weights' vec_dot type.
// exp and tanh are sy_math.h's (op_softmax's exp), twinned bit for bit by ref/math.ts.
// The reference twin is src/kernels/ref/attention.ts.
#include "types.h"
#include "sy_math.h"

// Products are rounded before the add in both builds (no fused multiply-add here): a fused
// madd changes the last bit of a few scores, which flips a Q8 activation rounding downstream
// and, in a sensitive MoE model, an expert choice (qwen3moe Q4_K_M: 3.4e-2 sigma fused,
// 4.7e-7 sigma unfused against llama.cpp); relaxed_madd may or may not fuse by machine.
SY_INLINE v128_t madd_f32x4(v128_t a, v128_t b, v128_t c) { return wasm_f32x4_add(wasm_f32x4_mul(a, b), c); }

// ---- F16 rows ---------------------------------------------------------------------

SY_INLINE v128_t load_half4(const uint16_t *p) {
  return sy_f16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p)));
}

// ---- q.k for a run of keys ------------------------------------------------------------

SY_INLINE v128_t load_f32x4(const float *p) { return wasm_v128_load(p); }

// Lane sums of four vectors, as one vector (sum(a), sum(b), sum(c), sum(d)).
SY_INLINE v128_t hsum4(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// s[j] = q . k row j for j in [0, n), rows `ks` elements apart. Four keys at a time with
// two accumulators each (eight independent chains hide the madd latency), then one key at
// a time. The split depends only on n and Dk, so a head's scores never depend on threads.
#define QK_SCORES(ELEM, LOAD, TO_F32)                                                     \
  int j = 0;                                                                              \
  for (; j + 4 <= n; j += 4) {                                                            \
    const ELEM *k0 = k + (size_t)j * ks, *k1 = k0 + ks, *k2 = k1 + ks, *k3 = k2 + ks;     \
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;                           \
    v128_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                            \
    int i = 0;                                                                            \
    for (; i + 8 <= dk; i += 8) {                                                         \
      v128_t qa = wasm_v128_load(q + i), qb = wasm_v128_load(q + i + 4);                  \
      a0 = madd_f32x4(qa, LOAD(k0 + i), a0);                                           \
      b0 = madd_f32x4(qb, LOAD(k0 + i + 4), b0);                                       \
      a1 = madd_f32x4(qa, LOAD(k1 + i), a1);                                           \
      b1 = madd_f32x4(qb, LOAD(k1 + i + 4), b1);                                       \
      a2 = madd_f32x4(qa, LOAD(k2 + i), a2);                                           \
      b2 = madd_f32x4(qb, LOAD(k2 + i + 4), b2);                                       \
      a3 = madd_f32x4(qa, LOAD(k3 + i), a3);                                           \
      b3 = madd_f32x4(qb, LOAD(k3 + i + 4), b3);                                       \
    }                                                                                     \
    if (i + 4 <= dk) {                                                                    \
      v128_t qa = wasm_v128_load(q + i);                                                  \
      a0 = madd_f32x4(qa, LOAD(k0 + i), a0);                                           \
      a1 = madd_f32x4(qa, LOAD(k1 + i), a1);                                           \
      a2 = madd_f32x4(qa, LOAD(k2 + i), a2);                                           \
      a3 = madd_f32x4(qa, LOAD(k3 + i), a3);                                           \
      i += 4;                                                                             \
    }                                                                                     \
    v128_t sum = hsum4(wasm_f32x4_add(a0, b0), wasm_f32x4_add(a1, b1), wasm_f32x4_add(a2, b2), \
                       wasm_f32x4_add(a3, b3));                                           \
    if (i < dk) {                                                                         \
      float t0 = 0, t1 = 0, t2 = 0, t3 = 0;                                               \
      for (; i < dk; i++) {                                                               \
        t0 += q[i] * TO_F32(k0[i]);                                                       \
        t1 += q[i] * TO_F32(k1[i]);                                                       \
        t2 += q[i] * TO_F32(k2[i]);                                                       \
        t3 += q[i] * TO_F32(k3[i]);                                                       \
      }                                                                                   \
      sum = wasm_f32x4_add(sum, wasm_f32x4_make(t0, t1, t2, t3));                         \
    }                                                                                     \
    wasm_v128_store(s + j, sum);                                                          \
  }                                                                                       \
  for (; j < n; j++) {                                                                    \
    const ELEM *kr = k + (size_t)j * ks;                                                  \
    v128_t a0 = wasm_f32x4_splat(0), b0 = a0;                                             \
    int i = 0;                                                                            \
    for (; i + 8 <= dk; i += 8) {                                                         \
      a0 = madd_f32x4(wasm_v128_load(q + i), LOAD(kr + i), a0);                        \
      b0 = madd_f32x4(wasm_v128_load(q + i + 4), LOAD(kr + i + 4), b0);                \
    }                                                                                     \
    if (i + 4 <= dk) {                                                                    \
      a0 = madd_f32x4(wasm_v128_load(q + i), LOAD(kr + i), a0);                        \
      i += 4;                                                                             \
    }                                                                                     \
    float t = sy_hsum_f32x4(wasm_f32x4_add(a0, b0));                                      \
    for (; i < dk; i++) t += q[i] * TO_F32(kr[i]);                                        \
    s[j] = t;                                                                             \
  }

#define IDENTITY(x) (x)
static void scores_f32(float *s, const float *q, const float *k, size_t ks, int n, int dk) {
  QK_SCORES(float, load_f32x4, IDENTITY)
}
static void scores_f16(float *s, const float *q, const uint16_t *k, size_t ks, int n, int dk) {
  QK_SCORES(uint16_t, load_half4, sy_f16_to_f32)
}

// ---- sum_j p[j] * v row j ---------------------------------------------------------

// o[0..dv) += sum_j p[j] * v row j (rows `vstride` elements apart), added in order
// j = 0, 1, ... for every element, so calls over consecutive blocks of rows give the same
// bits as one call over all of them. A tile of 32 outputs (eight independent chains) stays
// in registers while the rows stream past; then tiles of 4, then single elements.
#define VACC(ELEM, LOAD, TO_F32)                                                          \
  int d = 0;                                                                              \
  for (; d + 32 <= dv; d += 32) {                                                         \
    v128_t a0 = wasm_v128_load(o + d), a1 = wasm_v128_load(o + d + 4), a2 = wasm_v128_load(o + d + 8); \
    v128_t a3 = wasm_v128_load(o + d + 12), a4 = wasm_v128_load(o + d + 16), a5 = wasm_v128_load(o + d + 20); \
    v128_t a6 = wasm_v128_load(o + d + 24), a7 = wasm_v128_load(o + d + 28);             \
    const ELEM *vr = v + d;                                                               \
    for (int j = 0; j < n; j++, vr += vstride) {                                          \
      v128_t pj = wasm_v128_load32_splat(p + j);                                          \
      a0 = madd_f32x4(pj, LOAD(vr), a0);                                               \
      a1 = madd_f32x4(pj, LOAD(vr + 4), a1);                                           \
      a2 = madd_f32x4(pj, LOAD(vr + 8), a2);                                           \
      a3 = madd_f32x4(pj, LOAD(vr + 12), a3);                                          \
      a4 = madd_f32x4(pj, LOAD(vr + 16), a4);                                          \
      a5 = madd_f32x4(pj, LOAD(vr + 20), a5);                                          \
      a6 = madd_f32x4(pj, LOAD(vr + 24), a6);                                          \
      a7 = madd_f32x4(pj, LOAD(vr + 28), a7);                                          \
    }                                                                                     \
    wasm_v128_store(o + d, a0);                                                           \
    wasm_v128_store(o + d + 4, a1);                                                       \
    wasm_v128_store(o + d + 8, a2);                                                       \
    wasm_v128_store(o + d + 12, a3);                                                      \
    wasm_v128_store(o + d + 16, a4);                                                      \
    wasm_v128_store(o + d + 20, a5);                                                      \
    wasm_v128_store(o + d + 24, a6);                                                      \
    wasm_v128_store(o + d + 28, a7);                                                      \
  }                                                                                       \
  for (; d + 4 <= dv; d += 4) {                                                           \
    v128_t a0 = wasm_v128_load(o + d);                                                    \
    const ELEM *vr = v + d;                                                               \
    for (int j = 0; j < n; j++, vr += vstride) a0 = madd_f32x4(wasm_v128_load32_splat(p + j), LOAD(vr), a0); \
    wasm_v128_store(o + d, a0);                                                           \
  }                                                                                       \
  for (; d < dv; d++) {                                                                   \
    float a = o[d];                                                                       \
    for (int j = 0; j < n; j++) a += p[j] * TO_F32(v[(size_t)j * vstride + d]);           \
    o[d] = a;                                                                             \
  }

static void vacc_f32(float *o, const float *p, const float *v, int n, int dv, size_t vstride) {
  VACC(float, load_f32x4, IDENTITY)
}
static void vacc_f16(float *o, const float *p, const uint16_t *v, int n, int dv, size_t vstride) {
  VACC(uint16_t, load_half4, sy_f16_to_f32)
}

SY_INLINE float round_f16(float x) { return sy_f16_to_f32(sy_f32_to_f16(x)); }

// Keys are processed in blocks: a block of K (V) rows is read by every head of a run of
// heads sharing its KV head before the next block, so it comes from cache, not memory, for
// all but the first. Blocking never changes a head's arithmetic.
#define KEY_BLOCK 32

// args: 0 out f32 [T, H, Dv], 1 q f32 [T, H, Dk], 2 k [S, Hkv, Dk] (type 15), 3 v [S, Hkv, Dv]
//       (type 16), 4 sinks f32 [H] or 0, 5 scratch, 6 scratch floats per thread
//       (>= R * (S4 + Dk4), S4 and Dk4 = S and Dk rounded up to a multiple of 4), 7 T, 8 H,
//       9 Hkv, 10 Dk, 11 Dv, 12 S, 13 qPos0, 14 window (0 = none), 15 K type (F32/F16),
//       16 V type (F32/F16), 17 scale (f32), 18 softcap (f32, 0 = off),
//       19 R: most heads per run (1 .. H / Hkv)
// Each thread takes a contiguous range of (t, h) pairs (h fastest) and cuts it into runs of
// up to R heads of one token that share a KV head; no thread waits for another.
// Scratch per thread: R rows of S4 floats (scores, then probabilities), then R rows of Dk4
// floats (q rounded to F16, F16 K only).
SY_KERNEL(attention) {
  float *out = ARG_P(float, 0);
  const float *q = ARG_P(const float, 1);
  const uint8_t *kb = ARG_P(const uint8_t, 2), *vb = ARG_P(const uint8_t, 3);
  const float *sinks = ARG_P(const float, 4);
  float *scratch = ARG_P(float, 5) + (size_t)ith * ARG_I(6);
  int T = ARG_I(7), H = ARG_I(8), Hkv = ARG_I(9), Dk = ARG_I(10), Dv = ARG_I(11), S = ARG_I(12);
  int qpos0 = ARG_I(13), window = ARG_I(14), rmax = ARG_I(19);
  if (rmax < 1 || rmax > 16) rmax = rmax < 1 ? 1 : 16;  // qv below holds 16
  int k16 = ARG_I(15) == SY_F16, v16 = ARG_I(16) == SY_F16;
  float scale = ARG_F(17), softcap = ARG_F(18);
  // Soft-capping as ggml's flash path: s = softcap * tanh(qk * (scale / softcap)).
  float sc = softcap != 0.0f ? scale / softcap : scale;
  int group = H / Hkv;
  size_t kstride = (size_t)Hkv * Dk, vstride = (size_t)Hkv * Dv;
  size_t s4 = (size_t)((S + 3) & ~3), dk4 = (size_t)((Dk + 3) & ~3);
  float *qr = scratch + (size_t)rmax * s4;

  int lo, hi;
  sy_range(T * H, ith, nth, &lo, &hi);
  for (int item = lo; item < hi;) {
    int t = item / H, h0 = item % H, g = h0 / group;
    int m = (g + 1) * group - h0;  // heads h0 .. h0 + m - 1 of this token share KV head g
    if (m > hi - item) m = hi - item;
    if (m > rmax) m = rmax;
    int pos = qpos0 + t;
    int j0 = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    int n = pos - j0 + 1;  // keys j0..pos are visible
    const float *qv[16];
    for (int r = 0; r < m; r++) {
      qv[r] = q + (size_t)(item + r) * Dk;
      if (k16) {
        float *qd = qr + (size_t)r * dk4;
        for (int i = 0; i < Dk; i++) qd[i] = round_f16(qv[r][i]);
        qv[r] = qd;
      }
    }

    // scores, block by block of keys, every head of the run per block
    for (int jb = 0; jb < n; jb += KEY_BLOCK) {
      int nb = n - jb < KEY_BLOCK ? n - jb : KEY_BLOCK;
      size_t koff = (size_t)(j0 + jb) * kstride + (size_t)g * Dk;
      for (int r = 0; r < m; r++) {
        float *score = scratch + (size_t)r * s4 + jb;
        if (k16) {
          scores_f16(score, qv[r], (const uint16_t *)kb + koff, kstride, nb, Dk);
        } else {
          scores_f32(score, qv[r], (const float *)kb + koff, kstride, nb, Dk);
        }
      }
    }

    for (int r = 0; r < m; r++) {
      int h = h0 + r;
      float *score = scratch + (size_t)r * s4;
      float mx = sinks ? sinks[h] : -__builtin_inff();
      for (int j = 0; j < n; j++) {
        float s = score[j] * sc;
        if (softcap != 0.0f) s = softcap * sy_tanhf(s);
        score[j] = s;
        mx = s > mx ? s : mx;
      }
      // e_j = exp(s_j - max), four at a time; the sum in double, in order j = 0, 1, ...
      double sum = 0;
      int j = 0;
      v128_t vmx = wasm_f32x4_splat(mx);
      for (; j + 4 <= n; j += 4) {
        v128_t e = sy_expf4(wasm_f32x4_sub(wasm_v128_load(score + j), vmx));
        wasm_v128_store(score + j, e);
        sum += (double)wasm_f32x4_extract_lane(e, 0);
        sum += (double)wasm_f32x4_extract_lane(e, 1);
        sum += (double)wasm_f32x4_extract_lane(e, 2);
        sum += (double)wasm_f32x4_extract_lane(e, 3);
      }
      for (; j < n; j++) {
        score[j] = sy_expf(score[j] - mx);
        sum += (double)score[j];
      }
      if (sinks) sum += (double)sy_expf(sinks[h] - mx);
      float inv = (float)(1.0 / sum);
      for (j = 0; j < n; j++) score[j] = v16 ? round_f16(score[j] * inv) : score[j] * inv;
      float *o = out + (size_t)(item + r) * Dv;
      for (int d = 0; d < Dv; d++) o[d] = 0.0f;
    }

    // o += p . V, block by block of rows, every head of the run per block
    for (int jb = 0; jb < n; jb += KEY_BLOCK) {
      int nb = n - jb < KEY_BLOCK ? n - jb : KEY_BLOCK;
      size_t voff = (size_t)(j0 + jb) * vstride + (size_t)g * Dv;
      for (int r = 0; r < m; r++) {
        float *o = out + (size_t)(item + r) * Dv;
        const float *p = scratch + (size_t)r * s4 + jb;
        if (v16) {
          vacc_f16(o, p, (const uint16_t *)vb + voff, nb, Dv, vstride);
        } else {
          vacc_f32(o, p, (const float *)vb + voff, nb, Dv, vstride);
        }
      }
    }
    item += m;
  }
}
