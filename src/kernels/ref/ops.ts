/**
 * Reference twins of src/kernels/wasm/c/ops.c: embedding-row lookup, RMS and layer norm,
 * rotary embedding, softmax, activations, add / mul / scale and top-k, plus the rope
 * constants that the wasm wrappers (src/kernels/wasm/ops.ts) share.
 *
 * Semantics follow ggml's CPU backend (ggml/src/ggml-cpu/ops.cpp, vec.h, vec.cpp and
 * ggml/src/ggml.c; each function names its reference). exp and the activation element
 * functions are the shared twins of sy_math.h in ./math.ts. Every value is computed with the
 * same float32 operations in the same order as the C kernels (Math.fround at every
 * float step), and row sums in double with the same four partial sums, so the wasm
 * builds reproduce these twins bit for bit. The exception is rope's cos/sin (Math.cos /
 * Math.sin here, a double-precision series in C): both are rounded to float32 and agree
 * except in rare rounding-boundary cases (at most 1 ulp of cos/sin).
 */
import { GGMLType } from '../../core/dtypes.js';
import type { Tensor } from '../../core/tensor.js';
import type { RopeParams } from '../backend.js';
import {
  checkBinary,
  checkGetRows,
  checkGlu,
  checkNorm,
  checkScale,
  checkSoftmax,
  checkSwigluOai,
  checkTopK,
  checkUnary,
  expectF32,
  expectLike,
  expectNumber,
  expectSameHeap,
  expectShape,
  expectType,
  fail,
} from '../check.js';
import { expf, geluF, pmax, pmin, siluF, swigluF, swigluOaiF } from './math.js';
import { refTypeKernels } from './types.js';

const fr = Math.fround;

/** The float32 constants a rope call uses, as ggml computes them once per call. */
export interface RopeConstants {
  T: number;
  H: number;
  Dh: number;
  nDims: number;
  /** GGML_ROPE_TYPE_NORMAL (0) or GGML_ROPE_TYPE_NEOX (2). */
  mode: 0 | 2;
  thetaScale: number;
  freqScale: number;
  extFactor: number;
  /** attnFactor, times YaRN's 1 + 0.1 ln(1 / freqScale) when extFactor != 0. */
  mscale: number;
  corrDims: [number, number];
}

/** float32 logf through double (correctly rounded up to a double-rounding tie). */
const logf = (v: number): number => fr(Math.log(fr(v)));

/**
 * ggml_rope_yarn_corr_dims (ggml.c), in float32:
 *   corr_dim(n_rot) = n_dims * logf(n_ctx_orig / (n_rot * 2 * (float)M_PI)) / (2 * logf(base))
 *   start = floorf(corr_dim(beta_fast)); end = ceilf(corr_dim(beta_slow));
 *   dims[0] = MAX(0, start); dims[1] = MIN(n_dims - 1, end);
 */
export function ropeYarnCorrDims(nDims: number, nCtxOrig: number, freqBase: number, betaFast: number, betaSlow: number): [number, number] {
  const corrDim = (nRot: number): number =>
    fr(fr(nDims * logf(fr(fr(nCtxOrig) / fr(fr(fr(nRot) * 2) * fr(Math.PI))))) / fr(2 * logf(freqBase)));
  const start = Math.floor(corrDim(betaFast));
  const end = Math.ceil(corrDim(betaSlow));
  return [pmax(start, 0), pmin(end, nDims - 1)]; // MAX(0, start), MIN(n_dims - 1, end)
}

/** Checks a rope call and derives its constants (ggml_compute_forward_rope_flt). */
export function ropeConstants(out: Tensor, x: Tensor, positions: Tensor, p: RopeParams): RopeConstants {
  const k = 'rope';
  expectF32(k, ['x', x], ['out', out]);
  if (x.shape.length !== 3) fail(k, `x must be 3-D [T, H, Dh], got [${x.shape.join(', ')}]`);
  const [T, H, Dh] = x.shape;
  expectLike(k, 'out', out, x);
  expectType(k, 'positions', positions, GGMLType.I32);
  expectShape(k, 'positions', positions, [T]);
  const { nDims } = p;
  if (!Number.isInteger(nDims) || nDims < 2 || nDims % 2 !== 0 || nDims > Dh) {
    fail(k, `nDims must be an even integer in [2, ${Dh}] (the head dim), got ${nDims}`);
  }
  if (p.mode !== 'norm' && p.mode !== 'neox') fail(k, `mode must be 'norm' or 'neox', got '${p.mode}'`);
  if (!(p.freqBase > 0) || !Number.isFinite(p.freqBase)) fail(k, `freqBase must be a finite number > 0, got ${p.freqBase}`);
  const freqScale = p.freqScale ?? 1;
  if (!(freqScale > 0) || !Number.isFinite(freqScale)) fail(k, `freqScale must be a finite number > 0, got ${freqScale}`);
  const extFactor = p.extFactor ?? 0;
  expectNumber(k, 'extFactor', extFactor, 'finite');
  const attnFactor = p.attnFactor ?? 1;
  expectNumber(k, 'attnFactor', attnFactor, 'finite');
  const betaFast = p.betaFast ?? 32;
  const betaSlow = p.betaSlow ?? 1;
  if (p.freqFactors) {
    // ggml: src2->ne[0] >= n_dims / 2; only the first nDims / 2 are read.
    expectF32(k, ['freqFactors', p.freqFactors]);
    if (p.freqFactors.numel < nDims / 2) fail(k, `freqFactors has ${p.freqFactors.numel} elements, expected ${nDims / 2} (nDims / 2)`);
  }
  expectSameHeap(k, out, x, positions, p.freqFactors);
  let mscale = fr(attnFactor);
  let corrDims: [number, number] = [0, 0];
  if (fr(extFactor) !== 0) {
    const nCtxOrig = p.nCtxOrig ?? 0;
    if (!Number.isInteger(nCtxOrig) || nCtxOrig <= 0) fail(k, `nCtxOrig must be a positive integer when extFactor != 0, got ${p.nCtxOrig}`);
    expectNumber(k, 'betaFast', betaFast, 'finite');
    expectNumber(k, 'betaSlow', betaSlow, 'finite');
    corrDims = ropeYarnCorrDims(nDims, nCtxOrig, fr(p.freqBase), fr(betaFast), fr(betaSlow));
    // rope_yarn: mscale *= 1.0f + 0.1f * logf(1.0f / freq_scale);
    mscale = fr(mscale * fr(1 + fr(fr(0.1) * logf(fr(1 / fr(freqScale))))));
  }
  return {
    T,
    H,
    Dh,
    nDims,
    mode: p.mode === 'neox' ? 2 : 0,
    // const float theta_scale = powf(freq_base, -2.0f/n_dims);
    thetaScale: fr(fr(p.freqBase) ** fr(-2 / nDims)),
    freqScale: fr(freqScale),
    extFactor: fr(extFactor),
    mscale,
    corrDims,
  };
}

// ---- double row sums -----------------------------------------------------------------

/** Σ f(i) over [0, n) in double as the C kernels do: partials i % 4 over whole quads, then the tail. */
function rowSum(n: number, f: (i: number) => number): number {
  const s = [0, 0, 0, 0];
  const n4 = n - (n % 4);
  for (let i = 0; i < n4; i++) s[i % 4] += f(i);
  let sum = s[0] + s[1] + (s[2] + s[3]);
  for (let i = n4; i < n; i++) sum += f(i);
  return sum;
}

// ---- the ops -------------------------------------------------------------------------

export function getRows(out: Tensor, table: Tensor, ids: Tensor): void {
  const [N, C] = checkGetRows(out, table, ids);
  const mem = new Uint8Array(table.heap.memory.buffer);
  const k = refTypeKernels(table.type);
  const o = out.f32();
  const id = ids.i32();
  for (let n = 0; n < N; n++) k.dequantize(mem, table.offset + id[n] * table.rowBytes, o, n * C, C);
}

/** ggml rms_norm + mul: mean = (float)(Σ (double)(x*x) / C); y = (x * (1 / sqrtf(mean + eps))) * w. */
export function rmsNorm(out: Tensor, x: Tensor, weight: Tensor | null, eps: number): void {
  const [R, C] = checkNorm('rmsNorm', out, x, weight, null, eps);
  const xs = x.f32();
  const y = out.f32();
  const w = weight?.f32();
  const e = fr(eps);
  for (let r = 0; r < R; r++) {
    const o = r * C;
    const sum = rowSum(C, (i) => fr(xs[o + i] * xs[o + i]));
    const mean = fr(sum / C);
    const scale = fr(1 / fr(Math.sqrt(fr(mean + e))));
    for (let i = 0; i < C; i++) {
      const v = fr(xs[o + i] * scale);
      y[o + i] = w ? fr(v * w[i]) : v;
    }
  }
}

/**
 * ggml norm (+ mul, add): mean = (float)Σx / C in float; variance = (float)(Σ (double)(v*v) / C)
 * with v = x - mean; y = ((v * (1 / sqrtf(variance + eps))) * w) + b.
 */
export function layerNorm(out: Tensor, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): void {
  const [R, C] = checkNorm('layerNorm', out, x, weight, bias, eps);
  const xs = x.f32();
  const y = out.f32();
  const w = weight?.f32();
  const b = bias?.f32();
  const e = fr(eps);
  const v = new Float32Array(C);
  for (let r = 0; r < R; r++) {
    const o = r * C;
    const mean = fr(fr(rowSum(C, (i) => xs[o + i])) / C);
    for (let i = 0; i < C; i++) v[i] = fr(xs[o + i] - mean);
    const variance = fr(rowSum(C, (i) => fr(v[i] * v[i])) / C);
    const scale = fr(1 / fr(Math.sqrt(fr(variance + e))));
    for (let i = 0; i < C; i++) {
      let t = fr(v[i] * scale);
      if (w) t = fr(t * w[i]);
      if (b) t = fr(t + b[i]);
      y[o + i] = t;
    }
  }
}

const F0_001 = fr(0.001);

/**
 * cos and sin (times mscale) of each pair's angle at position `pos` (ggml_rope_cache_init
 * and rope_yarn, see ops.c): theta starts at (float)pos and is multiplied by theta_scale
 * pair after pair, in float; YaRN mixes interpolated and extrapolated angles.
 */
export function ropeCache(c: RopeConstants, pos: number, freqFactors: Float32Array | undefined, cs: Float32Array, sn: Float32Array): void {
  const half = c.nDims / 2;
  const [lo, hi] = c.corrDims;
  const span = fr(hi - lo);
  const denom = pmax(span, F0_001); // MAX(0.001f, high - low)
  let theta = fr(pos);
  for (let i = 0; i < half; i++) {
    const ff = freqFactors ? freqFactors[i] : 1;
    const extrap = fr(theta / ff);
    let th = fr(c.freqScale * extrap);
    if (c.extFactor !== 0) {
      const y = fr(fr(i - lo) / denom);
      const ramp = fr(1 - pmin(pmax(y, 0), 1)); // 1 - MIN(1, MAX(0, y))
      const mix = fr(ramp * c.extFactor);
      th = fr(fr(th * fr(1 - mix)) + fr(extrap * mix));
    }
    cs[i] = fr(fr(Math.cos(th)) * c.mscale);
    sn[i] = fr(fr(Math.sin(th)) * c.mscale);
    theta = fr(theta * c.thetaScale);
  }
}

/** ggml rope (NORM / NEOX, partial rotary, linear scaling, YaRN, frequency factors). */
export function rope(out: Tensor, x: Tensor, positions: Tensor, p: RopeParams): void {
  const c = ropeConstants(out, x, positions, p);
  const { T, H, Dh, nDims } = c;
  const half = nDims / 2;
  const xs = x.f32();
  const y = out.f32();
  const pos = positions.i32();
  const ff = p.freqFactors?.f32();
  const cs = new Float32Array(half);
  const sn = new Float32Array(half);
  for (let t = 0; t < T; t++) {
    ropeCache(c, pos[t], ff, cs, sn);
    for (let h = 0; h < H; h++) {
      const o = (t * H + h) * Dh;
      for (let i = 0; i < half; i++) {
        // NORM rotates (x[2i], x[2i+1]); NEOX rotates (x[i], x[i + nDims/2]).
        const i0 = c.mode === 2 ? o + i : o + 2 * i;
        const i1 = c.mode === 2 ? o + i + half : o + 2 * i + 1;
        const x0 = xs[i0];
        const x1 = xs[i1];
        y[i0] = fr(fr(x0 * cs[i]) - fr(x1 * sn[i]));
        y[i1] = fr(fr(x0 * sn[i]) + fr(x1 * cs[i]));
      }
      for (let i = nDims; i < Dh; i++) y[o + i] = xs[o + i];
    }
  }
}

/**
 * ggml soft_max without mask: w = x * scale; e = expf(w - max(w)); the sum in double;
 * y = e * (float)(1.0 / sum). A row holding NaN or +inf, or only -inf, gives NaN.
 */
export function softmax(out: Tensor, x: Tensor, scale = 1): void {
  const [R, C] = checkSoftmax(out, x, scale);
  const xs = x.f32();
  const y = out.f32();
  const s = fr(scale);
  for (let r = 0; r < R; r++) {
    const o = r * C;
    let m = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < C; i++) {
      const v = fr(xs[o + i] * s);
      m = pmax(m, v);
    }
    const sum = rowSum(C, (i) => {
      const e = expf(fr(fr(xs[o + i] * s) - m));
      y[o + i] = e;
      return e;
    });
    const inv = fr(1 / sum);
    for (let i = 0; i < C; i++) y[o + i] = fr(y[o + i] * inv);
  }
}

export function silu(out: Tensor, x: Tensor): void {
  const n = checkUnary('silu', out, x);
  const xs = x.f32();
  const y = out.f32();
  for (let i = 0; i < n; i++) y[i] = siluF(xs[i]);
}

export function gelu(out: Tensor, x: Tensor): void {
  const n = checkUnary('gelu', out, x);
  const xs = x.f32();
  const y = out.f32();
  for (let i = 0; i < n; i++) y[i] = geluF(xs[i]);
}

/** ggml_vec_swiglu_f32: silu(gate) * up. */
export function swiglu(out: Tensor, gate: Tensor, up: Tensor): void {
  const n = checkGlu('swiglu', out, gate, up);
  const g = gate.f32();
  const u = up.f32();
  const y = out.f32();
  for (let i = 0; i < n; i++) y[i] = swigluF(g[i], u[i]);
}

export function swigluOai(out: Tensor, gate: Tensor, up: Tensor, alpha: number, limit: number): void {
  const n = checkSwigluOai(out, gate, up, alpha, limit);
  const g = gate.f32();
  const u = up.f32();
  const y = out.f32();
  const a = fr(alpha);
  const l = fr(limit);
  for (let i = 0; i < n; i++) y[i] = swigluOaiF(g[i], u[i], a, l);
}

function binary(k: string, out: Tensor, a: Tensor, b: Tensor, op: (x: number, y: number) => number): void {
  const [n, bc] = checkBinary(k, out, a, b);
  const as = a.f32();
  const bs = b.f32();
  const y = out.f32();
  for (let i = 0; i < n; i++) y[i] = op(as[i], bs[bc ? i % bc : i]);
}

export function add(out: Tensor, a: Tensor, b: Tensor): void {
  binary('add', out, a, b, (x, y) => fr(x + y));
}

export function mul(out: Tensor, a: Tensor, b: Tensor): void {
  binary('mul', out, a, b, (x, y) => fr(x * y));
}

export function scale(out: Tensor, a: Tensor, s: number): void {
  const n = checkScale(out, a, s);
  const as = a.f32();
  const y = out.f32();
  const f = fr(s);
  for (let i = 0; i < n; i++) y[i] = fr(as[i] * f);
}

/** Whether (va, ia) ranks before (vb, ib): larger first, ties by lower index, NaN last. */
export function topKBefore(va: number, ia: number, vb: number, ib: number): boolean {
  if (Number.isNaN(va)) return Number.isNaN(vb) && ia < ib;
  if (Number.isNaN(vb)) return true;
  return va > vb || (va === vb && ia < ib);
}

/** The k largest of each row, best first; ties by lower index; NaN ranks below every number. */
export function topK(indices: Tensor, values: Tensor, x: Tensor, k: number): void {
  const [R, C] = checkTopK(indices, values, x, k);
  const xs = x.f32();
  const iv = indices.i32();
  const vv = values.f32();
  const order = Array.from({ length: C }, (_, i) => i);
  for (let r = 0; r < R; r++) {
    const o = r * C;
    for (let i = 0; i < C; i++) order[i] = i;
    order.sort((i, j) => (topKBefore(xs[o + i], i, xs[o + j], j) ? -1 : 1));
    for (let j = 0; j < k; j++) {
      iv[r * k + j] = order[j];
      vv[r * k + j] = xs[o + order[j]];
    }
  }
}
