/**
 * Checkpoints resume exactly (src/train/checkpoint.ts): a toy linear regression trained on the
 * tape for 20 AdamW steps straight, and for 10 steps, saved, loaded into a fresh store, RNG and
 * optimizer, then 10 more, ends with bit-identical parameters. Loading a mismatched checkpoint
 * fails naming the tensor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Heap } from '../../src/core/heap.js';
import { f32Tensor, i32Tensor } from '../../src/core/tensor.js';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import * as op from '../../src/train/ops.js';
import { AdamW, clipGradNorm, lrSchedule } from '../../src/train/optim.js';
import { type ParameterSpec, ParameterStore } from '../../src/train/params.js';
import { Rng } from '../../src/train/rng.js';
import { Tape } from '../../src/train/tape.js';
import { randomF32, ref } from '../helpers/backends.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const N = 32; // examples
const C = 5; // features
const B = 8; // batch
const heap = new Heap({ name: 'ckpt', reservedBytes: 64, shared: false });
const data = heap.arena('data');
const X = f32Tensor(data, [N, C], randomF32(N * C, 1));
const trueW = randomF32(C, 2);
const Y = f32Tensor(
  data,
  [N, 1],
  Array.from({ length: N }, (_, n) => trueW.reduce((s, w, c) => s + w * X.f32()[n * C + c], 0.3)),
);
const specs: ParameterSpec[] = [
  { name: 'w', shape: [1, C], init: { kind: 'normal', std: 0.1 } },
  { name: 'b', shape: [1], init: { kind: 'zeros' } },
];

interface Run {
  rng: Rng;
  store: ParameterStore;
  opt: AdamW;
  tape: Tape;
}

function fresh(seed: number): Run {
  const rng = new Rng(seed);
  const store = new ParameterStore(heap, specs, rng);
  return { rng, store, opt: new AdamW(ref, store, { weightDecay: 0.01, decay: (p) => p.name === 'w' }), tape: new Tape(ref, heap) };
}

const schedule = lrSchedule({ peak: 0.05, warmupSteps: 3, totalSteps: 20 });

/** Steps [from, to): a random minibatch (drawn from the run's RNG), MSE loss, clip, AdamW. */
function train(r: Run, from: number, to: number): void {
  const ids = i32Tensor(data, [B]);
  for (let s = from; s < to; s++) {
    for (let i = 0; i < B; i++) ids.i32()[i] = r.rng.int(N);
    const t = r.tape;
    r.store.zeroGrads();
    const x = op.embedding(t, t.constant(X), ids); // [B, C] (a gather: X is constant)
    const y = op.embedding(t, t.constant(Y), ids); // [B, 1]
    const pred = op.add(t, op.linear(t, x, t.param(r.store.get('w'))), t.param(r.store.get('b'))); // [B, 1]
    const d = op.add(t, pred, op.scale(t, y, -1));
    t.backward(op.mean(t, op.mul(t, d, d)));
    t.reset();
    clipGradNorm(ref, r.store, 1);
    r.opt.step(schedule(s));
  }
}

describe('checkpoints', () => {
  it('20 steps straight = 10 steps, save, load into a fresh run, 10 steps (bit-identical)', async () => {
    const straight = fresh(11);
    train(straight, 0, 20);

    const first = fresh(11);
    train(first, 0, 10);
    const file = join(dir, 'toy.gguf');
    await saveCheckpoint(file, first.store, first.opt, { rng: first.rng.state(), state: { cursor: 10, note: 'toy' } });

    const second = fresh(999); // different init and RNG: everything must come from the file
    const loaded = await loadCheckpoint(file, second.store, second.opt);
    second.rng.restore(loaded.rng);
    expect(loaded.step).toBe(10);
    expect(second.opt.steps).toBe(10);
    expect(loaded.state).toEqual({ cursor: 10, note: 'toy' });
    train(second, 10, 20);

    const a = new Uint32Array(straight.store.values.f32().slice().buffer);
    const b = new Uint32Array(second.store.values.f32().slice().buffer);
    expect([...b]).toEqual([...a]);
    expect([...second.store.m.f32()]).toEqual([...straight.store.m.f32()]);
    expect([...second.store.v.f32()]).toEqual([...straight.store.v.f32()]);
    // And it learned something: w is near the true weights.
    const w = straight.store.get('w').value.f32();
    const before = fresh(11).store.get('w').value.f32();
    const dist = (u: ArrayLike<number>) => Math.hypot(...Array.from(trueW, (t, i) => t - u[i]));
    expect(dist(w)).toBeLessThan(dist(before));
  });

  it('refuses a checkpoint of another model, naming the tensor', async () => {
    const r = fresh(1);
    const file = join(dir, 'other.gguf');
    await saveCheckpoint(file, r.store, r.opt, { rng: r.rng.state(), state: null });
    const wide = new ParameterStore(heap, [{ name: 'w', shape: [1, C + 1], init: { kind: 'zeros' } }, specs[1]], new Rng(1));
    await expect(loadCheckpoint(file, wide, new AdamW(ref, wide))).rejects.toThrow(/tensor 'w' has shape \[1, 5\], the model expects \[1, 6\]/);
    const more = new ParameterStore(heap, [...specs, { name: 'extra', shape: [2], init: { kind: 'zeros' } }], new Rng(1));
    await expect(loadCheckpoint(file, more, new AdamW(ref, more))).rejects.toBeInstanceOf(CheckpointError);
    await expect(loadCheckpoint(file, more, new AdamW(ref, more))).rejects.toThrow(/no tensor 'extra'/);
    const fewer = new ParameterStore(heap, [specs[0]], new Rng(1));
    await expect(loadCheckpoint(file, fewer, new AdamW(ref, fewer))).rejects.toThrow(/tensor 'b' that the model does not have/);
    // Nothing was written into the store by a failed load.
    expect([...wide.values.f32()].every((x) => x === 0)).toBe(true);
  });
});
