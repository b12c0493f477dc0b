// Models beyond one wasm32 memory: weights spread over several heaps (forced here with a 3 MiB
// limit per heap) must give the same logits, bit for bit, as one heap.
import { describe, expect, it } from 'vitest';
import { Model } from '../../src/models/model.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

describe.skipIf(skipGolden('multi-heap model'))('a model spread over several wasm memories', () => {
  it('mixtral Q4_K_M on 3 MiB heaps equals one heap, token by token', async () => {
    const file = goldenPath('mixtral/mixtral-Q4_K_M.gguf');
    const one = await Model.load(file, { contextLength: 64 });
    const many = await Model.load(file, { contextLength: 64, maxHeapBytes: 3 * 2 ** 20 });
    try {
      expect(one.devices.devices.length).toBe(1);
      expect(many.devices.devices.length).toBeGreaterThan(1);
      const tokens = [1, 450, 4996, 17354, 1701, 432, 17204, 975];
      tokens.forEach((t, pos) => {
        expect(many.eval([t], pos)).toEqual(one.eval([t], pos));
      });
    } finally {
      await one.close();
      await many.close();
    }
  });
});
