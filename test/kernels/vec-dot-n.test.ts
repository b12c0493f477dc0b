// Multi-token dot products (types.h vec_dot_n, used by matmul and expert_group when several
// tokens meet one weight row): a product of T tokens must equal, bit for bit, the T
// one-token products, which take the single-row vec_dot. F16 and every quantized weight type (those
// without a vec_dot_n take the per-row fallback and must agree too), both wasm builds, 1 and
// 2 threads, token counts that leave every remainder of the groups of 4 (SY_DOT_N).
// The twins' agreement with these kernels is in kquants.test.ts, quants32.test.ts, moe.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType, dtypeInfo } from '../../src/core/dtypes.js';
import { f32ToF16 } from '../../src/core/fp16.js';
import { allocTensor, f32Tensor } from '../../src/core/tensor.js';
import { bitDiffs, device, disposeDevices, randomF32, rng, wasmBuilds } from '../helpers/backends.js';

afterAll(disposeDevices);

interface TypeCase {
  name: string;
  type: number;
  /** Byte offsets of the fp16 factors inside a block (random bytes elsewhere). */
  fp16: number[];
  /** Byte offset of an E8M0 exponent (MXFP4), kept in a moderate range. */
  e8m0?: number;
}

const T_ = GGMLType;
const TYPES: TypeCase[] = [
  { name: 'F16', type: T_.F16, fp16: [0] }, // every weight a finite fp16 (row 2: one infinity)
  { name: 'Q4_0', type: T_.Q4_0, fp16: [0] },
  { name: 'Q4_1', type: T_.Q4_1, fp16: [0, 2] },
  { name: 'Q5_0', type: T_.Q5_0, fp16: [0] },
  { name: 'Q5_1', type: T_.Q5_1, fp16: [0, 2] },
  { name: 'Q8_0', type: T_.Q8_0, fp16: [0] },
  { name: 'IQ4_NL', type: T_.IQ4_NL, fp16: [0] },
  { name: 'MXFP4', type: T_.MXFP4, fp16: [], e8m0: 0 },
  { name: 'Q2_K', type: T_.Q2_K, fp16: [80, 82] },
  { name: 'Q3_K', type: T_.Q3_K, fp16: [108] },
  { name: 'Q4_K', type: T_.Q4_K, fp16: [0, 2] },
  { name: 'Q5_K', type: T_.Q5_K, fp16: [0, 2] },
  { name: 'Q6_K', type: T_.Q6_K, fp16: [208] },
  { name: 'IQ4_XS', type: T_.IQ4_XS, fp16: [0] },
  { name: 'TQ1_0', type: T_.TQ1_0, fp16: [52] },
  { name: 'TQ2_0', type: T_.TQ2_0, fp16: [64] },
];

/** Random blocks with finite scales (fp16 subnormals included); `fill` sets every other byte. */
function randomBlocks(tc: TypeCase, nBlocks: number, seed: number, fill?: number): Uint8Array {
  const { blockBytes } = dtypeInfo(tc.type);
  const r = rng(seed);
  const out = new Uint8Array(nBlocks * blockBytes);
  for (let i = 0; i < out.length; i++) out[i] = fill ?? Math.floor(r(0, 256));
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nBlocks; b++) {
    for (const off of tc.fp16) {
      const mag = 2 ** r(-24, 0);
      dv.setUint16(b * blockBytes + off, f32ToF16(r() < 0 ? -mag : mag), true);
    }
    if (tc.e8m0 !== undefined) out[b * blockBytes + tc.e8m0] = 100 + Math.floor(r(0, 40));
  }
  return out;
}

/** Token rows: random at several scales, zero, one sign, a spike (extreme activation codes). */
function activations(T: number, C: number, seed: number): Float32Array {
  const x = new Float32Array(T * C);
  for (let t = 0; t < T; t++) {
    const row = x.subarray(t * C, (t + 1) * C);
    switch (t % 6) {
      case 1:
        break; // zeros
      case 3:
        row.fill(1);
        break;
      case 4:
        row.fill(-1);
        for (let i = 0; i < C; i += 7) row[i] = 3;
        break;
      default:
        row.set(randomF32(C, seed + t, 10 ** ((t % 5) - 2)));
    }
  }
  return x;
}

describe.each(wasmBuilds())('multi-token dot products on %s', (build) => {
  it.each(TYPES.map((t) => [t.name, t] as const))(
    '%s: a T-token matmul equals T one-token matmuls bit for bit (T = 2..9, 1 and 2 threads)',
    async (_n, tc) => {
      const R = 5;
      const C = 768; // 3 super-blocks / 24 blocks: not a multiple of four 32-blocks' groups of 4 rows
      const { blockBytes, blockElems } = dtypeInfo(tc.type);
      const rowBlocks = C / blockElems;
      const blocks = randomBlocks(tc, R * rowBlocks, 31 + tc.type);
      // Rows of extreme codes: every byte 0xff, 0x80 (16-bit partial sums at their limits).
      blocks.set(randomBlocks(tc, rowBlocks, 7, 0xff), 0);
      blocks.set(randomBlocks(tc, rowBlocks, 8, 0x80), rowBlocks * blockBytes);
      // Row 2: one infinite weight scale (the 32-element types' exact fallback loop).
      if (tc.fp16.length > 0) new DataView(blocks.buffer).setUint16((2 * rowBlocks + Math.min(5, rowBlocks - 1)) * blockBytes + tc.fp16[0], 0x7c00, true);
      for (const threads of [1, 2]) {
        const dev = await device(build, threads);
        const arena = dev.heap.arena('test');
        const w = allocTensor(arena, tc.type, [R, C]).setBytes(blocks);
        for (const T of [2, 3, 4, 5, 6, 7, 9]) {
          const x = activations(T, C, 100 * T + tc.type);
          const xt = f32Tensor(arena, [T, C], x);
          const out = f32Tensor(arena, [T, R]);
          dev.backend.matmul(out, w, xt);
          const want = new Float32Array(T * R);
          for (let t = 0; t < T; t++) {
            const x1 = f32Tensor(arena, [1, C], x.subarray(t * C, (t + 1) * C));
            const o1 = f32Tensor(arena, [1, R]);
            dev.backend.matmul(o1, w, x1);
            want.set(o1.f32(), t * R);
          }
          // Every row but the one with an infinite scale is finite.
          expect(want.filter((_v, i) => i % R !== 2).every(Number.isFinite), `${tc.name} T=${T}`).toBe(true);
          expect(bitDiffs(out.f32(), want), `${threads} threads, T=${T}`).toEqual([]);
        }
        arena.reset();
      }
    },
    20_000,
  );
});
