// The trainable MoE layer (src/train/moe.ts): its forward against a float64 composition of the
// same equations (routed, shared, zero / copy / constant and null experts), the gradient of
// every parameter and of x against finite differences on a tiny config (T=5, D=8, F=6, E=4,
// K=2, ref backend), the wasm builds against the reference, and null experts saving compute.
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { Heap } from '../../src/core/heap.js';
import { allocTensor } from '../../src/core/tensor.js';
import type { KernelBackend } from '../../src/kernels/backend.js';
import { route } from '../../src/router/route.js';
import type { BalanceSpec, RouterSpec } from '../../src/train/config.js';
import { type MoELayerParams, moeLayer } from '../../src/train/moe.js';
import { add, mul, sum } from '../../src/train/ops.js';
import { createRouter, type Router } from '../../src/train/routers.js';
import { Tape, type Var } from '../../src/train/tape.js';
import { closeness, device, disposeDevices, ref, rng, wasmBuilds } from '../helpers/backends.js';
import { gradcheck } from '../helpers/gradcheck.js';

afterAll(disposeDevices);

const T = 5;
const D = 8;
const F = 6;
const E = 4;
const K = 2;
const Fs = 5;

const heap = new Heap({ reservedBytes: 64, shared: false, maxBytes: 1 << 28, name: 'moe test' });

interface Input {
  name: string;
  shape: number[];
  scale: number;
}

/** The layer's inputs in a fixed order: x, router, gate, up, down, [shared gate, up, down], [constant]. */
function inputs(router: Router, shared: boolean): Input[] {
  const list: Input[] = [
    { name: 'x', shape: [T, D], scale: 1 },
    { name: 'ffn_gate_inp', shape: [router.nLogits, D], scale: 1 },
    { name: 'ffn_gate_exps', shape: [E, F, D], scale: 0.5 },
    { name: 'ffn_up_exps', shape: [E, F, D], scale: 0.5 },
    { name: 'ffn_down_exps', shape: [E, D, F], scale: 0.5 },
  ];
  if (shared) {
    list.push(
      { name: 'ffn_gate_shexp', shape: [Fs, D], scale: 0.5 },
      { name: 'ffn_up_shexp', shape: [Fs, D], scale: 0.5 },
      { name: 'ffn_down_shexp', shape: [D, Fs], scale: 0.5 },
    );
  }
  if (router.layout.constant > 0) list.push({ name: 'ffn_const_exps', shape: [router.layout.constant, D], scale: 0.5 });
  return list;
}

function layerParams(router: Router, shared: boolean, vars: Var[]): MoELayerParams {
  const [, r, gate, up, down, ...rest] = vars;
  const p: MoELayerParams = { router: r, gate, up, down };
  if (shared) [p.sharedGate, p.sharedUp, p.sharedDown] = rest.splice(0, 3);
  if (router.layout.constant > 0) p.extra = { 'ffn_const_exps.weight': rest[0] };
  return p;
}

function values(list: Input[], seed: number): Float32Array[] {
  const r = rng(seed);
  return list.map((i) => Float32Array.from({ length: i.shape.reduce((a, b) => a * b, 1) }, () => r(-i.scale, i.scale)));
}

interface Config {
  name: string;
  spec: RouterSpec;
  k?: number;
  shared: boolean;
  balance?: BalanceSpec;
}

const configs: Config[] = [
  { name: 'softmax-topk-renorm + shared expert + switch/z losses', spec: { kind: 'softmax-topk', normalize: true }, shared: true, balance: { switch: 0.1, zLoss: 0.01 } },
  { name: 'softmax-topk (not renormalised)', spec: { kind: 'softmax-topk', normalize: false }, shared: false },
  { name: 'softmax-after-topk', spec: { kind: 'softmax-after-topk' }, shared: false },
  { name: 'sigmoid-bias', spec: { kind: 'sigmoid-bias' }, shared: true },
  { name: 'top-p', spec: { kind: 'top-p', p: 0.5 }, k: 3, shared: false },
  { name: 'null-experts', spec: { kind: 'null-experts', nullExperts: 2 }, k: 3, shared: false, balance: { switch: 0.1 } },
  {
    name: 'moe-plus-plus (zero, copy, 2 constant experts)',
    spec: { kind: 'moe-plus-plus', zeroExperts: 1, copyExperts: 1, constantExperts: 2 },
    k: 3,
    shared: false,
  },
];

/** Runs the layer with given values on a backend; returns out, aux and every gradient of Σ c·out + aux. */
function run(be: KernelBackend, h: Heap, c: Config, vals: Float32Array[], proj: Float32Array) {
  const router = createRouter(c.spec, E, c.k ?? K, c.balance);
  const list = inputs(router, c.shared);
  const arena = h.arena('moe test run');
  const tensors = list.map((i, n) => {
    const value = allocTensor(arena, GGMLType.F32, i.shape);
    value.f32().set(vals[n]);
    const grad = allocTensor(arena, GGMLType.F32, i.shape);
    grad.f32().fill(0);
    return { value, grad, name: i.name, shape: i.shape };
  });
  const tape = new Tape(be, h);
  const vars = tensors.map((t) => tape.param(t));
  const r = moeLayer(tape, vars[0], layerParams(router, c.shared, vars), router);
  const pt = allocTensor(arena, GGMLType.F32, [T, D]);
  pt.f32().set(proj);
  let loss = sum(tape, mul(tape, r.out, tape.constant(pt)));
  if (r.aux) loss = add(tape, loss, r.aux);
  tape.backward(loss);
  const result = {
    out: Float32Array.from(r.out.value.f32()),
    ids: Array.from(r.ids.i32()),
    weights: Float32Array.from(r.weights.value.f32()),
    aux: r.aux ? r.aux.value.f32()[0] : null,
    grads: tensors.map((t) => Float32Array.from(t.grad.f32())),
    names: list.map((i) => i.name),
    rows: r.expertRows,
    router,
  };
  tape.reset();
  arena.reset();
  return result;
}

const silu = (g: number) => g / (1 + Math.exp(-g));

/** out[t] = Σ_k w · expert(x[t]) + shared(x[t]) in float64, from the ids and weights the layer used. */
function naive(c: Config, router: Router, vals: Float32Array[], ids: number[], w: Float32Array): Float64Array {
  const [x, , gate, up, down, ...rest] = vals;
  const Kc = router.maxK;
  const out = new Float64Array(T * D);
  const ffn = (t: number, g: Float32Array, u: Float32Array, d: Float32Array, Fh: number, off: number, offD: number, scale: number) => {
    const h = new Float64Array(Fh);
    for (let f = 0; f < Fh; f++) {
      let a = 0;
      let b = 0;
      for (let i = 0; i < D; i++) {
        a += g[off + f * D + i] * x[t * D + i];
        b += u[off + f * D + i] * x[t * D + i];
      }
      h[f] = silu(a) * b;
    }
    for (let i = 0; i < D; i++) {
      let y = 0;
      for (let f = 0; f < Fh; f++) y += d[offD + i * Fh + f] * h[f];
      out[t * D + i] += scale * y;
    }
  };
  const { zero, copy } = router.layout;
  const constants = router.layout.constant > 0 ? rest[rest.length - 1] : null;
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < Kc; k++) {
      const id = ids[t * Kc + k];
      const wt = w[t * Kc + k];
      if (id < 0) continue;
      if (id < E) ffn(t, gate, up, down, F, id * F * D, id * D * F, wt);
      else if (id >= E + zero && id < E + zero + copy) for (let i = 0; i < D; i++) out[t * D + i] += wt * x[t * D + i];
      else if (constants && id >= E + zero + copy && id < E + zero + copy + router.layout.constant) {
        const j = id - E - zero - copy;
        for (let i = 0; i < D; i++) out[t * D + i] += wt * constants[j * D + i];
      }
    }
    if (c.shared) ffn(t, rest[0], rest[1], rest[2], Fs, 0, 0, 1);
  }
  return out;
}

describe.each(configs)('moeLayer: $name', (c) => {
  const router0 = createRouter(c.spec, E, c.k ?? K, c.balance);
  const list = inputs(router0, c.shared);

  it('forward equals a float64 composition of the experts', () => {
    const vals = values(list, 21);
    const res = run(ref, heap, c, vals, new Float32Array(T * D));
    const want = naive(c, res.router, vals, res.ids, res.weights);
    expect(closeness(res.out, want, 1e-5, 1e-4)).toBeLessThanOrEqual(1);
  });

  it('gradient of every parameter and of x matches finite differences', () => {
    const res = gradcheck({
      backend: ref,
      heap,
      inputs: list.map((i, n) => ({ name: i.name, shape: i.shape, values: values(list, 22)[n] })),
      build: (tape, vars) => {
        const router = createRouter(c.spec, E, c.k ?? K, c.balance);
        const r = moeLayer(tape, vars[0], layerParams(router, c.shared, vars), router);
        if (!r.aux) return r.out;
        return add(tape, sum(tape, r.out), r.aux);
      },
      h: 3e-3,
      samples: 48,
      seed: 9,
    });
    expect(res.maxRelErr, res.worst).toBeLessThan(1e-2);
  });
});

describe('moeLayer specifics', () => {
  it('null experts reduce the expert compute', () => {
    const c = configs.find((x) => x.spec.kind === 'null-experts') as Config;
    const router = createRouter(c.spec, E, 3, c.balance);
    const list = inputs(router, false);
    const vals = values(list, 23);
    // Bias the router toward the null experts (the last two logits).
    const wr = vals[1];
    for (let i = E * D; i < wr.length; i++) wr[i] *= 0.2;
    for (let e = E; e < E + 2; e++) for (let i = 0; i < D; i++) wr[e * D + i] = 0;
    const res = run(ref, heap, c, vals, new Float32Array(T * D));
    const nullSlots = res.ids.filter((id) => id >= E).length;
    expect(nullSlots).toBeGreaterThan(0);
    expect(res.rows).toBe(T * 3 - nullSlots);
    expect(res.rows).toBeLessThan(T * 3);
  });

  it('softmax-topk-renorm equals the inference path (route.ts + expertGroup), as exported to qwen3moe', () => {
    const c = configs[1];
    const spec: RouterSpec = { kind: 'softmax-topk', normalize: true };
    const router = createRouter(spec, E, K);
    const list = inputs(router, false);
    const vals = values(list, 25);
    const res = run(ref, heap, { ...c, spec }, vals, new Float32Array(T * D));
    const arena = heap.arena('inference path');
    const t = (shape: number[], data?: ArrayLike<number>) => {
      const x = allocTensor(arena, GGMLType.F32, shape);
      if (data) x.f32().set(data);
      return x;
    };
    const x = t([T, D], vals[0]);
    const logits = t([T, E]);
    ref.matmul(logits, t([E, D], vals[1]), x);
    const want = route(logits.f32(), T, { experts: E, used: K, gating: 'softmax', normalize: true, scale: 1 });
    expect(res.ids).toEqual(Array.from(want.ids));
    const gate = t([E, F, D], vals[2]);
    const up = t([E, F, D], vals[3]);
    const down = t([E, D, F], vals[4]);
    const out = t([T, D]);
    const ids = allocTensor(arena, GGMLType.I32, [T, K]);
    ids.i32().set(want.ids);
    const experts = Array.from({ length: E }, (_, e) => ({
      gate: gate.slice(e, 1).reshape([F, D]),
      up: up.slice(e, 1).reshape([F, D]),
      down: down.slice(e, 1).reshape([D, F]),
    }));
    ref.expertGroup({ out, x, experts, ids, weights: t([T, K], want.weights), activation: { kind: 'silu' } });
    expect(closeness(res.out, out.f32(), 1e-5, 1e-4)).toBeLessThanOrEqual(1);
    arena.reset();
  });

  it('rejects parameters of the wrong shape, naming them', () => {
    const router = createRouter({ kind: 'softmax-topk' }, E, K);
    const tape = new Tape(ref, heap);
    const t = (shape: number[]): Var => tape.constant(allocTensor(heap.arena('moe shapes'), GGMLType.F32, shape));
    const p: MoELayerParams = { router: t([E, D]), gate: t([E, F, D]), up: t([E, F, D]), down: t([E, F, D]) };
    expect(() => moeLayer(tape, t([T, D]), p, router)).toThrow(/ffn_down_exps must be \[4, 8, 6\]/);
    heap.arena('moe shapes').reset();
  });
});

describe.each(wasmBuilds())('moeLayer on %s agrees with the reference', (build) => {
  it.each(configs)('$name', async (c) => {
    const d = await device(build, 2);
    const router = createRouter(c.spec, E, c.k ?? K, c.balance);
    const vals = values(inputs(router, c.shared), 24);
    const proj = Float32Array.from({ length: T * D }, (_, i) => Math.cos(i));
    const want = run(ref, heap, c, vals, proj);
    const got = run(d.backend, d.heap, c, vals, proj);
    expect(got.ids).toEqual(want.ids);
    expect(closeness(got.out, want.out, 1e-5, 1e-4)).toBeLessThanOrEqual(1);
    if (want.aux !== null) expect(Math.abs((got.aux as number) - want.aux)).toBeLessThan(1e-5);
    for (let i = 0; i < want.grads.length; i++) {
      expect(closeness(got.grads[i], want.grads[i], 1e-5, 1e-3), want.names[i]).toBeLessThanOrEqual(1);
    }
  });
});
