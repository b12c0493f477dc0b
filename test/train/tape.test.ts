/**
 * The tape's bookkeeping (src/train/tape.ts): gradients accumulate across backward calls into
 * parameters, unused branches cost nothing, views share gradients, the step arena is freed by
 * reset(); the parameter store's layout and initialisation; the seeded RNG's determinism and
 * state round trip.
 */
import { describe, expect, it } from 'vitest';
import { Heap } from '../../src/core/heap.js';
import { f32Tensor } from '../../src/core/tensor.js';
import * as op from '../../src/train/ops.js';
import { ParameterStore } from '../../src/train/params.js';
import { Rng } from '../../src/train/rng.js';
import { Tape } from '../../src/train/tape.js';
import { ref } from '../helpers/backends.js';

const heap = new Heap({ name: 'tape', reservedBytes: 64, shared: false });

function store(seed = 1) {
  return new ParameterStore(
    heap,
    [
      { name: 'w', shape: [2, 3], init: { kind: 'normal', std: 0.5 } },
      { name: 'n', shape: [3], init: { kind: 'ones' } },
      { name: 'b', shape: [2], init: { kind: 'zeros' } },
    ],
    new Rng(seed),
  );
}

describe('Tape', () => {
  it('d(sum(w ⊙ w)) = 2w, accumulated over two backward passes until zeroGrads', () => {
    const s = store();
    const t = new Tape(ref, heap);
    const w = s.get('w');
    for (let pass = 0; pass < 2; pass++) {
      const wv = t.param(w);
      t.backward(op.sum(t, op.mul(t, wv, wv)), 0.5);
      t.reset();
    }
    const v = w.value.f32();
    const g = w.grad.f32();
    for (let i = 0; i < v.length; i++) expect(g[i]).toBeCloseTo(2 * v[i], 6); // 2 passes × 0.5 × 2w
    s.zeroGrads();
    expect([...s.grads.f32()].every((x) => x === 0)).toBe(true);
  });

  it('skips branches that do not reach the loss and gives constants no gradient', () => {
    const s = store();
    const t = new Tape(ref, heap);
    const x = t.constant(f32Tensor(heap.arena('x'), [4, 3], new Float32Array(12).fill(1)));
    const y = op.linear(t, x, t.param(s.get('w'))); // [4, 2]
    let ran = false;
    const unused = t.record(t.alloc([4, 2]), [y], () => {
      ran = true;
    });
    expect(unused.requiresGrad).toBe(true);
    t.backward(op.sum(t, y));
    expect(ran).toBe(false);
    expect(x.requiresGrad).toBe(false);
    expect(t.hasGrad(x)).toBe(false);
    expect([...s.get('w').grad.f32()]).toEqual([4, 4, 4, 4, 4, 4]); // Σ_t x[t] = 4 per weight
    t.reset();
  });

  it('a reshaped Var shares its gradient with the original', () => {
    const s = store();
    const t = new Tape(ref, heap);
    const w = t.param(s.get('w'));
    const flat = op.reshape(t, w, [6]);
    t.backward(op.add(t, op.sum(t, flat), op.sum(t, w)));
    expect([...s.get('w').grad.f32()]).toEqual([2, 2, 2, 2, 2, 2]);
    t.reset();
  });

  it('rejects a non-scalar loss, a constant loss and a second backward; reset frees the arena', () => {
    const s = store();
    const t = new Tape(ref, heap);
    const w = t.param(s.get('w'));
    const y = op.scale(t, w, 2);
    expect(() => t.backward(y)).toThrow(/one element/);
    expect(() => t.backward(t.constant(t.zeros([1])))).toThrow(/does not depend/);
    const l = op.sum(t, y);
    t.backward(l);
    expect(() => t.backward(l)).toThrow(/already replayed/);
    expect(t.usedBytes).toBeGreaterThan(0);
    t.reset();
    expect(t.usedBytes).toBe(0);
  });
});

describe('ParameterStore', () => {
  it('lays parameters out contiguously in spec order, initialised deterministically', () => {
    const a = store(3);
    const b = store(3);
    expect(a.count).toBe(11);
    expect(a.list.map((p) => p.name)).toEqual(['w', 'n', 'b']);
    expect(a.get('n').value.offset).toBe(a.values.offset + 6 * 4);
    expect([...a.values.f32()]).toEqual([...b.values.f32()]);
    expect([...a.get('n').value.f32()]).toEqual([1, 1, 1]);
    expect([...a.get('b').value.f32()]).toEqual([0, 0]);
    expect([...a.m.f32(), ...a.v.f32(), ...a.grads.f32()].every((x) => x === 0)).toBe(true);
    expect(() => a.get('nope')).toThrow(/no parameter named 'nope'/);
    expect(() => new ParameterStore(heap, [{ name: 'x', shape: [1], init: { kind: 'ones' } }, { name: 'x', shape: [1], init: { kind: 'ones' } }], new Rng(1))).toThrow(/twice/);
  });
});

describe('Rng', () => {
  it('is deterministic per seed, resumes from its state, and has sane moments', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(c.next()).not.toBe(xs[0]);
    const saved = a.state();
    const r = Rng.from(JSON.parse(JSON.stringify(saved)));
    const more = Array.from({ length: 5 }, () => a.normal());
    expect(Array.from({ length: 5 }, () => r.normal())).toEqual(more);
    b.restore(saved);
    expect(b.int(1000)).toBe(Rng.from(saved).int(1000));
    let m = 0;
    let m2 = 0;
    const n = 20000;
    const g = new Rng(7);
    for (let i = 0; i < n; i++) {
      const z = g.normal();
      m += z / n;
      m2 += (z * z) / n;
    }
    expect(Math.abs(m)).toBeLessThan(0.05);
    expect(Math.abs(m2 - 1)).toBeLessThan(0.05);
    for (let i = 0; i < 1000; i++) {
      const k = g.int(7);
      expect(k >= 0 && k < 7 && Number.isInteger(k)).toBe(true);
    }
    expect(() => Rng.from([1, 2, 3])).toThrow(/four uint32/);
  });
});
