// Element-wise and row kernels: embedding-row lookup, RMS and layer norm, rotary
// embedding (NORM / NEOX, partial rotary, linear scaling, YaRN, frequency factors),
// softmax, activations (SiLU, GELU, SwiGLU, gpt-oss clamped SwiGLU), add / mul /
// scale and top-k.
//
// Semantics follow ggml's CPU backend: ggml/src/ggml-cpu/ops.cpp (rms_norm, norm,
// soft_max, rope, swiglu_oai, get_rows), vec.h / vec.cpp (ggml_silu_f32,
// ggml_gelu_f32, ggml_vec_soft_max_f32, ggml_vec_cvar_f32), ggml.c
// (ggml_rope_yarn_corr_dims). Element maths is float32; row sums are double
// (ggml_float) as in ggml. exp and the activation element functions are the shared ones
// of sy_math.h (twin: src/kernels/ref/math.ts).
//
// Determinism: every op here equals its twin in src/kernels/ref/ops.ts bit for bit,
// in both builds and at any thread count. The float operations are the same and in
// the same order, never fused (the relaxed build does not use relaxed_madd here), and
// each double row sum keeps four fixed partial sums (element i goes to partial i % 4
// over the whole groups of four), combined as (s0 + s1) + (s2 + s3), then the tail
// elements in order. The one exception is rope's cos/sin (a double-precision series
// here, Math.cos / Math.sin in the twin): both round to float, and agree except when
// the exact value lies within ~1e-16 of a float rounding boundary.
#include "types.h"
#include "sy_math.h"

// ---- small helpers -------------------------------------------------------------

// Row sums in double: two f64x2 accumulators hold the partial sums of lanes 0..3.
typedef struct {
  v128_t a01, a23;
} dsum4;

SY_INLINE dsum4 dsum4_zero(void) {
  dsum4 s = {wasm_f64x2_splat(0.0), wasm_f64x2_splat(0.0)};
  return s;
}
SY_INLINE void dsum4_add(dsum4 *s, v128_t v) {
  s->a01 = wasm_f64x2_add(s->a01, wasm_f64x2_promote_low_f32x4(v));
  s->a23 = wasm_f64x2_add(s->a23, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3)));
}
SY_INLINE double dsum4_total(dsum4 s) {
  return (wasm_f64x2_extract_lane(s.a01, 0) + wasm_f64x2_extract_lane(s.a01, 1)) +
         (wasm_f64x2_extract_lane(s.a23, 0) + wasm_f64x2_extract_lane(s.a23, 1));
}

// ---- element-wise kernels ------------------------------------------------------
// Each thread takes a contiguous range of elements; results do not depend on the split.

// args: 0 out f32 [n], 1 x f32 [n], 2 n
SY_KERNEL(op_silu) {
  float *y = ARG_P(float, 0);
  const float *x = ARG_P(const float, 1);
  int lo, hi;
  quad_range(ARG_I(2), ith, nth, &lo, &hi);
  int i = lo;
  for (; i + 4 <= hi; i += 4) wasm_v128_store(y + i, sy_siluf4(wasm_v128_load(x + i)));
  for (; i < hi; i++) y[i] = sy_siluf(x[i]);
}

// args: 0 out f32 [n], 1 x f32 [n], 2 n
SY_KERNEL(op_gelu) {
  float *y = ARG_P(float, 0);
  const float *x = ARG_P(const float, 1);
  int lo, hi;
  quad_range(ARG_I(2), ith, nth, &lo, &hi);
  int i = lo;
  for (; i + 4 <= hi; i += 4) wasm_v128_store(y + i, sy_geluf4(wasm_v128_load(x + i)));
  for (; i < hi; i++) y[i] = sy_geluf(x[i]);
}

// out = silu(gate) * up (ggml_vec_swiglu_f32).
// args: 0 out f32 [n], 1 gate f32 [n], 2 up f32 [n], 3 n
SY_KERNEL(op_swiglu) {
  float *y = ARG_P(float, 0);
  const float *g = ARG_P(const float, 1), *u = ARG_P(const float, 2);
  int lo, hi;
  quad_range(ARG_I(3), ith, nth, &lo, &hi);
  int i = lo;
  for (; i + 4 <= hi; i += 4) {
    wasm_v128_store(y + i, sy_swigluf4(wasm_v128_load(g + i), wasm_v128_load(u + i)));
  }
  for (; i < hi; i++) y[i] = sy_swigluf(g[i], u[i]);
}

// args: 0 out f32 [n], 1 gate f32 [n], 2 up f32 [n], 3 n, 4 alpha (f), 5 limit (f)
SY_KERNEL(op_swiglu_oai) {
  float *y = ARG_P(float, 0);
  const float *g = ARG_P(const float, 1), *u = ARG_P(const float, 2);
  float alpha = ARG_F(4), limit = ARG_F(5);
  v128_t va = wasm_f32x4_splat(alpha), vl = wasm_f32x4_splat(limit);
  int lo, hi;
  quad_range(ARG_I(3), ith, nth, &lo, &hi);
  int i = lo;
  for (; i + 4 <= hi; i += 4) {
    wasm_v128_store(y + i, sy_swiglu_oaif4(wasm_v128_load(g + i), wasm_v128_load(u + i), va, vl));
  }
  for (; i < hi; i++) y[i] = sy_swiglu_oaif(g[i], u[i], alpha, limit);
}

// One stretch of a binary op that does not cross a row of b.
SY_INLINE void binop_span(int is_mul, float *y, const float *a, const float *b, int n) {
  int i = 0;
  if (is_mul) {
    for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    for (; i < n; i++) y[i] = a[i] * b[i];
  } else {
    for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    for (; i < n; i++) y[i] = a[i] + b[i];
  }
}

// out = a + b or a * b; b has a's n elements, or (broadcast) one row of C repeated.
SY_INLINE void binop(int is_mul, int ith, int nth, const sy_args *a) {
  float *y = ARG_P(float, 0);
  const float *x = ARG_P(const float, 1), *b = ARG_P(const float, 2);
  int n = ARG_I(3), cols = ARG_I(4);
  int lo, hi;
  quad_range(n, ith, nth, &lo, &hi);
  if (!cols) {
    binop_span(is_mul, y + lo, x + lo, b + lo, hi - lo);
    return;
  }
  for (int i = lo; i < hi;) {
    int j = i % cols;
    int len = cols - j < hi - i ? cols - j : hi - i;
    binop_span(is_mul, y + i, x + i, b + j, len);
    i += len;
  }
}

// args: 0 out f32 [n], 1 a f32 [n], 2 b f32 [n] or [C], 3 n, 4 C when b is one broadcast row, else 0
SY_KERNEL(op_add) { binop(0, ith, nth, a); }
// args: as op_add
SY_KERNEL(op_mul) { binop(1, ith, nth, a); }

// ggml_vec_scale_f32: y[i] *= v
// args: 0 out f32 [n], 1 a f32 [n], 2 n, 3 s (f)
SY_KERNEL(op_scale) {
  float *y = ARG_P(float, 0);
  const float *x = ARG_P(const float, 1);
  float s = ARG_F(3);
  v128_t vs = wasm_f32x4_splat(s);
  int lo, hi;
  quad_range(ARG_I(2), ith, nth, &lo, &hi);
  int i = lo;
  for (; i + 4 <= hi; i += 4) wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(x + i), vs));
  for (; i < hi; i++) y[i] = x[i] * s;
}

// ---- row kernels ---------------------------------------------------------------

// Rows of a table of any kernel type, dequantized exactly (ggml_compute_forward_get_rows).
// The wrapper has checked every id against the table's row count.
// args: 0 out f32 [N, C], 1 table [V, C] (type 5), 2 ids i32 [N], 3 N, 4 C, 5 type
SY_KERNEL(op_get_rows) {
  float *out = ARG_P(float, 0);
  const uint8_t *table = ARG_P(const uint8_t, 1);
  const int32_t *ids = ARG_P(const int32_t, 2);
  int32_t cols = ARG_I(4), type = ARG_I(5);
  const sy_type_traits *tt = sy_traits(type);
  int32_t rb = sy_row_bytes(type, cols);
  int lo, hi;
  sy_range(ARG_I(3), ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) tt->dequant(table + (size_t)ids[r] * rb, out + (size_t)r * cols, cols);
}

// ggml_compute_forward_rms_norm_f32 (+ the ggml_mul by the weight):
//   sum += (ggml_float)(x[i00] * x[i00]);
//   const float mean  = sum/ne00;
//   const float scale = 1.0f/sqrtf(mean + eps);
//   y[i00] = x[i00] * scale * w[i00];
// args: 0 out f32 [R, C], 1 x f32 [R, C], 2 weight f32 [C] (0 = none), 3 R, 4 C, 5 eps (f)
SY_KERNEL(op_rms_norm) {
  float *out = ARG_P(float, 0);
  const float *xs = ARG_P(const float, 1), *w = ARG_P(const float, 2);
  int cols = ARG_I(4);
  float eps = ARG_F(5);
  int lo, hi;
  sy_range(ARG_I(3), ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) {
    const float *x = xs + (size_t)r * cols;
    float *y = out + (size_t)r * cols;
    dsum4 acc = dsum4_zero();
    int i = 0;
    for (; i + 4 <= cols; i += 4) {
      v128_t v = wasm_v128_load(x + i);
      dsum4_add(&acc, wasm_f32x4_mul(v, v));
    }
    double sum = dsum4_total(acc);
    for (; i < cols; i++) sum += (double)(x[i] * x[i]);
    float mean = (float)(sum / cols);
    float scale = 1.0f / __builtin_sqrtf(mean + eps);
    v128_t vs = wasm_f32x4_splat(scale);
    i = 0;
    if (w) {
      for (; i + 4 <= cols; i += 4) {
        wasm_v128_store(y + i, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(x + i), vs), wasm_v128_load(w + i)));
      }
      for (; i < cols; i++) y[i] = (x[i] * scale) * w[i];
    } else {
      for (; i + 4 <= cols; i += 4) wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(x + i), vs));
      for (; i < cols; i++) y[i] = x[i] * scale;
    }
  }
}

// ggml_compute_forward_norm_f32 (+ ggml_mul by the weight, ggml_add of the bias):
//   ggml_vec_sum_f32(ne00, &sum, xf);  float mean = sum/ne00;   (double sum, rounded to float)
//   variance = ggml_vec_cvar_f32(ne00, yf, xf, mean);            (y = x - mean, double sum of y*y, / n)
//   const float scale = 1.0f/sqrtf(variance + eps);
// args: 0 out f32 [R, C], 1 x f32 [R, C], 2 weight f32 [C] (0 = none), 3 bias f32 [C] (0 = none),
//       4 R, 5 C, 6 eps (f)
SY_KERNEL(op_layer_norm) {
  float *out = ARG_P(float, 0);
  const float *xs = ARG_P(const float, 1), *w = ARG_P(const float, 2), *b = ARG_P(const float, 3);
  int cols = ARG_I(5);
  float eps = ARG_F(6);
  int lo, hi;
  sy_range(ARG_I(4), ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) {
    const float *x = xs + (size_t)r * cols;
    float *y = out + (size_t)r * cols;
    dsum4 acc = dsum4_zero();
    int i = 0;
    for (; i + 4 <= cols; i += 4) dsum4_add(&acc, wasm_v128_load(x + i));
    double sum = dsum4_total(acc);
    for (; i < cols; i++) sum += (double)x[i];
    float mean = (float)sum / (float)cols;
    v128_t vm = wasm_f32x4_splat(mean);
    acc = dsum4_zero();
    for (i = 0; i + 4 <= cols; i += 4) {
      v128_t v = wasm_f32x4_sub(wasm_v128_load(x + i), vm);
      wasm_v128_store(y + i, v);
      dsum4_add(&acc, wasm_f32x4_mul(v, v));
    }
    double sum2 = dsum4_total(acc);
    for (; i < cols; i++) {
      float v = x[i] - mean;
      y[i] = v;
      sum2 += (double)(v * v);
    }
    float variance = (float)(sum2 / cols);
    float scale = 1.0f / __builtin_sqrtf(variance + eps);
    v128_t vs = wasm_f32x4_splat(scale);
    for (i = 0; i + 4 <= cols; i += 4) {
      v128_t v = wasm_f32x4_mul(wasm_v128_load(y + i), vs);
      if (w) v = wasm_f32x4_mul(v, wasm_v128_load(w + i));
      if (b) v = wasm_f32x4_add(v, wasm_v128_load(b + i));
      wasm_v128_store(y + i, v);
    }
    for (; i < cols; i++) {
      float v = y[i] * scale;
      if (w) v = v * w[i];
      if (b) v = v + b[i];
      y[i] = v;
    }
  }
}

// ggml_compute_forward_soft_max_f32 without mask: w = x * scale; max; e = expf(w - max)
// with the sum in double (ggml_vec_soft_max_f32); sum = 1.0/sum; y *= (float)sum.
// A row holding NaN, or +inf, or only -inf gives NaN (ggml asserts against these).
// args: 0 out f32 [R, C], 1 x f32 [R, C], 2 R, 3 C, 4 scale (f)
SY_KERNEL(op_softmax) {
  float *out = ARG_P(float, 0);
  const float *xs = ARG_P(const float, 1);
  int cols = ARG_I(3);
  float scale = ARG_F(4);
  v128_t vs = wasm_f32x4_splat(scale);
  int lo, hi;
  sy_range(ARG_I(2), ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) {
    const float *x = xs + (size_t)r * cols;
    float *y = out + (size_t)r * cols;
    v128_t vmax = wasm_f32x4_splat(-__builtin_inff());
    int i = 0;
    for (; i + 4 <= cols; i += 4) vmax = wasm_f32x4_pmax(vmax, wasm_f32x4_mul(wasm_v128_load(x + i), vs));
    float m = -__builtin_inff();
    for (int l = 0; l < 4; l++) {
      float v = wasm_f32x4_extract_lane(vmax, 0);
      vmax = wasm_i32x4_shuffle(vmax, vmax, 1, 2, 3, 0);
      m = m < v ? v : m;
    }
    for (; i < cols; i++) {
      float v = x[i] * scale;
      m = m < v ? v : m;
    }
    v128_t vm = wasm_f32x4_splat(m);
    dsum4 acc = dsum4_zero();
    for (i = 0; i + 4 <= cols; i += 4) {
      v128_t e = sy_expf4(wasm_f32x4_sub(wasm_f32x4_mul(wasm_v128_load(x + i), vs), vm));
      wasm_v128_store(y + i, e);
      dsum4_add(&acc, e);
    }
    double sum = dsum4_total(acc);
    for (; i < cols; i++) {
      float e = sy_expf(x[i] * scale - m);
      y[i] = e;
      sum += (double)e;
    }
    float inv = (float)(1.0 / sum);
    v128_t vi = wasm_f32x4_splat(inv);
    for (i = 0; i + 4 <= cols; i += 4) wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(y + i), vi));
    for (; i < cols; i++) y[i] = y[i] * inv;
  }
}

// ---- top-k ---------------------------------------------------------------------

// Whether (va, ia) ranks before (vb, ib): larger value first, ties by lower index,
// NaN after every number (NaNs among themselves by index).
SY_INLINE int topk_before(float va, int ia, float vb, int ib) {
  if (va != va) return vb != vb && ia < ib;
  if (vb != vb) return 1;
  return va > vb || (va == vb && ia < ib);
}

// Heap of the k best so far with the worst at the root, stored in the output row.
static void topk_sift_down(float *hv, int32_t *hx, int size, int p) {
  for (;;) {
    int c = 2 * p + 1;
    if (c >= size) return;
    if (c + 1 < size && topk_before(hv[c], hx[c], hv[c + 1], hx[c + 1])) c++;  // the worse child
    if (!topk_before(hv[p], hx[p], hv[c], hx[c])) return;
    float tv = hv[p];
    int32_t tx = hx[p];
    hv[p] = hv[c], hx[p] = hx[c], hv[c] = tv, hx[c] = tx;
    p = c;
  }
}

// The k best of each row, best first (ggml_argsort descending + a view of the first k,
// with a total order: ties by index, NaN last). O(C log k) per row.
// args: 0 indices i32 [R, K], 1 values f32 [R, K], 2 x f32 [R, C], 3 R, 4 C, 5 K
SY_KERNEL(op_top_k) {
  int32_t *idx = ARG_P(int32_t, 0);
  float *val = ARG_P(float, 1);
  const float *xs = ARG_P(const float, 2);
  int cols = ARG_I(4), k = ARG_I(5);
  int lo, hi;
  sy_range(ARG_I(3), ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) {
    const float *x = xs + (size_t)r * cols;
    float *hv = val + (size_t)r * k;
    int32_t *hx = idx + (size_t)r * k;
    for (int i = 0; i < k; i++) {  // insert, sifting up
      int c = i;
      while (c > 0) {
        int p = (c - 1) / 2;
        if (!topk_before(hv[p], hx[p], x[i], i)) break;
        hv[c] = hv[p], hx[c] = hx[p];
        c = p;
      }
      hv[c] = x[i], hx[c] = i;
    }
    for (int i = k; i < cols; i++) {
      if (topk_before(x[i], i, hv[0], hx[0])) {
        hv[0] = x[i], hx[0] = i;
        topk_sift_down(hv, hx, k, 0);
      }
    }
    for (int end = k - 1; end > 0; end--) {  // move the worst to the back
      float tv = hv[0];
      int32_t tx = hx[0];
      hv[0] = hv[end], hx[0] = hx[end], hv[end] = tv, hx[end] = tx;
      topk_sift_down(hv, hx, end, 0);
    }
  }
}

// ---- rope ----------------------------------------------------------------------

// sin and cos of a double, accurate to ~1e-16 for |x| < 2^32 (positions far beyond any
// context). x = k pi/2 + r with pi/2 split in 21-bit pieces (k * piece exact for k < 2^32),
// then Taylor series on |r| <= pi/4 (truncation below 5e-17).
#define PIO2_1 0x1.921fb00000000p+0
#define PIO2_2 0x1.5110b00000000p-22
#define PIO2_3 0x1.1846900000000p-44
#define PIO2_4 0x1.13198a2e03707p-65
#define TWO_OVER_PI 0x1.45f306dc9c883p-1

static void sincos_d(double x, double *s, double *c) {
  if (!(__builtin_fabs(x) < 0x1p52)) {  // inf, NaN, or no fractional information left
    *s = *c = __builtin_nan("");
    return;
  }
  double k = __builtin_rint(x * TWO_OVER_PI);
  double r = x - k * PIO2_1;
  r = r - k * PIO2_2;
  r = r - k * PIO2_3;
  r = r - k * PIO2_4;
  double z = r * r;
  double sp = -1.0 / 1307674368000.0;  // -1/15!
  sp = sp * z + 1.0 / 6227020800.0;
  sp = sp * z - 1.0 / 39916800.0;
  sp = sp * z + 1.0 / 362880.0;
  sp = sp * z - 1.0 / 5040.0;
  sp = sp * z + 1.0 / 120.0;
  sp = sp * z - 1.0 / 6.0;
  double sr = r + r * z * sp;
  double cp = 1.0 / 20922789888000.0;  // 1/16!
  cp = cp * z - 1.0 / 87178291200.0;
  cp = cp * z + 1.0 / 479001600.0;
  cp = cp * z - 1.0 / 3628800.0;
  cp = cp * z + 1.0 / 40320.0;
  cp = cp * z - 1.0 / 720.0;
  cp = cp * z + 1.0 / 24.0;
  cp = cp * z - 0.5;
  double cr = 1.0 + z * cp;
  int q = (int)(k - 4.0 * __builtin_floor(k * 0.25));  // quadrant 0..3
  switch (q) {
    case 0: *s = sr, *c = cr; break;
    case 1: *s = cr, *c = -sr; break;
    case 2: *s = -sr, *c = -cr; break;
    default: *s = -cr, *c = sr; break;
  }
}

typedef struct {
  const float *freq_factors;
  int half;
  float theta_scale, freq_scale, ext_factor, mscale, corr_lo, corr_hi;
} rope_params;

// cos and sin of every pair's angle at position p, times mscale (ggml_rope_cache_init):
//   float theta = theta_base;  ... theta *= theta_scale;      (theta_base = p, float)
//   rope_yarn(theta/ff, freq_scale, corr_dims, i0, ext_factor, mscale, ...)
// rope_yarn:
//   float theta_interp = freq_scale * theta_extrap;
//   ramp_mix = rope_yarn_ramp(corr_dims[0], corr_dims[1], i0) * ext_factor;
//   theta = theta_interp * (1 - ramp_mix) + theta_extrap * ramp_mix;
//   *cos_theta = cosf(theta) * mscale;
// rope_yarn_ramp:
//   const float y = (i0 / 2 - low) / MAX(0.001f, high - low);
//   return 1 - MIN(1, MAX(0, y));
// The mscale adjustment of rope_yarn (mscale *= 1 + 0.1 ln(1 / freq_scale) when
// ext_factor != 0) is folded into mscale by the wrapper, once per call.
static void rope_cache(const rope_params *rp, int32_t pos, float *cs, float *sn) {
  float theta = (float)pos;
  float span = rp->corr_hi - rp->corr_lo;
  float denom = 0.001f > span ? 0.001f : span;
  for (int i = 0; i < rp->half; i++) {
    float ff = rp->freq_factors ? rp->freq_factors[i] : 1.0f;
    float extrap = theta / ff;
    float th = rp->freq_scale * extrap;
    if (rp->ext_factor != 0.0f) {
      float y = ((float)i - rp->corr_lo) / denom;
      float clamped = 0.0f > y ? 0.0f : y;
      float ramp = 1.0f - (1.0f < clamped ? 1.0f : clamped);
      float mix = ramp * rp->ext_factor;
      th = th * (1.0f - mix) + extrap * mix;
    }
    double s, c;
    sincos_d((double)th, &s, &c);
    cs[i] = (float)c * rp->mscale;
    sn[i] = (float)s * rp->mscale;
    theta *= rp->theta_scale;
  }
}

// NORM: pairs (x[2i], x[2i+1]); NEOX: pairs (x[i], x[i + half]) (rotate_pairs):
//   dst[0]        = x0*cos_theta - x1*sin_theta;
//   dst[n_offset] = x0*sin_theta + x1*cos_theta;
static void rope_row_norm(float *y, const float *x, const float *cs, const float *sn, int half) {
  const v128_t sign = wasm_i32x4_make((int32_t)0x80000000, 0, (int32_t)0x80000000, 0);
  int i = 0;  // pair index
  for (; i + 2 <= half; i += 2) {
    v128_t v = wasm_v128_load(x + 2 * i);           // a0 b0 a1 b1
    v128_t vs = wasm_i32x4_shuffle(v, v, 1, 0, 3, 2);  // b0 a0 b1 a1
    v128_t c = wasm_v128_load64_zero(cs + i), s = wasm_v128_load64_zero(sn + i);
    c = wasm_i32x4_shuffle(c, c, 0, 0, 1, 1);
    s = wasm_v128_xor(wasm_i32x4_shuffle(s, s, 0, 0, 1, 1), sign);  // -s0 s0 -s1 s1
    // lane 0: a*c + b*(-s) == a*c - b*s; lane 1: b*c + a*s == a*s + b*c (exact same roundings)
    wasm_v128_store(y + 2 * i, wasm_f32x4_add(wasm_f32x4_mul(v, c), wasm_f32x4_mul(vs, s)));
  }
  for (; i < half; i++) {
    float x0 = x[2 * i], x1 = x[2 * i + 1];
    y[2 * i] = x0 * cs[i] - x1 * sn[i];
    y[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
  }
}

static void rope_row_neox(float *y, const float *x, const float *cs, const float *sn, int half) {
  int i = 0;
  for (; i + 4 <= half; i += 4) {
    v128_t x0 = wasm_v128_load(x + i), x1 = wasm_v128_load(x + half + i);
    v128_t c = wasm_v128_load(cs + i), s = wasm_v128_load(sn + i);
    wasm_v128_store(y + i, wasm_f32x4_sub(wasm_f32x4_mul(x0, c), wasm_f32x4_mul(x1, s)));
    wasm_v128_store(y + half + i, wasm_f32x4_add(wasm_f32x4_mul(x0, s), wasm_f32x4_mul(x1, c)));
  }
  for (; i < half; i++) {
    float x0 = x[i], x1 = x[half + i];
    y[i] = x0 * cs[i] - x1 * sn[i];
    y[half + i] = x0 * sn[i] + x1 * cs[i];
  }
}

// Rows (token, head) are split over threads; each thread computes the cos/sin cache of
// a token once and applies it to that token's heads in its range (as ggml does).
// Dimensions nDims..Dh-1 are copied unchanged (partial rotary).
// args: 0 out f32 [T, H, Dh], 1 x f32 [T, H, Dh], 2 positions i32 [T], 3 freq factors
//       f32 [nDims/2] (0 = none), 4 scratch (nth * nDims floats), 5 T, 6 H, 7 Dh, 8 nDims,
//       9 mode (0 = NORM, 2 = NEOX, as GGML_ROPE_TYPE_*), 10 theta_scale (f),
//       11 freq_scale (f), 12 ext_factor (f), 13 mscale (f), 14 corr_dims[0] (f),
//       15 corr_dims[1] (f)
SY_KERNEL(op_rope) {
  float *out = ARG_P(float, 0);
  const float *xs = ARG_P(const float, 1);
  const int32_t *pos = ARG_P(const int32_t, 2);
  int tokens = ARG_I(5), heads = ARG_I(6), dh = ARG_I(7), n_dims = ARG_I(8), neox = ARG_I(9) == 2;
  rope_params rp = {ARG_P(const float, 3), n_dims / 2, ARG_F(10), ARG_F(11), ARG_F(12), ARG_F(13), ARG_F(14), ARG_F(15)};
  float *cs = ARG_P(float, 4) + (size_t)ith * n_dims, *sn = cs + rp.half;
  int lo, hi;
  sy_range(tokens * heads, ith, nth, &lo, &hi);
  int cached = -1;
  for (int row = lo; row < hi; row++) {
    int t = row / heads;
    if (t != cached) {
      rope_cache(&rp, pos[t], cs, sn);
      cached = t;
    }
    const float *x = xs + (size_t)row * dh;
    float *y = out + (size_t)row * dh;
    if (neox) {
      rope_row_neox(y, x, cs, sn, rp.half);
    } else {
      rope_row_norm(y, x, cs, sn, rp.half);
    }
    if (y != x) {
      for (int i = n_dims; i < dh; i++) y[i] = x[i];
    }
  }
}
