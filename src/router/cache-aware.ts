/**
 * Cache-aware routing: route() (route.ts) adjusted for experts that are not resident, trading
 * exactness for fewer reads. Opt-in and inexact; its effect on quality is measured, not assumed
 * (issue 6). Per token, after route()'s selection, each selected expert that is not available:
 *
 *   1. substitution: the best-scoring available expert that is not selected and not masked out
 *      by group selection takes its slot, if its selection score (probs + bias, what top-k
 *      ranks) is at least the missing one's minus substituteMargin;
 *   2. otherwise drop: when its weight as route() gives it is below dropBelow, its slot gets
 *      id -1 and weight 0 (the expert kernel skips negative ids). At least the best-weighted
 *      slot of a token is always kept.
 *
 * The weights of a changed token are recomputed over its final ids exactly as route() does
 * (expertWeights: probs, softmax-weight, normalize, scale). Without normalisation, dropping
 * rescales the kept weights so their sum is the sum route() gave the token. Slots keep their
 * order; a token with nothing substituted or dropped gets route()'s weights bit for bit.
 * Reference: Skliar et al., "Mixture of Cache-Conditional Experts for Efficient Mobile Device
 * Inference" (arXiv 2412.00099, TMLR 2025): MoEs tolerate small deviations in expert selection,
 * so preferring resident experts cuts misses at a small perplexity cost.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { expertWeights, gatingProbs, type RouterOptions, type Routing, route, selectionScores, topK } from './route.js';

export interface CacheAwareOptions {
  /** When a selected expert is not available, use the best-scoring available expert not already
   *  selected instead, if its selection score (probability + bias, what top-k ranks) is at least
   *  the missing one's minus this margin. undefined = never substitute. */
  readonly substituteMargin?: number;
  /** When a selected expert is not available (and not substituted) and its routing weight is
   *  below this, drop it and renormalise. undefined = never drop. */
  readonly dropBelow?: number;
}

export interface CacheAwareRouting extends Routing {
  /** Slots (over all tokens) given to a substitute expert. */
  readonly substituted: number;
  /** Slots (over all tokens) dropped: id -1, weight 0. */
  readonly dropped: number;
}

const f = Math.fround;

/** The available expert with the highest selection score outside `taken` (ties: lower id). */
function bestAvailable(selection: Float32Array, taken: readonly number[], available: (e: number) => boolean): number | undefined {
  let best: number | undefined;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let e = 0; e < selection.length; e++) {
    const s = selection[e] as number;
    // -Infinity: masked out by group selection.
    if (s > bestScore && !taken.includes(e) && available(e)) {
      best = e;
      bestScore = s;
    }
  }
  return best;
}

/** route() with the availability of experts taken into account. available(e) says whether
 *  expert e is resident (or already being read). With every expert available, or with both
 *  options undefined, the result is exactly route()'s (bit for bit). */
export function routeCacheAware(
  logits: Float32Array,
  T: number,
  o: RouterOptions,
  available: (e: number) => boolean,
  ca: CacheAwareOptions,
): CacheAwareRouting {
  const margin = ca.substituteMargin;
  const dropBelow = ca.dropBelow;
  if (Number.isNaN(margin) || Number.isNaN(dropBelow)) {
    throw new InvalidArgumentError(`cache-aware routing: substituteMargin (${margin}) and dropBelow (${dropBelow}) must be numbers or undefined`);
  }
  if (margin === undefined && dropBelow === undefined) return { ...route(logits, T, o), substituted: 0, dropped: 0 };

  const E = o.experts;
  const K = o.used;
  const ids = new Int32Array(T * K);
  const weights = new Float32Array(T * K);
  const probs = new Float32Array(E); // [E]
  const selection = new Float32Array(E); // [E]
  let substituted = 0;
  let dropped = 0;
  for (let t = 0; t < T; t++) {
    gatingProbs(logits.subarray(t * E, (t + 1) * E), o, probs);
    selectionScores(probs, o, selection);
    const chosen = topK(selection, K); // [K] route()'s selection
    const w = expertWeights(probs, chosen, o); // [K] route()'s weights
    const final = chosen.slice();
    const keep = final.map(() => true);
    let subs = 0;
    for (let k = 0; k < K; k++) {
      const e = chosen[k] as number;
      if (available(e)) continue;
      if (margin !== undefined) {
        const c = bestAvailable(selection, final, available);
        if (c !== undefined && (selection[c] as number) >= (selection[e] as number) - margin) {
          final[k] = c;
          subs++;
          continue;
        }
      }
      if (dropBelow !== undefined && (w[k] as number) < dropBelow) keep[k] = false;
    }
    if (!keep.includes(true)) {
      // Never drop a whole token: keep its best-weighted slot (first on ties).
      let best = 0;
      for (let k = 1; k < K; k++) if ((w[k] as number) > (w[best] as number)) best = k;
      keep[best] = true;
    }
    const drops = keep.filter((x) => !x).length;
    substituted += subs;
    dropped += drops;

    let out = w;
    if (subs > 0 || drops > 0) {
      const keptIds = final.filter((_, k) => keep[k]);
      const kw = expertWeights(probs, keptIds, o);
      if (drops > 0 && !o.normalize) {
        // No normalisation to renormalise with: keep the token's total weight as route() gave it.
        const before = w.reduce((a, b) => a + b, 0);
        const after = kw.reduce((a, b) => a + b, 0);
        if (after > 0) for (let i = 0; i < kw.length; i++) kw[i] = f((kw[i] as number) * (before / after));
      }
      let i = 0;
      out = final.map((_, k) => (keep[k] ? (kw[i++] as number) : 0));
    }
    for (let k = 0; k < K; k++) {
      ids[t * K + k] = keep[k] ? (final[k] as number) : -1;
      weights[t * K + k] = out[k] as number;
    }
  }
  return { ids, weights, substituted, dropped };
}
