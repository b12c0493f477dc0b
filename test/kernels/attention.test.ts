// attention: every wasm build (1 and 2 threads) against the reference twin, and the twin
// against an independent float64 implementation of the same definition.
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { f16ToF32, f32ToF16, roundToF16 } from '../../src/core/fp16.js';
import { Heap } from '../../src/core/heap.js';
import { allocTensor, f32Tensor, type Tensor } from '../../src/core/tensor.js';
import type { Arena } from '../../src/core/heap.js';
import type { AttentionParams } from '../../src/kernels/backend.js';
import { bitDiffs, closeness, device, disposeDevices, randomF32, ref, wasmBuilds } from '../helpers/backends.js';
import { attention64 } from '../helpers/attention64.js';

afterAll(disposeDevices);

interface Case {
  name: string;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  Dk: number;
  Dv: number;
  qPos0: number;
  window?: number;
  softcap?: number;
  sinks?: boolean;
  kF16?: boolean;
  vF16?: boolean;
  /** Multiplies q (large-magnitude scores). */
  qScale?: number;
  zeroQ?: boolean;
  /** Score scale; default 1 / sqrt(Dk). */
  scale?: number;
}

const decode = (S: number): Case => ({ name: `decode S=${S}`, T: 1, S, H: 4, Hkv: 4, Dk: 64, Dv: 64, qPos0: S - 1 });

const cases: Case[] = [
  ...[1, 2, 3, 5, 16, 17, 64, 129, 300].map(decode),
  { name: 'prefill T=S=37 causal', T: 37, S: 37, H: 4, Hkv: 2, Dk: 64, Dv: 64, qPos0: 0 },
  { name: 'GQA H=8 Hkv=2 decode', T: 1, S: 200, H: 8, Hkv: 2, Dk: 64, Dv: 64, qPos0: 199 },
  { name: 'GQA H=8 Hkv=2 prefill', T: 23, S: 23, H: 8, Hkv: 2, Dk: 32, Dv: 32, qPos0: 0 },
  { name: 'Dk=48 Dv=32', T: 5, S: 40, H: 4, Hkv: 2, Dk: 48, Dv: 32, qPos0: 35 },
  { name: 'DeepSeek-like Dk=96 Dv=64', T: 7, S: 60, H: 8, Hkv: 8, Dk: 96, Dv: 64, qPos0: 53 },
  { name: 'odd sizes Dk=33 Dv=7', T: 3, S: 19, H: 3, Hkv: 1, Dk: 33, Dv: 7, qPos0: 10 },
  { name: 'Dv=20 (4-wide tail) Dk=5', T: 2, S: 9, H: 2, Hkv: 2, Dk: 5, Dv: 20, qPos0: 7 },
  { name: 'window 16, decode S=100', T: 1, S: 100, H: 4, Hkv: 2, Dk: 64, Dv: 64, qPos0: 99, window: 16 },
  { name: 'window 16, prefill S=100', T: 100, S: 100, H: 2, Hkv: 1, Dk: 32, Dv: 32, qPos0: 0, window: 16 },
  { name: 'sinks', T: 4, S: 50, H: 4, Hkv: 2, Dk: 64, Dv: 64, qPos0: 46, sinks: true },
  { name: 'sinks + window (gpt-oss)', T: 30, S: 30, H: 4, Hkv: 2, Dk: 64, Dv: 64, qPos0: 0, sinks: true, window: 16 },
  { name: 'softcap 30', T: 6, S: 70, H: 4, Hkv: 4, Dk: 64, Dv: 64, qPos0: 64, softcap: 30, qScale: 12 },
  { name: 'F16 K and V', T: 5, S: 80, H: 4, Hkv: 2, Dk: 64, Dv: 64, qPos0: 75, kF16: true, vF16: true },
  { name: 'F16 K, F32 V, odd Dk', T: 3, S: 21, H: 2, Hkv: 1, Dk: 37, Dv: 16, qPos0: 18, kF16: true },
  { name: 'F32 K, F16 V, odd Dv', T: 3, S: 21, H: 2, Hkv: 1, Dk: 32, Dv: 19, qPos0: 18, vF16: true },
  { name: 'qPos0 > 0, chunk in the middle of the cache', T: 9, S: 50, H: 4, Hkv: 2, Dk: 64, Dv: 64, qPos0: 20 },
  { name: 'large magnitudes', T: 4, S: 90, H: 2, Hkv: 2, Dk: 64, Dv: 64, qPos0: 86, qScale: 10 },
  { name: 'MQA H=12 Hkv=1 (runs of 8 + 4 heads), sinks', T: 5, S: 77, H: 12, Hkv: 1, Dk: 64, Dv: 48, qPos0: 72, sinks: true },
  { name: 'H=6 Hkv=1, a run split between threads', T: 5, S: 40, H: 6, Hkv: 1, Dk: 32, Dv: 32, qPos0: 35 },
  { name: 'MLA-like absorbed Dk=576 Dv=512 Hkv=1', T: 2, S: 40, H: 4, Hkv: 1, Dk: 576, Dv: 512, qPos0: 38 },
  { name: 'zero queries (uniform softmax)', T: 2, S: 33, H: 2, Hkv: 1, Dk: 16, Dv: 24, qPos0: 31, zeroQ: true },
];

interface Built {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  p: AttentionParams;
}

function fill(arena: Arena, shape: number[], f16: boolean, seed: number, scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const src = randomF32(n, seed, scale);
  if (!f16) return f32Tensor(arena, shape, src);
  const t = allocTensor(arena, GGMLType.F16, shape);
  t.u16().set(Array.from(src, f32ToF16));
  return t;
}

function build(arena: Arena, c: Case, seed: number): Built {
  const q = fill(arena, [c.T, c.H, c.Dk], false, seed, c.qScale ?? 1);
  if (c.zeroQ) q.f32().fill(0);
  const k = fill(arena, [c.S, c.Hkv, c.Dk], !!c.kF16, seed + 1);
  const v = fill(arena, [c.S, c.Hkv, c.Dv], !!c.vF16, seed + 2);
  const p: AttentionParams = { scale: c.scale ?? 1 / Math.sqrt(c.Dk), qPos0: c.qPos0, window: c.window, softcap: c.softcap };
  if (c.sinks) p.sinks = f32Tensor(arena, [c.H], randomF32(c.H, seed + 3, 2));
  return { q, k, v, p };
}

/** The float64 reference on this case's inputs; q is rounded to F16 when K is F16 (as the kernels do). */
function reference(c: Case, b: Built): Float64Array {
  const read = (t: Tensor) => (t.type === GGMLType.F16 ? Array.from(t.u16(), f16ToF32) : Array.from(t.f32()));
  const q = Array.from(b.q.f32(), (x) => (c.kF16 ? roundToF16(x) : x));
  return attention64(q, read(b.k), read(b.v), c, b.p.scale, b.p.sinks?.f32());
}

describe.each(wasmBuilds())('attention on %s', (buildName) => {
  for (const threads of [1, 2]) {
    it.each(cases)(`$name, ${threads} thread(s), matches the twin`, async (c) => {
      const dev = await device(buildName, threads);
      const arena = dev.heap.arena('test');
      const b = build(arena, c, c.S * 7 + c.T);
      const outW = f32Tensor(arena, [c.T, c.H, c.Dv]);
      const outR = f32Tensor(arena, [c.T, c.H, c.Dv]);
      outW.f32().fill(Number.NaN);
      dev.backend.attention(outW, b.q, b.k, b.v, b.p);
      ref.attention(outR, b.q, b.k, b.v, b.p);
      // Outputs are convex combinations of V rows (|v| < 1): 2e-6 absolute covers the
      // different summation order of the SIMD dot products and V sums; with q scaled up
      // (scores ~ 10x larger) a score's rounding error grows with it. F16 V: the
      // probabilities are rounded to F16 in both, and one of them may round the other way.
      const atol = (c.qScale ?? 1) * 2e-6 + (c.vF16 ? 2e-4 : 0);
      expect(closeness(outW.f32(), outR.f32(), atol, 1e-5)).toBeLessThanOrEqual(1);
      arena.reset();
    });
  }

  it.each(['sinks + window', 'MQA H=12', 'H=6 Hkv=1'])('gives the same bits with 1, 2 and 3 threads: %s', async (which) => {
    const c = cases.find((x) => x.name.startsWith(which))!;
    const outs: Float32Array[] = [];
    for (const threads of [1, 2, 3]) {
      const dev = await device(buildName, threads);
      const arena = dev.heap.arena('test');
      const b = build(arena, c, 99);
      const out = f32Tensor(arena, [c.T, c.H, c.Dv]);
      dev.backend.attention(out, b.q, b.k, b.v, b.p);
      outs.push(out.f32().slice());
      arena.reset();
    }
    expect(bitDiffs(outs[0], outs[1])).toEqual([]);
    expect(bitDiffs(outs[0], outs[2])).toEqual([]);
  });

  // With Dk = 1 and Dv < 4 no SIMD sum is involved: every step (the one product, scale,
  // tanh, exp, the double sum, the V sums) is the same float32 operation in the kernel and
  // the twin, so their bits must agree; this checks sy_math.h's sy_expf/sy_expf4/sy_tanhf
  // against ref/math.ts's expf/tanhf over scores from about -100 to 100.
  it.each([
    ['', undefined],
    [' with softcap 30 and sinks', 30],
  ] as const)('Dk = 1, Dv = 3%s: equals the twin bit for bit', async (_, softcap) => {
    const c: Case = { name: 'bits', T: 7, S: 301, H: 2, Hkv: 1, Dk: 1, Dv: 3, qPos0: 294, scale: 1, qScale: 10, softcap, sinks: !!softcap };
    for (const threads of [1, 2]) {
      const dev = await device(buildName, threads);
      const arena = dev.heap.arena('test');
      const b = build(arena, c, 4242);
      const k = b.k.f32();
      for (let i = 0; i < k.length; i++) k[i] *= 10;
      const outW = f32Tensor(arena, [c.T, c.H, c.Dv]);
      const outR = f32Tensor(arena, [c.T, c.H, c.Dv]);
      dev.backend.attention(outW, b.q, b.k, b.v, b.p);
      ref.attention(outR, b.q, b.k, b.v, b.p);
      expect(bitDiffs(outW.f32(), outR.f32())).toEqual([]);
      arena.reset();
    }
  });

  it('rejects bad arguments like the twin', async () => {
    const dev = await device(buildName, 2);
    const arena = dev.heap.arena('test');
    const c = cases[0];
    const b = build(arena, { ...c, S: 4, qPos0: 3 }, 1);
    const out = f32Tensor(arena, [1, c.H, c.Dv]);
    for (const be of [dev.backend, ref]) {
      expect(() => be.attention(out, b.q, b.k, b.v, { ...b.p, qPos0: 4 })).toThrow(/attention: queries at positions 4\.\.4/);
      expect(() => be.attention(out, b.q, b.k, b.v, { ...b.p, window: -1 })).toThrow(InvalidArgumentError);
      expect(() => be.attention(out, b.q, b.k, b.v, { ...b.p, sinks: f32Tensor(arena, [3]) })).toThrow(/attention: sinks has shape \[3\]/);
      expect(() => be.attention(f32Tensor(arena, [1, c.H, 3]), b.q, b.k, b.v, b.p)).toThrow(/attention: out has shape/);
      const k3 = f32Tensor(arena, [4, 3, c.Dk]);
      const v3 = f32Tensor(arena, [4, 3, c.Dv]);
      expect(() => be.attention(out, b.q, k3, v3, b.p)).toThrow(/attention: query heads H = 4 must be a positive multiple/);
      const kBad = allocTensor(arena, GGMLType.BF16, [4, c.Hkv, c.Dk]);
      expect(() => be.attention(out, b.q, kBad, b.v, b.p)).toThrow(/attention: k must be F32 or F16, got BF16/);
    }
    arena.reset();
  });
});

describe('attention reference twin', () => {
  const heap = new Heap({ reservedBytes: 64, shared: false, maxBytes: 1 << 28, name: 'twin heap' });

  it.each(cases)('$name matches a float64 implementation', (c) => {
    const arena = heap.arena('test');
    const b = build(arena, c, c.S * 7 + c.T);
    const out = f32Tensor(arena, [c.T, c.H, c.Dv]);
    ref.attention(out, b.q, b.k, b.v, b.p);
    const want = reference(c, b);
    // float32 scores (|s| up to ~10 with q scaled up), exp within 1 ulp, float32 V sums;
    // an F16 V adds the F16 rounding of each probability (2^-11 relative).
    const atol = (c.qScale ?? 1) * 3e-6 + (c.vF16 ? 1e-3 : 0);
    expect(closeness(out.f32(), want, atol, 1e-5)).toBeLessThanOrEqual(1);
    arena.reset();
  });
});
