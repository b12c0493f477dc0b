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
