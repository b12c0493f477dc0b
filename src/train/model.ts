/**
 * The model Switchyard trains: a Qwen3-MoE-shaped decoder written on the autograd tape, with
 * parameters named by their GGUF tensor names, so the trained weights export unchanged as
 * `qwen3moe` (routed experts) or `qwen3` (the dense baseline) and run in Switchyard's runtime
 * (src/models/qwen3moe.ts) and in llama.cpp (src/models/qwen3moe.cpp), which compute the same
 * equations:
 *
 *   h = embed(tokens)                                             token_embd [V, D]
 *   for each block:  q, k = rmsnorm(Wq x), rmsnorm(Wk x) per head     x = rmsnorm(h), attn_q_norm / attn_k_norm [Dh]
 *                    h = h + Wo attn(rope(q), rope(k), Wv x)           causal, RoPE NEOX
 *                    h = h + moe(rmsnorm(h))                           router + SwiGLU experts (or one SwiGLU FFN)
 *   logits = rmsnorm(h) · token_embdᵀ                                 tied output
 *   loss = mean cross-entropy + Σ router auxiliary losses
 *
 * A batch is B sequences of T tokens laid end to end ([B·T] rows); attention never crosses a
 * sequence boundary.
 */
import { GGMLType } from '../core/dtypes.js';
import type { Tensor } from '../core/tensor.js';
import type { AttentionParams, RopeParams } from '../kernels/backend.js';
import { heldOutWindows } from './batches.js';
import type { ModelSpec } from './config.js';
import { type MoELayerParams, moeLayer } from './moe.js';
import { add, crossEntropy, embedding, linear, rmsNorm, rope, swiglu } from './ops.js';
import type { ParameterSpec, ParameterStore } from './params.js';
import { createRouter, type Router } from './routers.js';
import type { Tape, Var } from './tape.js';

/** The parameters of a model spec, in a fixed order (initialisation and checkpoints rely on it). */
export function parameterSpecs(m: ModelSpec, vocabSize: number): ParameterSpec[] {
  const { dim: D, headDim: Dh, heads: H, kvHeads: Hkv } = m;
  const normal = (std: number) => ({ kind: 'normal', std }) as const;
  const ones = { kind: 'ones' } as const;
  // GPT-2 / OLMo practice: residual-output projections scaled down with depth.
  const std = m.initStd;
  const outStd = m.initStd / Math.sqrt(2 * m.layers);
  const specs: ParameterSpec[] = [{ name: 'token_embd.weight', shape: [vocabSize, D], init: normal(std) }];
  for (let il = 0; il < m.layers; il++) {
    const p = `blk.${il}.`;
    specs.push(
      { name: `${p}attn_norm.weight`, shape: [D], init: ones },
      { name: `${p}attn_q.weight`, shape: [H * Dh, D], init: normal(std) },
      { name: `${p}attn_k.weight`, shape: [Hkv * Dh, D], init: normal(std) },
      { name: `${p}attn_v.weight`, shape: [Hkv * Dh, D], init: normal(std) },
      { name: `${p}attn_q_norm.weight`, shape: [Dh], init: ones },
      { name: `${p}attn_k_norm.weight`, shape: [Dh], init: ones },
      { name: `${p}attn_output.weight`, shape: [D, H * Dh], init: normal(outStd) },
      { name: `${p}ffn_norm.weight`, shape: [D], init: ones },
    );
    const f = m.ffn;
    if (f.kind === 'dense') {
      specs.push(
        { name: `${p}ffn_gate.weight`, shape: [f.hiddenDim, D], init: normal(std) },
        { name: `${p}ffn_up.weight`, shape: [f.hiddenDim, D], init: normal(std) },
        { name: `${p}ffn_down.weight`, shape: [D, f.hiddenDim], init: normal(outStd) },
      );
    } else {
      const E = f.experts;
      const F = f.expertDim;
      const router = createRouter(f.router, E, f.topK);
      specs.push(
        { name: `${p}ffn_gate_inp.weight`, shape: [router.nLogits, D], init: normal(std) },
        { name: `${p}ffn_gate_exps.weight`, shape: [E, F, D], init: normal(std) },
        { name: `${p}ffn_up_exps.weight`, shape: [E, F, D], init: normal(std) },
        { name: `${p}ffn_down_exps.weight`, shape: [E, D, F], init: normal(outStd) },
      );
      for (const s of router.parameterSpecs(p, D)) specs.push(s);
      if (f.sharedDim) {
        specs.push(
          { name: `${p}ffn_gate_shexp.weight`, shape: [f.sharedDim, D], init: normal(std) },
          { name: `${p}ffn_up_shexp.weight`, shape: [f.sharedDim, D], init: normal(std) },
          { name: `${p}ffn_down_shexp.weight`, shape: [D, f.sharedDim], init: normal(outStd) },
        );
      }
    }
  }
  specs.push({ name: 'output_norm.weight', shape: [D], init: ones });
  return specs;
}

/** Parameters a token uses: everything but the experts it is not routed to (for reports and the dense baseline). */
export function activeParameters(m: ModelSpec, vocabSize: number): { total: number; active: number } {
  let total = 0;
  let experts = 0;
  for (const s of parameterSpecs(m, vocabSize)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    total += n;
    if (s.name.endsWith('_exps.weight')) experts += n;
  }
  const f = m.ffn;
  const active = f.kind === 'moe' ? total - experts + (experts * f.topK) / f.experts : total;
  return { total, active };
}

export interface ForwardResult {
  /** [B·T, V] next-token logits. */
  logits: Var;
  /** Mean cross-entropy over the predicted tokens (nats). */
  ce: Var;
  /** ce plus every router auxiliary loss: what backward starts from. */
  loss: Var;
  /** Tokens routed to each expert, per MoE layer. */
  load: Float64Array[];
}

/** A trainable model: its spec, parameters and one router per MoE layer (routers may keep state). */
export class TrainModel {
  readonly routers: Router[] = [];
  private readonly heads: { rope: RopeParams; scale: number };

  constructor(
    readonly spec: ModelSpec,
    readonly vocabSize: number,
    readonly params: ParameterStore,
  ) {
    const f = spec.ffn;
    if (f.kind === 'moe') for (let il = 0; il < spec.layers; il++) this.routers.push(createRouter(f.router, f.experts, f.topK, f.balance));
    this.heads = { rope: { nDims: spec.headDim, mode: 'neox', freqBase: spec.ropeTheta }, scale: 1 / Math.sqrt(spec.headDim) };
  }

  /**
   * Forward pass over B sequences of T tokens: inputs and targets [B·T] I32 (target < 0 is
   * not scored). Records everything on the tape; call tape.backward(result.loss) to train.
   * With training = false (evaluation) routers add no auxiliary loss and their load does not
   * feed their updates (it is still returned, for statistics).
   */
  forward(tape: Tape, inputs: Tensor, targets: Tensor, B: number, T: number, training = true): ForwardResult {
    const m = this.spec;
    const N = B * T;
    const { dim: D, headDim: Dh, heads: H, kvHeads: Hkv, normEps: eps } = m;
    const w = (name: string) => tape.param(this.params.get(name));
    const positions = tape.alloc([N], GGMLType.I32);
    const pos = positions.i32();
    for (let i = 0; i < N; i++) pos[i] = i % T;

    let h = embedding(tape, w('token_embd.weight'), inputs); // [N, D]
    const aux: Var[] = [];
    const load: Float64Array[] = [];
    for (let il = 0; il < m.layers; il++) {
      const p = `blk.${il}.`;
      const x = rmsNorm(tape, h, w(`${p}attn_norm.weight`), eps);
      // Per-head RMSNorm of q and k before RoPE (qwen3moe.cpp: build_norm on [Dh, H, T]).
      const qk = (name: string, heads: number) => {
        const y = tape.view(linear(tape, x, w(`${p}attn_${name}.weight`)), [N * heads, Dh]);
        const n = rmsNorm(tape, y, w(`${p}attn_${name}_norm.weight`), eps);
        return rope(tape, tape.view(n, [N, heads, Dh]), positions, this.heads.rope);
      };
      const q = qk('q', H);
      const k = qk('k', Hkv);
      const v = tape.view(linear(tape, x, w(`${p}attn_v.weight`)), [N, Hkv, Dh]);
      const a = causalAttention(tape, q, k, v, B, T, { scale: this.heads.scale, qPos0: 0 });
      h = add(tape, h, linear(tape, tape.view(a, [N, H * Dh]), w(`${p}attn_output.weight`)));

      const xf = rmsNorm(tape, h, w(`${p}ffn_norm.weight`), eps);
      const f = m.ffn;
      if (f.kind === 'dense') {
        const g = linear(tape, xf, w(`${p}ffn_gate.weight`));
        const u = linear(tape, xf, w(`${p}ffn_up.weight`));
        h = add(tape, h, linear(tape, swiglu(tape, g, u), w(`${p}ffn_down.weight`)));
      } else {
        const lp: MoELayerParams = {
          router: w(`${p}ffn_gate_inp.weight`),
          gate: w(`${p}ffn_gate_exps.weight`),
          up: w(`${p}ffn_up_exps.weight`),
          down: w(`${p}ffn_down_exps.weight`),
          ...(f.sharedDim
            ? { sharedGate: w(`${p}ffn_gate_shexp.weight`), sharedUp: w(`${p}ffn_up_shexp.weight`), sharedDown: w(`${p}ffn_down_shexp.weight`) }
            : {}),
          extra: Object.fromEntries(this.routers[il].parameterSpecs(p, D).map((s) => [s.name.slice(p.length), w(s.name)])),
        };
        const r = moeLayer(tape, xf, lp, this.routers[il], { training });
        h = add(tape, h, r.out);
        if (r.aux) aux.push(r.aux);
        load.push(r.load);
      }
    }
    const hn = rmsNorm(tape, h, w('output_norm.weight'), eps);
    const logits = linear(tape, hn, w('token_embd.weight')); // [N, V], tied
    const ce = crossEntropy(tape, logits, targets);
    let loss = ce;
    for (const a of aux) loss = add(tape, loss, a);
    return { logits, ce, loss, load };
  }
}

/**
 * Held-out evaluation: mean cross-entropy (nats per token) over windows of `tokens` that score
 * every target once (up to maxTokens), with routers in evaluation mode, and each MoE layer's
 * expert load (routed slots per expert).
 */
export function evaluate(model: TrainModel, tape: Tape, tokens: Int32Array, B: number, T: number, maxTokens: number): { ce: number; tokens: number; load: Float64Array[] } {
  let sum = 0;
  let count = 0;
  const load = model.routers.map((r) => new Float64Array(r.nExperts));
  for (const w of heldOutWindows(tokens, T, B, maxTokens)) {
    const inputs = tape.alloc([B * T], GGMLType.I32);
    const targets = tape.alloc([B * T], GGMLType.I32);
    inputs.i32().set(w.inputs);
    targets.i32().set(w.targets);
    const r = model.forward(tape, inputs, targets, B, T, false);
    sum += r.ce.value.f32()[0] * w.count;
    count += w.count;
    r.load.forEach((l, il) => {
      for (let e = 0; e < load[il].length; e++) load[il][e] += l[e];
    });
    tape.reset();
  }
  return { ce: count ? sum / count : Number.NaN, tokens: count, load };
}

/**
 * Causal self-attention over B independent sequences of T rows each: q [B·T, H, Dh],
 * k, v [B·T, Hkv, Dh] -> [B·T, H, Dh], one kernel call per sequence forward and backward.
 */
export function causalAttention(tape: Tape, q: Var, k: Var, v: Var, B: number, T: number, p: AttentionParams): Var {
  const be = tape.backend;
  const [N, H] = q.shape;
  const out = tape.alloc([N, H, v.shape[2]]);
  const seq = (t: Tensor, b: number) => t.slice(b * T, T);
  for (let b = 0; b < B; b++) be.attention(seq(out, b), seq(q.value, b), seq(k.value, b), seq(v.value, b), p);
  return tape.record(out, [q, k, v], (g) => {
    const dq = tape.alloc(q.shape);
    const dk = tape.alloc(k.shape);
    const dv = tape.alloc(v.shape);
    for (let b = 0; b < B; b++) {
      be.attentionBackward(seq(dq, b), seq(dk, b), seq(dv, b), seq(g, b), seq(q.value, b), seq(k.value, b), seq(v.value, b), p);
    }
    tape.accumulate(q, dq);
    tape.accumulate(k, dk);
    tape.accumulate(v, dv);
  });
}
