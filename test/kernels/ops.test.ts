// Element-wise and row kernels (src/kernels/wasm/c/ops.c): every wasm build at 1 and 2
// threads against the reference twin (src/kernels/ref/ops.ts), then the twins against
// float64 formulas, then argument validation.
//
// Tolerances: every op but rope must equal its twin BIT FOR BIT (NaN equals NaN): the C
// performs the same float32 operations in the same order, never fused, and the same
// double row sums. rope may differ by 1 ulp of a cos/sin value (C series vs Math.cos):
// |Δ| <= 1e-6 + 1e-6 |y| on inputs in ±1. Against float64 formulas: softmax and norms
// within 1e-6; rope within 1e-6 absolute at exactly representable angles. (exp and the
// activation element functions are checked against float64 in math.test.ts.)
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { f32ToBF16, f32ToF16 } from '../../src/core/fp16.js';
import type { Arena } from '../../src/core/heap.js';
import { type Tensor, allocTensor, f32Tensor, i32Tensor } from '../../src/core/tensor.js';
import type { KernelBackend, RopeParams } from '../../src/kernels/backend.js';
import { ropeYarnCorrDims } from '../../src/kernels/ref/ops.js';
import { closeness, device, disposeDevices, randomF32, ref, rng, wasmBuilds } from '../helpers/backends.js';

afterAll(disposeDevices);

/** Indices where two float arrays differ in value (NaN matches NaN; -0 differs from +0). */
function valueDiffs(a: Float32Array, b: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) {
    if (!(Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) out.push(i);
  }
  return out;
}

function expectSame(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  const d = valueDiffs(got, want);
  const show = d.slice(0, 5).map((i) => `[${i}] ${got[i]} vs ${want[i]}`);
  expect(show, `${what}: ${d.length} of ${got.length} differ`).toEqual([]);
}

/** Special values placed so that they fall both in SIMD quads and in scalar tails. */
const SPECIALS = [
  0, -0, 1, -1, 1e-30, -1e-30, 7, -7, 7.0001, -7.0001, 20, -20, 80, -80, 88.7, 88.75, 89, 100, -87.5, -100, -103.9, -104,
  -110, 3.4e38, -3.4e38, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 0.5, -0.5, 1e-7,
];

/** Random values in ±scale with specials mixed in (when `special`). */
function data(n: number, seed: number, scale = 1, special = false): Float32Array {
  const a = randomF32(n, seed, scale);
  if (special) for (let i = 0; i < n; i += 3) a[i] = SPECIALS[(i / 3 + seed) % SPECIALS.length];
  return a;
}

const SIZES = [1, 3, 4, 17, 33, 1000, 40_000]; // 40k: enough work for two threads
const THREADS = [1, 2];

type Unary = (b: KernelBackend, out: Tensor, x: Tensor) => void;
const UNARY: [string, Unary][] = [
  ['silu', (b, o, x) => b.silu(o, x)],
  ['gelu', (b, o, x) => b.gelu(o, x)],
  ['scale', (b, o, x) => b.scale(o, x, -0.37)],
];
type Binary = (b: KernelBackend, out: Tensor, x: Tensor, y: Tensor) => void;
const BINARY: [string, Binary][] = [
  ['swiglu', (b, o, g, u) => b.swiglu(o, g, u)],
  ['swigluOai', (b, o, g, u) => b.swigluOai(o, g, u, 1.702, 7)],
  ['add', (b, o, x, y) => b.add(o, x, y)],
  ['mul', (b, o, x, y) => b.mul(o, x, y)],
];

function copyOf(arena: Arena, t: Tensor): Tensor {
  const c = allocTensor(arena, t.type, t.shape);
  // (Tensor.byteLength is NaN for a zero-width tensor: rows = 0 / 0.)
  return t.numel ? c.setBytes(t.bytes.slice()) : c;
}

for (const build of wasmBuilds()) {
  for (const threads of THREADS) {
    describe(`ops on ${build}, ${threads} thread(s), bit for bit with the twin`, () => {
      const dev = () => device(build, threads);

      /** Run `op` on the wasm backend and on the twin, each with its own output(s). */
      async function compare(name: string, make: (a: Arena) => Tensor[], op: (b: KernelBackend, ts: Tensor[]) => void, outs: number[] = [0]): Promise<void> {
        const d = await dev();
        const arena = d.heap.arena('test');
        try {
          const tw = make(arena);
          // The twin gets its own copy of each output (which may also be an input, in place).
          const tr = tw.map((t, i) => (outs.includes(i) ? copyOf(arena, t) : t));
          op(d.backend, tw);
          op(ref, tr);
          for (const i of outs) {
            if (tw[i].type === GGMLType.I32) expect(Array.from(tw[i].i32()), `${name} out ${i}`).toEqual(Array.from(tr[i].i32()));
            else expectSame(tw[i].f32(), tr[i].f32(), `${name} out ${i}`);
          }
        } finally {
          arena.reset();
        }
      }

      for (const [name, op] of UNARY) {
        it(`${name}: sizes ${SIZES.join(', ')}, ±1 / ±80 / specials, in place`, async () => {
          for (const n of SIZES) {
            for (const [scale, special] of [[1, false], [80, false], [30, true]] as const) {
              const x = data(n, n + scale, scale, special);
              await compare(`${name} n=${n} ±${scale}`, (a) => [f32Tensor(a, [n]), f32Tensor(a, [n], x)], (b, [o, t]) => op(b, o, t));
              // in place: out === x
              const d = await dev();
              const arena = d.heap.arena('test');
              const xw = f32Tensor(arena, [n], x);
              const xr = f32Tensor(arena, [n], x);
              op(d.backend, xw, xw);
              op(ref, xr, xr);
              expectSame(xw.f32(), xr.f32(), `${name} in place n=${n}`);
              arena.reset();
            }
          }
        });
      }

      for (const [name, op] of BINARY) {
        it(`${name}: sizes ${SIZES.join(', ')}, ±1 / ±80 / specials, in place`, async () => {
          for (const n of SIZES) {
            for (const [scale, special] of [[1, false], [80, false], [30, true]] as const) {
              const g = data(n, 3 * n + scale, scale, special);
              const u = data(n, 5 * n + 1, scale, special);
              const shape = n % 2 === 0 ? [2, n / 2] : [n];
              await compare(
                `${name} n=${n} ±${scale}`,
                (a) => [f32Tensor(a, shape), f32Tensor(a, shape, g), f32Tensor(a, shape, u)],
                (b, [o, x, y]) => op(b, o, x, y),
              );
              const d = await dev();
              const arena = d.heap.arena('test');
              const gw = f32Tensor(arena, shape, g);
              const gr = f32Tensor(arena, shape, g);
              const ut = f32Tensor(arena, shape, u);
              op(d.backend, gw, gw, ut);
              op(ref, gr, gr, ut);
              expectSame(gw.f32(), gr.f32(), `${name} in place n=${n}`);
              arena.reset();
            }
          }
        });
      }

      for (const name of ['add', 'mul'] as const) {
        it(`${name} broadcasts one row [C] over [R, C]`, async () => {
          for (const [R, C] of [[1, 1], [3, 3], [5, 17], [7, 33], [4, 1000], [41, 1001]]) {
            const x = data(R * C, R + C, 10, true);
            const row = data(C, C, 10, true);
            for (const bShape of [[C], [1, C]]) {
              await compare(
                `${name} [${R}, ${C}] + [${bShape}]`,
                (a) => [f32Tensor(a, [R, C]), f32Tensor(a, [R, C], x), f32Tensor(a, bShape, row)],
                (b, [o, s, t]) => b[name](o, s, t),
              );
            }
          }
        });
      }

      const ROWS: [number, number][] = [[1, 1], [1, 3], [3, 17], [5, 33], [2, 1000], [40, 1000], [3, 4099]];

      it('rmsNorm: shapes, with and without weight, zero rows, ±1e3, in place', async () => {
        for (const [R, C] of ROWS) {
          for (const [scale, eps] of [[1, 1e-5], [1000, 1e-6], [0, 1e-5]]) {
            const x = data(R * C, R * C + scale, scale);
            const w = data(C, C + 1, 2);
            for (const withW of [true, false]) {
              await compare(
                `rmsNorm [${R}, ${C}] ±${scale} w=${withW}`,
                (a) => [f32Tensor(a, [R, C]), f32Tensor(a, [R, C], x), f32Tensor(a, [C], w)],
                (b, [o, t, wt]) => b.rmsNorm(o, t, withW ? wt : null, eps),
              );
            }
            await compare(
              `rmsNorm in place [${R}, ${C}]`,
              (a) => [f32Tensor(a, [R, C], x), f32Tensor(a, [C], w)],
              (b, [t, wt]) => b.rmsNorm(t, t, wt, eps),
            );
          }
        }
      });

      it('layerNorm: shapes, weight / bias / neither, offset rows, zero rows, in place', async () => {
        for (const [R, C] of ROWS) {
          for (const [scale, off, eps] of [[1, 0, 1e-5], [100, 300, 1e-6], [0, 0, 1e-5]]) {
            const x = data(R * C, R * C + scale, scale).map((v) => v + off);
            const w = data(C, C + 1, 2);
            const bias = data(C, C + 2, 1);
            for (const [withW, withB] of [[true, true], [true, false], [false, true], [false, false]]) {
              await compare(
                `layerNorm [${R}, ${C}] ±${scale}+${off} w=${withW} b=${withB}`,
                (a) => [f32Tensor(a, [R, C]), f32Tensor(a, [R, C], x), f32Tensor(a, [C], w), f32Tensor(a, [C], bias)],
                (b, [o, t, wt, bt]) => b.layerNorm(o, t, withW ? wt : null, withB ? bt : null, eps),
              );
            }
            await compare(
              `layerNorm in place [${R}, ${C}]`,
              (a) => [f32Tensor(a, [R, C], x), f32Tensor(a, [C], w), f32Tensor(a, [C], bias)],
              (b, [t, wt, bt]) => b.layerNorm(t, t, wt, bt, eps),
            );
          }
        }
      });

      it('softmax: shapes, scales, ±80, masked (-inf) entries, in place', async () => {
        for (const [R, C] of [...ROWS, [33, 1024]] as [number, number][]) {
          for (const [mag, scale] of [[1, 1], [80, 1], [10, 0.125], [5, -2]]) {
            const x = data(R * C, R + C + mag, mag);
            for (let i = 1; i < x.length; i += 7) x[i] = Number.NEGATIVE_INFINITY; // never a whole row
            await compare(`softmax [${R}, ${C}] ±${mag} scale ${scale}`, (a) => [f32Tensor(a, [R, C]), f32Tensor(a, [R, C], x)], (b, [o, t]) =>
              b.softmax(o, t, scale),
            );
            await compare(`softmax in place [${R}, ${C}]`, (a) => [f32Tensor(a, [R, C], x)], (b, [t]) => b.softmax(t, t, scale));
          }
        }
      });

      it('topK: sizes, k from 1 to C, ties, NaN, ±inf, ±0', async () => {
        const cases: [number, number, number][] = [[1, 1, 1], [3, 17, 4], [5, 33, 33], [2, 1000, 8], [40, 1000, 3], [2, 64, 64], [3, 7, 0]];
        for (const [R, C, k] of cases) {
          for (const kind of ['random', 'ties', 'specials']) {
            const r = rng(R * C + k);
            const x = new Float32Array(R * C);
            for (let i = 0; i < x.length; i++) {
              x[i] = kind === 'random' ? r() : kind === 'ties' ? Math.round(r(-3, 3)) : SPECIALS[Math.floor(r(0, SPECIALS.length))];
            }
            await compare(
              `topK [${R}, ${C}] k=${k} ${kind}`,
              (a) => [i32Tensor(a, [R, k]), f32Tensor(a, [R, k]), f32Tensor(a, [R, C], x)],
              (b, [iv, vv, t]) => b.topK(iv, vv, t, k),
              [0, 1],
            );
          }
        }
      });

      it('getRows: F32, F16 and BF16 tables, repeated ids, odd widths', async () => {
        for (const [V, C, N] of [[1, 1, 1], [5, 3, 7], [17, 33, 4], [9, 1000, 12], [60, 1000, 50]]) {
          const src = data(V * C, V + C, 3, false);
          const r = rng(V * N);
          const ids = Array.from({ length: N }, (_, i) => (i === 0 ? V - 1 : Math.floor(r(0, V))));
          for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.BF16]) {
            await compare(
              `getRows type ${type} [${V}, ${C}] N=${N}`,
              (a) => {
                const table = allocTensor(a, type, [V, C]);
                if (type === GGMLType.F32) table.f32().set(src);
                else table.u16().set(Array.from(src, type === GGMLType.F16 ? f32ToF16 : f32ToBF16));
                return [f32Tensor(a, [N, C]), table, i32Tensor(a, [N], ids)];
              },
              (b, [o, table, idt]) => b.getRows(o, table, idt),
            );
          }
        }
      });

      const ROPES: [string, number, number, number, Omit<RopeParams, 'freqFactors'> & { ff?: boolean }][] = [
        ['norm full', 3, 4, 64, { nDims: 64, mode: 'norm', freqBase: 10000 }],
        ['neox full', 5, 2, 128, { nDims: 128, mode: 'neox', freqBase: 1e6 }],
        ['norm partial 6 of 10', 7, 3, 10, { nDims: 6, mode: 'norm', freqBase: 10000 }],
        ['neox partial 32 of 64 + linear scale', 4, 3, 64, { nDims: 32, mode: 'neox', freqBase: 10000, freqScale: 0.25 }],
        ['neox partial 6 of 18', 2, 5, 18, { nDims: 6, mode: 'neox', freqBase: 500 }],
        ['norm 2 dims', 2, 1, 2, { nDims: 2, mode: 'norm', freqBase: 10000 }],
        // gpt-oss: YaRN factor 32, original context 4096, beta 32 / 1
        ['neox YaRN (gpt-oss)', 6, 4, 64, { nDims: 64, mode: 'neox', freqBase: 150000, freqScale: 1 / 32, extFactor: 1, nCtxOrig: 4096, betaFast: 32, betaSlow: 1 }],
        // deepseek2: NORM YaRN on 16 rope dims, factor 40
        ['norm YaRN (deepseek2) + attnFactor', 3, 8, 16, { nDims: 16, mode: 'norm', freqBase: 10000, freqScale: 1 / 40, extFactor: 1, nCtxOrig: 4096, betaFast: 32, betaSlow: 1, attnFactor: 0.8 }],
        // phimoe: LongRoPE factors and an attention factor
        ['neox freqFactors (phimoe)', 4, 2, 32, { nDims: 32, mode: 'neox', freqBase: 10000, attnFactor: 1.1902, ff: true }],
        ['norm freqFactors + YaRN half mix', 2, 3, 24, { nDims: 20, mode: 'norm', freqBase: 10000, freqScale: 0.5, extFactor: 0.5, nCtxOrig: 2048, ff: true }],
        ['neox large: 2 threads', 64, 8, 64, { nDims: 64, mode: 'neox', freqBase: 10000 }],
      ];

      it.each(ROPES)('rope %s, T=%i H=%i Dh=%i (1e-6 abs + 1e-6 rel)', async (_name, T, H, Dh, cfg) => {
        const d = await dev();
        const arena = d.heap.arena('test');
        const x = data(T * H * Dh, T * H + Dh, 1);
        const r = rng(T + Dh);
        const pos = Array.from({ length: T }, (_, i) => (i === 0 ? 0 : i === 1 ? 100_000 : Math.floor(r(0, 5000))));
        const ff = cfg.ff ? f32Tensor(arena, [cfg.nDims / 2], Array.from({ length: cfg.nDims / 2 }, () => r(1, 8))) : undefined;
        const p: RopeParams = { ...cfg, freqFactors: ff };
        const xt = f32Tensor(arena, [T, H, Dh], x);
        const pt = i32Tensor(arena, [T], pos);
        const ow = f32Tensor(arena, [T, H, Dh]);
        const or = f32Tensor(arena, [T, H, Dh]);
        d.backend.rope(ow, xt, pt, p);
        ref.rope(or, xt, pt, p);
        expect(closeness(ow.f32(), or.f32(), 1e-6, 1e-6)).toBeLessThanOrEqual(1);
        // position 0 with no attention factor is the identity, bit for bit
        if ((cfg.attnFactor ?? 1) === 1 && !cfg.extFactor) expectSame(ow.f32().subarray(0, H * Dh), x.subarray(0, H * Dh), 'position 0');
        // in place
        const xi = f32Tensor(arena, [T, H, Dh], x);
        d.backend.rope(xi, xi, pt, p);
        expectSame(xi.f32(), ow.f32(), 'in place');
        arena.reset();
      });
    });
  }
}

// ---- quantized tables: getRows equals the golden dequantization and `dequantize` -------

const GOLDEN = new URL('../../../shared/golden/quants/', import.meta.url);
const haveGolden = existsSync(new URL('quants.json', GOLDEN));
if (!haveGolden && process.env.CI === 'true') throw new Error(`golden quant data missing at ${GOLDEN.pathname} (required under CI=true)`);

const goldenTitle = haveGolden
  ? 'getRows on quantized tables (golden data in shared/golden/quants)'
  : `getRows on quantized tables: SKIPPED, golden data absent at ${GOLDEN.pathname}`;
describe.skipIf(!haveGolden)(goldenTitle, () => {
  for (const [name, type] of [['Q8_0', GGMLType.Q8_0], ['Q4_K', GGMLType.Q4_K]] as const) {
    it(`${name}: rows equal the golden dequantization on every backend`, async () => {
      const blocks = new Uint8Array(readFileSync(new URL(`${name}.blocks.bin`, GOLDEN)));
      const want = new Float32Array(readFileSync(new URL(`${name}.dequant.f32`, GOLDEN)).buffer.slice(0));
      const ids = [63, 0, 5, 5, 31, 62, 1];
      for (const backend of [['ref', 1] as const, ...wasmBuilds().flatMap((b) => THREADS.map((t) => [b, t] as const))]) {
        const d = await device(backend[0] === 'ref' ? wasmBuilds()[0] : backend[0], backend[1]);
        const be = backend[0] === 'ref' ? ref : d.backend;
        const arena = d.heap.arena('test');
        const table = allocTensor(arena, type, [64, 256]).setBytes(blocks);
        const out = f32Tensor(arena, [ids.length, 256]);
        be.getRows(out, table, i32Tensor(arena, [ids.length], ids));
        const deq = f32Tensor(arena, [64, 256]);
        be.dequantize(deq, table);
        for (let n = 0; n < ids.length; n++) {
          const row = out.f32().subarray(n * 256, (n + 1) * 256);
          expectSame(row, want.subarray(ids[n] * 256, (ids[n] + 1) * 256), `${backend.join('/')} ${name} row ${ids[n]} vs golden`);
          expectSame(row, deq.f32().subarray(ids[n] * 256, (ids[n] + 1) * 256), `${backend.join('/')} ${name} row ${ids[n]} vs dequantize`);
        }
        arena.reset();
      }
    });
  }
});

// ---- the twins against float64 formulas ----------------------------------------------

describe('reference twins against float64 formulas', () => {
  async function withRef<T>(fn: (a: Arena) => T): Promise<T> {
    const d = await device(wasmBuilds()[0], 1);
    const arena = d.heap.arena('test');
    try {
      return fn(arena);
    } finally {
      arena.reset();
    }
  }

  it('softmax rows sum to 1 and match float64 (1e-6)', async () => {
    await withRef((a) => {
      const [R, C] = [6, 257];
      const x = randomF32(R * C, 3, 40);
      const out = f32Tensor(a, [R, C]);
      ref.softmax(out, f32Tensor(a, [R, C], x), 0.5);
      const y = out.f32();
      for (let r = 0; r < R; r++) {
        const row = Array.from(x.subarray(r * C, (r + 1) * C), (v) => v * 0.5);
        const m = Math.max(...row);
        const e = row.map((v) => Math.exp(v - m));
        const s = e.reduce((p, q) => p + q, 0);
        let sum = 0;
        for (let i = 0; i < C; i++) {
          sum += y[r * C + i];
          expect(Math.abs(y[r * C + i] - e[i] / s)).toBeLessThan(1e-6 * (e[i] / s) + 1e-12);
        }
        expect(Math.abs(sum - 1)).toBeLessThan(1e-6);
      }
    });
  });

  it('rmsNorm with unit weight has rms 1; layerNorm has mean 0 and variance 1 (1e-6)', async () => {
    await withRef((a) => {
      const [R, C] = [4, 1001];
      const x = randomF32(R * C, 5, 50).map((v) => v + 20);
      const ones = f32Tensor(a, [C], new Float32Array(C).fill(1));
      const y = f32Tensor(a, [R, C]);
      ref.rmsNorm(y, f32Tensor(a, [R, C], x), ones, 0);
      const z = f32Tensor(a, [R, C]);
      ref.layerNorm(z, f32Tensor(a, [R, C], x), null, null, 0);
      for (let r = 0; r < R; r++) {
        const yr = y.f32().subarray(r * C, (r + 1) * C);
        const zr = z.f32().subarray(r * C, (r + 1) * C);
        expect(Math.abs(Math.sqrt(yr.reduce((s, v) => s + v * v, 0) / C) - 1)).toBeLessThan(1e-6);
        const mean = zr.reduce((s, v) => s + v, 0) / C;
        expect(Math.abs(mean)).toBeLessThan(1e-6);
        expect(Math.abs(zr.reduce((s, v) => s + (v - mean) ** 2, 0) / C - 1)).toBeLessThan(1e-6);
        // against the float64 formula, element by element
        const xr = Array.from(x.subarray(r * C, (r + 1) * C));
        const rms = Math.sqrt(xr.reduce((s, v) => s + v * v, 0) / C);
        for (let i = 0; i < C; i += 37) expect(Math.abs(yr[i] - xr[i] / rms)).toBeLessThan(1e-6);
      }
    });
  });

  it('rope matches a float64 rotation at exactly representable angles (1e-6)', async () => {
    await withRef((a) => {
      // freqBase 256, nDims 8: theta_scale = 256^(-1/4) = 1/4 exactly, so theta_i = p / 4^i exactly.
      const [T, H, Dh, nDims] = [4, 2, 12, 8];
      const pos = [0, 1, 7, 1000];
      const x = randomF32(T * H * Dh, 9);
      for (const mode of ['norm', 'neox'] as const) {
        const out = f32Tensor(a, [T, H, Dh]);
        ref.rope(out, f32Tensor(a, [T, H, Dh], x), i32Tensor(a, [T], pos), { nDims, mode, freqBase: 256 });
        const y = out.f32();
        for (let t = 0; t < T; t++) {
          for (let h = 0; h < H; h++) {
            const o = (t * H + h) * Dh;
            for (let i = 0; i < nDims / 2; i++) {
              const th = pos[t] / 4 ** i;
              const [i0, i1] = mode === 'neox' ? [o + i, o + i + nDims / 2] : [o + 2 * i, o + 2 * i + 1];
              expect(Math.abs(y[i0] - (x[i0] * Math.cos(th) - x[i1] * Math.sin(th)))).toBeLessThan(1e-6);
              expect(Math.abs(y[i1] - (x[i0] * Math.sin(th) + x[i1] * Math.cos(th)))).toBeLessThan(1e-6);
            }
            for (let i = nDims; i < Dh; i++) expect(y[o + i]).toBe(x[o + i]); // partial rotary: copied
          }
        }
      }
    });
  });

  it('YaRN: corr dims, mscale and angles match a float64 port of ggml (1e-6 + 3e-7·pos)', async () => {
    // ggml_rope_yarn_corr_dims in float64
    const corr = (nDims: number, nCtx: number, base: number, bf: number, bs: number) => {
      const dim = (nRot: number) => (nDims * Math.log(nCtx / (nRot * 2 * Math.PI))) / (2 * Math.log(base));
      return [Math.max(0, Math.floor(dim(bf))), Math.min(nDims - 1, Math.ceil(dim(bs)))];
    };
    expect(ropeYarnCorrDims(64, 4096, 150000, 32, 1)).toEqual(corr(64, 4096, 150000, 32, 1));
    expect(ropeYarnCorrDims(16, 4096, 10000, 32, 1)).toEqual(corr(16, 4096, 10000, 32, 1));
    await withRef((a) => {
      const [T, H, Dh, nDims] = [3, 1, 8, 8];
      const pos = [1, 5, 50];
      const p: RopeParams = { nDims, mode: 'neox', freqBase: 256, freqScale: 1 / 32, extFactor: 1, nCtxOrig: 64, betaFast: 4, betaSlow: 1 };
      const x = new Float32Array(T * H * Dh);
      for (let t = 0; t < T; t++) x.fill(1, t * Dh, t * Dh + nDims / 2); // (1, 0) pairs: out = (cos, sin) * mscale
      const out = f32Tensor(a, [T, H, Dh]);
      ref.rope(out, f32Tensor(a, [T, H, Dh], x), i32Tensor(a, [T], pos), p);
      const [lo, hi] = corr(nDims, 64, 256, 4, 1);
      expect(hi).toBeGreaterThan(lo); // the ramp is exercised
      const mscale = 1 + 0.1 * Math.log(32);
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < nDims / 2; i++) {
          const extrap = pos[t] / 4 ** i;
          const ramp = 1 - Math.min(1, Math.max(0, (i - lo) / Math.max(0.001, hi - lo)));
          const th = (extrap / 32) * (1 - ramp) + extrap * ramp;
          const tol = 1e-6 + 3e-7 * pos[t];
          expect(Math.abs(out.f32()[t * Dh + i] - Math.cos(th) * mscale)).toBeLessThan(tol);
          expect(Math.abs(out.f32()[t * Dh + i + nDims / 2] - Math.sin(th) * mscale)).toBeLessThan(tol);
        }
      }
    });
    // gpt-oss: cos and sin scaled by 1 + 0.1 ln 32 = 1.3466 (golden README)
    expect(1 + 0.1 * Math.log(32)).toBeCloseTo(1.3466, 4);
  });

  it('NEOX equals NORM on the de-interleaved head', async () => {
    await withRef((a) => {
      const [T, H, Dh, nDims] = [3, 2, 16, 12];
      const x = randomF32(T * H * Dh, 13);
      const perm = new Float32Array(x.length); // NEOX pair (i, i + n/2) -> NORM pair (2i, 2i + 1)
      for (let r = 0; r < T * H; r++) {
        for (let i = 0; i < nDims / 2; i++) {
          perm[r * Dh + 2 * i] = x[r * Dh + i];
          perm[r * Dh + 2 * i + 1] = x[r * Dh + i + nDims / 2];
        }
        for (let i = nDims; i < Dh; i++) perm[r * Dh + i] = x[r * Dh + i];
      }
      const pos = i32Tensor(a, [T], [3, 77, 4000]);
      const yn = f32Tensor(a, [T, H, Dh]);
      const yx = f32Tensor(a, [T, H, Dh]);
      ref.rope(yx, f32Tensor(a, [T, H, Dh], x), pos, { nDims, mode: 'neox', freqBase: 10000 });
      ref.rope(yn, f32Tensor(a, [T, H, Dh], perm), pos, { nDims, mode: 'norm', freqBase: 10000 });
      for (let r = 0; r < T * H; r++) {
        for (let i = 0; i < nDims / 2; i++) {
          expect(yn.f32()[r * Dh + 2 * i]).toBe(yx.f32()[r * Dh + i]);
          expect(yn.f32()[r * Dh + 2 * i + 1]).toBe(yx.f32()[r * Dh + i + nDims / 2]);
        }
      }
    });
  });

  it('topK: descending, ties by lower index, NaN last', async () => {
    await withRef((a) => {
      const x = f32Tensor(a, [1, 7], [2, Number.NaN, 5, 2, Number.NEGATIVE_INFINITY, 5, -0]);
      const iv = i32Tensor(a, [1, 7]);
      const vv = f32Tensor(a, [1, 7]);
      ref.topK(iv, vv, x, 7);
      expect(Array.from(iv.i32())).toEqual([2, 5, 0, 3, 6, 4, 1]);
    });
  });

  it('getRows equals dequantize of the same rows', async () => {
    await withRef((a) => {
      const [V, C] = [9, 40];
      const table = allocTensor(a, GGMLType.F16, [V, C]);
      table.u16().set(Array.from(randomF32(V * C, 17, 4), f32ToF16));
      const all = f32Tensor(a, [V, C]);
      ref.dequantize(all, table);
      const ids = [8, 0, 3, 3];
      const out = f32Tensor(a, [ids.length, C]);
      ref.getRows(out, table, i32Tensor(a, [ids.length], ids));
      for (const [n, id] of ids.entries()) {
        expectSame(out.f32().subarray(n * C, (n + 1) * C), all.f32().subarray(id * C, (id + 1) * C), `row ${id}`);
      }
    });
  });
});

// ---- validation ------------------------------------------------------------------------

describe('argument validation (every backend)', () => {
  const backends = async (): Promise<[string, KernelBackend, Arena][]> => {
    const out: [string, KernelBackend, Arena][] = [];
    for (const b of wasmBuilds()) {
      const d = await device(b, 2);
      out.push([b, d.backend, d.heap.arena('test')]);
    }
    const d = await device(wasmBuilds()[0], 2);
    out.push(['ref', ref, d.heap.arena('test')]);
    return out;
  };

  function throwsNaming(fn: () => void, ...words: string[]): void {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    for (const w of words) expect((err as Error).message).toContain(w);
  }

  it('wrong dtypes, shapes, ids, k, rope parameters each throw InvalidArgumentError naming the argument', async () => {
    for (const [name, b, a] of await backends()) {
      const x = f32Tensor(a, [3, 8]);
      const out = f32Tensor(a, [3, 8]);
      const h = allocTensor(a, GGMLType.F16, [3, 8]);
      const ids = i32Tensor(a, [2], [0, 3]);
      throwsNaming(() => b.silu(out, h), 'silu', 'x', 'F32');
      throwsNaming(() => b.gelu(f32Tensor(a, [3, 7]), x), 'gelu', 'out', '[3, 7]');
      throwsNaming(() => b.swiglu(out, x, f32Tensor(a, [8, 3])), 'swiglu', 'up');
      throwsNaming(() => b.swigluOai(out, x, x, Number.NaN, 7), 'swigluOai', 'alpha');
      throwsNaming(() => b.add(out, x, f32Tensor(a, [5])), 'add', 'b', '[5]');
      throwsNaming(() => b.mul(out, x, h), 'mul', 'b', 'F32');
      throwsNaming(() => b.scale(out, x, Number.POSITIVE_INFINITY), 'scale', 's');
      throwsNaming(() => b.rmsNorm(out, x, f32Tensor(a, [7]), 1e-5), 'rmsNorm', 'weight', '[8]');
      throwsNaming(() => b.rmsNorm(out, x, null, -1), 'rmsNorm', 'eps');
      throwsNaming(() => b.layerNorm(out, x, null, f32Tensor(a, [9]), 1e-5), 'layerNorm', 'bias');
      throwsNaming(() => b.softmax(out, h), 'softmax', 'x');
      throwsNaming(() => b.getRows(f32Tensor(a, [2, 8]), x, ids), 'getRows', 'ids[1] = 3', '3 rows');
      throwsNaming(() => b.getRows(f32Tensor(a, [2, 8]), x, i32Tensor(a, [2], [-1, 0])), 'getRows', 'ids[0] = -1');
      throwsNaming(() => b.getRows(f32Tensor(a, [2, 8]), x, f32Tensor(a, [2])), 'getRows', 'ids', 'I32');
      throwsNaming(() => b.getRows(f32Tensor(a, [3, 8]), x, ids), 'getRows', 'out', '[2, 8]');
      throwsNaming(() => b.topK(i32Tensor(a, [3, 9]), f32Tensor(a, [3, 9]), x, 9), 'topK', 'k', '8');
      throwsNaming(() => b.topK(i32Tensor(a, [3, 2]), f32Tensor(a, [3, 3]), x, 2), 'topK', 'values');
      throwsNaming(() => b.topK(f32Tensor(a, [3, 2]), f32Tensor(a, [3, 2]), x, 2), 'topK', 'indices', 'I32');
      const q = f32Tensor(a, [2, 3, 8]);
      const pos = i32Tensor(a, [2], [0, 1]);
      throwsNaming(() => b.rope(q, q, pos, { nDims: 7, mode: 'norm', freqBase: 1e4 }), 'rope', 'nDims');
      throwsNaming(() => b.rope(q, q, pos, { nDims: 10, mode: 'norm', freqBase: 1e4 }), 'rope', 'nDims');
      throwsNaming(() => b.rope(q, q, i32Tensor(a, [3]), { nDims: 8, mode: 'norm', freqBase: 1e4 }), 'rope', 'positions');
      throwsNaming(() => b.rope(q, q, f32Tensor(a, [2]), { nDims: 8, mode: 'norm', freqBase: 1e4 }), 'rope', 'positions', 'I32');
      throwsNaming(() => b.rope(x, x, pos, { nDims: 8, mode: 'norm', freqBase: 1e4 }), 'rope', 'x', '3-D');
      throwsNaming(() => b.rope(q, q, pos, { nDims: 8, mode: 'neox', freqBase: 1e4, freqFactors: f32Tensor(a, [3]) }), 'rope', 'freqFactors');
      throwsNaming(() => b.rope(q, q, pos, { nDims: 8, mode: 'neox', freqBase: 1e4, extFactor: 1 }), 'rope', 'nCtxOrig');
      throwsNaming(() => b.rope(q, q, pos, { nDims: 8, mode: 'neox', freqBase: 0 }), 'rope', 'freqBase');
      expect(name).toBeTruthy();
      a.reset();
    }
  });
});
