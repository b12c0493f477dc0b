// The shared float maths (src/kernels/ref/math.ts, twins of src/kernels/wasm/c/sy_math.h)
// against independent float64 formulas. That the C computes the same bits is checked
// through the kernels that use them: ops.test.ts (silu, gelu, swiglu, swigluOai, softmax),
// attention.test.ts (exp, tanh: the Dk = 1 bit-for-bit cases) and moe.test.ts (the
// expert-group activations equal the element-wise ops).
//
// Tolerances: exp within 1 ulp of the correctly rounded value; tanh within 2 ulp (measured
// max over every float32: see sy_math.h); activations within 4e-7 relative (+1e-37
// absolute) times 1 + |exp argument|.
import { describe, expect, it } from 'vitest';
import { expf, geluF, siluF, swigluF, swigluOaiF, tanhf } from '../../src/kernels/ref/math.js';
import { rng } from '../helpers/backends.js';

const fr = Math.fround;

/** Distance in float32 ulps (at the larger magnitude) between a float32 result and a float64 value. */
function ulpsFrom(got: number, exact: number): number {
  if (got === exact) return 0;
  const r = fr(exact);
  const big = Math.max(Math.abs(r), Math.abs(got), 2 ** -149);
  const e = Math.max(Math.floor(Math.log2(big)), -126);
  return Math.abs(got - exact) / 2 ** (e - 23);
}

describe('shared float maths against float64 formulas', () => {
  it('expf is within 1 ulp of exp over [-104, 88.7], exact at 0, right at the edges', () => {
    let worst = 0;
    const r = rng(7);
    for (let i = 0; i < 200_000; i++) {
      const x = fr(i < 100_000 ? r(-104, 88.72) : r(-2, 2));
      worst = Math.max(worst, ulpsFrom(expf(x), Math.exp(x)));
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(expf(0)).toBe(1);
    expect(expf(-0)).toBe(1);
    expect(expf(88.72)).toBe(fr(Math.exp(fr(88.72))));
    expect(expf(88.73)).toBe(Number.POSITIVE_INFINITY); // exp(88.73) > FLT_MAX
    expect(expf(89)).toBe(Number.POSITIVE_INFINITY);
    expect(expf(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(expf(Number.NEGATIVE_INFINITY)).toBe(0);
    expect(expf(-104)).toBe(0);
    expect(expf(-104.5)).toBe(0);
    expect(expf(-103.9)).toBe(fr(Math.exp(fr(-103.9)))); // subnormal, rounded once
    expect(expf(Number.NaN)).toBeNaN();
    // subnormal results: within one step of the subnormal grid (2^-149)
    for (const x of [-88, -95.5, -100, -103.9]) {
      expect(Math.abs(expf(fr(x)) - Math.exp(fr(x)))).toBeLessThanOrEqual(2 ** -149);
    }
  });

  it('tanhf is within 2 ulp of tanh', () => {
    const r = rng(6);
    let worst = 0;
    for (let i = 0; i < 200_000; i++) {
      const x = fr(i % 2 ? r(-1, 1) : r(-12, 12));
      const want = Math.tanh(x);
      if (want === 0) continue;
      const got = tanhf(x);
      const ulp = 2 ** (Math.floor(Math.log2(Math.abs(want))) - 23);
      worst = Math.max(worst, Math.abs(got - want) / ulp);
    }
    expect(worst).toBeLessThanOrEqual(2);
    expect(tanhf(0)).toBe(0);
    expect(tanhf(1e-30)).toBe(fr(1e-30));
    expect(tanhf(50)).toBe(1);
    expect(tanhf(-50)).toBe(-1);
    expect(tanhf(Number.POSITIVE_INFINITY)).toBe(1);
    expect(tanhf(Number.NEGATIVE_INFINITY)).toBe(-1);
    expect(tanhf(Number.NaN)).toBeNaN();
  });

  it('silu, swiglu, gelu, swiglu-oai agree with float64 (4e-7 relative, times 1 + |exp argument|)', () => {
    // exp's condition number is its argument: the float32 rounding of an argument `e`
    // (gelu: -2u, swiglu-oai: -alpha·x) moves the result by up to ~|e|·1.2e-7 relative.
    const r = rng(11);
    let worst = 0;
    const rel = (a: number, b: number, e: number) => Math.abs(a - b) / (1e-37 + 4e-7 * (1 + Math.abs(e)) * Math.abs(b));
    for (let i = 0; i < 50_000; i++) {
      const x = fr(r(-30, 30));
      const u = fr(r(-10, 10));
      worst = Math.max(worst, rel(siluF(x), x / (1 + Math.exp(-x)), 0));
      worst = Math.max(worst, rel(swigluF(x, u), (x / (1 + Math.exp(-x))) * u, 0));
      const inner = Math.sqrt(2 / Math.PI) * x * (1 + 0.044715 * x * x);
      worst = Math.max(worst, rel(geluF(x), x / (1 + Math.exp(-2 * inner)), 2 * inner));
      const a = Math.min(x, 7);
      const alpha = fr(1.702); // the kernel takes alpha as float32
      const want = (a / (1 + Math.exp(-alpha * a))) * (Math.min(Math.max(u, -7), 7) + 1);
      worst = Math.max(worst, rel(swigluOaiF(x, u, alpha, 7), want, alpha * a));
    }
    expect(worst).toBeLessThanOrEqual(1);
    // ggml's tanh form, on moderate inputs (absolute 1e-6)
    for (const x of [-3, -1, -0.5, 0, 0.5, 1, 2.5]) {
      expect(Math.abs(geluF(x) - 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))))).toBeLessThan(1e-6);
    }
    expect(siluF(-100)).toBe(-0);
    expect(siluF(100)).toBe(100);
    expect(geluF(-20)).toBe(-0);
    expect(swigluOaiF(100, 100, 1.702, 7)).toBe(fr(fr(7 / fr(1 + expf(fr(-1.702 * 7)))) * 8));
  });
});
