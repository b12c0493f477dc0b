/**
 * Router losses on the autograd tape: load balancing (Switch, global-batch), the router
 * z-loss and the routing entropy. Each is a tape op with a scalar [1] result whose backward
 * adds into the router logits' gradient. The maths is per token on [T, E] rows, small enough
 * for TypeScript loops (the hot loops are the experts' matrix products).
 *
 * References: Fedus et al. 2021, "Switch Transformers" (eq. 4); Zoph et al. 2022, "ST-MoE"
 * (eq. 5, router z-loss); Qiu et al. 2025, "Demons in the Detail: On Implementing Load
 * Balancing Loss for Training Specialized Mixture-of-Expert Models" (global-batch balance);
 * Huang et al. 2024, "Harder Tasks Need More Experts: Dynamic Routing in MoE Models" (eq. 6,
 * the dynamic / entropy loss); Zeng et al. 2024, "AdaMoE" (null experts share one load).
 *
 * Shape legend: T tokens, E router logits (experts, special and null experts included), K slots.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { Tape, Var } from './tape.js';

/** How router logits become the probabilities P that balancing losses average. */
export type RouterScores = 'softmax' | 'sigmoid';

/** p = softmax(row), or the normalised sigmoid s / Σ s (DeepSeek-V3's balance loss), in float64. */
export function rowProbs(row: ArrayLike<number>, scores: RouterScores, p: Float64Array): void {
  const E = p.length;
  if (scores === 'softmax') {
    let max = Number.NEGATIVE_INFINITY;
    for (let e = 0; e < E; e++) max = Math.max(max, row[e]);
    let sum = 0;
    for (let e = 0; e < E; e++) sum += p[e] = Math.exp(row[e] - max);
    for (let e = 0; e < E; e++) p[e] /= sum;
  } else {
    let sum = 0;
    for (let e = 0; e < E; e++) sum += p[e] = 1 / (1 + Math.exp(-row[e]));
    for (let e = 0; e < E; e++) p[e] /= sum;
  }
}

/** dl += (∂p/∂l)ᵀ dp for one row, p from rowProbs (softmax: dl = p ⊙ (dp - p·dp)). */
export function rowProbsBackward(row: ArrayLike<number>, scores: RouterScores, p: Float64Array, dp: Float64Array, dl: Float32Array): void {
  const E = p.length;
  let dot = 0;
  for (let e = 0; e < E; e++) dot += dp[e] * p[e];
  if (scores === 'softmax') {
    for (let e = 0; e < E; e++) dl[e] += p[e] * (dp[e] - dot);
    return;
  }
  // p = s / S: ∂p_k/∂s_j = (δ_kj - p_k) / S, and ds/dl = s (1 - s).
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  let S = 0;
  for (let e = 0; e < E; e++) S += sig(row[e]);
  for (let e = 0; e < E; e++) {
    const s = sig(row[e]);
    dl[e] += ((dp[e] - dot) / S) * s * (1 - s);
  }
}

function logitsShape(logits: Var, who: string): [number, number] {
  if (logits.shape.length !== 2) throw new InvalidArgumentError(`${who}: logits must be [T, E], got [${logits.shape.join(', ')}]`);
  return [logits.shape[0], logits.shape[1]];
}

/** Slots routed to each id of ids [T, K] (negative ids are empty slots). */
export function expertCounts(ids: Tensor, nExperts: number): Float64Array {
  const c = new Float64Array(nExperts);
  for (const id of ids.i32()) {
    if (id >= nExperts) throw new InvalidArgumentError(`expert id ${id} is outside [0, ${nExperts})`);
    if (id >= 0) c[id]++;
  }
  return c;
}

export interface BalanceOptions {
  /** Probabilities P from softmax (default) or normalised sigmoid scores. */
  scores?: RouterScores;
  /** Slot counts per expert that define f (default: counted from ids). Global-batch balance passes its running counts. */
  counts?: Float64Array;
  /** The last `nullExperts` ids are AdaMoE null experts: their f and P are replaced by the group mean, so they share one load. */
  nullExperts?: number;
}

/**
 * Switch load-balancing loss (Fedus et al. 2021, eq. 4) for top-K routing:
 *   L = E · Σ_i f_i · P_i,  f_i = slots routed to expert i / all filled slots (Σ f = 1, no gradient),
 *                           P_i = mean over tokens of p_t,i (softmax or normalised sigmoid).
 * Normalisation: L = 1 when perfectly balanced (f_i = P_i = 1/E); it reaches E when every token
 * goes to one expert with probability 1. (Hugging Face's Mixtral version counts f over K slots
 * per token and so equals K at balance; ours divides by the slot count.)
 * With null experts (AdaMoE) the null group's f and P are averaged, so the loss asks the null
 * experts to take their share as a group, not each one its own.
 */
export function switchLoss(tape: Tape, logits: Var, ids: Tensor, opts: BalanceOptions = {}): Var {
  const [T, E] = logitsShape(logits, 'switchLoss');
  const scores = opts.scores ?? 'softmax';
  const counts = opts.counts ?? expertCounts(ids, E);
  if (counts.length !== E) throw new InvalidArgumentError(`switchLoss: ${counts.length} expert counts for ${E} logits`);
  const total = counts.reduce((a, b) => a + b, 0);
  const f = new Float64Array(E);
  if (total > 0) for (let e = 0; e < E; e++) f[e] = counts[e] / total;
  const nNull = opts.nullExperts ?? 0;
  if (nNull > 0) {
    let mean = 0;
    for (let e = E - nNull; e < E; e++) mean += f[e] / nNull;
    f.fill(mean, E - nNull);
  }
  // With f of the null group averaged, Σ_null f̄ P_i = N f̄ P̄: one sum covers both cases.
  const lv = logits.value.f32();
  const p = new Float64Array(E);
  let L = 0;
  for (let t = 0; t < T; t++) {
    rowProbs(lv.subarray(t * E, (t + 1) * E), scores, p);
    for (let e = 0; e < E; e++) L += f[e] * p[e];
  }
  const out = tape.alloc([1]);
  out.f32()[0] = (E * L) / T;
  return tape.record(out, [logits], (g) => {
    const dl = tape.grad(logits).f32();
    const lv = logits.value.f32();
    const scale = (g.f32()[0] * E) / T;
    const dp = new Float64Array(E);
    for (let e = 0; e < E; e++) dp[e] = scale * f[e];
    for (let t = 0; t < T; t++) {
      const row = lv.subarray(t * E, (t + 1) * E);
      rowProbs(row, scores, p);
      rowProbsBackward(row, scores, p, dp, dl.subarray(t * E, (t + 1) * E));
    }
  });
}

/**
 * Expert slot counts over a whole global batch (Qiu et al. 2025): every micro-batch of one
 * optimizer step adds its counts, and the balance loss of each micro-batch uses the counts
 * so far (the paper's buffer; exact for the last micro-batch). reset() after each step.
 */
export class GlobalBatchLoad {
  readonly counts: Float64Array;

  constructor(readonly nExperts: number) {
    this.counts = new Float64Array(nExperts);
  }

  observe(ids: Tensor): void {
    const c = expertCounts(ids, this.nExperts);
    for (let e = 0; e < this.nExperts; e++) this.counts[e] += c[e];
  }

  reset(): void {
    this.counts.fill(0);
  }
}

/**
 * Global-batch load balancing (Qiu et al. 2025): the Switch loss E · Σ f_i · P_i with f_i
 * counted over the global batch (every micro-batch of the step so far, this one included)
 * and P_i over this micro-batch. Observes ids into `global` first. Normalisation as switchLoss:
 * 1 when perfectly balanced. Balancing over the global batch lets single sequences specialise.
 */
export function globalBatchBalanceLoss(tape: Tape, logits: Var, ids: Tensor, global: GlobalBatchLoad, opts: Omit<BalanceOptions, 'counts'> = {}): Var {
  global.observe(ids);
  return switchLoss(tape, logits, ids, { ...opts, counts: global.counts });
}

/** logsumexp of a row, in float64. */
function logSumExp(row: ArrayLike<number>, E: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let e = 0; e < E; e++) max = Math.max(max, row[e]);
  let s = 0;
  for (let e = 0; e < E; e++) s += Math.exp(row[e] - max);
  return max + Math.log(s);
}

/**
 * Router z-loss (Zoph et al. 2022, ST-MoE eq. 5): L = (1/T) Σ_t logsumexp(logits_t)².
 * Keeps router logits small (numerically stable softmax). Normalisation: not a balance
 * measure; 0 only when logsumexp = 0, (ln E)² for all-zero logits. dL/dl_tj = (2/T)·lse_t·p_tj.
 */
export function zLoss(tape: Tape, logits: Var): Var {
  const [T, E] = logitsShape(logits, 'zLoss');
  const lv = logits.value.f32();
  let L = 0;
  for (let t = 0; t < T; t++) L += logSumExp(lv.subarray(t * E, (t + 1) * E), E) ** 2;
  const out = tape.alloc([1]);
  out.f32()[0] = L / T;
  return tape.record(out, [logits], (g) => {
    const dl = tape.grad(logits).f32();
    const lv = logits.value.f32();
    const g0 = g.f32()[0];
    for (let t = 0; t < T; t++) {
      const row = lv.subarray(t * E, (t + 1) * E);
      const lse = logSumExp(row, E);
      const c = (g0 * 2 * lse) / T;
      for (let e = 0; e < E; e++) dl[t * E + e] += c * Math.exp(row[e] - lse);
    }
  });
}

/**
 * Routing entropy, the dynamic loss of top-p routing (Huang et al. 2024, eq. 6):
 * L = (1/T) Σ_t -Σ_e p_te log p_te with p = softmax(logits). Minimising it sharpens the router
 * so that top-p picks few experts for easy tokens. Normalisation: 0 for one-hot
 * routing, ln E (its maximum) for uniform routing. dL/dl_j = -p_j (log p_j + H).
 */
export function entropyLoss(tape: Tape, logits: Var): Var {
  const [T, E] = logitsShape(logits, 'entropyLoss');
  const lv = logits.value.f32();
  const p = new Float64Array(E);
  const entropy = (row: Float32Array): number => {
    rowProbs(row, 'softmax', p);
    let H = 0;
    for (let e = 0; e < E; e++) if (p[e] > 0) H -= p[e] * Math.log(p[e]);
    return H;
  };
  let L = 0;
  for (let t = 0; t < T; t++) L += entropy(lv.subarray(t * E, (t + 1) * E));
  const out = tape.alloc([1]);
  out.f32()[0] = L / T;
  return tape.record(out, [logits], (g) => {
    const dl = tape.grad(logits).f32();
    const lv = logits.value.f32();
    const c = g.f32()[0] / T;
    for (let t = 0; t < T; t++) {
      const H = entropy(lv.subarray(t * E, (t + 1) * E));
      for (let e = 0; e < E; e++) if (p[e] > 0) dl[t * E + e] -= c * p[e] * (Math.log(p[e]) + H);
    }
  });
}

/** Σ coefficient · loss over scalar Vars (terms with coefficient 0 are dropped); null when none remain. */
export function weightedSum(tape: Tape, terms: readonly (readonly [Var, number])[]): Var | null {
  const kept = terms.filter(([v, c]) => c !== 0 && v.value.numel === 1);
  if (kept.length !== terms.filter(([, c]) => c !== 0).length) throw new InvalidArgumentError('weightedSum: every loss term must be a scalar');
  if (kept.length === 0) return null;
  const out = tape.alloc([1]);
  let s = 0;
  for (const [v, c] of kept) s += c * v.value.f32()[0];
  out.f32()[0] = s;
  return tape.record(
    out,
    kept.map(([v]) => v),
    (g) => {
      const g0 = g.f32()[0];
      for (const [v, c] of kept) if (v.requiresGrad) tape.grad(v).f32()[0] += c * g0;
    },
  );
}
