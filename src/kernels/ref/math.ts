/**
 * Twins of src/kernels/wasm/c/sy_math.h, the float maths every kernel shares: exp, tanh
 * and the activation element functions (SiLU, SwiGLU, GELU, gpt-oss clamped SwiGLU).
 *
 * Each computes the same float32 operations in the same order as the C (Math.fround at
 * every step), so the kernels reproduce these values bit for bit, and every reference twin
 * that needs one of them imports it from here (ref/ops.ts, ref/attention.ts, ref/moe.ts).
 * References: ggml-cpu vec.h (ggml_silu_f32, ggml_gelu_f32, ggml_vec_swiglu_f32), ops.cpp
 * (ggml_compute_forward_swiglu_oai_f32); Cody-Waite argument reduction for exp.
 */

const fr = Math.fround;

// The C kernels' comparisons, which differ from Math.min / Math.max for NaN and signed
// zeros: pmin(a, b) = b < a ? b : a and pmax(a, b) = a < b ? b : a, like wasm's
// f32x4.pmin / pmax and std::min / std::max (NaN in `a` passes through).
export const pmin = (a: number, b: number): number => (b < a ? b : a);
export const pmax = (a: number, b: number): number => (a < b ? b : a);

// ---- exp -----------------------------------------------------------------------------

const EXP_P = [0.5, 0.166666657, 0.0416662805, 0.00833350327, 0.00139457406, 0.00019789279].map(fr);
const LOG2E = fr(Math.LOG2E);
const LN2_HI = 0.693359375; // 9 significant bits: n * LN2_HI is exact
const LN2_LO = fr(-2.12194440e-4);
const ROUND = 12582912; // 1.5 * 2^23: x + ROUND - ROUND rounds x to an integer, ties to even

/**
 * sy_expf: exp(x) in float32 within 1 ulp of the correctly rounded value (measured max
 * 0.955 ulp): n = round(x log2 e), r = x - n ln 2 (Cody-Waite), exp(r) = 1 + r + r^2 P(r),
 * times 2^n as two exact powers of two. Inputs clamped to [-104, 89]; NaN stays NaN.
 */
export function expf(x: number): number {
  x = fr(x);
  x = pmax(pmin(x, 89), -104); // NaN passes unchanged
  const t = fr(fr(x * LOG2E) + ROUND);
  const n = fr(t - ROUND); // an integer, |n| <= 151
  let r = fr(x - fr(n * LN2_HI));
  r = fr(r - fr(n * LN2_LO));
  let p = EXP_P[5];
  for (let i = 4; i >= 0; i--) p = fr(fr(p * r) + EXP_P[i]);
  let y = fr(fr(p * fr(r * r)) + r);
  y = fr(y + 1);
  const n1 = Math.floor(n / 2); // C: ni >> 1
  return fr(fr(y * 2 ** n1) * 2 ** (n - n1));
}

// ---- tanh ----------------------------------------------------------------------------

const TANH_SMALL = fr(0.4);
// 21844/6081075, -1382/155925, 62/2835, -17/315, 2/15, -1/3 as float32 (the C literals)
const TANH_C = [3.59212793e-3, -8.86323582e-3, 2.18694881e-2, -5.39682545e-2, 1.3333334e-1, -3.33333343e-1].map(fr);

/**
 * sy_tanhf: the odd Taylor series to x^13 below |x| = 0.4, else 1 - 2 / (expf(2|x|) + 1)
 * with the sign of x. Within 2 ulp of the correctly rounded tanh (measured over every float32).
 */
export function tanhf(x: number): number {
  x = fr(x);
  const ax = x < 0 ? -x : x;
  if (ax < TANH_SMALL) {
    const x2 = fr(x * x);
    let p = TANH_C[0];
    for (let i = 1; i < TANH_C.length; i++) p = fr(fr(p * x2) + TANH_C[i]);
    return fr(x + fr(fr(x * x2) * p));
  }
  const t = fr(1 - fr(2 / fr(expf(fr(2 * ax)) + 1)));
  return x < 0 ? -t : t;
}

// ---- activations ---------------------------------------------------------------------

/** sy_siluf, ggml_silu_f32: x / (1.0f + expf(-x)). */
export function siluF(x: number): number {
  x = fr(x);
  return fr(x / fr(1 + expf(-x)));
}

/** sy_swigluf, ggml_vec_swiglu_f32: silu(g) * u. */
export function swigluF(g: number, u: number): number {
  return fr(siluF(g) * fr(u));
}

const GELU_SQRT_2_OVER_PI = fr(Math.sqrt(2 / Math.PI)); // the float32 of C's 0.79788456080286535587989211986876f
const GELU_COEF_A = fr(0.044715);

/**
 * sy_geluf, ggml_gelu_f32: 0.5f*x*(1.0f + tanhf(SQRT_2_OVER_PI*x*(1.0f + GELU_COEF_A*x*x))),
 * computed as x / (1 + exp(-2u)) (the same function; no cancellation for x < 0).
 */
export function geluF(x: number): number {
  x = fr(x);
  const u = fr(fr(GELU_SQRT_2_OVER_PI * x) * fr(1 + fr(fr(GELU_COEF_A * x) * x)));
  return fr(x / fr(1 + expf(fr(-2 * u))));
}

/**
 * sy_swiglu_oaif, ggml swiglu_oai: x = std::min(g, limit); y = std::clamp(u, -limit, limit);
 * out = x / (1.f + expf(alpha * (-x))) * (y + 1.f). alpha and limit are float32 (as the
 * kernels receive them).
 */
export function swigluOaiF(g: number, u: number, alpha: number, limit: number): number {
  const l = fr(limit);
  const x = pmin(fr(g), l);
  const uf = fr(u);
  const y = uf < -l ? -l : pmin(uf, l); // C: u < -limit ? -limit : (limit < u ? limit : u)
  return fr(fr(x / fr(1 + expf(fr(fr(alpha) * -x)))) * fr(y + 1));
}
