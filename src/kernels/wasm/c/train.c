// Training kernels: the general matrix product (gemm), backward passes of RMSNorm, SwiGLU
// and attention, softmax cross-entropy, row scatter / dot / scale, the sum of squares and
// the AdamW step. Twins: src/kernels/ref/train.ts (float64 maths; these compute in float32
// SIMD, so the two agree to rounding; scatter_add_rows and scale_rows agree bit for bit).
//
// gemm follows the BLIS / GotoBLAS layering (Van Zee & van de Geijn, "BLIS: A Framework for
// Rapidly Instantiating BLAS Functionality", 2015): op(b) is packed in KC x NC blocks of
// NR-wide micro-panels, op(a) in MR-tall micro-panels of KC, and a register-blocked MR x NR
// micro-kernel runs over them; transposes cost only in the packing. Threads share the packing
// and then split the output tiles. The relaxed build fuses its multiply-adds (sy_madd_f32x4).
#include "sy.h"
#include "sy_math.h"

// ---- gemm ---------------------------------------------------------------------------

// 4 x 8: eight accumulators, two B vectors and a broadcast A value stay in the 16 x64
// vector registers V8 has (measured: 6 x 8 and 5 x 8 run 15-25% slower, they spill).
#define MR 4
#define NR 8
#define MC (16 * MR)  // rows of a compute unit (MC / MR micro-panels of A share one B micro-panel)

// op(a) rows [i0, i0 + MR) x columns [p0, p0 + kc) -> dst[k * MR + r]; rows past M are zero.
static void pack_a(float *dst, const float *a, int trans, int M, int K, int i0, int p0, int kc) {
  int rows = M - i0 < MR ? M - i0 : MR;
  if (trans) {  // a [K, M]: op(a)[i, k] = a[k * M + i]
    const float *src = a + (size_t)p0 * M + i0;
    if (rows == MR) {
      for (int k = 0; k < kc; k++) wasm_v128_store(dst + k * MR, wasm_v128_load(src + (size_t)k * M));
    } else {
      for (int k = 0; k < kc; k++)
        for (int r = 0; r < MR; r++) dst[k * MR + r] = r < rows ? src[(size_t)k * M + r] : 0.0f;
    }
    return;
  }
  // a [M, K]: four rows transposed four columns at a time.
  const float *s0 = a + (size_t)i0 * K + p0;
  if (rows == MR) {
    const float *s1 = s0 + K, *s2 = s1 + K, *s3 = s2 + K;
    int k = 0;
    for (; k + 4 <= kc; k += 4) {
      v128_t r0 = wasm_v128_load(s0 + k), r1 = wasm_v128_load(s1 + k);
      v128_t r2 = wasm_v128_load(s2 + k), r3 = wasm_v128_load(s3 + k);
      v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
      v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
      wasm_v128_store(dst + k * MR, wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5));
      wasm_v128_store(dst + k * MR + 4, wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
      wasm_v128_store(dst + k * MR + 8, wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5));
      wasm_v128_store(dst + k * MR + 12, wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7));
    }
    for (; k < kc; k++) {
      dst[k * MR] = s0[k];
      dst[k * MR + 1] = s1[k];
      dst[k * MR + 2] = s2[k];
      dst[k * MR + 3] = s3[k];
    }
    return;
  }
  for (int r = 0; r < MR; r++)
    for (int k = 0; k < kc; k++) dst[k * MR + r] = r < rows ? s0[(size_t)r * K + k] : 0.0f;
}

// op(b) rows [p0, p0 + kc) x columns [j0, j0 + NR) -> dst[k * NR + c]; columns past N are zero.
static void pack_b(float *dst, const float *b, int trans, int N, int K, int j0, int p0, int kc) {
  int cols = N - j0 < NR ? N - j0 : NR;
  if (!trans) {  // b [K, N]: op(b)[k, j] = b[k * N + j]
    const float *src = b + (size_t)p0 * N + j0;
    if (cols == NR) {
      for (int k = 0; k < kc; k++) {
        wasm_v128_store(dst + k * NR, wasm_v128_load(src + (size_t)k * N));
        wasm_v128_store(dst + k * NR + 4, wasm_v128_load(src + (size_t)k * N + 4));
      }
    } else {
      for (int k = 0; k < kc; k++)
        for (int c = 0; c < NR; c++) dst[k * NR + c] = c < cols ? src[(size_t)k * N + c] : 0.0f;
    }
    return;
  }
  // b [N, K]: op(b)[k, j] = b[j * K + k]
  for (int c = 0; c < NR; c++) {
    const float *src = b + (size_t)(j0 + c) * K + p0;
    if (c < cols) {
      for (int k = 0; k < kc; k++) dst[k * NR + c] = src[k];
    } else {
      for (int k = 0; k < kc; k++) dst[k * NR + c] = 0.0f;
    }
  }
}

// One output row of a tile: out = alpha * acc + beta * out (beta == 0: out is not read).
SY_INLINE void tile_row(float *o, v128_t c0, v128_t c1, v128_t va, float beta) {
  c0 = wasm_f32x4_mul(c0, va);
  c1 = wasm_f32x4_mul(c1, va);
  if (beta != 0.0f) {
    v128_t vb = wasm_f32x4_splat(beta);
    c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(wasm_v128_load(o), vb));
    c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(wasm_v128_load(o + 4), vb));
  }
  wasm_v128_store(o, c0);
  wasm_v128_store(o + 4, c1);
}

// The micro-kernel: the MR x NR tile at `out` (row stride ldo; only rows x cols of it are
// inside the matrix) = alpha * Ap · Bp + beta * out, over kc packed steps. The loops over
// the tile have constant bounds and unroll, so the 2 MR accumulators live in registers.
static void micro_kernel(int kc, const float *restrict ap, const float *restrict bp, float *out, int ldo, int rows,
                         int cols, float alpha, float beta) {
  v128_t c[MR][2];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = wasm_f32x4_splat(0);
  for (int k = 0; k < kc; k++) {
    v128_t b0 = wasm_v128_load(bp), b1 = wasm_v128_load(bp + 4);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
      v128_t a = wasm_v128_load32_splat(ap + r);
      c[r][0] = sy_madd_f32x4(a, b0, c[r][0]);
      c[r][1] = sy_madd_f32x4(a, b1, c[r][1]);
    }
    ap += MR;
    bp += NR;
  }
  v128_t va = wasm_f32x4_splat(alpha);
  if (rows == MR && cols == NR) {
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) tile_row(out + (size_t)r * ldo, c[r][0], c[r][1], va, beta);
    return;
  }
  // An edge tile: through a buffer, then only the cells inside the matrix.
  float t[MR * NR];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) {
    wasm_v128_store(t + r * NR, wasm_f32x4_mul(c[r][0], va));
    wasm_v128_store(t + r * NR + 4, wasm_f32x4_mul(c[r][1], va));
  }
  for (int r = 0; r < rows; r++) {
    float *o = out + (size_t)r * ldo;
    for (int cc = 0; cc < cols; cc++) o[cc] = beta != 0.0f ? t[r * NR + cc] + beta * o[cc] : t[r * NR + cc];
  }
}

// out [M, N] = alpha · op(a) · op(b) + beta · out. Scratch: packed A [Mp, KC] then packed
// B [KC, NCp] (Mp, NCp: M and NC rounded up to MR and NR). For each KC block of the inner
// dimension and each NC block of columns, the threads pack together, wait, then each computes
// a contiguous range of (MC rows x NR columns) units. KC blocks after the first accumulate (beta 1).
// args: 0 out f32 [M, N], 1 a f32, 2 b f32, 3 scratch, 4 M, 5 N, 6 K, 7 transA, 8 transB,
//       9 alpha (f), 10 beta (f), 11 KC, 12 NC
SY_KERNEL(gemm) {
  float *out = ARG_P(float, 0);
  const float *A = ARG_P(const float, 1), *B = ARG_P(const float, 2);
  float *scratch = ARG_P(float, 3);
  int M = ARG_I(4), N = ARG_I(5), K = ARG_I(6), ta = ARG_I(7), tb = ARG_I(8);
  float alpha = ARG_F(9), beta = ARG_F(10);
  int KC = ARG_I(11), NC = ARG_I(12);
  int lo, hi;
  if (K == 0) {  // out = beta · out
    sy_range(M, ith, nth, &lo, &hi);
    for (int i = lo; i < hi; i++)
      for (int j = 0; j < N; j++) out[(size_t)i * N + j] = beta != 0.0f ? beta * out[(size_t)i * N + j] : 0.0f;
    return;
  }
  int mpanels = (M + MR - 1) / MR;
  float *ap = scratch;
  float *bp = scratch + (size_t)mpanels * MR * KC;
  int mblocks = (M + MC - 1) / MC;
  for (int pc = 0; pc < K; pc += KC) {
    int kc = K - pc < KC ? K - pc : KC;
    float beff = pc == 0 ? beta : 1.0f;
    for (int jc = 0; jc < N; jc += NC) {
      int nc = N - jc < NC ? N - jc : NC;
      int npanels = (nc + NR - 1) / NR;
      if (jc == 0) {
        sy_range(mpanels, ith, nth, &lo, &hi);
        for (int p = lo; p < hi; p++) pack_a(ap + (size_t)p * MR * kc, A, ta, M, K, p * MR, pc, kc);
      }
      sy_range(npanels, ith, nth, &lo, &hi);
      for (int p = lo; p < hi; p++) pack_b(bp + (size_t)p * NR * kc, B, tb, N, K, jc + p * NR, pc, kc);
      sy_barrier(ith, nth);
      sy_range(mblocks * npanels, ith, nth, &lo, &hi);
      for (int u = lo; u < hi; u++) {
        int ib = u / npanels, jr = u % npanels;
        int j0 = jc + jr * NR;
        int cols = N - j0 < NR ? N - j0 : NR;
        const float *b = bp + (size_t)jr * NR * kc;
        int pend = (ib + 1) * (MC / MR) < mpanels ? (ib + 1) * (MC / MR) : mpanels;
        for (int p = ib * (MC / MR); p < pend; p++) {
          int i0 = p * MR;
          int rows = M - i0 < MR ? M - i0 : MR;
          micro_kernel(kc, ap + (size_t)p * MR * kc, b, out + (size_t)i0 * N + j0, N, rows, cols, alpha, beff);
        }
      }
      sy_barrier(ith, nth);  // before the next packing overwrites the panels
    }
  }
}

// ---- element-wise and row helpers ----------------------------------------------------

// Σ a[i] · b[i] in float32, four lanes and two accumulators, tail in order.
SY_INLINE float dot_f32(const float *a, const float *b, int n) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 = sy_madd_f32x4(wasm_v128_load(a + i), wasm_v128_load(b + i), s0);
    s1 = sy_madd_f32x4(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4), s1);
  }
  if (i + 4 <= n) {
    s0 = sy_madd_f32x4(wasm_v128_load(a + i), wasm_v128_load(b + i), s0);
    i += 4;
  }
  float s = sy_hsum_f32x4(wasm_f32x4_add(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// y[i] += s · x[i]
SY_INLINE void axpy_f32(float *y, const float *x, float s, int n) {
  v128_t vs = wasm_f32x4_splat(s);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, sy_madd_f32x4(vs, wasm_v128_load(x + i), wasm_v128_load(y + i)));
  for (; i < n; i++) y[i] += s * x[i];
}

// Σ x[i]² in double (two f64x2 accumulators).
SY_INLINE double sumsq_f64(const float *x, int n) {
  v128_t s0 = wasm_f64x2_splat(0.0), s1 = s0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    v128_t lo = wasm_f64x2_promote_low_f32x4(v);
    v128_t hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3));
    s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(lo, lo));
    s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(hi, hi));
  }
  double s = (wasm_f64x2_extract_lane(s0, 0) + wasm_f64x2_extract_lane(s0, 1)) +
             (wasm_f64x2_extract_lane(s1, 0) + wasm_f64x2_extract_lane(s1, 1));
  for (; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

// Natural log of a positive finite double: x = m · 2^e with m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, series to s^23 (error < 1e-17).
static double log_f64(double x) {
  union {
    double d;
    uint64_t u;
  } v = {x};
  int e = (int)((v.u >> 52) & 0x7ff) - 1023;
  v.u = (v.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull;  // m in [1, 2)
  double m = v.d;
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
  for (int k = 1; k <= 23; k += 2) {
    sum += term / k;
    term *= s2;
  }
  return 2 * sum + e * 0.69314718055994530942;
}

// ---- backward passes ------------------------------------------------------------------

// rmsNorm backward (y = x · r · w, r = 1 / sqrt(mean(x²) + eps)), with g = dy ⊙ w:
//   dx = r · g - x · r³ · (g · x) / C;  dweight += Σ_rows dy ⊙ x · r.
// Rows are split between threads; each thread sums its dweight share in its own scratch
// row, then (after a barrier) the threads add the rows into dweight column by column in
// thread order. dx may be dy: a row's sums are taken before its dx is written.
// args: 0 dx, 1 dy, 2 x [R, C], 3 weight [C] (0 = none), 4 dweight [C] (0 = none),
//       5 scratch f32 [nth, C], 6 R, 7 C, 8 eps (f)
SY_KERNEL(rms_norm_backward) {
  float *dx = ARG_P(float, 0);
  const float *dy = ARG_P(const float, 1), *xs = ARG_P(const float, 2), *w = ARG_P(const float, 3);
  float *dw = ARG_P(float, 4), *part = ARG_P(float, 5);
  int R = ARG_I(6), C = ARG_I(7);
  float eps = ARG_F(8);
  float *mine = part + (size_t)ith * C;
  if (dw)
    for (int i = 0; i < C; i++) mine[i] = 0.0f;
  int lo, hi;
  sy_range(R, ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) {
    const float *x = xs + (size_t)r * C, *g0 = dy + (size_t)r * C;
    float *o = dx + (size_t)r * C;
    double ss = sumsq_f64(x, C);
    float rr = (float)(1.0 / __builtin_sqrt(ss / C + eps));
    // g · x with g = dy ⊙ w
    v128_t acc = wasm_f32x4_splat(0);
    int i = 0;
    if (w) {
      for (; i + 4 <= C; i += 4)
        acc = sy_madd_f32x4(wasm_f32x4_mul(wasm_v128_load(g0 + i), wasm_v128_load(w + i)), wasm_v128_load(x + i), acc);
    } else {
      for (; i + 4 <= C; i += 4) acc = sy_madd_f32x4(wasm_v128_load(g0 + i), wasm_v128_load(x + i), acc);
    }
    float gx = sy_hsum_f32x4(acc);
    for (; i < C; i++) gx += g0[i] * (w ? w[i] : 1.0f) * x[i];
    if (dw) {
      v128_t vr = wasm_f32x4_splat(rr);
      for (i = 0; i + 4 <= C; i += 4)
        wasm_v128_store(mine + i, sy_madd_f32x4(wasm_f32x4_mul(wasm_v128_load(g0 + i), wasm_v128_load(x + i)), vr,
                                                wasm_v128_load(mine + i)));
      for (; i < C; i++) mine[i] += g0[i] * x[i] * rr;
    }
    float c = rr * rr * rr * gx / C;
    v128_t vr = wasm_f32x4_splat(rr), vc = wasm_f32x4_splat(c);
    for (i = 0; i + 4 <= C; i += 4) {
      v128_t g = wasm_v128_load(g0 + i);
      if (w) g = wasm_f32x4_mul(g, wasm_v128_load(w + i));
      wasm_v128_store(o + i, wasm_f32x4_sub(wasm_f32x4_mul(vr, g), wasm_f32x4_mul(wasm_v128_load(x + i), vc)));
    }
    for (; i < C; i++) o[i] = rr * (g0[i] * (w ? w[i] : 1.0f)) - x[i] * c;
  }
  if (!dw) return;
  sy_barrier(ith, nth);
  quad_range(C, ith, nth, &lo, &hi);
  for (int t = 0; t < nth; t++) {
    const float *p = part + (size_t)t * C;
    for (int i = lo; i < hi; i++) dw[i] += p[i];
  }
}

// out = silu(g) · u: dup = dout · silu(g); dgate = dout · u · σ(g) · (1 + g · (1 - σ(g))).
// dgate may be dout (each element is read before it is written).
// args: 0 dgate, 1 dup, 2 dout, 3 gate, 4 up, 5 n
SY_KERNEL(swiglu_backward) {
  float *dg = ARG_P(float, 0), *du = ARG_P(float, 1);
  const float *d = ARG_P(const float, 2), *gs = ARG_P(const float, 3), *us = ARG_P(const float, 4);
  int lo, hi;
  quad_range(ARG_I(5), ith, nth, &lo, &hi);
  v128_t one = wasm_f32x4_splat(1.0f);
  int i = lo;
  for (; i + 4 <= hi; i += 4) {
    v128_t g = wasm_v128_load(gs + i), u = wasm_v128_load(us + i), dd = wasm_v128_load(d + i);
    v128_t s = wasm_f32x4_div(one, wasm_f32x4_add(one, sy_expf4(wasm_f32x4_neg(g))));
    wasm_v128_store(du + i, wasm_f32x4_mul(dd, wasm_f32x4_mul(g, s)));
    v128_t ds = wasm_f32x4_mul(s, wasm_f32x4_add(one, wasm_f32x4_mul(g, wasm_f32x4_sub(one, s))));
    wasm_v128_store(dg + i, wasm_f32x4_mul(wasm_f32x4_mul(dd, u), ds));
  }
  for (; i < hi; i++) {
    float g = gs[i], dd = d[i];
    float s = 1.0f / (1.0f + sy_expf(-g));
    du[i] = dd * (g * s);
    dg[i] = (dd * us[i]) * (s * (1.0f + g * (1.0f - s)));
  }
}

// Attention backward (FlashAttention-2's backward, Dao 2023, Algorithm 2, without tiling):
// per query row (t, h) the probabilities P are recomputed, then
//   dv_j += P_j dO;  dP_j = dO · v_j;  dS_j = P_j (dP_j - Σ P dP) · ds/d(q·k_j);
//   dq = Σ_j dS_j k_j;  dk_j += dS_j q.
// Threads split the query heads; each accumulates dk and dv in its own scratch copy, and
// after a barrier the threads sum the copies into dk and dv (rows split, thread order).
// Scratch per thread: dk [S, Hkv, Dk], dv [S, Hkv, Dv], then P, dP, tanh rows [S] each.
// args: 0 dq, 1 dk, 2 dv, 3 dout, 4 q, 5 k, 6 v, 7 scratch, 8 floats per thread, 9 T, 10 H,
//       11 Hkv, 12 Dk, 13 Dv, 14 S, 15 qPos0, 16 window, 17 scale (f), 18 softcap (f)
SY_KERNEL(attention_backward) {
  float *dq = ARG_P(float, 0), *dk = ARG_P(float, 1), *dv = ARG_P(float, 2);
  const float *dout = ARG_P(const float, 3), *q = ARG_P(const float, 4), *k = ARG_P(const float, 5),
              *v = ARG_P(const float, 6);
  float *scratch = ARG_P(float, 7);
  int per = ARG_I(8), T = ARG_I(9), H = ARG_I(10), Hkv = ARG_I(11), Dk = ARG_I(12), Dv = ARG_I(13), S = ARG_I(14);
  int qPos0 = ARG_I(15), window = ARG_I(16);
  float scale = ARG_F(17), cap = ARG_F(18);
  int group = H / Hkv;
  size_t nk = (size_t)S * Hkv * Dk, nv = (size_t)S * Hkv * Dv;
  float *dkp = scratch + (size_t)ith * per, *dvp = dkp + nk, *P = dvp + nv, *dP = P + S, *th = dP + S;
  for (size_t i = 0; i < nk; i++) dkp[i] = 0.0f;
  for (size_t i = 0; i < nv; i++) dvp[i] = 0.0f;
  int hlo, hhi;
  sy_range(H, ith, nth, &hlo, &hhi);
  for (int h = hlo; h < hhi; h++) {
    int g = h / group;
    for (int t = 0; t < T; t++) {
      int pos = qPos0 + t;
      int j0 = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
      const float *qr = q + ((size_t)t * H + h) * Dk, *dor = dout + ((size_t)t * H + h) * Dv;
      float *dqr = dq + ((size_t)t * H + h) * Dk;
      float max = -__builtin_inff();
      for (int j = j0; j <= pos; j++) {
        float s = dot_f32(qr, k + ((size_t)j * Hkv + g) * Dk, Dk) * scale;
        if (cap != 0.0f) {
          th[j] = sy_tanhf(s / cap);
          s = cap * th[j];
        }
        P[j] = s;
        max = s > max ? s : max;
      }
      double sum = 0;
      for (int j = j0; j <= pos; j++) {
        P[j] = sy_expf(P[j] - max);
        sum += P[j];
      }
      float inv = (float)(1.0 / sum);
      double pdp = 0;
      for (int j = j0; j <= pos; j++) {
        P[j] *= inv;
        const float *vr = v + ((size_t)j * Hkv + g) * Dv;
        dP[j] = dot_f32(dor, vr, Dv);
        pdp += (double)P[j] * dP[j];
        axpy_f32(dvp + ((size_t)j * Hkv + g) * Dv, dor, P[j], Dv);
      }
      for (int i = 0; i < Dk; i++) dqr[i] = 0.0f;
      float fpdp = (float)pdp;
      for (int j = j0; j <= pos; j++) {
        float deriv = cap != 0.0f ? scale * (1.0f - th[j] * th[j]) : scale;
        float ds = P[j] * (dP[j] - fpdp) * deriv;
        const float *kr = k + ((size_t)j * Hkv + g) * Dk;
        axpy_f32(dqr, kr, ds, Dk);
        axpy_f32(dkp + ((size_t)j * Hkv + g) * Dk, qr, ds, Dk);
      }
    }
  }
  sy_barrier(ith, nth);
  int lo, hi;
  quad_range((int)nk, ith, nth, &lo, &hi);
  for (int i = lo; i < hi; i++) {
    float s = 0;
    for (int t = 0; t < nth; t++) s += scratch[(size_t)t * per + i];
    dk[i] = s;
  }
  quad_range((int)nv, ith, nth, &lo, &hi);
  for (int i = lo; i < hi; i++) {
    float s = 0;
    for (int t = 0; t < nth; t++) s += scratch[(size_t)t * per + nk + i];
    dv[i] = s;
  }
}

// ---- loss -----------------------------------------------------------------------------

// Softmax cross-entropy per row: loss = log Σ exp(x - max) + max - x[target];
// dlogits = (exp(x - max) / Σ - onehot(target)) · gradScale; ignored rows (target < 0) give
// 0 and a zero row. dlogits may be logits: x[target] and the maximum are read first, and the
// exponentials are written in place before the final scaling.
// args: 0 loss [T], 1 dlogits [T, V], 2 logits [T, V], 3 targets i32 [T], 4 T, 5 V, 6 gradScale (f)
SY_KERNEL(cross_entropy) {
  float *loss = ARG_P(float, 0), *dl = ARG_P(float, 1);
  const float *xs = ARG_P(const float, 2);
  const int32_t *tg = ARG_P(const int32_t, 3);
  int T = ARG_I(4), V = ARG_I(5);
  float gs = ARG_F(6);
  int lo, hi;
  sy_range(T, ith, nth, &lo, &hi);
  for (int t = lo; t < hi; t++) {
    const float *x = xs + (size_t)t * V;
    float *d = dl + (size_t)t * V;
    int target = tg[t];
    int i;
    if (target < 0) {
      loss[t] = 0.0f;
      for (i = 0; i < V; i++) d[i] = 0.0f;
      continue;
    }
    float xt = x[target];
    v128_t vm = wasm_f32x4_splat(-__builtin_inff());
    for (i = 0; i + 4 <= V; i += 4) vm = wasm_f32x4_pmax(vm, wasm_v128_load(x + i));
    float m01 = wasm_f32x4_extract_lane(vm, 0), m1 = wasm_f32x4_extract_lane(vm, 1);
    float m23 = wasm_f32x4_extract_lane(vm, 2), m3 = wasm_f32x4_extract_lane(vm, 3);
    m01 = m01 < m1 ? m1 : m01;
    m23 = m23 < m3 ? m3 : m23;
    float max = m01 < m23 ? m23 : m01;
    for (; i < V; i++) max = max < x[i] ? x[i] : max;
    v128_t vmax = wasm_f32x4_splat(max);
    v128_t s0 = wasm_f64x2_splat(0.0), s1 = s0;
    for (i = 0; i + 4 <= V; i += 4) {
      v128_t e = sy_expf4(wasm_f32x4_sub(wasm_v128_load(x + i), vmax));
      wasm_v128_store(d + i, e);
      s0 = wasm_f64x2_add(s0, wasm_f64x2_promote_low_f32x4(e));
      s1 = wasm_f64x2_add(s1, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(e, e, 2, 3, 2, 3)));
    }
    double sum = (wasm_f64x2_extract_lane(s0, 0) + wasm_f64x2_extract_lane(s0, 1)) +
                 (wasm_f64x2_extract_lane(s1, 0) + wasm_f64x2_extract_lane(s1, 1));
    for (; i < V; i++) {
      d[i] = sy_expf(x[i] - max);
      sum += d[i];
    }
    loss[t] = (float)(log_f64(sum) + ((double)max - xt));
    float sc = (float)(gs / sum);
    v128_t vs = wasm_f32x4_splat(sc);
    for (i = 0; i + 4 <= V; i += 4) wasm_v128_store(d + i, wasm_f32x4_mul(wasm_v128_load(d + i), vs));
    for (; i < V; i++) d[i] *= sc;
    d[target] -= gs;
  }
}

// ---- rows -----------------------------------------------------------------------------

// out[ids[t]] += weights[t] · x[t] in order of t, product rounded before the add (as the
// twin). Threads split the columns, so repeated ids never race and the order is fixed.
// args: 0 out [N, C], 1 x [T, C], 2 ids i32 [T], 3 weights [T] (0 = none), 4 T, 5 C
SY_KERNEL(scatter_add_rows) {
  float *out = ARG_P(float, 0);
  const float *x = ARG_P(const float, 1), *w = ARG_P(const float, 3);
  const int32_t *ids = ARG_P(const int32_t, 2);
  int T = ARG_I(4), C = ARG_I(5);
  int lo, hi;
  quad_range(C, ith, nth, &lo, &hi);
  for (int t = 0; t < T; t++) {
    int r = ids[t];
    if (r < 0) continue;
    float *o = out + (size_t)r * C;
    const float *xr = x + (size_t)t * C;
    int i = lo;
    if (w) {
      v128_t vw = wasm_f32x4_splat(w[t]);
      for (; i + 4 <= hi; i += 4)
        wasm_v128_store(o + i, wasm_f32x4_add(wasm_v128_load(o + i), wasm_f32x4_mul(vw, wasm_v128_load(xr + i))));
      for (; i < hi; i++) o[i] += w[t] * xr[i];
    } else {
      for (; i + 4 <= hi; i += 4) wasm_v128_store(o + i, wasm_f32x4_add(wasm_v128_load(o + i), wasm_v128_load(xr + i)));
      for (; i < hi; i++) o[i] += xr[i];
    }
  }
}

// args: 0 out [R], 1 a [R, C], 2 b [R, C], 3 R, 4 C
SY_KERNEL(row_dot) {
  float *out = ARG_P(float, 0);
  const float *a0 = ARG_P(const float, 1), *b0 = ARG_P(const float, 2);
  int C = ARG_I(4);
  int lo, hi;
  sy_range(ARG_I(3), ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) out[r] = dot_f32(a0 + (size_t)r * C, b0 + (size_t)r * C, C);
}

// out[r, :] = x[r, :] · s[r] (out may be x)
// args: 0 out [R, C], 1 x [R, C], 2 s [R], 3 R, 4 C
SY_KERNEL(scale_rows) {
  float *out = ARG_P(float, 0);
  const float *x = ARG_P(const float, 1), *s = ARG_P(const float, 2);
  int C = ARG_I(4);
  int lo, hi;
  sy_range(ARG_I(3), ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) {
    const float *xr = x + (size_t)r * C;
    float *o = out + (size_t)r * C;
    v128_t vs = wasm_f32x4_splat(s[r]);
    int i = 0;
    for (; i + 4 <= C; i += 4) wasm_v128_store(o + i, wasm_f32x4_mul(wasm_v128_load(xr + i), vs));
    for (; i < C; i++) o[i] = xr[i] * s[r];
  }
}

// Each thread's Σ x² (double) of its share, into out[ith]; the wrapper adds them in order.
// args: 0 out f64 [nth], 1 x [n], 2 n
SY_KERNEL(sum_squares) {
  int lo, hi;
  quad_range(ARG_I(2), ith, nth, &lo, &hi);
  ARG_P(double, 0)[ith] = sumsq_f64(ARG_P(const float, 1) + lo, hi - lo);
}

// ---- optimizer ------------------------------------------------------------------------

// AdamW (Loshchilov & Hutter 2019, Algorithm 2), in float32:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²;
//   p -= lr · ((m · c1) / (sqrt(v · c2) + eps) + wd · p),  c1 = 1 / (1 - b1^t), c2 = 1 / (1 - b2^t).
// args: 0 param, 1 grad, 2 m, 3 v, 4 n, 5 lr, 6 b1, 7 b2, 8 eps, 9 wd, 10 c1, 11 c2 (f)
SY_KERNEL(adamw) {
  float *p = ARG_P(float, 0), *m = ARG_P(float, 2), *v = ARG_P(float, 3);
  const float *g = ARG_P(const float, 1);
  float lr = ARG_F(5), b1 = ARG_F(6), b2 = ARG_F(7), eps = ARG_F(8), wd = ARG_F(9), c1 = ARG_F(10), c2 = ARG_F(11);
  int lo, hi;
  quad_range(ARG_I(4), ith, nth, &lo, &hi);
  v128_t vb1 = wasm_f32x4_splat(b1), vb2 = wasm_f32x4_splat(b2), v1b1 = wasm_f32x4_splat(1.0f - b1),
         v1b2 = wasm_f32x4_splat(1.0f - b2), vlr = wasm_f32x4_splat(lr), veps = wasm_f32x4_splat(eps),
         vwd = wasm_f32x4_splat(wd), vc1 = wasm_f32x4_splat(c1), vc2 = wasm_f32x4_splat(c2);
  int i = lo;
  for (; i + 4 <= hi; i += 4) {
    v128_t gi = wasm_v128_load(g + i), pi = wasm_v128_load(p + i);
    v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(vb1, wasm_v128_load(m + i)), wasm_f32x4_mul(v1b1, gi));
    v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(vb2, wasm_v128_load(v + i)), wasm_f32x4_mul(v1b2, wasm_f32x4_mul(gi, gi)));
    wasm_v128_store(m + i, mi);
    wasm_v128_store(v + i, vi);
    v128_t den = wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_mul(vi, vc2)), veps);
    v128_t upd = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_mul(mi, vc1), den), wasm_f32x4_mul(vwd, pi));
    wasm_v128_store(p + i, wasm_f32x4_sub(pi, wasm_f32x4_mul(vlr, upd)));
  }
  for (; i < hi; i++) {
    float mi = b1 * m[i] + (1.0f - b1) * g[i];
    float vi = b2 * v[i] + (1.0f - b2) * (g[i] * g[i]);
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * ((mi * c1) / (__builtin_sqrtf(vi * c2) + eps) + wd * p[i]);
  }
}
