/**
 * The trainable MoE feed-forward layer (the training twin of llama.cpp's build_moe_ffn,
 * src/llama-graph.cpp, with SwiGLU experts):
 *
 *   logits  = x · ffn_gate_inpᵀ                              [T, L]
 *   ids, w  = router(logits)                                 [T, K]
 *   out[t]  = Σ_k w[t,k] · expert_{ids[t,k]}(x[t])           [T, D]
 *             expert_e(x) = down_e · (silu(gate_e · x) ⊙ (up_e · x))      routed, e < E
 *             zero: 0 · copy: x · constant j: v_j (MoE++) · null: nothing (AdaMoE)
 *   out    += down_sh · (silu(gate_sh · x) ⊙ (up_sh · x))     shared expert, always on
 *
 * The routed experts are ONE tape op. Forward: the slots are grouped by expert (a counting
 * sort, stable in token order), every routed slot's token row is gathered once (getRows),
 * then per expert two gemms (gate, up) over its contiguous block of rows, one swiglu over all
 * rows, per expert the down gemm, and one scatterAddRows adds w · y into the output. Backward
 * mirrors it: gather dout, d w = rowDot(dout, y), dy = w · dout (scaleRows), per expert the
 * weight gradients with gemm (beta 1 into slices of the stacked gradients) and dx rows, one
 * swigluBackward, one scatterAddRows into dx. MoE++'s copy and constant experts join the same
 * op (scaleRows / a rank-L gemm); zero and null experts cost nothing.
 *
 * Parameters, GGUF names and layout: ffn_gate_inp [L, D], ffn_gate_exps / ffn_up_exps
 * [E, F, D], ffn_down_exps [E, D, F], ffn_{gate,up}_shexp [Fs, D], ffn_down_shexp [D, Fs],
 * and ffn_const_exps [Nc, D] for MoE++ constant experts (not a llama.cpp tensor).
 * References: Shazeer et al. 2017 (sparsely-gated MoE); Jiang et al. 2024 (Mixtral);
 * Jin et al. 2024 ("MoE++": zero / copy / constant experts, constant simplified to a learned
 * vector v_j without its per-token mixing with x); Zeng et al. 2024 ("AdaMoE", null experts).
 *
 * Shape legend: T tokens, D model dim, F expert FFN dim, E routed experts, L router logits,
 * K slots per token, N routed slots (token rows sent to FFN experts), Nc constant experts.
 */
import { GGMLType } from '../core/dtypes.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { add, linear, swiglu } from './ops.js';
import type { RouteOptions, Router } from './routers.js';
import type { Tape, Var } from './tape.js';

export interface MoELayerParams {
  /** ffn_gate_inp [L, D]. */
  router: Var;
  /** ffn_gate_exps [E, F, D]. */
  gate: Var;
  /** ffn_up_exps [E, F, D]. */
  up: Var;
  /** ffn_down_exps [E, D, F]. */
  down: Var;
  /** ffn_gate_shexp [Fs, D], ffn_up_shexp [Fs, D], ffn_down_shexp [D, Fs]: the always-on shared expert. */
  sharedGate?: Var;
  sharedUp?: Var;
  sharedDown?: Var;
  /** Router-specific parameters by name without the block prefix (router.parameterSpecs): 'ffn_const_exps.weight' [Nc, D]. */
  extra?: Record<string, Var>;
}

export interface MoELayerResult {
  /** [T, D]. */
  out: Var;
  /** The router's weighted auxiliary loss (scalar), or null. */
  aux: Var | null;
  /** [L] slots routed to each id. */
  load: Float64Array;
  /** [T, L] router logits, [T, K] ids and weights (for statistics and tests). */
  logits: Var;
  ids: Tensor;
  weights: Var;
  /** Token rows that went through a routed FFN expert (the expert compute, in FFN evaluations). */
  expertRows: number;
}

/** One MoE FFN block: router, routed experts (+ special experts), shared expert. */
export function moeLayer(tape: Tape, x: Var, p: MoELayerParams, router: Router, opts: RouteOptions = {}): MoELayerResult {
  const D = x.shape[1];
  const [E, F] = p.gate.shape;
  const L = router.nLogits;
  const expect = (v: Var | undefined, shape: number[], name: string) => {
    if (!v || v.shape.length !== shape.length || v.shape.some((d, i) => d !== shape[i])) {
      throw new InvalidArgumentError(`moeLayer: ${name} must be [${shape.join(', ')}], got ${v ? `[${v.shape.join(', ')}]` : 'nothing'}`);
    }
  };
  if (x.shape.length !== 2) throw new InvalidArgumentError(`moeLayer: x must be [T, D], got [${x.shape.join(', ')}]`);
  if (E !== router.nExperts) throw new InvalidArgumentError(`moeLayer: ${E} stacked experts, but the ${router.name} router routes to ${router.nExperts}`);
  expect(p.router, [L, D], 'ffn_gate_inp');
  expect(p.gate, [E, F, D], 'ffn_gate_exps');
  expect(p.up, [E, F, D], 'ffn_up_exps');
  expect(p.down, [E, D, F], 'ffn_down_exps');
  const constant = p.extra?.['ffn_const_exps.weight'];
  if (router.layout.constant > 0) expect(constant, [router.layout.constant, D], 'ffn_const_exps');

  const logits = linear(tape, x, p.router); // [T, L]
  const r = router.route(tape, logits, opts);
  const { out: routed, rows } = experts(tape, x, r.ids, r.weights, p, router, constant);
  let out = routed;
  if (p.sharedGate || p.sharedUp || p.sharedDown) {
    if (!p.sharedGate || !p.sharedUp || !p.sharedDown) throw new InvalidArgumentError('moeLayer: the shared expert needs gate, up and down');
    const h = swiglu(tape, linear(tape, x, p.sharedGate), linear(tape, x, p.sharedUp)); // [T, Fs]
    out = add(tape, out, linear(tape, h, p.sharedDown));
  }
  return { out, aux: r.aux, load: r.load, logits, ids: r.ids, weights: r.weights, expertRows: rows };
}

/** Expert e's 2-D matrix [R, C] from a stacked [E, R, C] tensor. */
function expertSlice(t: Tensor, e: number): Tensor {
  return t.slice(e, 1).reshape(t.shape.slice(1));
}

/** The experts op: Σ_k w[t,k] · expert_{ids[t,k]}(x[t]) over routed, copy and constant experts. */
function experts(tape: Tape, x: Var, ids: Tensor, weights: Var, p: MoELayerParams, router: Router, constant: Var | undefined): { out: Var; rows: number } {
  const be = tape.backend;
  const [T, D] = x.shape;
  const [E, F] = p.gate.shape;
  const K = ids.shape[1];
  const { zero, copy, constant: Nc } = router.layout;
  const copy0 = E + zero;
  const const0 = copy0 + copy;

  // Group routed slots by expert: counting sort, stable in (token, slot) order.
  const iv = ids.i32();
  const starts = new Int32Array(E + 1);
  for (const id of iv) if (id >= 0 && id < E) starts[id + 1]++;
  for (let e = 0; e < E; e++) starts[e + 1] += starts[e];
  const N = starts[E];
  const slot = new Int32Array(N); // position t·K + k of each routed row
  const fill = starts.slice(0, E);
  for (let i = 0; i < T * K; i++) {
    const id = iv[i];
    if (id >= 0 && id < E) slot[fill[id]++] = i;
  }

  const out = tape.zeros([T, D]);
  const tok = tape.alloc([Math.max(N, 1)], GGMLType.I32);
  const w = tape.alloc([Math.max(N, 1)]); // [N] routed weights
  const X = tape.alloc([Math.max(N, 1), D]); // gathered token rows
  const G = tape.alloc([Math.max(N, 1), F]);
  const U = tape.alloc([Math.max(N, 1), F]);
  const H = tape.alloc([Math.max(N, 1), F]);
  const Y = tape.alloc([Math.max(N, 1), D]);
  const rowsOf = (t: Tensor, e: number) => t.slice(starts[e], starts[e + 1] - starts[e]);
  // Copy experts: one weight per token (Σ over its copy slots); constant experts: [T, Nc].
  const cw = copy > 0 ? tape.zeros([T]) : null;
  const kw = Nc > 0 ? tape.zeros([T, Nc]) : null;
  {
    const wv = weights.value.f32();
    const tv = tok.i32();
    const nv = w.f32();
    for (let n = 0; n < N; n++) {
      tv[n] = (slot[n] / K) | 0;
      nv[n] = wv[slot[n]];
    }
    const iv = ids.i32();
    const cv = cw?.f32();
    const kv = kw?.f32();
    for (let i = 0; i < T * K; i++) {
      const id = iv[i];
      const t = (i / K) | 0;
      if (cv && id >= copy0 && id < const0) cv[t] += wv[i];
      else if (kv && id >= const0 && id < const0 + Nc) kv[t * Nc + id - const0] += wv[i];
    }
  }

  if (N > 0) {
    const Xn = X.slice(0, N);
    be.getRows(Xn, x.value, tok.slice(0, N));
    for (let e = 0; e < E; e++) {
      if (starts[e + 1] === starts[e]) continue;
      const Xe = rowsOf(X, e);
      be.gemm(rowsOf(G, e), Xe, expertSlice(p.gate.value, e), { transB: true }); // [n, F]
      be.gemm(rowsOf(U, e), Xe, expertSlice(p.up.value, e), { transB: true });
    }
    be.swiglu(H.slice(0, N), G.slice(0, N), U.slice(0, N));
    for (let e = 0; e < E; e++) {
      if (starts[e + 1] === starts[e]) continue;
      be.gemm(rowsOf(Y, e), rowsOf(H, e), expertSlice(p.down.value, e), { transB: true }); // [n, D]
    }
    be.scatterAddRows(out, Y.slice(0, N), tok.slice(0, N), w.slice(0, N));
  }
  if (cw) {
    const tmp = tape.alloc([T, D]);
    be.scaleRows(tmp, x.value, cw);
    be.add(out, out, tmp);
  }
  if (kw && constant) be.gemm(out, kw, constant.value, { beta: 1 }); // [T, Nc] · [Nc, D]

  const inputs = [x, weights, p.gate, p.up, p.down, ...(constant ? [constant] : [])];
  const result = tape.record(out, inputs, (g) => {
    // d weights per slot, gathered here and added into the [T, K] gradient at the end.
    const dSlot = new Float32Array(T * K);
    if (N > 0) {
      const n = (t: Tensor) => t.slice(0, N);
      const dY = tape.alloc([N, D]);
      be.getRows(dY, g, n(tok)); // dout rows of each slot
      if (weights.requiresGrad) {
        const dw = tape.alloc([N]);
        be.rowDot(dw, dY, n(Y));
        const dv = dw.f32();
        for (let i = 0; i < N; i++) dSlot[slot[i]] += dv[i];
      }
      be.scaleRows(dY, dY, n(w)); // dy = w · dout
      const dH = tape.alloc([N, F]);
      const dDown = p.down.requiresGrad ? tape.grad(p.down) : null;
      for (let e = 0; e < E; e++) {
        if (starts[e + 1] === starts[e]) continue;
        if (dDown) be.gemm(expertSlice(dDown, e), rowsOf(dY, e), rowsOf(H, e), { transA: true, beta: 1 }); // [D, F] += dyᵀ h
        be.gemm(rowsOf(dH, e), rowsOf(dY, e), expertSlice(p.down.value, e)); // [n, F] = dy · down_e
      }
      const dG = tape.alloc([N, F]);
      const dU = tape.alloc([N, F]);
      be.swigluBackward(dG, dU, dH, n(G), n(U));
      const dGate = p.gate.requiresGrad ? tape.grad(p.gate) : null;
      const dUp = p.up.requiresGrad ? tape.grad(p.up) : null;
      const dX = x.requiresGrad ? tape.alloc([N, D]) : null;
      for (let e = 0; e < E; e++) {
        if (starts[e + 1] === starts[e]) continue;
        const Xe = rowsOf(X, e);
        if (dGate) be.gemm(expertSlice(dGate, e), rowsOf(dG, e), Xe, { transA: true, beta: 1 }); // [F, D] += dgᵀ x
        if (dUp) be.gemm(expertSlice(dUp, e), rowsOf(dU, e), Xe, { transA: true, beta: 1 });
        if (dX) {
          be.gemm(rowsOf(dX, e), rowsOf(dG, e), expertSlice(p.gate.value, e)); // [n, D] = dg · gate_e
          be.gemm(rowsOf(dX, e), rowsOf(dU, e), expertSlice(p.up.value, e), { beta: 1 });
        }
      }
      if (dX) be.scatterAddRows(tape.grad(x), dX, n(tok), null);
    }
    if (cw) {
      // out += cw · x: dx += cw · dout; d cw = dout · x.
      if (x.requiresGrad) {
        const dx = tape.alloc([T, D]);
        be.scaleRows(dx, g, cw);
        tape.accumulate(x, dx);
      }
      if (weights.requiresGrad) {
        const dc = tape.alloc([T]);
        be.rowDot(dc, g, x.value);
        const dv = dc.f32();
        const iv = ids.i32();
        for (let i = 0; i < T * K; i++) if (iv[i] >= copy0 && iv[i] < const0) dSlot[i] += dv[(i / K) | 0];
      }
    }
    if (kw && constant) {
      // out += kw · V: dV += kwᵀ · dout; d kw = dout · Vᵀ.
      if (constant.requiresGrad) be.gemm(tape.grad(constant), kw, g, { transA: true, beta: 1 });
      if (weights.requiresGrad) {
        const dk = tape.alloc([T, Nc]);
        be.gemm(dk, g, constant.value, { transB: true });
        const dv = dk.f32();
        const iv = ids.i32();
        for (let i = 0; i < T * K; i++) {
          const id = iv[i];
          if (id >= const0 && id < const0 + Nc) dSlot[i] += dv[((i / K) | 0) * Nc + id - const0];
        }
      }
    }
    if (weights.requiresGrad) {
      const gw = tape.grad(weights).f32();
      for (let i = 0; i < T * K; i++) gw[i] += dSlot[i];
    }
  });
  return { out: result, rows: N };
}
