/**
 * Routing controls at inference: change how many and which experts a token uses, per request.
 *   - top-k override, for every layer or per layer (`topK`, `topKPerLayer`);
 *   - top-p routing: the smallest set of experts whose probability reaches p, within [minK, maxK]
 *     (Huang et al. 2024, "Harder Tasks Need More Experts: Dynamic Routing in MoE Models");
 *   - weight-ratio skipping: drop a selected expert whose weight is below `skipRatio` x the
 *     token's largest weight (the weights of the rest renormalised when the model normalises);
 *   - steering: `ban` (never selected), `force` (always selected, replacing the lowest-ranked
 *     selection), `scale` (the expert's probability multiplied before selection and weighting;
 *     for softmax-weight gating, where probabilities are logits, ln(factor) is added instead);
 *   - `onlyRank`: only the expert ranked r-th (1 = best), weight as the model's gating gives it —
 *     the weak routing of self-contrast decoding (src/generate/contrast.ts).
 * Without controls the result is route()'s, bit for bit. The selected ids of one call are [T, K']
 * with K' the widest token's count (narrower tokens padded with -1, which the kernels skip).
 * Reference: src/router/route.ts (the model's own routing, llama.cpp build_moe_ffn).
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { ExpertRef } from '../experts/cache.js';
import { expertWeights, gatingProbs, type RouterOptions, type Routing, route, selectionScores, topK } from './route.js';

export interface RoutingControls {
  /** Experts per token in every MoE layer (default: the model's K). */
  readonly topK?: number;
  /** Per-layer K, by block index (overrides topK for those layers). */
  readonly topKPerLayer?: Readonly<Record<number, number>>;
  /** Top-p routing: the fewest experts whose probabilities sum to at least p (0 < p <= 1). */
  readonly topP?: { readonly p: number; readonly minK?: number; readonly maxK?: number };
  /** Drop selected experts whose weight is below this share of the token's largest (0..1). */
  readonly skipRatio?: number;
  readonly ban?: readonly ExpertRef[];
  readonly force?: readonly ExpertRef[];
  readonly scale?: readonly (ExpertRef & { readonly factor: number })[];
  /** Only the expert of this rank (1 = the best): self-contrast's weak routing. */
  readonly onlyRank?: number;
}

/** Checks controls once (errors name the field). */
export function checkRoutingControls(c: RoutingControls, experts: number): void {
  const bad = (field: string, why: string): never => {
    throw new InvalidArgumentError(`routing.${field} ${why}`);
  };
  const isK = (k: unknown) => Number.isInteger(k) && (k as number) >= 1 && (k as number) <= experts;
  if (c.topK !== undefined && !isK(c.topK)) bad('topK', `must be a whole number from 1 to ${experts}, got ${c.topK}`);
  for (const [l, k] of Object.entries(c.topKPerLayer ?? {})) if (!isK(k)) bad(`topKPerLayer[${l}]`, `must be a whole number from 1 to ${experts}, got ${k}`);
  if (c.topP) {
    const { p, minK = 1, maxK = experts } = c.topP;
    if (!(p > 0 && p <= 1)) bad('topP.p', `must be above 0 and at most 1, got ${p}`);
    if (!isK(minK) || !isK(maxK) || minK > maxK) bad('topP', `needs 1 <= minK <= maxK <= ${experts}, got ${minK}..${maxK}`);
  }
  if (c.skipRatio !== undefined && !(c.skipRatio >= 0 && c.skipRatio <= 1)) bad('skipRatio', `must be from 0 to 1, got ${c.skipRatio}`);
  if (c.onlyRank !== undefined && !isK(c.onlyRank)) bad('onlyRank', `must be a whole number from 1 to ${experts}, got ${c.onlyRank}`);
  for (const [field, list] of [['ban', c.ban], ['force', c.force], ['scale', c.scale]] as const) {
    (list ?? []).forEach((r, i) => {
      if (!Number.isInteger(r.layer) || r.layer < 0 || !Number.isInteger(r.expert) || r.expert < 0 || r.expert >= experts) {
        bad(`${field}[${i}]`, `must name a block and an expert from 0 to ${experts - 1}, got ${JSON.stringify(r)}`);
      }
    });
  }
  for (const [i, s] of (c.scale ?? []).entries()) if (!(s.factor >= 0 && Number.isFinite(s.factor))) bad(`scale[${i}].factor`, `must be a finite number >= 0, got ${s.factor}`);
}

/** Whether the controls change anything (else route() runs unchanged). */
export function hasRoutingControls(c: RoutingControls | undefined): c is RoutingControls {
  return (
    !!c &&
    (c.topK !== undefined ||
      Object.keys(c.topKPerLayer ?? {}).length > 0 ||
      c.topP !== undefined ||
      c.skipRatio !== undefined ||
      c.onlyRank !== undefined ||
      !!c.ban?.length ||
      !!c.force?.length ||
      !!c.scale?.length)
  );
}

/** Routing of block `layer` with controls: ids and weights [T, K'] (see the file comment). */
export function routeWithControls(logits: Float32Array, T: number, o: RouterOptions, layer: number, c: RoutingControls | undefined): Routing {
  if (!hasRoutingControls(c)) return route(logits, T, o);
  const E = o.experts;
  const mine = (list: readonly ExpertRef[] | undefined) => (list ?? []).filter((r) => r.layer === layer).map((r) => r.expert);
  const banned = new Set(mine(c.ban));
  const forced = mine(c.force).filter((e) => !banned.has(e));
  const scales = (c.scale ?? []).filter((s) => s.layer === layer);
  const k = c.topKPerLayer?.[layer] ?? c.topK ?? o.used;
  const probs = new Float32Array(E);
  const selection = new Float32Array(E);
  const rows: { ids: number[]; weights: number[] }[] = [];
  for (let t = 0; t < T; t++) {
    gatingProbs(logits.subarray(t * E, (t + 1) * E), o, probs);
    for (const s of scales) {
      probs[s.expert] = o.gating === 'softmax-weight' ? (probs[s.expert] as number) + Math.log(s.factor) : (probs[s.expert] as number) * s.factor;
    }
    selectionScores(probs, o, selection);
    for (const e of banned) selection[e] = Number.NEGATIVE_INFINITY;
    const allowed = E - banned.size;
    let chosen: number[];
    if (c.onlyRank !== undefined) {
      chosen = [topK(selection, c.onlyRank)[c.onlyRank - 1] as number];
    } else if (c.topP) {
      // The ranking is the selection's; the mass is the gating probabilities' (normalised for sigmoid).
      const order = topK(selection, allowed).filter((e) => (selection[e] as number) > Number.NEGATIVE_INFINITY);
      const mass = order.map((e) => Math.max(0, o.gating === 'softmax-weight' ? 0 : (probs[e] as number)));
      const total = mass.reduce((a, b) => a + b, 0) || 1;
      let n = 0;
      for (let acc = 0; n < order.length && acc < c.topP.p * total - 1e-12; n++) acc += mass[n] as number;
      n = Math.min(Math.max(n, c.topP.minK ?? 1), c.topP.maxK ?? E, allowed);
      chosen = order.slice(0, n);
    } else {
      chosen = topK(selection, Math.min(k, allowed));
    }
    for (const e of forced) {
      if (chosen.includes(e)) continue;
      // Replace the lowest-ranked selection that is not itself forced.
      let at = -1;
      for (let i = chosen.length - 1; i >= 0; i--) if (!forced.includes(chosen[i] as number)) { at = i; break; }
      if (at >= 0) chosen[at] = e;
      else chosen.push(e);
    }
    let weights = expertWeights(probs, chosen, o);
    if (c.skipRatio !== undefined && chosen.length > 1) {
      const max = Math.max(...weights);
      const keep = chosen.filter((_, i) => (weights[i] as number) >= c.skipRatio! * max || forced.includes(chosen[i] as number));
      if (keep.length < chosen.length) {
        chosen = keep;
        weights = expertWeights(probs, chosen, o);
      }
    }
    rows.push({ ids: chosen, weights });
  }
  const K = Math.max(1, ...rows.map((r) => r.ids.length));
  const ids = new Int32Array(T * K).fill(-1);
  const weights = new Float32Array(T * K);
  rows.forEach((r, t) => {
    r.ids.forEach((e, i) => {
      ids[t * K + i] = e;
      weights[t * K + i] = r.weights[i] as number;
    });
  });
  return { ids, weights };
}

/** Mean selected experts per token and layer of a routing [T, K] (negative ids do not count). */
export function activeExperts(r: Routing, T: number): number {
  let n = 0;
  for (const e of r.ids) if (e >= 0) n++;
  return T > 0 ? n / T : 0;
}
