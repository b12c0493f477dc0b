// F32 / F16 / BF16 matrix products: every wasm build against the reference twin.
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { f32ToBF16, f32ToF16 } from '../../src/core/fp16.js';
import { allocTensor, f32Tensor } from '../../src/core/tensor.js';
import { device, disposeDevices, randomF32, ref, wasmBuilds, closeness } from '../helpers/backends.js';

afterAll(disposeDevices);

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 33],
  [3, 64, 256],
  [5, 130, 257],
  [17, 33, 1000],
];

describe.each(wasmBuilds())('matmul float types on %s', (build) => {
  for (const [type, name, tol] of [
    [GGMLType.F32, 'F32', 2e-6],
    [GGMLType.F16, 'F16', 2e-6],
    [GGMLType.BF16, 'BF16', 2e-6],
  ] as const) {
    it.each(shapes)(`${name} T=%i R=%i C=%i matches the reference`, async (T, R, C) => {
      const dev = await device(build);
      const arena = dev.heap.arena('test');
      const w = allocTensor(arena, type, [R, C]);
      const src = randomF32(R * C, R * 31 + C);
      if (type === GGMLType.F32) w.f32().set(src);
      else w.u16().set(Array.from(src, type === GGMLType.F16 ? f32ToF16 : f32ToBF16));
      const x = f32Tensor(arena, [T, C], randomF32(T * C, T + 7));
      const outW = f32Tensor(arena, [T, R]);
      const outR = f32Tensor(arena, [T, R]);
      dev.backend.matmul(outW, w, x);
      ref.matmul(outR, w, x);
      // Sums of C products of magnitude < 1: summation-order error grows like C * eps.
      expect(closeness(outW.f32(), outR.f32(), tol * Math.sqrt(C), 1e-5)).toBeLessThanOrEqual(1);
      arena.reset();
    });
  }
});

describe.each(wasmBuilds())('F16 weights with special values on %s', (build) => {
  it('infinities, NaN, subnormals and the largest finite value give the reference results', async () => {
    const dev = await device(build);
    const arena = dev.heap.arena('test');
    const C = 40; // 32 in the SIMD loop, 8 in the scalar tail
    const rows: number[][] = [
      Array.from({ length: C }, (_, i) => (i === 3 ? Number.POSITIVE_INFINITY : 0.5)), // +inf in the SIMD part
      Array.from({ length: C }, (_, i) => (i === 20 ? Number.NaN : 0.25)), // NaN in the SIMD part
      Array.from({ length: C }, (_, i) => (i === 35 ? Number.NEGATIVE_INFINITY : 1)), // -inf in the tail
      Array.from({ length: C }, (_, i) => (i % 3 === 0 ? 65504 : i % 3 === 1 ? 2 ** -24 : -(2 ** -20))), // extremes
      Array.from({ length: C }, (_, i) => (i % 2 ? -0 : 1e-3)),
    ];
    const w = allocTensor(arena, GGMLType.F16, [rows.length, C]);
    w.u16().set(rows.flat().map(f32ToF16));
    const x = f32Tensor(arena, [1, C], Array.from({ length: C }, (_, i) => 1 + i / 64));
    const outW = f32Tensor(arena, [1, rows.length]);
    const outR = f32Tensor(arena, [1, rows.length]);
    dev.backend.matmul(outW, w, x);
    ref.matmul(outR, w, x);
    const got = Array.from(outW.f32());
    expect(got[0]).toBe(Number.POSITIVE_INFINITY);
    expect(got[1]).toBeNaN();
    expect(got[2]).toBe(Number.NEGATIVE_INFINITY);
    expect(closeness(got.slice(3), Array.from(outR.f32()).slice(3), 1e-3, 1e-6)).toBeLessThanOrEqual(1);
    arena.reset();
  });
});
