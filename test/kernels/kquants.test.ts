// 256-element super-block types (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0, TQ2_0) and
// the Q8_K activation quantizer: every wasm build against the reference twins
// (src/kernels/ref/kquants.ts), bit for bit, and the twins' dot products against float64
// sums over the dequantized operands. Dequantization against llama.cpp's own values is
// in quants-golden.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { f32ToF16 } from '../../src/core/fp16.js';
import { allocTensor, f32Tensor, type Tensor } from '../../src/core/tensor.js';
import { quantizeActivations as refQuantize } from '../../src/kernels/ref/matmul.js';
import { refTypeKernels } from '../../src/kernels/ref/types.js';
import type { Device } from '../../src/kernels/device.js';
import type { WasmBackend } from '../../src/kernels/wasm/backend.js';
import { quantizeActivations as wasmQuantize } from '../../src/kernels/wasm/matmul.js';
import { bitDiffs, device, disposeDevices, randomF32, ref, rng, wasmBuilds } from '../helpers/backends.js';

afterAll(disposeDevices);

interface TypeCase {
  name: string;
  type: number;
  bytes: number;
  /** Byte offsets of the fp16 factors (d, dmin) inside a block. */
  fp16: number[];
}

const TYPES: TypeCase[] = [
  { name: 'Q2_K', type: GGMLType.Q2_K, bytes: 84, fp16: [80, 82] },
  { name: 'Q3_K', type: GGMLType.Q3_K, bytes: 110, fp16: [108] },
  { name: 'Q4_K', type: GGMLType.Q4_K, bytes: 144, fp16: [0, 2] },
  { name: 'Q5_K', type: GGMLType.Q5_K, bytes: 176, fp16: [0, 2] },
  { name: 'Q6_K', type: GGMLType.Q6_K, bytes: 210, fp16: [208] },
  { name: 'IQ4_XS', type: GGMLType.IQ4_XS, bytes: 136, fp16: [0] },
  { name: 'TQ1_0', type: GGMLType.TQ1_0, bytes: 54, fp16: [52] },
  { name: 'TQ2_0', type: GGMLType.TQ2_0, bytes: 66, fp16: [64] },
];

const Q8K_BYTES = 292;

/**
 * `nBlocks` blocks of random bytes whose fp16 factors are finite: random sign, magnitude
 * 2^-24 .. 1 (fp16 subnormals included, as in real Q6_K/IQ4_XS files). `fill` replaces
 * the random bytes with one value (edge cases: all codes and scales at their extremes).
 */
function randomBlocks(tc: TypeCase, nBlocks: number, seed: number, fill?: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(nBlocks * tc.bytes);
  for (let i = 0; i < out.length; i++) out[i] = fill ?? Math.floor(r(0, 256));
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nBlocks; b++) {
    for (const off of tc.fp16) {
      const mag = 2 ** r(-24, 0);
      dv.setUint16(b * tc.bytes + off, f32ToF16(r() < 0 ? -mag : mag), true);
    }
  }
  return out;
}

function weightTensor(dev: Device, tc: TypeCase, rows: number, cols: number, blocks: Uint8Array): Tensor {
  return allocTensor(dev.heap.arena('test'), tc.type, [rows, cols]).setBytes(blocks);
}

describe.each(wasmBuilds())('K-quant dequantization on %s', (build) => {
  it.each(TYPES.map((t) => [t.name, t] as const))('%s: random blocks equal the twin bit for bit', async (_n, tc) => {
    const dev = await device(build);
    const rows = 7, cols = 512;
    const nb = (rows * cols) / 256;
    for (const [seed, fill] of [[1], [2], [3, 0xff], [4, 0x00], [5, 0x80], [6, 0x55]] as [number, number?][]) {
      const w = weightTensor(dev, tc, rows, cols, randomBlocks(tc, nb, seed * 7919 + tc.type, fill));
      const outW = f32Tensor(dev.heap.arena('test'), [rows, cols]);
      const outR = f32Tensor(dev.heap.arena('test'), [rows, cols]);
      dev.backend.dequantize(outW, w);
      ref.dequantize(outR, w);
      // Exact: both keep llama.cpp's operation order, so even the signs of zeros agree.
      expect(bitDiffs(outW.f32(), outR.f32())).toEqual([]);
      expect(outR.f32().every(Number.isFinite)).toBe(true);
    }
    dev.heap.arena('test').reset();
  });
});

// ---- Q8_K activations ---------------------------------------------------------------

/** Q8_K blocks of x [T, C] from a wasm build and from the twin. */
async function quantizeBoth(build: 'simd128' | 'relaxed', x: Float32Array, T: number, C: number) {
  const dev = await device(build);
  const xt = f32Tensor(dev.heap.arena('test'), [T, C], x);
  const wasm = wasmQuantize((dev.backend as WasmBackend).ctx, GGMLType.Q4_K, xt);
  const twin = refQuantize(GGMLType.Q4_K, x, T, C).q;
  dev.heap.arena('test').reset();
  return { wasm, twin };
}

interface Q8K {
  d: number;
  qs: Int8Array;
  bsums: Int16Array;
}
function readQ8K(bytes: Uint8Array, block: number): Q8K {
  const o = block * Q8K_BYTES;
  const dv = new DataView(bytes.buffer, bytes.byteOffset + o, Q8K_BYTES);
  const bsums = new Int16Array(16);
  for (let j = 0; j < 16; j++) bsums[j] = dv.getInt16(260 + 2 * j, true);
  return { d: dv.getFloat32(0, true), qs: new Int8Array(bytes.buffer, bytes.byteOffset + o + 4, 256).slice(), bsums };
}

describe.each(wasmBuilds())('Q8_K quantization on %s', (build) => {
  it('random, zero, tiny and huge rows equal the twin byte for byte', async () => {
    const C = 1024;
    const rows: Float32Array[] = [
      randomF32(C, 11),
      randomF32(C, 12, 1e-3),
      randomF32(C, 13, 3e38), // near float32's largest
      randomF32(C, 14, 1e-36), // tiny: some elements are float32 subnormals
      new Float32Array(C), // all zeros: every block is the zero block
    ];
    // Mixed: zero, random and one-spike blocks in one row; values on exact .5 ties.
    const mixed = randomF32(C, 15, 10);
    mixed.fill(0, 0, 256);
    mixed.fill(-0, 256, 300);
    for (let i = 512; i < 768; i++) mixed[i] = (i % 17) - 8.5;
    mixed[600] = -127;
    rows.push(mixed);
    const x = new Float32Array(rows.length * C);
    for (const [i, r] of rows.entries()) x.set(r, i * C);
    const { wasm, twin } = await quantizeBoth(build, x, rows.length, C);
    expect(wasm.length).toBe(twin.length);
    expect(Buffer.from(wasm).equals(Buffer.from(twin))).toBe(true);
    // The blocks are well formed: bsums are the sums of 16 codes, codes within ±127,
    // and d·q is x to within half a step.
    for (let b = 0; b < (rows.length * C) / 256; b++) {
      const q = readQ8K(twin, b);
      for (let j = 0; j < 16; j++) {
        let s = 0;
        for (let k = 0; k < 16; k++) s += q.qs[16 * j + k];
        expect(q.bsums[j]).toBe(s);
      }
      for (let k = 0; k < 256; k++) {
        expect(Math.abs(q.qs[k])).toBeLessThanOrEqual(127);
        const xv = x[256 * b + k];
        expect(Math.abs(q.d * q.qs[k] - xv)).toBeLessThanOrEqual(Math.abs(q.d) * 0.5001);
      }
    }
  });

  it('hand-computed blocks pin the scale, the rounding (ties to even) and the bsums', async () => {
    const x = new Float32Array(4 * 256);
    // Block 0: max = -127 (the largest magnitude, negative) so iscale = -127/max = 1 and
    // q = round-half-even(x): 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, ±0.5 -> 0, 126.5 -> 126.
    x.set([-127, 2.5, 3.5, -2.5, 0.5, -0.5, 1.5, 126.5, -126.5], 0);
    x[20] = 7; // bsums[1]
    // Block 1: max = +254 (a later -254 ties in magnitude but the first one wins):
    // iscale = -0.5, d = -2; 5 -> -2.5 -> -2, 3 -> -1.5 -> -2, 1 -> -0.5 -> 0.
    x.set([0.25, 0, 0, 0, 0, 254, -254, 5, 3, 1, -1], 256);
    // Block 2: |max| = 3 at index 3 (negative, first) and 200 (positive):
    // iscale = fround(127 / 3) = 42.33333206..., d = fround(1 / iscale); 1.5 * iscale =
    // 63.4999981 is rounded to the float32 63.5 first, which then goes to the even 64.
    x[512 + 3] = -3;
    x[512 + 200] = 3;
    x[512 + 100] = 1.5;
    // Block 3: all zeros.
    const { wasm, twin } = await quantizeBoth(build, x, 1, 1024);
    expect(Buffer.from(wasm).equals(Buffer.from(twin))).toBe(true);

    const b0 = readQ8K(twin, 0);
    expect(b0.d).toBe(1);
    expect(Array.from(b0.qs.slice(0, 9))).toEqual([-127, 2, 4, -2, 0, 0, 2, 126, -126]);
    expect(b0.qs[20]).toBe(7);
    expect(b0.bsums[0]).toBe(-127 + 2 + 4 - 2 + 2 + 126 - 126);
    expect(b0.bsums[1]).toBe(7);
    expect(Array.from(b0.bsums.slice(2))).toEqual(new Array(14).fill(0));

    const b1 = readQ8K(twin, 1);
    expect(b1.d).toBe(-2);
    expect(Array.from(b1.qs.slice(0, 11))).toEqual([0, 0, 0, 0, 0, -127, 127, -2, -2, 0, 0]);
    expect(b1.bsums[0]).toBe(-4);

    const b2 = readQ8K(twin, 2);
    const iscale = Math.fround(127 / 3);
    expect(b2.d).toBe(Math.fround(1 / iscale));
    expect(b2.qs[3]).toBe(-127);
    expect(b2.qs[200]).toBe(127);
    expect(b2.qs[100]).toBe(64);
    expect(b2.bsums[0]).toBe(-127);
    expect(b2.bsums[6]).toBe(64);
    expect(b2.bsums[12]).toBe(127);

    const b3 = readQ8K(twin, 3);
    expect(Object.is(b3.d, 0)).toBe(true);
    expect(b3.qs.every((v) => v === 0)).toBe(true);
    expect(b3.bsums.every((v) => v === 0)).toBe(true);
  });
});

// ---- matrix products --------------------------------------------------------------

const SHAPES: [number, number][] = [];
for (const R of [1, 7, 130]) for (const C of [256, 512, 4096 + 256]) SHAPES.push([R, C]);

/** Activations of token t: random, zero, large, one sign (q8 = -127 everywhere), mixed signs. */
function activations(T: number, C: number, seed: number): Float32Array {
  const x = new Float32Array(T * C);
  for (let t = 0; t < T; t++) {
    const row = x.subarray(t * C, (t + 1) * C);
    switch (t % 5) {
      case 0:
        row.set(randomF32(C, seed + t));
        break;
      case 1:
        break; // zeros: d = 0 blocks
      case 2:
        row.set(randomF32(C, seed + t, 1e4));
        row.fill(0, 0, 256); // a zero block next to large ones
        break;
      case 3:
        row.fill(1); // every q8 = -127
        break;
      default:
        row.fill(-1);
        for (let i = 0; i < C; i += 256) row[i] = 1; // q8 = +127 but the first of each block
    }
  }
  return x;
}

describe('K-quant matrix products', () => {
  const builds = wasmBuilds();
  it.each(TYPES.map((t) => [t.name, t] as const))(
    '%s: every build at 1 and 2 threads equals the twin bit for bit',
    async (_n, tc) => {
      const devs = [];
      for (const b of builds) for (const th of [1, 2]) devs.push({ label: `${b}/${th}`, dev: await device(b, th) });
      for (const [R, C] of SHAPES) {
        for (const T of [1, 5]) {
          // Random blocks, plus rows of extreme codes/scales (every byte 0xff, 0x80) that push
          // the 16-bit partial sums to their limits.
          const rowBytes = (C / 256) * tc.bytes;
          const blocks = randomBlocks(tc, (R * C) / 256, R * 1000 + C + T + tc.type);
          if (R > 1) blocks.set(randomBlocks(tc, C / 256, 17, 0xff), 0);
          if (R > 2) blocks.set(randomBlocks(tc, C / 256, 18, 0x80), rowBytes);
          const x = activations(T, C, R + C + T);
          let want: Float32Array | undefined;
          for (const { label, dev } of devs) {
            const arena = dev.heap.arena('test');
            const w = weightTensor(dev, tc, R, C, blocks);
            const xt = f32Tensor(arena, [T, C], x);
            const out = f32Tensor(arena, [T, R]);
            if (!want) {
              const outR = f32Tensor(arena, [T, R]);
              ref.matmul(outR, w, xt);
              want = outR.f32().slice();
              expect(want.every(Number.isFinite)).toBe(true);
            }
            dev.backend.matmul(out, w, xt);
            const diffs = bitDiffs(out.f32(), want);
            expect(diffs, `${label} T=${T} R=${R} C=${C}`).toEqual([]);
            arena.reset();
          }
        }
      }
    },
    20_000,
  );
});

// ---- the twins against float64 ------------------------------------------------------

describe('K-quant twins against float64', () => {
  it.each(TYPES.map((t) => [t.name, t] as const))('%s: vecDot is the dot product of the dequantized operands', (_n, tc) => {
    const k = refTypeKernels(tc.type);
    const C = 1024;
    const rows = 16;
    const blocks = randomBlocks(tc, (rows * C) / 256, 99 + tc.type);
    const w = new Float32Array(rows * C);
    k.dequantize(blocks, 0, w, 0, rows * C);
    for (let t = 0; t < 4; t++) {
      const x = randomF32(C, 500 + t, 10 ** (t - 1));
      const { q } = refQuantize(tc.type, x, 1, C);
      const a = new Float64Array(C);
      for (let b = 0; b < C / 256; b++) {
        const blk = readQ8K(q, b);
        for (let i = 0; i < 256; i++) a[256 * b + i] = blk.d * blk.qs[i];
      }
      for (let r = 0; r < rows; r++) {
        let exact = 0;
        let scale = 0;
        for (let i = 0; i < C; i++) {
          exact += w[r * C + i] * a[i];
          scale += Math.abs(w[r * C + i] * a[i]);
        }
        const got = k.vecDot(C, blocks, r * (C / 256) * tc.bytes, q, 0);
        // float32 rounding of a few operations per block (and of the weights' final
        // subtraction for Q2_K/Q4_K/Q5_K), relative to the sum of |products|.
        expect(Math.abs(got - exact)).toBeLessThanOrEqual(1e-5 * scale);
      }
    }
  });
});
