/**
 * Every differentiable op's gradient (src/train/ops.ts) against central finite differences,
 * on the reference backend (and a wasm build for a few), plus a Var used twice and a small
 * composed model (two attention + SwiGLU blocks and a cross-entropy loss).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Heap } from '../../src/core/heap.js';
import { i32Tensor, type Tensor } from '../../src/core/tensor.js';
import type { KernelBackend, RopeParams } from '../../src/kernels/backend.js';
import * as op from '../../src/train/ops.js';
import type { Tape, Var } from '../../src/train/tape.js';
import { device, disposeDevices, ref, wasmBuilds } from '../helpers/backends.js';
import { gradcheck, type GradInput } from '../helpers/gradcheck.js';

const heap = new Heap({ name: 'ops-grad', reservedBytes: 64, shared: false });
const ints = (h: Heap, data: number[]): Tensor => i32Tensor(h.arena('ints'), [data.length], data);
afterAll(disposeDevices);

function check(inputs: GradInput[], build: (t: Tape, xs: Var[]) => Var, tol = 1e-2, backend: KernelBackend = ref, h: Heap = heap, step = 1e-2) {
  const r = gradcheck({ backend, heap: h, inputs, build, h: step });
  expect(r.checked).toBeGreaterThan(0);
  expect(r.maxRelErr, r.worst).toBeLessThan(tol);
  return r;
}

describe('op gradients (ref backend, finite differences)', () => {
  it('embedding (repeated ids accumulate)', () => {
    const ids = ints(heap, [2, 0, 2, 3, 2]);
    check([{ name: 'table', shape: [4, 6] }], (t, [tab]) => op.embedding(t, tab, ids));
  });

  it('linear, 2-D and 3-D x', () => {
    check([{ name: 'x', shape: [5, 7] }, { name: 'w', shape: [3, 7] }], (t, [x, w]) => op.linear(t, x, w));
    check([{ name: 'x', shape: [2, 3, 4] }, { name: 'w', shape: [6, 4] }], (t, [x, w]) => op.linear(t, x, w));
  });

  it('rmsNorm with and without weight', () => {
    check([{ name: 'x', shape: [4, 8] }, { name: 'w', shape: [8] }], (t, [x, w]) => op.rmsNorm(t, x, w, 1e-6));
    check([{ name: 'x', shape: [3, 2, 8] }], (t, [x]) => op.rmsNorm(t, x, null, 1e-5));
  });

  it('rope (norm and neox, partial rotary)', () => {
    const pos = ints(heap, [0, 1, 2, 5]);
    const norm: RopeParams = { nDims: 8, mode: 'norm', freqBase: 10000 };
    const neox: RopeParams = { nDims: 4, mode: 'neox', freqBase: 1000 };
    check([{ name: 'x', shape: [4, 2, 8] }], (t, [x]) => op.rope(t, x, pos, norm));
    check([{ name: 'x', shape: [4, 2, 8] }], (t, [x]) => op.rope(t, x, pos, neox));
  });

  it('causal attention (grouped-query, softcap and window)', () => {
    const inputs: GradInput[] = [
      { name: 'q', shape: [5, 4, 6] },
      { name: 'k', shape: [5, 2, 6] },
      { name: 'v', shape: [5, 2, 3] },
    ];
    check(inputs, (t, [q, k, v]) => op.attention(t, q, k, v, { scale: 1 / Math.sqrt(6), qPos0: 0 }));
    check(inputs, (t, [q, k, v]) => op.attention(t, q, k, v, { scale: 0.5, qPos0: 0, window: 3, softcap: 2 }));
  });

  it('swiglu', () => {
    check([{ name: 'gate', shape: [4, 6], scale: 3 }, { name: 'up', shape: [4, 6] }], (t, [g, u]) => op.swiglu(t, g, u));
  });

  it('add and mul, same shape and broadcast row', () => {
    check([{ name: 'a', shape: [3, 5] }, { name: 'b', shape: [3, 5] }], (t, [a, b]) => op.add(t, a, b));
    check([{ name: 'a', shape: [3, 5] }, { name: 'b', shape: [5] }], (t, [a, b]) => op.add(t, a, b));
    check([{ name: 'a', shape: [3, 5] }, { name: 'b', shape: [3, 5] }], (t, [a, b]) => op.mul(t, a, b));
    check([{ name: 'a', shape: [2, 3, 5] }, { name: 'b', shape: [5] }], (t, [a, b]) => op.mul(t, a, b));
  });

  it('scale, reshape, softmax, sum, mean', () => {
    check([{ name: 'a', shape: [3, 4] }], (t, [a]) => op.scale(t, a, -2.5));
    check([{ name: 'a', shape: [3, 4] }, { name: 'w', shape: [2, 6] }], (t, [a, w]) => op.linear(t, op.reshape(t, a, [2, 6]), w));
    check([{ name: 'a', shape: [3, 7], scale: 3 }], (t, [a]) => op.softmax(t, a));
    check([{ name: 'a', shape: [3, 4] }], (t, [a]) => op.sum(t, op.mul(t, a, a)));
    check([{ name: 'a', shape: [3, 4] }], (t, [a]) => op.mean(t, op.mul(t, a, a)));
  });

  it('crossEntropy (mean over counted targets, ignored rows)', () => {
    const targets = ints(heap, [3, -1, 0, 9, 3]);
    const r = check([{ name: 'logits', shape: [5, 10], scale: 3 }], (t, [l]) => op.crossEntropy(t, l, targets));
    expect(r.loss).toBeGreaterThan(0);
    // Scaled: the seed reaches the logits through backward's dy.
    check([{ name: 'logits', shape: [5, 10], scale: 3 }], (t, [l]) => op.scale(t, op.crossEntropy(t, l, targets), 3));
  });

  it('a Var used twice receives both contributions', () => {
    // x feeds a linear, a mul and both sides of an add; w feeds two linears.
    check([{ name: 'x', shape: [4, 5] }, { name: 'w', shape: [5, 5] }], (t, [x, w]) => {
      const a = op.linear(t, x, w);
      const b = op.linear(t, a, w);
      return op.add(t, op.mul(t, b, x), op.add(t, x, x));
    });
  });

  it('a composed model: embedding, 2 blocks of attention + SwiGLU, cross-entropy', () => {
    const T = 6;
    const D = 8;
    const H = 2;
    const Hkv = 1;
    const Dh = 4;
    const F = 12;
    const V = 11;
    const ids = ints(heap, [1, 4, 4, 9, 0, 2]);
    const targets = ints(heap, [4, 4, 9, 0, 2, -1]);
    const pos = ints(heap, [0, 1, 2, 3, 4, 5]);
    const r = composed(T, D, H, Hkv, Dh, F, V, ids, targets, pos);
    const res = check(r.inputs, r.build, 2e-2);
    expect(res.loss).toBeGreaterThan(1);
  });
});

function composed(T: number, D: number, H: number, Hkv: number, Dh: number, F: number, V: number, ids: Tensor, targets: Tensor, pos: Tensor) {
  const inputs: GradInput[] = [{ name: 'tok_embd', shape: [V, D] }];
  const layers = 2;
  for (let l = 0; l < layers; l++) {
    inputs.push(
      { name: `blk.${l}.attn_norm`, shape: [D], values: new Float32Array(D).fill(1).map((v, i) => v + 0.1 * Math.sin(i + l)) },
      { name: `blk.${l}.attn_q`, shape: [H * Dh, D], scale: 0.5 },
      { name: `blk.${l}.attn_k`, shape: [Hkv * Dh, D], scale: 0.5 },
      { name: `blk.${l}.attn_v`, shape: [Hkv * Dh, D], scale: 0.5 },
      { name: `blk.${l}.attn_output`, shape: [D, H * Dh], scale: 0.5 },
      { name: `blk.${l}.ffn_norm`, shape: [D], values: new Float32Array(D).fill(1) },
      { name: `blk.${l}.ffn_gate`, shape: [F, D], scale: 0.5 },
      { name: `blk.${l}.ffn_up`, shape: [F, D], scale: 0.5 },
      { name: `blk.${l}.ffn_down`, shape: [D, F], scale: 0.5 },
    );
  }
  inputs.push({ name: 'output_norm', shape: [D], values: new Float32Array(D).fill(1) }, { name: 'output', shape: [V, D] });
  const rp: RopeParams = { nDims: Dh, mode: 'neox', freqBase: 10000 };
  const build = (t: Tape, xs: Var[]): Var => {
    let i = 0;
    const next = () => xs[i++];
    let h = op.embedding(t, next(), ids); // [T, D]
    for (let l = 0; l < layers; l++) {
      const [an, wq, wk, wv, wo, fn, wg, wu, wd] = [next(), next(), next(), next(), next(), next(), next(), next(), next()];
      const x = op.rmsNorm(t, h, an, 1e-6);
      const q = op.rope(t, op.reshape(t, op.linear(t, x, wq), [T, H, Dh]), pos, rp); // [T, H, Dh]
      const k = op.rope(t, op.reshape(t, op.linear(t, x, wk), [T, Hkv, Dh]), pos, rp); // [T, Hkv, Dh]
      const v = op.reshape(t, op.linear(t, x, wv), [T, Hkv, Dh]);
      const a = op.attention(t, q, k, v, { scale: 1 / Math.sqrt(Dh), qPos0: 0 }); // [T, H, Dh]
      h = op.add(t, h, op.linear(t, op.reshape(t, a, [T, H * Dh]), wo));
      const y = op.rmsNorm(t, h, fn, 1e-6);
      h = op.add(t, h, op.linear(t, op.swiglu(t, op.linear(t, y, wg), op.linear(t, y, wu)), wd));
    }
    const logits = op.linear(t, op.rmsNorm(t, h, next(), 1e-6), next()); // [T, V]
    return op.crossEntropy(t, logits, targets);
  };
  return { inputs, build };
}

describe.each(wasmBuilds())('op gradients on the %s build', (build) => {
  it('linear, attention, swiglu, rmsNorm and the composed model', async () => {
    const d = await device(build, 2);
    const h = d.heap;
    const be = d.backend;
    check([{ name: 'x', shape: [5, 7] }, { name: 'w', shape: [3, 7] }], (t, [x, w]) => op.linear(t, x, w), 1e-2, be, h);
    check([{ name: 'x', shape: [4, 8] }, { name: 'w', shape: [8] }], (t, [x, w]) => op.rmsNorm(t, x, w, 1e-6), 1e-2, be, h);
    check([{ name: 'gate', shape: [4, 6], scale: 3 }, { name: 'up', shape: [4, 6] }], (t, [g, u]) => op.swiglu(t, g, u), 1e-2, be, h);
    check(
      [{ name: 'q', shape: [5, 4, 6] }, { name: 'k', shape: [5, 2, 6] }, { name: 'v', shape: [5, 2, 3] }],
      (t, [q, k, v]) => op.attention(t, q, k, v, { scale: 0.4, qPos0: 0 }),
      1e-2,
      be,
      h,
    );
    const ids = ints(h, [1, 4, 4, 9, 0, 2]);
    const targets = ints(h, [4, 4, 9, 0, 2, -1]);
    const pos = ints(h, [0, 1, 2, 3, 4, 5]);
    const r = composed(6, 8, 2, 1, 4, 12, 11, ids, targets, pos);
    check(r.inputs, r.build, 2e-2, be, h);
  });
});
