/**
 * AdamW (src/train/optim.ts) against a float64 reimplementation of Loshchilov & Hutter's
 * Algorithm 2 on every backend, with a no-decay group; gradient clipping; the warm-up + cosine
 * schedule at known points.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Heap } from '../../src/core/heap.js';
import type { KernelBackend } from '../../src/kernels/backend.js';
import { AdamW, clipGradNorm, lrSchedule } from '../../src/train/optim.js';
import { ParameterStore } from '../../src/train/params.js';
import { Rng } from '../../src/train/rng.js';
import { device, disposeDevices, randomF32, ref, wasmBuilds } from '../helpers/backends.js';

afterAll(disposeDevices);

const specs = [
  { name: 'blk.0.attn_q.weight', shape: [4, 6], init: { kind: 'normal', std: 0.3 } },
  { name: 'blk.0.attn_norm.weight', shape: [6], init: { kind: 'ones' } },
  { name: 'output.weight', shape: [5, 6], init: { kind: 'normal', std: 0.3 } },
] as const;

async function backends(): Promise<[string, KernelBackend, Heap][]> {
  const out: [string, KernelBackend, Heap][] = [['ref', ref, new Heap({ name: 'optim', reservedBytes: 64, shared: false })]];
  for (const b of wasmBuilds()) {
    const d = await device(b, 2);
    out.push([b, d.backend, d.heap]);
  }
  return out;
}

describe('AdamW', () => {
  it('matches a float64 AdamW over 3 steps, sparing the no-decay group', async () => {
    for (const [name, backend, heap] of await backends()) {
      const store = new ParameterStore(heap, specs, new Rng(5));
      const opt = new AdamW(backend, store, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decay: (p) => p.shape.length >= 2 });
      const n = store.count;
      const decays = store.list.flatMap((p) => new Array<boolean>(p.value.numel).fill(p.shape.length >= 2));
      const theta = Float64Array.from(store.values.f32());
      const m = new Float64Array(n);
      const v = new Float64Array(n);
      const lrs = [1e-2, 3e-3, 5e-2];
      for (let s = 1; s <= 3; s++) {
        const g = randomF32(n, 100 + s, 2);
        store.grads.f32().set(g);
        opt.step(lrs[s - 1]);
        const lr = lrs[s - 1];
        for (let i = 0; i < n; i++) {
          m[i] = 0.9 * m[i] + 0.1 * g[i];
          v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
          const mh = m[i] / (1 - 0.9 ** s);
          const vh = v[i] / (1 - 0.95 ** s);
          theta[i] -= lr * (mh / (Math.sqrt(vh) + 1e-8) + (decays[i] ? 0.1 : 0) * theta[i]);
        }
      }
      expect(opt.steps).toBe(3);
      const got = store.values.f32();
      for (let i = 0; i < n; i++) expect(Math.abs(got[i] - theta[i]), `${name} [${i}]`).toBeLessThan(1e-6 + 1e-5 * Math.abs(theta[i]));
      const mm = store.m.f32();
      for (let i = 0; i < n; i++) expect(Math.abs(mm[i] - m[i]), `${name} m[${i}]`).toBeLessThan(1e-6);
    }
  });

  it('checks its settings', () => {
    const store = new ParameterStore(new Heap({ reservedBytes: 64, shared: false }), specs, new Rng(1));
    expect(() => new AdamW(ref, store, { beta1: 1 })).toThrow(/beta1/);
    expect(() => new AdamW(ref, store).step(Number.NaN)).toThrow(/learning rate/);
  });
});

describe('clipGradNorm', () => {
  it('returns the norm before clipping and scales to maxNorm only when above it', () => {
    const store = new ParameterStore(new Heap({ reservedBytes: 64, shared: false }), specs, new Rng(1));
    const g = store.grads.f32();
    g.fill(0);
    g[0] = 3;
    g[g.length - 1] = 4;
    expect(clipGradNorm(ref, store, 10)).toBeCloseTo(5, 6);
    expect(g[0]).toBe(3);
    expect(clipGradNorm(ref, store, 1)).toBeCloseTo(5, 6);
    expect(g[0]).toBeCloseTo(0.6, 6);
    expect(g[g.length - 1]).toBeCloseTo(0.8, 6);
    expect(Math.sqrt(ref.sumSquares(store.grads))).toBeCloseTo(1, 6);
  });
});

describe('lrSchedule', () => {
  it('warms up linearly, then follows a cosine to peak · minRatio', () => {
    const lr = lrSchedule({ peak: 1e-3, warmupSteps: 10, totalSteps: 110, minRatio: 0.1 });
    expect(lr(0)).toBeCloseTo(1e-4, 12);
    expect(lr(4)).toBeCloseTo(5e-4, 12);
    expect(lr(9)).toBeCloseTo(1e-3, 12);
    expect(lr(10)).toBeCloseTo(1e-3, 12);
    // Halfway through the 99 decay steps: the cosine is at 0, lr = min + (peak - min) / 2.
    expect(lr(10 + 49.5)).toBeCloseTo(1e-4 + 0.45e-3, 12);
    expect(lr(109)).toBeCloseTo(1e-4, 12);
    expect(lr(500)).toBeCloseTo(1e-4, 12);
    const flat = lrSchedule({ peak: 2, warmupSteps: 0, totalSteps: 1 });
    expect(flat(0)).toBe(2);
    expect(() => lrSchedule({ peak: 1, warmupSteps: -1, totalSteps: 10 })).toThrow(/warmupSteps/);
  });
});
