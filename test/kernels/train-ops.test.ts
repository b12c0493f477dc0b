// Training kernels (backend.ts, "Training"): each reference twin against an independent
// float64 computation (a naive triple loop for gemm, central finite differences of float64
// forwards for the backward passes, the formulas for the rest), then every wasm build at 1
// and 2 threads against the twin on odd sizes, aliasing where allowed, and argument errors.
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { type Arena, Heap } from '../../src/core/heap.js';
import { f32Tensor, i32Tensor, type Tensor } from '../../src/core/tensor.js';
import type { AdamWParams, AttentionParams, GemmParams, KernelBackend } from '../../src/kernels/backend.js';
import { bitDiffs, closeness, device, disposeDevices, randomF32, ref, rng, wasmBuilds } from '../helpers/backends.js';
import { type Attention64Shape, attention64 } from '../helpers/attention64.js';

afterAll(disposeDevices);

const heap = new Heap({ name: 'train-ops test' });
const A = heap.arena('test');
const rand = (ar: Arena, shape: number[], seed: number, scale = 1): Tensor =>
  f32Tensor(ar, shape, randomF32(shape.reduce((a, b) => a * b, 1), seed, scale));
const f64 = (t: Tensor): Float64Array => Float64Array.from(t.f32());

/** Central differences of a float64 scalar function over every element of `x` (modified in place and restored). */
function numericGrad(x: Float64Array, f: () => number, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + h;
    const fp = f();
    x[i] = x0 - h;
    const fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** Max |a - b| / max(|b|_inf, floor): a relative error over the whole array. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-3): number {
  let m = floor;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(b[i]));
  let e = 0;
  for (let i = 0; i < b.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e / m;
}

// ---- float64 definitions ----------------------------------------------------------------

function gemm64(a: Float64Array, b: Float64Array, c: Float64Array, M: number, N: number, K: number, p: GemmParams): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (p.transA ? a[k * M + i] : a[i * K + k]) * (p.transB ? b[j * K + k] : b[k * N + j]);
      out[i * N + j] = (p.alpha ?? 1) * s + ((p.beta ?? 0) === 0 ? 0 : (p.beta ?? 0) * c[i * N + j]);
    }
  }
  return out;
}

function rmsNorm64(x: Float64Array, w: Float64Array | null, R: number, C: number, eps: number): Float64Array {
  const y = new Float64Array(R * C);
  for (let r = 0; r < R; r++) {
    let ss = 0;
    for (let i = 0; i < C; i++) ss += x[r * C + i] ** 2;
    const inv = 1 / Math.sqrt(ss / C + eps);
    for (let i = 0; i < C; i++) y[r * C + i] = x[r * C + i] * inv * (w ? w[i] : 1);
  }
  return y;
}

/** Cached positions S (the reference reads only what the queries see). */
type AttnShape = Attention64Shape & { S: number };

const dot64 = (a: Float64Array, b: ArrayLike<number>): number => a.reduce((s, x, i) => s + x * b[i], 0);

// ---- the twins against float64 ------------------------------------------------------------

const gemmCombos: GemmParams[] = [];
for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    for (const [alpha, beta] of [[1, 0], [0.5, 1], [-2, 0.25]]) gemmCombos.push({ transA, transB, alpha, beta });
  }
}

describe('reference twins against float64', () => {
  it.each(gemmCombos)('gemm transA=$transA transB=$transB alpha=$alpha beta=$beta', (p) => {
    const [M, N, K] = [5, 7, 3];
    const a = rand(A, p.transA ? [K, M] : [M, K], 1);
    const b = rand(A, p.transB ? [N, K] : [K, N], 2);
    const out = rand(A, [M, N], 3);
    if (p.beta === 0) out.f32().fill(Number.NaN); // beta = 0 never reads out
    const want = gemm64(f64(a), f64(b), f64(out), M, N, K, p);
    ref.gemm(out, a, b, p);
    expect(closeness(out.f32(), want, 1e-6, 1e-6)).toBeLessThanOrEqual(1);
    A.reset();
  });

  it('gemm folds leading dims and handles K = 0 (out = beta · out)', () => {
    const a = rand(A, [2, 3, 4], 1); // [6, 4]
    const b = rand(A, [4, 5], 2);
    const out = f32Tensor(A, [2, 3, 5]);
    ref.gemm(out, a, b);
    expect(closeness(out.f32(), gemm64(f64(a), f64(b), new Float64Array(30), 6, 5, 4, {}), 1e-6, 1e-6)).toBeLessThanOrEqual(1);
    const o2 = f32Tensor(A, [2, 2], [1, 2, 3, 4]);
    ref.gemm(o2, f32Tensor(A, [2, 0]), f32Tensor(A, [0, 2]), { beta: 2 });
    expect([...o2.f32()]).toEqual([2, 4, 6, 8]);
    A.reset();
  });

  it.each([true, false])('rmsNormBackward (weight: %s) matches finite differences, and accumulates dweight', (withW) => {
    const [R, C, eps] = [3, 11, 1e-5];
    const x = rand(A, [R, C], 1);
    const w = withW ? rand(A, [C], 2) : null;
    const dy = rand(A, [R, C], 3);
    const dx = f32Tensor(A, [R, C]);
    const dw = f32Tensor(A, [C], new Float32Array(C).fill(0.5));
    ref.rmsNormBackward(dx, dy, x, w, eps, withW ? dw : null);
    const xs = f64(x);
    const ws = w ? f64(w) : null;
    const dys = f64(dy);
    const loss = () => dot64(rmsNorm64(xs, ws, R, C, eps), dys);
    expect(relErr(dx.f32(), numericGrad(xs, loss))).toBeLessThan(1e-5);
    if (ws) {
      const gw = numericGrad(ws, loss).map((g) => g + 0.5);
      expect(relErr(dw.f32(), gw)).toBeLessThan(1e-5);
    }
    A.reset();
  });

  it('swigluBackward matches finite differences of silu(g) · u', () => {
    const n = 37;
    const g = rand(A, [n], 1, 6);
    const u = rand(A, [n], 2);
    const d = rand(A, [n], 3);
    const dg = f32Tensor(A, [n]);
    const du = f32Tensor(A, [n]);
    ref.swigluBackward(dg, du, d, g, u);
    const gs = f64(g);
    const us = f64(u);
    const ds = f64(d);
    const loss = () => gs.reduce((s, gi, i) => s + ds[i] * (gi / (1 + Math.exp(-gi))) * us[i], 0);
    expect(relErr(dg.f32(), numericGrad(gs, loss))).toBeLessThan(1e-5);
    expect(relErr(du.f32(), numericGrad(us, loss))).toBeLessThan(1e-5);
    A.reset();
  });

  const attnCases: (AttnShape & { name: string })[] = [
    { name: 'causal T=S=6, GQA H=4 Hkv=2', T: 6, S: 6, H: 4, Hkv: 2, Dk: 5, Dv: 3, qPos0: 0 },
    { name: 'qPos0=3, window 3, MQA', T: 4, S: 7, H: 2, Hkv: 1, Dk: 4, Dv: 6, qPos0: 3, window: 3 },
    { name: 'softcap 2', T: 5, S: 5, H: 2, Hkv: 2, Dk: 3, Dv: 2, qPos0: 0, softcap: 2 },
  ];

  it.each(attnCases)('attentionBackward $name matches finite differences', (c) => {
    const scale = 0.9 / Math.sqrt(c.Dk);
    const q = rand(A, [c.T, c.H, c.Dk], 1, 2);
    const k = rand(A, [c.S, c.Hkv, c.Dk], 2, 2);
    const v = rand(A, [c.S, c.Hkv, c.Dv], 3);
    const dout = rand(A, [c.T, c.H, c.Dv], 4);
    const p: AttentionParams = { scale, qPos0: c.qPos0, window: c.window, softcap: c.softcap };
    // The float64 forward is the kernel's forward.
    const fwd = f32Tensor(A, [c.T, c.H, c.Dv]);
    ref.attention(fwd, q, k, v, p);
    const [qs, ks, vs, ds] = [f64(q), f64(k), f64(v), f64(dout)];
    expect(closeness(fwd.f32(), attention64(qs, ks, vs, c, scale), 1e-6, 1e-5)).toBeLessThanOrEqual(1);
    const dq = f32Tensor(A, q.shape);
    const dk = f32Tensor(A, k.shape);
    const dv = f32Tensor(A, v.shape);
    dk.f32().fill(Number.NaN); // overwritten, never read
    ref.attentionBackward(dq, dk, dv, dout, q, k, v, p);
    const loss = () => dot64(attention64(qs, ks, vs, c, scale), ds);
    expect(relErr(dq.f32(), numericGrad(qs, loss))).toBeLessThan(1e-5);
    expect(relErr(dk.f32(), numericGrad(ks, loss))).toBeLessThan(1e-5);
    expect(relErr(dv.f32(), numericGrad(vs, loss))).toBeLessThan(1e-5);
    A.reset();
  });

  it('crossEntropy: loss, gradient (finite differences), ignored rows', () => {
    const [T, V, gs] = [4, 9, 0.25];
    const logits = rand(A, [T, V], 1, 4);
    const targets = i32Tensor(A, [T], [3, -1, 0, 8]);
    const loss = f32Tensor(A, [T]);
    const dl = f32Tensor(A, [T, V]);
    ref.crossEntropy(loss, dl, logits, targets, gs);
    const xs = f64(logits);
    const tg = [3, -1, 0, 8];
    const total = () => {
      let s = 0;
      for (let t = 0; t < T; t++) {
        if (tg[t] < 0) continue;
        const row = xs.subarray(t * V, t * V + V);
        s += Math.log(row.reduce((a, x) => a + Math.exp(x), 0)) - row[tg[t]];
      }
      return s;
    };
    const want = numericGrad(xs, total).map((g) => g * gs);
    expect(relErr(dl.f32(), want)).toBeLessThan(1e-5);
    const l = loss.f32();
    expect(l[1]).toBe(0);
    expect(l.reduce((a, b) => a + b, 0)).toBeCloseTo(total(), 5);
    expect([...dl.f32().subarray(V, 2 * V)].every((x) => x === 0)).toBe(true);
    A.reset();
  });

  it('scatterAddRows, rowDot, scaleRows, sumSquares: the formulas', () => {
    const [T, C, N] = [6, 5, 3];
    const x = rand(A, [T, C], 1);
    const ids = [2, -1, 0, 2, 2, 1];
    const wts = randomF32(T, 2);
    const out = rand(A, [N, C], 3);
    const want = f64(out);
    for (let t = 0; t < T; t++) if (ids[t] >= 0) for (let c = 0; c < C; c++) want[ids[t] * C + c] += wts[t] * x.f32()[t * C + c];
    ref.scatterAddRows(out, x, i32Tensor(A, [T], ids), f32Tensor(A, [T], wts));
    expect(closeness(out.f32(), want, 1e-6, 1e-6)).toBeLessThanOrEqual(1);

    const b = rand(A, [T, C], 4);
    const rd = f32Tensor(A, [T]);
    ref.rowDot(rd, x, b);
    for (let t = 0; t < T; t++) expect(rd.f32()[t]).toBeCloseTo(dot64(f64(x).subarray(t * C, t * C + C), b.f32().subarray(t * C, t * C + C)), 6);

    const s = rand(A, [T], 5);
    const sr = f32Tensor(A, [T, C]);
    ref.scaleRows(sr, x, s);
    for (let i = 0; i < T * C; i++) expect(sr.f32()[i]).toBe(Math.fround(x.f32()[i] * s.f32()[Math.floor(i / C)]));

    expect(ref.sumSquares(x)).toBeCloseTo(dot64(f64(x), x.f32()), 10);
    A.reset();
  });

  it('adamw: three steps of the float64 formula', () => {
    const n = 13;
    const param = rand(A, [n], 1);
    const grad = rand(A, [n], 2);
    const m = f32Tensor(A, [n], new Float32Array(n));
    const v = f32Tensor(A, [n], new Float32Array(n));
    const [w64, m64, v64] = [f64(param), new Float64Array(n), new Float64Array(n)];
    for (let step = 1; step <= 3; step++) {
      const p: AdamWParams = { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step };
      const g = f64(grad);
      for (let i = 0; i < n; i++) {
        m64[i] = 0.9 * m64[i] + 0.1 * g[i];
        v64[i] = 0.95 * v64[i] + 0.05 * g[i] ** 2;
        const mh = m64[i] / (1 - 0.9 ** step);
        const vh = v64[i] / (1 - 0.95 ** step);
        w64[i] -= 0.01 * (mh / (Math.sqrt(vh) + 1e-8) + 0.1 * w64[i]);
      }
      ref.adamw(param, grad, m, v, p);
      grad.f32().set(randomF32(n, 10 + step));
    }
    expect(closeness(param.f32(), w64, 1e-6, 1e-5)).toBeLessThanOrEqual(1);
    expect(closeness(m.f32(), m64, 1e-7, 1e-5)).toBeLessThanOrEqual(1);
    expect(closeness(v.f32(), v64, 1e-8, 1e-5)).toBeLessThanOrEqual(1);
    A.reset();
  });
});

// ---- every wasm build against the twin ------------------------------------------------------

/** Runs `op` on the wasm backend and on the twin with fresh copies of the same inputs. */
type Op = (be: KernelBackend, ar: Arena) => Float32Array[] | number;

function compare(be: KernelBackend, ar: Arena, op: Op, atol: number, rtol: number): void {
  const got = op(be, ar);
  const want = op(ref, ar);
  if (typeof got === 'number' || typeof want === 'number') {
    expect(Math.abs((got as number) - (want as number))).toBeLessThanOrEqual(atol + rtol * Math.abs(want as number));
    return;
  }
  for (let i = 0; i < want.length; i++) {
    if (atol === 0 && rtol === 0) expect(bitDiffs(got[i], want[i]), `output ${i}`).toEqual([]);
    else expect(closeness(got[i], want[i], atol, rtol), `output ${i}`).toBeLessThanOrEqual(1);
  }
}

const gemmShapes = [
  [1, 1, 1],
  [5, 7, 3],
  [33, 17, 29],
  [64, 72, 256],
  [70, 9, 300], // two K blocks
  [130, 1100, 5], // two NC blocks, edge tiles in M and N
];

describe.each(wasmBuilds())('training kernels on %s', (build) => {
  for (const threads of [1, 2]) {
    it(`gemm, every transpose / alpha / beta, odd sizes, ${threads} thread(s)`, async () => {
      const dev = await device(build, threads);
      const ar = dev.heap.arena('test');
      let seed = 1;
      for (const [M, N, K] of gemmShapes) {
        for (const p of gemmCombos) {
          const a = rand(ar, p.transA ? [K, M] : [M, K], seed++);
          const b = rand(ar, p.transB ? [N, K] : [K, N], seed++);
          const c0 = randomF32(M * N, seed++);
          const op: Op = (be) => {
            const out = f32Tensor(ar, [M, N], c0);
            if (p.beta === 0) out.f32().fill(Number.NaN);
            be.gemm(out, a, b, p);
            return [out.f32().slice()];
          };
          compare(dev.backend, ar, op, 2e-7 * K + 1e-6, 1e-5);
        }
        ar.reset();
      }
    });

    it(`backward passes and row ops match the twin, ${threads} thread(s)`, async () => {
      const dev = await device(build, threads);
      const ar = dev.heap.arena('test');
      const be = dev.backend;
      // rmsNormBackward, with and without weight, dx aliasing dy.
      for (const [R, C] of [[3, 7], [40, 129]]) {
        const x = rand(ar, [R, C], 1, 3);
        const w = rand(ar, [C], 2);
        const dy0 = randomF32(R * C, 3);
        for (const alias of [false, true]) {
          compare(be, ar, (k, a2) => {
            const dy = f32Tensor(a2, [R, C], dy0);
            const dx = alias ? dy : f32Tensor(a2, [R, C]);
            const dw = f32Tensor(a2, [C], new Float32Array(C).fill(1));
            k.rmsNormBackward(dx, dy, x, w, 1e-6, dw);
            const dx2 = f32Tensor(a2, [R, C]);
            k.rmsNormBackward(dx2, f32Tensor(a2, [R, C], dy0), x, null, 1e-6, null);
            return [dx.f32().slice(), dw.f32().slice(), dx2.f32().slice()];
          }, 1e-5, 1e-4);
        }
      }
      // swigluBackward (large gates: the exp clamps), dgate aliasing dout.
      for (const n of [5, 4099]) {
        const g = rand(ar, [n], 4, 20);
        const u = rand(ar, [n], 5);
        const d0 = randomF32(n, 6);
        for (const alias of [false, true]) {
          compare(be, ar, (k, a2) => {
            const d = f32Tensor(a2, [n], d0);
            const dg = alias ? d : f32Tensor(a2, [n]);
            const du = f32Tensor(a2, [n]);
            k.swigluBackward(dg, du, d, g, u);
            return [dg.f32().slice(), du.f32().slice()];
          }, 1e-6, 1e-5);
        }
      }
      // crossEntropy: ignored rows, odd V, dlogits aliasing logits.
      for (const [T, V] of [[3, 5], [37, 1001]]) {
        const l0 = randomF32(T * V, 7, 8);
        const r = rng(8);
        const tg = i32Tensor(ar, [T], Array.from({ length: T }, (_, t) => (t % 5 === 1 ? -1 : Math.floor(r(0, V)))));
        for (const alias of [false, true]) {
          compare(be, ar, (k, a2) => {
            const logits = f32Tensor(a2, [T, V], l0);
            const dl = alias ? logits : f32Tensor(a2, [T, V]);
            const loss = f32Tensor(a2, [T]);
            k.crossEntropy(loss, dl, logits, tg, 1 / T);
            return [loss.f32().slice(), dl.f32().slice()];
          }, 1e-6, 1e-5);
        }
      }
      // scatterAddRows (bit for bit), rowDot, scaleRows (bit for bit, aliased), sumSquares.
      for (const [T, C, N] of [[7, 3, 4], [300, 131, 17]]) {
        const x = rand(ar, [T, C], 9);
        const r = rng(10);
        const ids = i32Tensor(ar, [T], Array.from({ length: T }, (_, t) => (t % 7 === 3 ? -1 : Math.floor(r(0, N)))));
        const wts = rand(ar, [T], 11);
        const o0 = randomF32(N * C, 12);
        for (const w of [wts, null]) {
          compare(be, ar, (k, a2) => {
            const out = f32Tensor(a2, [N, C], o0);
            k.scatterAddRows(out, x, ids, w);
            return [out.f32().slice()];
          }, 0, 0);
        }
        const b = rand(ar, [T, C], 13);
        compare(be, ar, (k, a2) => {
          const out = f32Tensor(a2, [T]);
          k.rowDot(out, x, b);
          return [out.f32().slice()];
        }, 1e-6, 1e-5);
        const s = rand(ar, [T], 14);
        compare(be, ar, (k, a2) => {
          const y = f32Tensor(a2, [T, C], x.f32());
          k.scaleRows(y, y, s);
          return [y.f32().slice()];
        }, 0, 0);
        compare(be, ar, (k) => k.sumSquares(x), 0, 1e-12);
      }
      ar.reset();
    });

    it(`attentionBackward matches the twin, ${threads} thread(s)`, async () => {
      const dev = await device(build, threads);
      const ar = dev.heap.arena('test');
      const cases: AttnShape[] = [
        { T: 37, S: 37, H: 4, Hkv: 2, Dk: 32, Dv: 32, qPos0: 0 },
        { T: 9, S: 20, H: 3, Hkv: 1, Dk: 13, Dv: 7, qPos0: 11, window: 5 },
        { T: 16, S: 16, H: 2, Hkv: 2, Dk: 16, Dv: 8, qPos0: 0, softcap: 5 },
      ];
      let seed = 20;
      for (const c of cases) {
        const q = rand(ar, [c.T, c.H, c.Dk], seed++, 2);
        const k = rand(ar, [c.S, c.Hkv, c.Dk], seed++, 2);
        const v = rand(ar, [c.S, c.Hkv, c.Dv], seed++);
        const dout = rand(ar, [c.T, c.H, c.Dv], seed++);
        const p: AttentionParams = { scale: 1 / Math.sqrt(c.Dk), qPos0: c.qPos0, window: c.window, softcap: c.softcap };
        compare(dev.backend, ar, (be, a2) => {
          const dq = f32Tensor(a2, q.shape);
          const dk = f32Tensor(a2, k.shape);
          const dv = f32Tensor(a2, v.shape);
          dq.f32().fill(Number.NaN);
          dk.f32().fill(Number.NaN);
          be.attentionBackward(dq, dk, dv, dout, q, k, v, p);
          return [dq.f32().slice(), dk.f32().slice(), dv.f32().slice()];
        }, 2e-5, 1e-4);
      }
      ar.reset();
    });

    it(`adamw matches the twin, ${threads} thread(s)`, async () => {
      const dev = await device(build, threads);
      const ar = dev.heap.arena('test');
      const n = 70001;
      const [w0, g0, m0] = [randomF32(n, 1), randomF32(n, 2, 0.01), randomF32(n, 3, 0.01)];
      const v0 = randomF32(n, 4, 1e-4).map(Math.abs);
      compare(dev.backend, ar, (be, a2) => {
        const [w, g, m, v] = [f32Tensor(a2, [n], w0), f32Tensor(a2, [n], g0), f32Tensor(a2, [n], m0), f32Tensor(a2, [n], v0)];
        be.adamw(w, g, m, v, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 7 });
        return [w.f32().slice(), m.f32().slice(), v.f32().slice()];
      }, 1e-7, 1e-5);
      ar.reset();
    });
  }

  it('argument errors name the argument (both backends)', async () => {
    const dev = await device(build, 2);
    const ar = dev.heap.arena('test');
    const a = f32Tensor(ar, [3, 4]);
    const b = f32Tensor(ar, [4, 5]);
    const ids = i32Tensor(ar, [3], [0, 1, 2]);
    for (const be of [dev.backend, ref]) {
      expect(() => be.gemm(f32Tensor(ar, [3, 5]), a, f32Tensor(ar, [5, 4]))).toThrow(/gemm: op\(a\) is \[3, 4\] but op\(b\) is \[5, 4\]/);
      expect(() => be.gemm(f32Tensor(ar, [3, 4]), a, b)).toThrow(/gemm: out has shape \[3, 4\], expected \[3, 5\]/);
      expect(() => be.gemm(f32Tensor(ar, [3, 5]), ids, b)).toThrow(/gemm: a must be F32/);
      const big = f32Tensor(ar, [4, 5]);
      expect(() => be.gemm(big.slice(0, 3), a, big)).toThrow(/gemm: out .* overlaps b/);
      expect(() => be.rmsNormBackward(a, a, a, null, 1e-5, null)).toThrow(/rmsNormBackward: dx .* overlaps x/);
      expect(() => be.rmsNormBackward(a, f32Tensor(ar, [3, 5]), a, null, 1e-5, null)).toThrow(/rmsNormBackward: dy has shape \[3, 5\]/);
      expect(() => be.swigluBackward(a, a, f32Tensor(ar, [3, 4]), f32Tensor(ar, [3, 4]), f32Tensor(ar, [3, 4]))).toThrow(/swigluBackward: dgate .* overlaps dup/);
      expect(() => be.crossEntropy(f32Tensor(ar, [3]), f32Tensor(ar, [3, 4]), a, i32Tensor(ar, [3], [0, 4, 1]), 1)).toThrow(/crossEntropy: targets\[1\] = 4 is outside/);
      expect(() => be.crossEntropy(f32Tensor(ar, [3]), f32Tensor(ar, [3, 4]), a, a, 1)).toThrow(/crossEntropy: targets must be I32/);
      expect(() => be.scatterAddRows(f32Tensor(ar, [2, 4]), a, ids, null)).toThrow(/scatterAddRows: ids\[2\] = 2 is outside out's 2 rows/);
      expect(() => be.scatterAddRows(f32Tensor(ar, [3, 4]), a, ids, f32Tensor(ar, [2]))).toThrow(/scatterAddRows: weights has shape \[2\]/);
      expect(() => be.rowDot(f32Tensor(ar, [4]), a, a)).toThrow(/rowDot: out has shape \[4\]/);
      expect(() => be.scaleRows(a, a, f32Tensor(ar, [4]))).toThrow(/scaleRows: s has shape \[4\]/);
      expect(() => be.sumSquares(ids)).toThrow(/sumSquares: x must be F32/);
      const p: AdamWParams = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, step: 0 };
      const t = () => f32Tensor(ar, [3, 4]);
      expect(() => be.adamw(t(), t(), t(), t(), p)).toThrow(/adamw: step must be an integer >= 1/);
      expect(() => be.adamw(t(), t(), t(), f32Tensor(ar, [5]), { ...p, step: 1 })).toThrow(/adamw: v has 5 elements, expected 12/);
      const m = t();
      expect(() => be.adamw(t(), t(), m, m, { ...p, step: 1 })).toThrow(/adamw: m .* overlaps v/);
      const q = f32Tensor(ar, [2, 2, 4]);
      const kv = f32Tensor(ar, [2, 1, 4]);
      const attn = (pp: AttentionParams, dout = f32Tensor(ar, [2, 2, 4])) =>
        be.attentionBackward(f32Tensor(ar, [2, 2, 4]), f32Tensor(ar, [2, 1, 4]), f32Tensor(ar, [2, 1, 4]), dout, q, kv, kv, pp);
      expect(() => attn({ scale: 1, qPos0: 0, sinks: f32Tensor(ar, [2]) })).toThrow(/attentionBackward: attention sinks are not supported/);
      expect(() => attn({ scale: 1, qPos0: 0 }, f32Tensor(ar, [2, 2, 3]))).toThrow(/attentionBackward: dout has shape \[2, 2, 3\]/);
      expect(() => attn({ scale: 1, qPos0: 1 })).toThrow(InvalidArgumentError);
    }
    ar.reset();
  });
});
