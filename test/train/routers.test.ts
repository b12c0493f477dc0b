// The router conformance suite: every trainable router (src/train/routers.ts) through the same
// checks (shapes, weights finite and >= 0, ids unique and in range, normalised routers sum to 1,
// gradient of a loss through the weights and the auxiliary loss against finite differences,
// determinism, load counts), then each router's own behaviour, then the balancing losses
// (src/train/losses.ts): their stated value at perfect balance, larger when skewed, gradients.
import { describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { Heap } from '../../src/core/heap.js';
import { allocTensor, type Tensor } from '../../src/core/tensor.js';
import { route } from '../../src/router/route.js';
import type { BalanceSpec } from '../../src/train/config.js';
import {
  entropyLoss,
  expertCounts,
  GlobalBatchLoad,
  globalBatchBalanceLoss,
  switchLoss,
  weightedSum,
  zLoss,
} from '../../src/train/losses.js';
import { add, mul, sum } from '../../src/train/ops.js';
import {
  createRouter,
  type Router,
  SigmoidBiasRouter,
  SoftmaxAfterTopKRouter,
  SoftmaxTopKRouter,
  TopPRouter,
} from '../../src/train/routers.js';
import { Tape, type Var } from '../../src/train/tape.js';
import { ref, rng } from '../helpers/backends.js';
import { gradcheck } from '../helpers/gradcheck.js';

const heap = new Heap({ reservedBytes: 64, shared: false, maxBytes: 1 << 28, name: 'routers test' });
const arena = heap.arena('routers test');

function f32(shape: number[], data: ArrayLike<number>): Tensor {
  const t = allocTensor(arena, GGMLType.F32, shape);
  t.f32().set(data);
  return t;
}

function i32(shape: number[], data: ArrayLike<number>): Tensor {
  const t = allocTensor(arena, GGMLType.I32, shape);
  t.i32().set(data);
  return t;
}

/** A Var with a gradient over given values. */
function param(tape: Tape, shape: number[], data: ArrayLike<number>): Var {
  const value = f32(shape, data);
  const grad = f32(shape, new Float32Array(value.numel));
  return tape.param({ name: 'x', shape, value, grad });
}

/**
 * Logits whose per-token ranks are well separated (a random permutation of values 0.6 apart
 * plus noise), so a finite-difference step never changes a selection.
 */
function separatedLogits(T: number, L: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(T * L);
  for (let t = 0; t < T; t++) {
    const order = Array.from({ length: L }, (_, i) => i).sort(() => r() - 0.5);
    for (let i = 0; i < L; i++) out[t * L + order[i]] = (i - L / 2) * 0.6 + r(-0.1, 0.1);
  }
  return out;
}

interface Case {
  name: string;
  make: (balance?: BalanceSpec) => Router;
}

const cases: Case[] = [
  { name: 'softmax-topk', make: (balance) => new SoftmaxTopKRouter({ experts: 6, k: 2, balance }, false) },
  { name: 'softmax-topk-renorm', make: (balance) => new SoftmaxTopKRouter({ experts: 6, k: 2, balance }, true) },
  { name: 'softmax-after-topk', make: (balance) => new SoftmaxAfterTopKRouter({ experts: 6, k: 3, balance }) },
  {
    name: 'sigmoid-bias',
    make: (balance) => {
      const r = new SigmoidBiasRouter({ experts: 6, k: 2, balance }, 0.01);
      r.restore([0.05, -0.02, 0, 0.01, -0.04, 0.02]);
      return r;
    },
  },
  { name: 'top-p', make: (balance) => new TopPRouter({ experts: 6, k: 3, balance }, 0.5) },
  { name: 'null-experts', make: (balance) => createRouter({ kind: 'null-experts', nullExperts: 2 }, 4, 3, balance) },
  {
    name: 'moe-plus-plus',
    make: (balance) => createRouter({ kind: 'moe-plus-plus', zeroExperts: 1, copyExperts: 1, constantExperts: 1 }, 4, 2, balance),
  },
];

describe.each(cases)('router conformance: $name', ({ make }) => {
  const T = 7;

  it('shapes, ranges, unique ids, weights, normalisation and load', () => {
    const router = make();
    const L = router.nLogits;
    const K = router.maxK;
    const tape = new Tape(ref, heap);
    const logits = tape.constant(f32([T, L], separatedLogits(T, L, 1)));
    const r = router.route(tape, logits);
    expect(r.ids.shape).toEqual([T, K]);
    expect(r.ids.type).toBe(GGMLType.I32);
    expect(r.weights.shape).toEqual([T, K]);
    expect(r.load.length).toBe(L);
    const ids = r.ids.i32();
    const w = r.weights.value.f32();
    const counts = new Float64Array(L);
    for (let t = 0; t < T; t++) {
      const seen = new Set<number>();
      let s = 0;
      for (let k = 0; k < K; k++) {
        const id = ids[t * K + k];
        const wt = w[t * K + k];
        expect(Number.isFinite(wt)).toBe(true);
        expect(wt).toBeGreaterThanOrEqual(0);
        if (id < 0) {
          expect(id).toBe(-1);
          expect(wt).toBe(0);
          continue;
        }
        expect(id).toBeLessThan(L);
        expect(seen.has(id)).toBe(false);
        seen.add(id);
        counts[id]++;
        s += wt;
      }
      expect(seen.size).toBeGreaterThanOrEqual(1);
      if (router.normalized) expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      else expect(s).toBeLessThanOrEqual(1 + 1e-5);
    }
    expect(Array.from(r.load)).toEqual(Array.from(counts));
    // No balance options: no aux loss, except top-p's default entropy loss (a scalar).
    if (r.aux) expect(r.aux.value.numel).toBe(1);
    else expect(router.name).not.toBe('top-p');
    tape.reset();
  });

  it('is deterministic', () => {
    const run = () => {
      const router = make();
      const tape = new Tape(ref, heap);
      const L = router.nLogits;
      const r = router.route(tape, tape.constant(f32([T, L], separatedLogits(T, L, 2))));
      const out = { ids: Array.from(r.ids.i32()), w: Array.from(r.weights.value.f32()) };
      tape.reset();
      return out;
    };
    expect(run()).toEqual(run());
  });

  it('gradient of Σ c·w + aux losses matches finite differences', () => {
    // Every router with every balance term on (the entropy term too), so the aux path is checked.
    const router = make({ switch: 0.3, zLoss: 0.05, entropy: 0.2 });
    const L = router.nLogits;
    const K = router.maxK;
    const c = f32([T, K], Array.from({ length: T * K }, (_, i) => Math.sin(i + 1)));
    const res = gradcheck({
      backend: ref,
      heap,
      inputs: [{ name: 'logits', shape: [T, L], values: separatedLogits(T, L, 3) }],
      build: (tape, [logits]) => {
        const r = router.route(tape, logits);
        const loss = sum(tape, mul(tape, r.weights, tape.constant(c)));
        return r.aux ? add(tape, loss, r.aux) : loss;
      },
      h: 1e-3,
      samples: T * L,
    });
    expect(res.maxRelErr, res.worst).toBeLessThan(1e-2);
  });

  it('evaluation routes (training false) add no aux loss and no step load', () => {
    const router = make({ switch: 0.1 });
    const tape = new Tape(ref, heap);
    const L = router.nLogits;
    const r = router.route(tape, tape.constant(f32([T, L], separatedLogits(T, L, 4))), { training: false });
    expect(r.aux).toBeNull();
    tape.reset();
  });
});

describe('router specifics', () => {
  const T = 32;

  it('softmax-topk (renormalised or not) matches src/router/route.ts', () => {
    for (const normalize of [true, false]) {
      const E = 8;
      const K = 2;
      const data = new Float32Array(T * E);
      const r = rng(11);
      for (let i = 0; i < data.length; i++) data[i] = r(-3, 3);
      const tape = new Tape(ref, heap);
      const got = new SoftmaxTopKRouter({ experts: E, k: K }, normalize).route(tape, tape.constant(f32([T, E], data)));
      const want = route(data, T, { experts: E, used: K, gating: 'softmax', normalize, scale: 1 });
      expect(Array.from(got.ids.i32())).toEqual(Array.from(want.ids));
      const w = got.weights.value.f32();
      for (let i = 0; i < w.length; i++) expect(Math.abs(w[i] - want.weights[i])).toBeLessThan(1e-6);
      tape.reset();
    }
  });

  it('sigmoid-bias matches route.ts (sigmoid gating, selection bias, normalised)', () => {
    const E = 8;
    const K = 3;
    const data = new Float32Array(T * E);
    const r = rng(12);
    for (let i = 0; i < data.length; i++) data[i] = r(-3, 3);
    const bias = Float32Array.from({ length: E }, () => r(-0.5, 0.5));
    const router = new SigmoidBiasRouter({ experts: E, k: K });
    router.restore(Array.from(bias));
    const tape = new Tape(ref, heap);
    const got = router.route(tape, tape.constant(f32([T, E], data)));
    const want = route(data, T, { experts: E, used: K, gating: 'sigmoid', normalize: true, scale: 1, selectionBias: bias });
    expect(Array.from(got.ids.i32())).toEqual(Array.from(want.ids));
    const w = got.weights.value.f32();
    for (let i = 0; i < w.length; i++) expect(Math.abs(w[i] - want.weights[i])).toBeLessThan(1e-6);
    tape.reset();
  });

  it('sigmoid-bias: the bias changes the selection, not the weight formula', () => {
    const E = 6;
    const K = 2;
    const data = separatedLogits(T, E, 13);
    const router = new SigmoidBiasRouter({ experts: E, k: K });
    router.restore([0, 0, 0, 0, 0, 10]); // expert 5 always selected
    const tape = new Tape(ref, heap);
    const got = router.route(tape, tape.constant(f32([T, E], data)));
    const ids = got.ids.i32();
    const w = got.weights.value.f32();
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    for (let t = 0; t < T; t++) {
      const sel = [ids[t * K], ids[t * K + 1]];
      expect(sel).toContain(5);
      const s = sel.map((e) => sig(data[t * E + e]));
      for (let k = 0; k < K; k++) expect(Math.abs(w[t * K + k] - s[k] / (s[0] + s[1]))).toBeLessThan(1e-6);
    }
    tape.reset();
  });

  it('sigmoid-bias: the update rule moves the bias toward balance on a skewed input', () => {
    const E = 4;
    const K = 1;
    // Every token prefers expert 0 (logit +1 over the others, with noise).
    const r = rng(14);
    const data = Float32Array.from({ length: T * E }, (_, i) => (i % E === 0 ? 1 : 0) + r(-0.3, 0.3));
    const router = new SigmoidBiasRouter({ experts: E, k: K }, 0.02);
    const maxShare = () => {
      const tape = new Tape(ref, heap);
      const res = router.route(tape, tape.constant(f32([T, E], data)));
      router.afterStep();
      tape.reset();
      return Math.max(...res.load) / T;
    };
    const first = maxShare();
    expect(first).toBeGreaterThan(0.9);
    let last = first;
    for (let step = 0; step < 60; step++) last = maxShare();
    expect(last).toBeLessThan(0.5);
    expect(router.bias[0]).toBeLessThan(0); // the overloaded expert's bias went down
    // State round trip (checkpoints).
    const copy = new SigmoidBiasRouter({ experts: E, k: K });
    copy.restore(router.state());
    expect(Array.from(copy.bias)).toEqual(Array.from(router.bias));
  });

  it('top-p picks fewer experts for peaked logits than for flat ones', () => {
    const E = 8;
    const router = new TopPRouter({ experts: E, k: 4 }, 0.6);
    const peaked = Array.from({ length: E }, (_, e) => (e === 3 ? 6 : 0));
    const flat = Array.from({ length: E }, (_, e) => 0.01 * e);
    const tape = new Tape(ref, heap);
    const r = router.route(tape, tape.constant(f32([2, E], [...peaked, ...flat])));
    const ids = Array.from(r.ids.i32());
    expect(ids.slice(0, 4)).toEqual([3, -1, -1, -1]);
    expect(ids.slice(4).every((i) => i >= 0)).toBe(true); // flat: needs all 4 (capped at maxK)
    expect(r.aux).not.toBeNull(); // the entropy loss is on by default
    tape.reset();
  });

  it('softmax-after-topk: weights are the softmax of the selected logits', () => {
    const tape = new Tape(ref, heap);
    const r = new SoftmaxAfterTopKRouter({ experts: 4, k: 2 }).route(tape, tape.constant(f32([1, 4], [0.5, 2, -1, 1])));
    expect(Array.from(r.ids.i32())).toEqual([1, 3]);
    const w = r.weights.value.f32();
    expect(w[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 6);
    expect(w[1]).toBeCloseTo(1 / (1 + Math.exp(1)), 6);
    tape.reset();
  });

  it('createRouter builds every kind with its layout', () => {
    const kinds = ['softmax-topk', 'softmax-after-topk', 'sigmoid-bias', 'top-p', 'null-experts', 'moe-plus-plus'] as const;
    for (const kind of kinds) {
      const r = createRouter({ kind, nullExperts: 1, zeroExperts: 1, copyExperts: 1, constantExperts: 2 }, 8, 2);
      expect(r.nExperts).toBe(8);
      expect(r.nLogits).toBe(13);
      expect(r.parameterSpecs('blk.0.', 16)).toEqual([{ name: 'blk.0.ffn_const_exps.weight', shape: [2, 16], init: { kind: 'normal', std: 0.02 } }]);
    }
    expect(() => createRouter({ kind: 'softmax-topk' }, 4, 5)).toThrow(/k must be in \[1, 4\]/);
  });
});

describe('balancing losses', () => {
  const scalar = (v: Var) => v.value.f32()[0];

  it('switch loss: 1 at perfect balance, up to E when skewed (softmax and sigmoid scores, null groups)', () => {
    const E = 4;
    const T = 8;
    const tape = new Tape(ref, heap);
    const balancedIds = i32([T, 1], Array.from({ length: T }, (_, t) => t % E));
    const zeros = tape.constant(f32([T, E], new Float32Array(T * E)));
    expect(scalar(switchLoss(tape, zeros, balancedIds))).toBeCloseTo(1, 6);
    expect(scalar(switchLoss(tape, zeros, balancedIds, { scores: 'sigmoid' }))).toBeCloseTo(1, 6);
    // Two null experts (ids 2, 3) share their load as a group: null 2 takes it all and is the
    // likelier one, which is balanced for AdaMoE (1) but not for the plain loss (> 1).
    const nullIds = i32([T, 1], [0, 1, 0, 1, 2, 2, 2, 2]);
    const favour2 = tape.constant(f32([T, E], Array.from({ length: T * E }, (_, i) => (i % E === 2 ? 1 : 0))));
    expect(scalar(switchLoss(tape, favour2, nullIds, { nullExperts: 2 }))).toBeCloseTo(1, 6);
    expect(scalar(switchLoss(tape, favour2, nullIds))).toBeGreaterThan(1.1);
    // Everything to expert 0 with a confident router: close to E.
    const skewIds = i32([T, 1], new Int32Array(T));
    const peaked = tape.constant(f32([T, E], Array.from({ length: T * E }, (_, i) => (i % E === 0 ? 12 : 0))));
    const skew = scalar(switchLoss(tape, peaked, skewIds));
    expect(skew).toBeGreaterThan(3.99);
    expect(skew).toBeLessThanOrEqual(4 + 1e-6);
    tape.reset();
  });

  it('global-batch balance counts f over every micro-batch of the step', () => {
    const E = 2;
    const T = 4;
    const tape = new Tape(ref, heap);
    const global = new GlobalBatchLoad(E);
    // Micro-batch 1 routes everything to expert 0, micro-batch 2 everything to expert 1.
    const l1 = tape.constant(f32([T, E], new Float32Array(T * E)));
    globalBatchBalanceLoss(tape, l1, i32([T, 1], [0, 0, 0, 0]), global);
    const p2 = Math.log(4); // p = (0.2, 0.8)
    const l2 = tape.constant(f32([T, E], Array.from({ length: T * E }, (_, i) => (i % E === 1 ? p2 : 0))));
    const ids2 = i32([T, 1], [1, 1, 1, 1]);
    const local = scalar(switchLoss(tape, l2, ids2)); // f = (0, 1): 2 · 0.8
    const glob = scalar(globalBatchBalanceLoss(tape, l2, ids2, global)); // f = (0.5, 0.5): 2 · 0.5
    expect(local).toBeCloseTo(1.6, 5);
    expect(glob).toBeCloseTo(1, 5);
    global.reset();
    expect(Array.from(global.counts)).toEqual([0, 0]);
    tape.reset();
  });

  it('z-loss is (ln E)² for zero logits; entropy is ln E for uniform and ~0 for peaked routing', () => {
    const E = 5;
    const tape = new Tape(ref, heap);
    const zeros = tape.constant(f32([3, E], new Float32Array(3 * E)));
    expect(scalar(zLoss(tape, zeros))).toBeCloseTo(Math.log(E) ** 2, 5);
    expect(scalar(entropyLoss(tape, zeros))).toBeCloseTo(Math.log(E), 5);
    const peaked = tape.constant(f32([1, E], [30, 0, 0, 0, 0]));
    expect(scalar(entropyLoss(tape, peaked))).toBeLessThan(1e-6);
    tape.reset();
  });

  it('gradients of every loss match finite differences', () => {
    const T = 6;
    const E = 5;
    const ids = i32([T, 2], [0, 1, 2, 3, 4, 0, 1, 2, 0, 3, 2, 4]);
    const counts = expertCounts(ids, E);
    const global = new GlobalBatchLoad(E);
    global.counts.set([3, 1, 0, 5, 2]);
    for (const [name, fn] of [
      ['switch/softmax', (t: Tape, l: Var) => switchLoss(t, l, ids)],
      ['switch/sigmoid', (t: Tape, l: Var) => switchLoss(t, l, ids, { scores: 'sigmoid' })],
      ['switch/null', (t: Tape, l: Var) => switchLoss(t, l, ids, { nullExperts: 2 })],
      ['switch/global counts', (t: Tape, l: Var) => switchLoss(t, l, ids, { counts: global.counts })],
      ['z-loss', zLoss],
      ['entropy', entropyLoss],
      ['weighted sum', (t: Tape, l: Var) => weightedSum(t, [[zLoss(t, l), 0.5], [entropyLoss(t, l), -2], [switchLoss(t, l, ids), 0]]) as Var],
    ] as const) {
      const res = gradcheck({
        backend: ref,
        heap,
        inputs: [{ name: 'logits', shape: [T, E], scale: 2 }],
        build: (tape, [l]) => fn(tape, l),
        h: 1e-3,
        samples: T * E,
        seed: 5,
      });
      expect(res.maxRelErr, `${name}: ${res.worst}`).toBeLessThan(1e-2);
    }
    expect(counts.reduce((a, b) => a + b, 0)).toBe(T * 2);
  });

  it('routers put their balance terms in aux, and global-batch counts reset after a step', () => {
    const E = 4;
    const T = 8;
    const router = new SoftmaxTopKRouter({ experts: E, k: 1, balance: { switch: 0.5, globalBatch: true } });
    const tape = new Tape(ref, heap);
    const logits = param(tape, [T, E], new Float32Array(T * E));
    const r = router.route(tape, logits);
    // Zero logits: uniform P, all tokens to expert 0 (ties: lowest id) -> f = (1, 0, 0, 0), L = 1.
    expect(scalar(r.aux as Var)).toBeCloseTo(0.5, 6);
    expect(router.stepLoad[0]).toBe(T);
    router.afterStep();
    expect(router.stepLoad[0]).toBe(0);
    tape.reset();
  });
});
