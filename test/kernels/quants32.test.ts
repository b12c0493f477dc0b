// 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4) and the Q8_0 / Q8_1
// activation quantizers: every wasm build against the reference twin (src/kernels/ref/quants32.ts),
// bit for bit, and the twin's dot product against float64 maths on the dequantized values.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType, dotRowBytes, dtypeInfo, rowBytes } from '../../src/core/dtypes.js';
import { f16ToF32, f32ToF16 } from '../../src/core/fp16.js';
import type { Arena } from '../../src/core/heap.js';
import { type Tensor, allocTensor, f32Tensor } from '../../src/core/tensor.js';
import { quantizeQ8_0, quantizeQ8_1 } from '../../src/kernels/ref/quants32.js';
import { refTypeKernels } from '../../src/kernels/ref/types.js';
import type { WasmBackend } from '../../src/kernels/wasm/backend.js';
import { quantizeActivations } from '../../src/kernels/wasm/matmul.js';
import { bitDiffs, device, disposeDevices, randomF32, ref, rng, wasmBuilds } from '../helpers/backends.js';

afterAll(disposeDevices);

const fr = Math.fround;
const BUILDS = wasmBuilds();
const TYPES = [
  ['Q4_0', GGMLType.Q4_0],
  ['Q4_1', GGMLType.Q4_1],
  ['Q5_0', GGMLType.Q5_0],
  ['Q5_1', GGMLType.Q5_1],
  ['Q8_0', GGMLType.Q8_0],
  ['IQ4_NL', GGMLType.IQ4_NL],
  ['MXFP4', GGMLType.MXFP4],
] as const;

/**
 * `blocks` random blocks of `type`: random code bytes, sane scales (finite fp16 of both signs
 * from 1e-4 to 1, with a few zeros and subnormals when `edgeScales`; MXFP4 exponents from the
 * whole 0..255 range when `edgeScales`, else 118..133 so that dot products stay finite).
 */
function randomBlocks(type: number, blocks: number, seed: number, edgeScales: boolean): Uint8Array {
  const info = dtypeInfo(type);
  const r = rng(seed);
  const out = new Uint8Array(blocks * info.blockBytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r(0, 256));
  const scale = (): number => {
    const u = r(0, 1);
    if (edgeScales && u < 0.05) return 0;
    if (edgeScales && u < 0.15) return Math.floor(r(1, 1024)) | (r(0, 1) < 0.5 ? 0x8000 : 0); // fp16 subnormal
    return f32ToF16((r(0, 1) < 0.5 ? -1 : 1) * 10 ** r(-4, 0));
  };
  for (let b = 0; b < blocks; b++) {
    const p = b * info.blockBytes;
    if (type === GGMLType.MXFP4) {
      out[p] = edgeScales ? (b < 4 ? [0, 1, 2, 255][b] : Math.floor(r(0, 256))) : Math.floor(r(118, 134));
      continue;
    }
    const d = scale();
    out[p] = d & 0xff;
    out[p + 1] = d >> 8;
    if (type === GGMLType.Q4_1 || type === GGMLType.Q5_1) {
      const m = scale();
      out[p + 2] = m & 0xff;
      out[p + 3] = m >> 8;
    }
  }
  return out;
}

function weights(arena: Arena, type: number, R: number, C: number, seed: number, edge = false): Tensor {
  return allocTensor(arena, type, [R, C]).setBytes(randomBlocks(type, (R * C) / 32, seed, edge));
}

describe.each(BUILDS)('32-element block types on %s', (build) => {
  describe.each(TYPES)('%s', (_name, type) => {
    // (1) Dequantization is exact in both: random blocks, zero and subnormal scales,
    // every MXFP4 exponent rule (e = 0, 1, 2, 255). Tolerance: none (bit patterns).
    it('dequantize matches the twin bit for bit', async () => {
      const dev = await device(build);
      const arena = dev.heap.arena('test');
      const src = weights(arena, type, 9, 32 * 13, 101 + type, true);
      const outW = f32Tensor(arena, [9, 32 * 13]);
      const outR = f32Tensor(arena, [9, 32 * 13]);
      dev.backend.dequantize(outW, src);
      ref.dequantize(outR, src);
      expect(bitDiffs(outW.f32(), outR.f32())).toEqual([]);
      arena.reset();
    });

    // (3) Matrix products, T = 1 and 5, odd row counts, rows not a multiple of 4 blocks
    // (4096 + 32 = 129 blocks), at 1 and 2 threads. Tolerance: none (bit patterns).
    const shapes: [number, number, number][] = [];
    for (const T of [1, 5]) for (const C of [32, 64, 4096 + 32]) for (const R of [1, 7, 130]) shapes.push([T, R, C]);
    it('matmul matches the twin bit for bit (T 1/5, C 32/64/4128, R 1/7/130, threads 1/2)', async () => {
      const devs = [await device(build, 1), await device(build, 2)];
      for (const [T, R, C] of shapes) {
        const seed = T * 1000 + R * 10 + C;
        const blocks = randomBlocks(type, (R * C) / 32, seed, false);
        const xs = randomF32(T * C, seed + 1, 3);
        let want: Float32Array | undefined;
        for (const dev of devs) {
          const arena = dev.heap.arena('test');
          const w = allocTensor(arena, type, [R, C]).setBytes(blocks);
          const x = f32Tensor(arena, [T, C], xs);
          if (!want) {
            const outR = f32Tensor(arena, [T, R]);
            ref.matmul(outR, w, x);
            want = outR.f32().slice();
          }
          const out = f32Tensor(arena, [T, R]);
          dev.backend.matmul(out, w, x);
          const diffs = bitDiffs(out.f32(), want);
          expect(diffs, `T=${T} R=${R} C=${C} threads=${dev.backend.threads}: first ${out.f32()[diffs[0]]} vs ${want[diffs[0]]}`).toEqual([]);
          arena.reset();
        }
      }
    });

    // The SIMD path converts fp16 scales four at a time for finite values only; a row with an
    // infinite scale (weights: fp16 0x7c00 / 0xfc00; activations: max|x| / 127 > 65504) is
    // recomputed exactly. Tolerance: bit for bit, except that any NaN equals any NaN (wasm
    // does not fix NaN payloads).
    it('infinite weight and activation scales match the twin', async () => {
      const dev = await device(build);
      const arena = dev.heap.arena('test');
      const [R, C, T] = [4, 9 * 32, 3];
      const blocks = randomBlocks(type, (R * C) / 32, 77 + type, false);
      const bb = dtypeInfo(type).blockBytes;
      if (type !== GGMLType.MXFP4) {
        blocks.set([0x00, 0x7c], (1 * 9 + 2) * bb); // row 1, block 2: d = +inf
        blocks.set([0x00, 0xfc], (2 * 9 + 8) * bb); // row 2, block 8 (the scalar tail): d = -inf
      }
      const xs = randomF32(T * C, 78);
      for (let j = 0; j < 32; j++) xs[C + 3 * 32 + j] *= 1e7; // token 1, block 3: dx = +inf
      const w = allocTensor(arena, type, [R, C]).setBytes(blocks);
      const x = f32Tensor(arena, [T, C], xs);
      const outW = f32Tensor(arena, [T, R]);
      const outR = f32Tensor(arena, [T, R]);
      dev.backend.matmul(outW, w, x);
      ref.matmul(outR, w, x);
      const got = outW.f32();
      const want = outR.f32();
      expect(want.some((v) => !Number.isFinite(v))).toBe(true);
      const mismatch = want.findIndex((v, i) => !(Number.isNaN(v) && Number.isNaN(got[i])) && !Object.is(v, got[i]));
      expect(mismatch, `out[${mismatch}]: ${got[mismatch]} vs ${want[mismatch]}`).toBe(-1);
      arena.reset();
    });
  });

  // (2) Activation quantization, byte for byte.
  describe.each([
    ['Q8_0', GGMLType.Q4_0],
    ['Q8_1', GGMLType.Q4_1],
  ] as const)('%s activations', (dot, weightType) => {
    const cases: [string, Float32Array][] = [
      ['random', randomF32(32 * 7, 5)],
      ['random x 1000', randomF32(32 * 3, 6, 1000)],
      ['all zeros', new Float32Array(64)],
      ['negative zeros', new Float32Array(32).fill(-0)],
      // Every value an exact tie x.5 after scaling (max 127 -> id = 1).
      ['ties', Float32Array.from({ length: 64 }, (_, i) => (i % 32 === 0 ? 127 : ((i % 32) - 16) + 0.5))],
      ['large magnitudes', Float32Array.from(randomF32(96, 7), (v, i) => v * [1e30, 3e38, 65504][i >> 5])],
      // max < 127 / FLT_MAX: id = inf, every code -2^31 -> -128 and d = 0 (ggml x86 behaviour).
      ['tiny', Float32Array.from(randomF32(32, 8), (v) => v * 1e-38)],
      ['one value', Float32Array.from({ length: 32 }, (_, i) => (i === 5 ? -0.25 : 0))],
    ];
    it.each(cases)(`%s: wasm equals the twin byte for byte`, async (_label, xs) => {
      const dev = await device(build);
      const arena = dev.heap.arena('test');
      const x = f32Tensor(arena, [1, xs.length], xs);
      const got = quantizeActivations((dev.backend as WasmBackend).ctx, weightType, x);
      const want = new Uint8Array(got.length);
      (dot === 'Q8_0' ? quantizeQ8_0 : quantizeQ8_1)(xs, 0, want, 0, xs.length);
      expect(Array.from(got)).toEqual(Array.from(want));
      arena.reset();
    });

    // The side arrays after the ggml blocks (src/kernels/wasm/c/types.h): float32 d per block
    // (exactly the fp16 d), then int32 Σ of the stored codes (Q8_0) or float32 s (Q8_1); the
    // padding is zero. Checked from the ggml blocks themselves; exact.
    it.each(cases)(`%s: side arrays hold each block's d, Σq or s, padding zero`, async (_label, xs) => {
      const dev = await device(build);
      const arena = dev.heap.arena('test');
      const got = quantizeActivations((dev.backend as WasmBackend).ctx, weightType, f32Tensor(arena, [1, xs.length], xs));
      arena.reset();
      const nb = xs.length / 32;
      const bb = dot === 'Q8_0' ? 34 : 36;
      const side = Math.ceil((nb * bb) / 16) * 16;
      const nb4 = Math.ceil(nb / 4) * 4;
      expect(got.length).toBe(dotRowBytes(weightType, xs.length));
      expect(got.length).toBe(side + 8 * nb4);
      const view = new DataView(got.buffer, got.byteOffset, got.length);
      const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
      for (let b = 0; b < nb4; b++) {
        const d = view.getFloat32(side + 4 * b, true);
        if (b >= nb) {
          expect([view.getUint32(side + 4 * b, true), view.getUint32(side + 4 * (nb4 + b), true)]).toEqual([0, 0]);
          continue;
        }
        expect(same(d, f16ToF32(view.getUint16(bb * b, true))), `block ${b} d`).toBe(true);
        if (dot === 'Q8_0') {
          let sum = 0;
          for (let j = 0; j < 32; j++) sum += view.getInt8(bb * b + 2 + j);
          expect(view.getInt32(side + 4 * (nb4 + b), true), `block ${b} sum`).toBe(sum);
        } else {
          const s = view.getFloat32(side + 4 * (nb4 + b), true);
          expect(same(s, f16ToF32(view.getUint16(bb * b + 2, true))), `block ${b} s`).toBe(true);
        }
      }
      for (let p = nb * bb; p < side; p++) expect(got[p], `padding byte ${p}`).toBe(0);
    });
  });
});

describe('Q8 activation rounding pins ggml x86 quantize_row_q8_0 / q8_1', () => {
  const i8 = (v: number) => v & 0xff;
  const builds = ['ref', ...BUILDS] as const;
  async function q8(build: (typeof builds)[number], dot: 'Q8_0' | 'Q8_1', xs: Float32Array): Promise<Uint8Array> {
    if (build === 'ref') {
      const out = new Uint8Array((xs.length / 32) * (dot === 'Q8_0' ? 34 : 36));
      (dot === 'Q8_0' ? quantizeQ8_0 : quantizeQ8_1)(xs, 0, out, 0, xs.length);
      return out;
    }
    const dev = await device(build);
    const arena = dev.heap.arena('test');
    const got = quantizeActivations((dev.backend as WasmBackend).ctx, dot === 'Q8_0' ? GGMLType.Q4_0 : GGMLType.Q4_1, f32Tensor(arena, [1, xs.length], xs));
    arena.reset();
    return got;
  }

  it.each(builds)('round half to even, not roundf (%s)', async (build) => {
    // max 127: d = 1 (fp16 0x3c00), id = 127 / 127 = 1, so codes are round(x) exactly.
    const xs = new Float32Array(32);
    xs.set([127, 2.5, -2.5, 0.5, -0.5, 1.5, 3.5, -3.5, 126.5, 0.49999997]);
    const q = await q8(build, 'Q8_0', xs);
    expect(Array.from(q.slice(0, 12))).toEqual([0x00, 0x3c, 127, 2, i8(-2), 0, 0, 2, 4, i8(-4), 126, 0]);
    // roundf would give 3, -3, 1, -1, 2, 4, -4, 127.
  });

  it.each(builds)('inverse scale 127 / max, not 1 / d (%s)', async (build) => {
    // max = 57/7: 127 / max = 15.596490859985352 but 1 / (max / 127) = 15.596489906311035.
    // x1 * (127 / max) = 1.5 exactly -> 2 (the reference path gets 1.4999999 -> 1);
    // x2 * (127 / max) = 2.5000002 -> 3 (the reference path gets 2.5 -> roundf 3, even 2).
    const xs = new Float32Array(32);
    xs.set([fr(57 / 7), 0.09617547690868378, 0.16029247641563416, -0.16029247641563416]);
    const q = await q8(build, 'Q8_0', xs);
    const d = f32ToF16(fr(fr(57 / 7) / 127));
    expect(Array.from(q.slice(0, 6))).toEqual([d & 0xff, d >> 8, 127, 2, 3, i8(-3)]);
  });

  it.each(builds)('Q8_1 s = fp16(d * sum) with the unrounded d (%s)', async (build) => {
    // Codes 7 x 127 + 115 = 1004; d = 0.0023937954 (fp16 0x18e7): fp16(d * 1004) = 0x40cf,
    // while fp16(fp16(d) * 1004) would be 0x40ce.
    const a = 0.3040120303630829;
    const xs = new Float32Array(32);
    xs.fill(a, 0, 7);
    xs[7] = fr((a * 115) / 127);
    const q = await q8(build, 'Q8_1', xs);
    expect(Array.from(q.slice(0, 12))).toEqual([0xe7, 0x18, 0xcf, 0x40, 127, 127, 127, 127, 127, 127, 127, 115]);
  });
});

// (4) The twin's dot product checked independently: float64 sums of the dequantized weights
// times the dequantized activations (d * q; for Q8_1 weights the block term m * s uses the
// stored s, as ggml does). Tolerance: 1e-5 relative to Σ|w x| (float32 rounding of ~35
// sequential additions per accumulator is below 2.1e-6 there).
describe.each(TYPES)('twin vecDot of %s against float64', (name, type) => {
  it('agrees to 1e-5 relative', () => {
    const k = refTypeKernels(type);
    const q8_1 = type === GGMLType.Q4_1 || type === GGMLType.Q5_1;
    const xBytes = q8_1 ? 36 : 34;
    for (const C of [32, 64, 4096 + 32]) {
      const w = randomBlocks(type, C / 32, C + type, false);
      const xs = randomF32(C, C * 3 + type, 2);
      const xq = new Uint8Array(rowBytes(q8_1 ? GGMLType.Q8_1 : GGMLType.Q8_0, C));
      (q8_1 ? quantizeQ8_1 : quantizeQ8_0)(xs, 0, xq, 0, C);
      const wd = new Float32Array(C);
      k.dequantize(w, 0, wd, 0, C); // checked against the golden files and the wasm kernels
      let sum = 0;
      let mag = 0;
      for (let b = 0; b < C / 32; b++) {
        const x = b * xBytes;
        const dx = f16ToF32(xq[x] | (xq[x + 1] << 8));
        const q = (j: number) => (xq[x + (q8_1 ? 4 : 2) + j] << 24) >> 24;
        if (q8_1) {
          // ggml splits w = c * d + m: Σ (c d)(dx q) + m * s.
          const p = b * (type === GGMLType.Q4_1 ? 20 : 24);
          const dw = f16ToF32(w[p] | (w[p + 1] << 8));
          const mw = f16ToF32(w[p + 2] | (w[p + 3] << 8));
          const sx = f16ToF32(xq[x + 2] | (xq[x + 3] << 8));
          for (let j = 0; j < 32; j++) {
            // The unsigned code, read from the layout (README): nibble order as Q4_0, Q5_1's
            // fifth bit j of the LE uint32 at byte 4.
            const qs = p + (type === GGMLType.Q4_1 ? 4 : 8);
            let c = j < 16 ? w[qs + j] & 15 : w[qs + j - 16] >> 4;
            if (type === GGMLType.Q5_1) c |= ((w[p + 4 + (j >> 3)] >> (j & 7)) & 1) << 4;
            const t = c * dw * dx * q(j);
            sum += t;
            mag += Math.abs(t);
          }
          sum += mw * sx;
          mag += Math.abs(mw * sx);
        } else {
          for (let j = 0; j < 32; j++) {
            const t = wd[32 * b + j] * dx * q(j);
            sum += t;
            mag += Math.abs(t);
          }
        }
      }
      const got = k.vecDot(C, w, 0, xq, 0);
      expect(Math.abs(got - sum), `${name} C=${C}: ${got} vs ${sum}`).toBeLessThanOrEqual(1e-5 * mag);
    }
  });
});

// The golden Q8_0 blocks were made by ggml's reference quantizer (quantize_row_q8_0_ref:
// id = 1 / d, roundf). Our x86-path quantizer (id = 127 / max, round half to even) can differ
// from it only where x * id lands on or next to a .5 tie; on these 64 x 256 golden values it
// never does, so all 512 blocks are reproduced byte for byte (0 blocks differ).
const GOLDEN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/golden/quants');
const haveGolden = existsSync(path.join(GOLDEN, 'Q8_0.source.f32'));
describe('Q8_0 quantizer on the golden source rows', () => {
  if (!haveGolden && process.env.CI === 'true') {
    it('needs ../shared/golden/quants', () => {
      throw new Error(`${GOLDEN} is absent; CI must run the golden quantizer check`);
    });
  } else if (!haveGolden) {
    it.skip(`skipped: ${GOLDEN} is absent`, () => {});
  } else {
    it.each(['ref', ...BUILDS] as const)('reproduces Q8_0.blocks.bin except 0 blocks (%s)', async (build) => {
      const src = new Float32Array(new Uint8Array(readFileSync(path.join(GOLDEN, 'Q8_0.source.f32'))).buffer);
      const want = new Uint8Array(readFileSync(path.join(GOLDEN, 'Q8_0.blocks.bin')));
      let got: Uint8Array;
      if (build === 'ref') {
        got = new Uint8Array(want.length);
        quantizeQ8_0(src, 0, got, 0, src.length);
      } else {
        const dev = await device(build);
        const arena = dev.heap.arena('test');
        // Each of the 64 dot rows holds its 8 ggml blocks first, then its side arrays.
        const rows = quantizeActivations((dev.backend as WasmBackend).ctx, GGMLType.Q8_0, f32Tensor(arena, [64, 256], src));
        const stride = dotRowBytes(GGMLType.Q8_0, 256);
        got = new Uint8Array(want.length);
        for (let r = 0; r < 64; r++) got.set(rows.subarray(r * stride, r * stride + 8 * 34), r * 8 * 34);
        arena.reset();
      }
      let differ = 0;
      for (let b = 0; b < want.length / 34; b++) {
        if (got.subarray(34 * b, 34 * b + 34).some((v, j) => v !== want[34 * b + j])) differ++;
      }
      expect(want.length / 34).toBe(512);
      expect(differ).toBe(0);
    });
  }
});
