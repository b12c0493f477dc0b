// Weights across several heaps: placement, copying activations in, and the errors.
import { describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { InvalidArgumentError, OutOfMemoryError } from '../../src/core/errors.js';
import { type Tensor, f32Tensor } from '../../src/core/tensor.js';
import { DeviceSet } from '../../src/kernels/device-set.js';
import { bitDiffs, randomF32, ref } from '../helpers/backends.js';

describe('DeviceSet', () => {
  it('spills weights into a new heap and runs each product where its weights live', async () => {
    const set = await DeviceSet.create({ kernels: 'simd128', threads: 2, heap: { maxBytes: 8 << 20, initialBytes: 1 << 20 } }, 3);
    try {
      const R = 768;
      const C = 1024; // 3 MiB per F32 weight: two fit in the first heap, the third does not
      const ws: Tensor[] = [];
      for (let i = 0; i < 3; i++) {
        const w = await set.allocWeight(GGMLType.F32, [R, C], `blk.${i}.ffn_up.weight`);
        w.f32().set(randomF32(R * C, i + 1));
        ws.push(w);
      }
      expect(set.devices.length).toBe(2);
      expect(set.deviceOf(ws[0])).toBe(set.devices[0]);
      expect(set.deviceOf(ws[2])).toBe(set.devices[1]);

      const x = f32Tensor(set.devices[0].heap.arena('activations'), [2, C], randomF32(2 * C, 99));
      const dev = set.deviceOf(ws[2]);
      const xIn = set.toDevice(x, dev);
      expect(xIn.heap).toBe(dev.heap);
      const out = f32Tensor(dev.heap.arena('activations'), [2, R]);
      dev.backend.matmul(out, ws[2], xIn);
      const want = f32Tensor(dev.heap.arena('activations'), [2, R]);
      ref.matmul(want, ws[2], xIn);
      expect(Math.max(...out.f32().map((v, i) => Math.abs(v - want.f32()[i])))).toBeLessThan(1e-4);

      // A kernel never reads across heaps: mixing them is an error naming the tensor.
      expect(() => dev.backend.matmul(out, ws[2], x)).toThrow(InvalidArgumentError);
      expect(() => dev.backend.matmul(out, ws[2], x)).toThrow(/all tensors must live in one heap/);
      // Copies of a tensor already on the device are the tensor itself.
      expect(bitDiffs(set.toDevice(xIn, dev).f32(), xIn.f32())).toEqual([]);
      expect(set.toDevice(xIn, dev)).toBe(xIn);
    } finally {
      set.dispose();
    }
  });

  it('stops at its heap limit with an error that says so', async () => {
    const set = await DeviceSet.create({ kernels: 'ref', heap: { maxBytes: 2 << 20, initialBytes: 1 << 20 } }, 2);
    await set.allocWeight(GGMLType.F32, [1536, 256], 'a');
    await set.allocWeight(GGMLType.F32, [1536, 256], 'b');
    await expect(set.allocWeight(GGMLType.F32, [1536, 256], 'c')).rejects.toThrow(OutOfMemoryError);
    await expect(set.allocWeight(GGMLType.F32, [1536, 256], 'c')).rejects.toThrow(/no room for c in 2 heaps .*limit 2 heaps/);
    set.dispose();
  });
});
