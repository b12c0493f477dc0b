/**
 * Routing controls (src/router/adaptive.ts) against brute-force references written here: with no
 * controls the result is route()'s bit for bit; top-k overrides, top-p, weight-ratio skipping,
 * ban / force / scale and rank-only routing select what a full sort says they should, with the
 * model's own weighting; top-p uses fewer experts as p falls; bad controls are typed errors.
 */
import { describe, expect, it } from 'vitest';
import { activeExperts, checkRoutingControls, routeWithControls } from '../../src/router/adaptive.js';
import { type RouterOptions, route } from '../../src/router/route.js';

const E = 8;
const softmaxNorm: RouterOptions = { experts: E, used: 2, gating: 'softmax', normalize: true, scale: 1 };
const softmaxRaw: RouterOptions = { experts: E, used: 2, gating: 'softmax', normalize: false, scale: 1 };

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
function randomLogits(T: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: T * E }, () => (r() - 0.5) * 6);
}
/** float64 softmax of one row, and the experts by probability (ties: lower id). */
function probsOf(row: Float32Array): { p: number[]; order: number[] } {
  const max = Math.max(...row);
  const ex = [...row].map((v) => Math.exp(v - max));
  const sum = ex.reduce((a, b) => a + b, 0);
  const p = ex.map((v) => v / sum);
  const order = p.map((_, i) => i).sort((a, b) => (p[b] as number) - (p[a] as number) || a - b);
  return { p, order };
}
const idsOf = (ids: Int32Array, t: number, K: number) => [...ids.subarray(t * K, (t + 1) * K)].filter((e) => e >= 0);

describe('routeWithControls', () => {
  it('without controls is route(), bit for bit', () => {
    const logits = randomLogits(16, 1);
    for (const o of [softmaxNorm, softmaxRaw]) {
      const a = route(logits, 16, o);
      const b = routeWithControls(logits, 16, o, 0, {});
      expect([...b.ids]).toEqual([...a.ids]);
      expect([...b.weights]).toEqual([...a.weights]);
    }
  });

  it('top-k override takes the k most probable experts, weighted as the model weights them', () => {
    const T = 12;
    const logits = randomLogits(T, 2);
    const r = routeWithControls(logits, T, softmaxNorm, 0, { topK: 4 });
    for (let t = 0; t < T; t++) {
      const { p, order } = probsOf(logits.subarray(t * E, (t + 1) * E));
      expect(idsOf(r.ids, t, 4)).toEqual(order.slice(0, 4));
      const sum = order.slice(0, 4).reduce((a, e) => a + (p[e] as number), 0);
      order.slice(0, 4).forEach((e, i) => {
        expect(r.weights[t * 4 + i]).toBeCloseTo((p[e] as number) / sum, 5);
      });
    }
    // per layer: layer 3 gets 1 expert, others the override
    const per = routeWithControls(logits, T, softmaxNorm, 3, { topK: 4, topKPerLayer: { 3: 1 } });
    expect(per.ids.length).toBe(T);
  });

  it('top-p takes the fewest experts whose probability reaches p, within [minK, maxK]', () => {
    const T = 24;
    const logits = randomLogits(T, 3);
    for (const p of [0.3, 0.6, 0.9]) {
      const r = routeWithControls(logits, T, softmaxRaw, 0, { topP: { p } });
      const K = r.ids.length / T;
      for (let t = 0; t < T; t++) {
        const { p: probs, order } = probsOf(logits.subarray(t * E, (t + 1) * E));
        let n = 0;
        for (let acc = 0; acc < p - 1e-9; n++) acc += probs[order[n] as number] as number;
        expect(idsOf(r.ids, t, K)).toEqual(order.slice(0, n));
        // not normalised: the weights are the probabilities themselves
        order.slice(0, n).forEach((e, i) => {
          expect(r.weights[t * K + i]).toBeCloseTo(probs[e] as number, 5);
        });
      }
    }
    const clamped = routeWithControls(logits, T, softmaxRaw, 0, { topP: { p: 0.01, minK: 2, maxK: 3 } });
    for (let t = 0; t < T; t++) expect(idsOf(clamped.ids, t, clamped.ids.length / T)).toHaveLength(2);
  });

  it('uses fewer experts as p falls', () => {
    const T = 64;
    const logits = randomLogits(T, 4);
    const mean = (p: number) => activeExperts(routeWithControls(logits, T, softmaxNorm, 0, { topP: { p } }), T);
    const series = [0.95, 0.8, 0.6, 0.4, 0.2].map(mean);
    for (let i = 1; i < series.length; i++) expect(series[i]).toBeLessThan(series[i - 1] as number);
  });

  it('skips experts whose weight is below a share of the largest, renormalising', () => {
    const T = 20;
    const logits = randomLogits(T, 5);
    const r = routeWithControls(logits, T, softmaxNorm, 0, { topK: 4, skipRatio: 0.5 });
    const K = r.ids.length / T;
    for (let t = 0; t < T; t++) {
      const { p, order } = probsOf(logits.subarray(t * E, (t + 1) * E));
      const top4 = order.slice(0, 4);
      const kept = top4.filter((e) => (p[e] as number) >= 0.5 * (p[top4[0] as number] as number));
      expect(idsOf(r.ids, t, K)).toEqual(kept);
      const sum = kept.reduce((a, e) => a + (p[e] as number), 0);
      kept.forEach((e, i) => {
        expect(r.weights[t * K + i]).toBeCloseTo((p[e] as number) / sum, 5);
      });
    }
  });

  it('banned experts never appear; forced ones always do, in place of the lowest-ranked', () => {
    const T = 32;
    const logits = randomLogits(T, 6);
    const r = routeWithControls(logits, T, softmaxNorm, 1, {
      ban: [{ layer: 1, expert: 3 }, { layer: 0, expert: 5 }],
      force: [{ layer: 1, expert: 6 }],
    });
    for (let t = 0; t < T; t++) {
      const ids = idsOf(r.ids, t, 2);
      expect(ids).not.toContain(3);
      expect(ids).toContain(6);
      const { order } = probsOf(logits.subarray(t * E, (t + 1) * E));
      const best = order.filter((e) => e !== 3)[0] as number;
      expect(ids).toContain(best === 6 ? (order.filter((e) => e !== 3)[1] as number) : best);
    }
  });

  it('scaling a probability steers selection; rank-only routing takes the r-th expert alone', () => {
    const T = 16;
    const logits = randomLogits(T, 7);
    const boosted = routeWithControls(logits, T, softmaxNorm, 0, { scale: [{ layer: 0, expert: 2, factor: 1e6 }] });
    for (let t = 0; t < T; t++) expect(idsOf(boosted.ids, t, 2)[0]).toBe(2);
    const third = routeWithControls(logits, T, softmaxNorm, 0, { onlyRank: 3 });
    for (let t = 0; t < T; t++) {
      expect(idsOf(third.ids, t, 1)).toEqual([probsOf(logits.subarray(t * E, (t + 1) * E)).order[2]]);
      expect(third.weights[t]).toBe(1); // normalised over itself
    }
  });

  it('refuses bad controls, naming the field', () => {
    expect(() => checkRoutingControls({ topK: 0 }, E)).toThrow(/routing\.topK/);
    expect(() => checkRoutingControls({ topK: 9 }, E)).toThrow(/from 1 to 8/);
    expect(() => checkRoutingControls({ topP: { p: 0 } }, E)).toThrow(/routing\.topP\.p/);
    expect(() => checkRoutingControls({ topP: { p: 0.5, minK: 3, maxK: 2 } }, E)).toThrow(/minK <= maxK/);
    expect(() => checkRoutingControls({ skipRatio: 2 }, E)).toThrow(/skipRatio/);
    expect(() => checkRoutingControls({ ban: [{ layer: 0, expert: 8 }] }, E)).toThrow(/ban\[0\]/);
    expect(() => checkRoutingControls({ scale: [{ layer: 0, expert: 1, factor: -1 }] }, E)).toThrow(/scale\[0\]\.factor/);
  });
});
