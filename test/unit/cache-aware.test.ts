// Cache-aware routing (src/router/cache-aware.ts): bit-for-bit route() when every expert is
// available or both options are off; substitution and drop decisions and the resulting weights
// against a brute-force reference written here in float64 from the rules (full sorts, no shared
// code with src/router); weight sums, -1 ids where dropped, never a token without an expert.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { type CacheAwareOptions, routeCacheAware } from '../../src/router/cache-aware.js';
import { type RouterOptions, route } from '../../src/router/route.js';
import { rng } from '../helpers/random.js';

/** The gating schemes of the supported models, shaped like them. */
const CONFIGS: Record<string, RouterOptions> = {
  'softmax, not normalised (OLMoE)': { experts: 64, used: 8, gating: 'softmax', normalize: false, scale: 1 },
  'softmax, normalised (Qwen3)': { experts: 32, used: 4, gating: 'softmax', normalize: true, scale: 1 },
  'sigmoid + selection bias + groups, scaled (DeepSeek-V3)': {
    experts: 64,
    used: 6,
    gating: 'sigmoid',
    normalize: true,
    scale: 2.5,
    selectionBias: Float32Array.from({ length: 64 }, (_, e) => 0.05 * Math.sin(e * 1.7)),
    groupCount: 8,
    groupUsed: 4,
  },
  'sigmoid, not normalised, one expert (Llama 4)': { experts: 16, used: 1, gating: 'sigmoid', normalize: false, scale: 1 },
  'softmax-weight (gpt-oss)': { experts: 32, used: 4, gating: 'softmax-weight', normalize: false, scale: 1 },
  'softmax-weight, normalised, scaled': { experts: 24, used: 3, gating: 'softmax-weight', normalize: true, scale: 0.5 },
};

function randomLogits(T: number, E: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: T * E }, () => 6 * r() - 3);
}

function randomAvailable(E: number, share: number, seed: number): (e: number) => boolean {
  const r = rng(seed);
  const ok = Array.from({ length: E }, () => r() < share);
  return (e) => ok[e] === true;
}

/** Descending by value, ties lower index first. */
const ranked = (v: number[], among: number[]) => [...among].sort((a, b) => v[b]! - v[a]! || a - b);

interface RefToken {
  ids: number[];
  weights: number[];
  substituted: number;
  dropped: number;
}

/** The rules of cache-aware routing for one token, brute force in float64. */
function referenceToken(row: number[], o: RouterOptions, available: (e: number) => boolean, ca: CacheAwareOptions): RefToken {
  const E = o.experts;
  const all = Array.from({ length: E }, (_, e) => e);
  let p: number[];
  if (o.gating === 'softmax') {
    const m = Math.max(...row);
    const ex = row.map((x) => Math.exp(x - m));
    const s = ex.reduce((a, b) => a + b, 0);
    p = ex.map((x) => x / s);
  } else if (o.gating === 'sigmoid') {
    p = row.map((x) => 1 / (1 + Math.exp(-x)));
  } else {
    p = [...row];
  }
  const score = p.map((x, e) => x + (o.selectionBias ? o.selectionBias[e]! : 0));
  const G = o.groupCount ?? 1;
  if (G > 1) {
    const per = E / G;
    const groupScore = Array.from({ length: G }, (_, g) => {
      const members = all.slice(g * per, (g + 1) * per);
      const [a, b] = ranked(score, members);
      return score[a!]! + score[b!]!;
    });
    const keptGroups = ranked(groupScore, [...groupScore.keys()]).slice(0, o.groupUsed ?? G);
    for (let e = 0; e < E; e++) if (!keptGroups.includes(Math.floor(e / per))) score[e] = Number.NEGATIVE_INFINITY;
  }
  const weightsOf = (ids: number[]) => {
    let w = ids.map((e) => p[e]!);
    if (o.gating === 'softmax-weight') {
      const m = Math.max(...w);
      const ex = w.map((x) => Math.exp(x - m));
      w = ex.map((x) => x / ex.reduce((a, b) => a + b, 0));
    }
    if (o.normalize) {
      const s = Math.max(w.reduce((a, b) => a + b, 0), 6.103515625e-5);
      w = w.map((x) => x / s);
    }
    return w.map((x) => x * o.scale);
  };

  const selected = ranked(score, all).slice(0, o.used);
  const w0 = weightsOf(selected);
  const final = [...selected];
  const drop = selected.map(() => false);
  let substituted = 0;
  selected.forEach((e, k) => {
    if (available(e)) return;
    if (ca.substituteMargin !== undefined) {
      const candidates = all.filter((c) => available(c) && !final.includes(c) && score[c]! > Number.NEGATIVE_INFINITY);
      const best = ranked(score, candidates)[0];
      if (best !== undefined && score[best]! >= score[e]! - ca.substituteMargin) {
        final[k] = best;
        substituted++;
        return;
      }
    }
    if (ca.dropBelow !== undefined && w0[k]! < ca.dropBelow) drop[k] = true;
  });
  if (drop.every((d) => d)) drop[ranked(w0, [...w0.keys()])[0]!] = false;
  const dropped = drop.filter((d) => d).length;
  if (substituted === 0 && dropped === 0) return { ids: selected, weights: w0, substituted, dropped };
  const keptIds = final.filter((_, k) => !drop[k]);
  let kw = weightsOf(keptIds);
  if (dropped > 0 && !o.normalize) {
    const target = w0.reduce((a, b) => a + b, 0);
    const sum = kw.reduce((a, b) => a + b, 0);
    kw = kw.map((x) => (x * target) / sum);
  }
  let i = 0;
  return {
    ids: final.map((e, k) => (drop[k] ? -1 : e)),
    weights: final.map((_, k) => (drop[k] ? 0 : kw[i++]!)),
    substituted,
    dropped,
  };
}

const OPTION_SETS: CacheAwareOptions[] = [
  { substituteMargin: 0 },
  { substituteMargin: 0.02 },
  { substituteMargin: 0.3 },
  { substituteMargin: Number.POSITIVE_INFINITY },
  { dropBelow: 0.05 },
  { dropBelow: 0.2 },
  { dropBelow: 1e9 }, // would drop every missing expert: some tokens keep only their best one
  { substituteMargin: 0.02, dropBelow: 0.15 },
  { substituteMargin: 0.1, dropBelow: 1e9 },
];

describe.each(Object.entries(CONFIGS))('%s', (_, o) => {
  const T = 24;
  const E = o.experts;
  const K = o.used;
  const seen = { substituted: 0, dropped: 0 };

  it('is route() bit for bit when every expert is available, whatever the options', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const logits = randomLogits(T, E, seed);
      const want = route(logits, T, o);
      for (const ca of [...OPTION_SETS, {}]) {
        const got = routeCacheAware(logits, T, o, () => true, ca);
        expect(got.ids).toEqual(want.ids);
        expect(got.weights).toEqual(want.weights); // toEqual on Float32Array: every element, -0 vs 0 included
        expect([got.substituted, got.dropped]).toEqual([0, 0]);
      }
    }
  });

  it('is route() bit for bit when both options are off, whatever is available', () => {
    const logits = randomLogits(T, E, 99);
    const got = routeCacheAware(logits, T, o, randomAvailable(E, 0.3, 5), {});
    const want = route(logits, T, o);
    expect(got.ids).toEqual(want.ids);
    expect(got.weights).toEqual(want.weights);
  });

  it.each(OPTION_SETS.map((ca) => [JSON.stringify(ca), ca] as const))('decides as the brute-force reference with %s', (_, ca) => {
    for (let seed = 1; seed <= 6; seed++) {
      const logits = randomLogits(T, E, 1000 + seed);
      const available = randomAvailable(E, [0.2, 0.5, 0.8][seed % 3]!, 2000 + seed);
      const got = routeCacheAware(logits, T, o, available, ca);
      const plain = route(logits, T, o);
      let substituted = 0;
      let dropped = 0;
      for (let t = 0; t < T; t++) {
        const want = referenceToken(Array.from(logits.subarray(t * E, (t + 1) * E)), o, available, ca);
        substituted += want.substituted;
        dropped += want.dropped;
        const ids = Array.from(got.ids.subarray(t * K, (t + 1) * K));
        const w = Array.from(got.weights.subarray(t * K, (t + 1) * K));
        expect(ids).toEqual(want.ids);
        w.forEach((x, k) => {
          expect(Math.abs(x - want.weights[k]!)).toBeLessThanOrEqual(1e-6 + 2e-6 * Math.abs(want.weights[k]!));
        });
        // Properties: a dropped slot is -1 with weight 0; at least one expert; no repeats;
        // substitutes are available; unchanged tokens are route()'s bit for bit.
        ids.forEach((e, k) => {
          if (e < 0) expect(w[k]).toBe(0);
          else if (e !== plain.ids[t * K + k]) expect(available(e)).toBe(true);
        });
        const kept = ids.filter((e) => e >= 0);
        expect(kept.length).toBeGreaterThan(0);
        expect(new Set(kept).size).toBe(kept.length);
        if (want.substituted === 0 && want.dropped === 0) {
          expect(w).toEqual(Array.from(plain.weights.subarray(t * K, (t + 1) * K)));
        }
        const sum = w.reduce((a, b) => a + b, 0);
        const plainSum = Array.from(plain.weights.subarray(t * K, (t + 1) * K)).reduce((a, b) => a + b, 0);
        if (o.normalize) expect(sum).toBeCloseTo(o.scale, 5);
        else if (want.substituted === 0) expect(sum).toBeCloseTo(plainSum, 5); // drops renormalise to route()'s sum
      }
      expect(got.substituted).toBe(substituted);
      expect(got.dropped).toBe(dropped);
      expect(Array.from(got.ids).filter((e) => e < 0).length).toBe(dropped);
      seen.substituted += substituted;
      seen.dropped += dropped;
    }
  });

  it('exercised both substitution and dropping above', () => {
    expect(seen.substituted).toBeGreaterThan(0);
    if (K > 1) expect(seen.dropped).toBeGreaterThan(0);
  });
});

describe('substitution and drop in small cases', () => {
  it('never substitutes an expert of a group that group selection dropped', () => {
    // softmax-weight: probs are the logits. Groups {0,1} (0.9 + 0.0) and {2,3} (0.5 + 0.3):
    // the first is kept, so expert 2 (0.5) is masked although it outscores expert 1 (0.0).
    const o: RouterOptions = { experts: 4, used: 1, gating: 'softmax-weight', normalize: false, scale: 1, groupCount: 2, groupUsed: 1 };
    const logits = Float32Array.from([0.9, 0, 0.5, 0.3]);
    const got = routeCacheAware(logits, 1, o, (e) => e !== 0, { substituteMargin: Number.POSITIVE_INFINITY });
    expect(Array.from(got.ids)).toEqual([1]);
    expect(got.substituted).toBe(1);
  });

  it('substitutes within the margin only, and drops below the threshold otherwise', () => {
    // softmax-weight, K = 2: selection scores are the logits 0.8 (expert 0), 0.7 (1), 0.6 (2).
    const o: RouterOptions = { experts: 3, used: 2, gating: 'softmax-weight', normalize: false, scale: 1 };
    const logits = Float32Array.from([0.8, 0.7, 0.6]);
    const missing1 = (e: number) => e !== 1;
    // 0.6 >= 0.7 - 0.15: expert 2 takes expert 1's slot.
    expect(Array.from(routeCacheAware(logits, 1, o, missing1, { substituteMargin: 0.15 }).ids)).toEqual([0, 2]);
    // 0.6 < 0.7 - 0.05: no substitute; expert 1's weight 1 / (1 + e^0.1) = 0.475 is below 0.5: dropped,
    // and expert 0 keeps the whole weight route() gave the token (1, softmax-weight's sum).
    const r = routeCacheAware(logits, 1, o, missing1, { substituteMargin: 0.05, dropBelow: 0.5 });
    expect(Array.from(r.ids)).toEqual([0, -1]);
    expect(r.weights[0]).toBeCloseTo(1, 6);
    expect(r.weights[1]).toBe(0);
    // Not below 0.4: it stays, although it is not resident.
    expect(Array.from(routeCacheAware(logits, 1, o, missing1, { dropBelow: 0.4 }).ids)).toEqual([0, 1]);
  });

  it('keeps the best-weighted expert when every selected one would be dropped', () => {
    const o: RouterOptions = { experts: 8, used: 3, gating: 'softmax', normalize: true, scale: 1 };
    const logits = Float32Array.from([0, 2, 0, 1, 0, 1.5, 0, 0]);
    const r = routeCacheAware(logits, 1, o, () => false, { dropBelow: 2 });
    expect(Array.from(r.ids)).toEqual([1, -1, -1]);
    expect(Array.from(r.weights)).toEqual([1, 0, 0]);
    expect(r.dropped).toBe(2);
  });

  it('rejects NaN options', () => {
    const o: RouterOptions = { experts: 4, used: 2, gating: 'softmax', normalize: true, scale: 1 };
    const logits = new Float32Array(4);
    expect(() => routeCacheAware(logits, 1, o, () => true, { substituteMargin: Number.NaN })).toThrow(InvalidArgumentError);
    expect(() => routeCacheAware(logits, 1, o, () => true, { dropBelow: Number.NaN })).toThrow(InvalidArgumentError);
  });
});
