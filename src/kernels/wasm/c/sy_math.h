// Float maths shared by the kernel files: exp, tanh and the activation element functions
// (SiLU, SwiGLU, GELU, gpt-oss clamped SwiGLU), each in a scalar and a four-lane form.
//
// One implementation for every kernel, so that fused kernels agree with the element-wise
// ops bit for bit (expert_group's SwiGLU equals op_swiglu, attention's softmax uses
// op_softmax's exp). The twin is src/kernels/ref/math.ts: the same float32 operations in
// the same order, so both give the same bits. The vector forms perform the scalar
// operations lane by lane (never fused: no relaxed_madd here), so they agree too.
//
// References: ggml-cpu vec.h (ggml_silu_f32, ggml_gelu_f32, ggml_vec_swiglu_f32), ops.cpp
// (ggml_compute_forward_swiglu_oai_f32); Cody-Waite argument reduction (Cody & Waite,
// Software Manual for the Elementary Functions, 1980).
#pragma once
#include "sy.h"


// ---- exp -----------------------------------------------------------------------
//
// exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in [-0.347, 0.347], with
// ln 2 split Cody-Waite style (0.693359375 has 9 bits, so n * LN2_HI is exact and
// x - n * LN2_HI is exact by Sterbenz). exp(r) = 1 + r + r^2 P(r), P a degree-5
// least-squares fit of (e^r - 1 - r) / r^2 weighted for relative error (model error
// 6e-11). Measured against a 30-digit reference over [-104, 88.72]: at most 0.955
// ulp, i.e. within 1 ulp of the correctly rounded value (subnormal results included).
// 2^n is applied as two exact powers of two, so results that are subnormal are
// rounded once. Inputs are clamped to [-104, 89]: exp(-104) rounds to 0 and exp(89)
// overflows to inf, as the true values do. NaN stays NaN.

#define SY_EXP_HI 89.0f
#define SY_EXP_LO -104.0f
#define SY_EXP_LOG2E 1.44269504088896341f
#define SY_EXP_ROUND 12582912.0f  // 1.5 * 2^23: x + this rounds x to an integer (ties to even)
#define SY_EXP_ROUND_BITS 0x4b400000u
#define SY_EXP_LN2_HI 0.693359375f
#define SY_EXP_LN2_LO -2.12194440e-4f
#define SY_EXP_P0 0.5f
#define SY_EXP_P1 0.166666657f
#define SY_EXP_P2 0.0416662805f
#define SY_EXP_P3 0.00833350327f
#define SY_EXP_P4 0.00139457406f
#define SY_EXP_P5 0.00019789279f

SY_INLINE float sy_expf(float x) {
  x = SY_EXP_HI < x ? SY_EXP_HI : x;  // NaN passes both comparisons unchanged
  x = x < SY_EXP_LO ? SY_EXP_LO : x;
  float t = x * SY_EXP_LOG2E + SY_EXP_ROUND;  // two roundings: -ffp-contract=off
  float n = t - SY_EXP_ROUND;
  int32_t ni = (int32_t)(sy_f32_bits(t) - SY_EXP_ROUND_BITS);  // n as an integer (|n| <= 151)
  float r = x - n * SY_EXP_LN2_HI;
  r = r - n * SY_EXP_LN2_LO;
  float p = SY_EXP_P5;
  p = p * r + SY_EXP_P4;
  p = p * r + SY_EXP_P3;
  p = p * r + SY_EXP_P2;
  p = p * r + SY_EXP_P1;
  p = p * r + SY_EXP_P0;
  float y = p * (r * r) + r;
  y = y + 1.0f;
  int32_t n1 = ni >> 1, n2 = ni - n1;
  return y * sy_bits_f32((uint32_t)(n1 + 127) << 23) * sy_bits_f32((uint32_t)(n2 + 127) << 23);
}

SY_INLINE v128_t sy_expf4(v128_t x) {
  x = wasm_f32x4_pmin(x, wasm_f32x4_splat(SY_EXP_HI));  // pmin(a, b) = b < a ? b : a
  x = wasm_f32x4_pmax(x, wasm_f32x4_splat(SY_EXP_LO));  // pmax(a, b) = a < b ? b : a
  v128_t t = wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(SY_EXP_LOG2E)), wasm_f32x4_splat(SY_EXP_ROUND));
  v128_t n = wasm_f32x4_sub(t, wasm_f32x4_splat(SY_EXP_ROUND));
  v128_t ni = wasm_i32x4_sub(t, wasm_i32x4_splat((int32_t)SY_EXP_ROUND_BITS));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(SY_EXP_LN2_HI)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(SY_EXP_LN2_LO)));
  v128_t p = wasm_f32x4_splat(SY_EXP_P5);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(SY_EXP_P4));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(SY_EXP_P3));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(SY_EXP_P2));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(SY_EXP_P1));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(SY_EXP_P0));
  v128_t y = wasm_f32x4_add(wasm_f32x4_mul(p, wasm_f32x4_mul(r, r)), r);
  y = wasm_f32x4_add(y, wasm_f32x4_splat(1.0f));
  v128_t n1 = wasm_i32x4_shr(ni, 1);
  v128_t n2 = wasm_i32x4_sub(ni, n1);
  v128_t bias = wasm_i32x4_splat(127);
  v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(n1, bias), 23);
  v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(n2, bias), 23);
  return wasm_f32x4_mul(wasm_f32x4_mul(y, s1), s2);
}

// ---- tanh ------------------------------------------------------------------------
//
// |x| < 0.4: the odd Taylor series to x^13 (the next term is below 1e-8 relative);
// otherwise 1 - 2 / (exp(2|x|) + 1) with the sign of x, on sy_expf. Measured against
// double tanh over every float32 in [2^-12, 20] (and sampled below and beyond): at most
// 1.89 ulp (at x = 0.5204, where 1 - 2/(e+1) cancels about one bit); the series part
// (|x| < 0.4) stays within 0.64 ulp. Odd bit for bit, but tanh(-0) gives +0. Scalar only (the
// attention soft-cap is its one user).

#define SY_TANH_SMALL 0.4f
#define SY_TANH_C3 (-3.33333343e-1f)  // -1/3
#define SY_TANH_C5 1.33333340e-1f     // 2/15
#define SY_TANH_C7 (-5.39682545e-2f)  // -17/315
#define SY_TANH_C9 2.18694881e-2f     // 62/2835
#define SY_TANH_C11 (-8.86323582e-3f) // -1382/155925
#define SY_TANH_C13 3.59212793e-3f    // 21844/6081075

SY_INLINE float sy_tanhf(float x) {
  float ax = x < 0 ? -x : x;
  if (ax < SY_TANH_SMALL) {
    float x2 = x * x;
    float p = SY_TANH_C13;
    p = p * x2 + SY_TANH_C11;
    p = p * x2 + SY_TANH_C9;
    p = p * x2 + SY_TANH_C7;
    p = p * x2 + SY_TANH_C5;
    p = p * x2 + SY_TANH_C3;
    return x + x * x2 * p;
  }
  float t = 1.0f - 2.0f / (sy_expf(2.0f * ax) + 1.0f);
  return x < 0 ? -t : t;
}

// ---- activations ------------------------------------------------------------------

// ggml_silu_f32: x / (1.0f + expf(-x))
SY_INLINE float sy_siluf(float x) { return x / (1.0f + sy_expf(-x)); }
SY_INLINE v128_t sy_siluf4(v128_t x) {
  return wasm_f32x4_div(x, wasm_f32x4_add(wasm_f32x4_splat(1.0f), sy_expf4(wasm_f32x4_neg(x))));
}

// ggml_vec_swiglu_f32: silu(g) * u
SY_INLINE float sy_swigluf(float g, float u) { return sy_siluf(g) * u; }
SY_INLINE v128_t sy_swigluf4(v128_t g, v128_t u) { return wasm_f32x4_mul(sy_siluf4(g), u); }

// ggml_gelu_f32: 0.5f*x*(1.0f + tanhf(SQRT_2_OVER_PI*x*(1.0f + GELU_COEF_A*x*x)))
// Computed through the identity 0.5 x (1 + tanh u) = x / (1 + exp(-2u)), which keeps
// full relative accuracy for negative x where 1 + tanh u cancels. (ggml's CPU
// ggml_vec_gelu_f32 looks the value up in an F16 table instead; this is the formula.)
#define SY_GELU_SQRT_2_OVER_PI 0.79788456080286535587989211986876f
#define SY_GELU_COEF_A 0.044715f
SY_INLINE float sy_geluf(float x) {
  float u = (SY_GELU_SQRT_2_OVER_PI * x) * (1.0f + (SY_GELU_COEF_A * x) * x);
  return x / (1.0f + sy_expf(-2.0f * u));
}
SY_INLINE v128_t sy_geluf4(v128_t x) {
  v128_t inner =
      wasm_f32x4_add(wasm_f32x4_splat(1.0f), wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_splat(SY_GELU_COEF_A), x), x));
  v128_t u = wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_splat(SY_GELU_SQRT_2_OVER_PI), x), inner);
  v128_t e = sy_expf4(wasm_f32x4_mul(wasm_f32x4_splat(-2.0f), u));
  return wasm_f32x4_div(x, wasm_f32x4_add(wasm_f32x4_splat(1.0f), e));
}

// ggml_compute_forward_swiglu_oai_f32:
//   const float x = std::min(src0_p[k], limit);
//   const float y = std::clamp(src1_p[k], -limit, limit);
//   const float out_glu = x / (1.f + expf(alpha * (-x)));
//   dst_p[k] = out_glu * (y + 1.f);
SY_INLINE float sy_swiglu_oaif(float g, float u, float alpha, float limit) {
  float x = limit < g ? limit : g;
  float y = u < -limit ? -limit : (limit < u ? limit : u);
  return (x / (1.0f + sy_expf(alpha * (-x)))) * (y + 1.0f);
}
SY_INLINE v128_t sy_swiglu_oaif4(v128_t g, v128_t u, v128_t alpha, v128_t limit) {
  v128_t x = wasm_f32x4_pmin(g, limit);
  v128_t y = wasm_f32x4_pmax(wasm_f32x4_pmin(u, limit), wasm_f32x4_neg(limit));
  v128_t glu =
      wasm_f32x4_div(x, wasm_f32x4_add(wasm_f32x4_splat(1.0f), sy_expf4(wasm_f32x4_mul(alpha, wasm_f32x4_neg(x)))));
  return wasm_f32x4_mul(glu, wasm_f32x4_add(y, wasm_f32x4_splat(1.0f)));
}
