/**
 * Routers: from router logits [T, E] to the K selected experts of each token and their weights.
 * One function covers the gating schemes of the supported models, as llama.cpp's build_moe_ffn
 * (src/llama-graph.cpp) computes them:
 *
 *   probs     = softmax(logits) | sigmoid(logits) | logits (softmax-weight)
 *   selection = probs + bias                          (DeepSeek-V3's exp_probs_b)
 *   groups    : keep the groupUsed groups whose two best selection scores sum highest
 *   ids       = top-k(selection)                      (ties: lower expert id first)
 *   weights   = probs[ids]; softmax over them (softmax-weight); / sum (normalize); * scale
 *
 * It works on [T, E] floats in TypeScript: E is at most a few hundred, and these few
 * operations per token cost nothing next to one expert's matrix product. The per-token steps
 * are exported for routers built on this one (cache-aware.ts).
 */
import type { ExpertGating } from '../models/config.js';

export interface RouterOptions {
  readonly experts: number;
  readonly used: number;
  readonly gating: ExpertGating;
  readonly normalize: boolean;
  /** Multiplies the weights (DeepSeek's expert_weights_scale); 1 = none. */
  readonly scale: number;
  /** [E] added to the selection scores only (exp_probs_b). */
  readonly selectionBias?: Float32Array;
  readonly groupCount?: number;
  readonly groupUsed?: number;
}

export interface Routing {
  /** [T, K] expert ids. */
  readonly ids: Int32Array;
  /** [T, K] weights. */
  readonly weights: Float32Array;
}

const f = Math.fround;

/** Indices of the k largest values (descending; ties: lower index first; -Infinity last). */
export function topK(values: Float32Array | number[], k: number): number[] {
  const order = Array.from({ length: values.length }, (_, i) => i);
  order.sort((a, b) => (values[b] as number) - (values[a] as number) || a - b);
  return order.slice(0, k);
}

/** One token's gating probabilities: probs [E] from its logits row [E]. */
export function gatingProbs(row: Float32Array, o: RouterOptions, probs: Float32Array): void {
  const E = o.experts;
  if (o.gating === 'softmax') {
    let max = Number.NEGATIVE_INFINITY;
    for (let e = 0; e < E; e++) max = Math.max(max, row[e] as number);
    let sum = 0;
    for (let e = 0; e < E; e++) sum += probs[e] = f(Math.exp((row[e] as number) - max));
    for (let e = 0; e < E; e++) probs[e] = f((probs[e] as number) / sum);
  } else if (o.gating === 'sigmoid') {
    for (let e = 0; e < E; e++) probs[e] = f(1 / (1 + Math.exp(-(row[e] as number))));
  } else {
    probs.set(row);
  }
}

/**
 * One token's selection scores [E], what top-k ranks: probs + bias, with the experts of
 * the groups not kept set to -Infinity.
 */
export function selectionScores(probs: Float32Array, o: RouterOptions, selection: Float32Array): void {
  const E = o.experts;
  for (let e = 0; e < E; e++) selection[e] = f((probs[e] as number) + (o.selectionBias ? (o.selectionBias[e] as number) : 0));
  const groups = o.groupCount ?? 1;
  if (groups > 1) {
    // A group's score: the sum of its two best selection scores; drop all but the best groupUsed.
    const per = E / groups;
    const scores = Array.from({ length: groups }, (_, g) => {
      const [a, b] = topK(selection.subarray(g * per, (g + 1) * per), 2);
      return (selection[g * per + (a as number)] as number) + (selection[g * per + (b as number)] as number);
    });
    const kept = new Set(topK(scores, o.groupUsed ?? groups));
    for (let g = 0; g < groups; g++) if (!kept.has(g)) selection.fill(Number.NEGATIVE_INFINITY, g * per, (g + 1) * per);
  }
}

/** The final weights of the selected experts `chosen` (in their order) of one token. */
export function expertWeights(probs: Float32Array, chosen: readonly number[], o: RouterOptions): number[] {
  const n = chosen.length;
  const w = chosen.map((e) => probs[e] as number);
  if (o.gating === 'softmax-weight') {
    const max = Math.max(...w);
    const ex = w.map((x) => f(Math.exp(x - max)));
    const s = ex.reduce((a, b) => a + b, 0);
    for (let k = 0; k < n; k++) w[k] = f((ex[k] as number) / s);
  }
  if (o.normalize) {
    // ggml_clamp(sum, 6.103515625e-5, INFINITY) as in build_moe_ffn
    const s = Math.max(f(w.reduce((a, b) => f(a + b), 0)), 6.103515625e-5);
    for (let k = 0; k < n; k++) w[k] = f((w[k] as number) / s);
  }
  for (let k = 0; k < n; k++) w[k] = f((w[k] as number) * o.scale);
  return w;
}

export function route(logits: Float32Array, T: number, o: RouterOptions): Routing {
  const E = o.experts;
  const K = o.used;
  const ids = new Int32Array(T * K);
  const weights = new Float32Array(T * K);
  const probs = new Float32Array(E);
  const selection = new Float32Array(E);
  for (let t = 0; t < T; t++) {
    gatingProbs(logits.subarray(t * E, (t + 1) * E), o, probs);
    selectionScores(probs, o, selection);
    const chosen = topK(selection, K);
    const w = expertWeights(probs, chosen, o);
    for (let k = 0; k < K; k++) {
      ids[t * K + k] = chosen[k] as number;
      weights[t * K + k] = w[k] as number;
    }
  }
  return { ids, weights };
}
