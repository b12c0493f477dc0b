// Routing trace analysis (src/router/analysis.ts) on small hand-made traces whose every figure
// is worked out by hand in the comments here: expert load and cv, router entropy of chosen
// logits, inter-layer affinity rows, SRP and SCH for segment lengths 1 and 2, Belady vs LRU on
// the classic cyclic sequence; then simulateCache's LRU against a plain array LRU written here,
// and Belady never beaten by an online policy, on random traces.
import { describe, expect, it } from 'vitest';
import {
  analyzeTrace,
  expertLoad,
  formatAnalysis,
  interLayerAffinity,
  routerEntropy,
  routingConsistency,
  simulateCache,
  traceSuperExperts,
} from '../../src/router/analysis.js';
import { type RoutingTrace, TraceRecorder } from '../../src/router/trace.js';
import { rng } from '../helpers/random.js';

/** A trace from per-layer selections sel[l][t] (K ids each) and per-layer logit rows. */
function build(E: number, K: number, sel: number[][][], logits?: (l: number, t: number) => number[], peaks?: number[][]): RoutingTrace {
  const L = sel.length;
  const N = (sel[0] as number[][]).length;
  const r = new TraceRecorder({ model: 'hand', architecture: 'test', layers: sel.map((_, l) => 2 * l), experts: E, used: K });
  r.beginStep(Array.from({ length: N }, (_, t) => t), Array.from({ length: N }, (_, t) => `tok${t}`));
  for (let l = 0; l < L; l++) {
    const rows = Array.from({ length: N }, (_, t) => (logits ? logits(l, t) : new Array<number>(E).fill(0)));
    r.record(2 * l, Int32Array.from((sel[l] as number[][]).flat()), new Float32Array(N * K).fill(1 / K), Float32Array.from(rows.flat()));
  }
  peaks?.forEach((p, l) => {
    r.recordPeaks(2 * l, p);
  });
  return r.finish();
}

// Blocks 0 and 2, E = 4, K = 2, six tokens.
const A = [[0, 1], [0, 1], [0, 2], [2, 3], [2, 3], [0, 3]];
const B = [[1, 2], [1, 2], [1, 3], [0, 3], [0, 3], [1, 0]];
// Selected experts get logit ln 3, the others 0 (softmax 3/8, 3/8, 1/8, 1/8), except token 5 of
// block 0, all 0 (uniform).
const LN3 = Math.log(3);
const hand = build(4, 2, [A, B], (l, t) => {
  const row = [0, 0, 0, 0];
  if (l === 0 && t === 5) return row;
  for (const e of (l === 0 ? A : B)[t] as number[]) row[e] = LN3;
  return row;
});

describe('figures of a hand-made trace', () => {
  it('expert load: counts, shares and cv = population std / mean', () => {
    const [a, b] = expertLoad(hand);
    // block 0: e0 in t0 t1 t2 t5, e1 in t0 t1, e2 in t2 t3 t4, e3 in t3 t4 t5.
    expect(a?.counts).toEqual([4, 2, 3, 3]);
    expect(a?.share).toEqual([4 / 12, 2 / 12, 3 / 12, 3 / 12]);
    // mean 3, deviations 1, -1, 0, 0: variance 2 / 4, cv = sqrt(0.5) / 3.
    expect(a?.cv).toBeCloseTo(Math.sqrt(0.5) / 3, 12);
    expect(b?.counts).toEqual([3, 4, 2, 3]);
    expect(b?.cv).toBeCloseTo(Math.sqrt(0.5) / 3, 12);
    expect(a?.layer).toBe(0);
    expect(b?.layer).toBe(2);
  });

  it('router entropy: mean, min and max of -sum p ln p per layer', () => {
    const h38 = -(2 * (3 / 8) * Math.log(3 / 8) + 2 * (1 / 8) * Math.log(1 / 8));
    const [a, b] = routerEntropy(hand);
    expect(a?.mean).toBeCloseTo((5 * h38 + Math.log(4)) / 6, 6);
    expect(a?.min).toBeCloseTo(h38, 6);
    expect(a?.max).toBeCloseTo(Math.log(4), 6);
    expect(b?.mean).toBeCloseTo(h38, 6);
    expect(b?.min).toBeCloseTo(h38, 6);
    expect(b?.max).toBeCloseTo(h38, 6);
  });

  it('inter-layer affinity: P(j at block 2 | i at block 0), row by row', () => {
    const [af] = interLayerAffinity(hand);
    expect(af?.from).toBe(0);
    expect(af?.to).toBe(2);
    const m = af?.matrix as number[][];
    // e0 at t0 t1 t2 t5 -> block 2 {1,2} {1,2} {1,3} {1,0}: j0 1, j1 4, j2 2, j3 1 of 4.
    expect(m[0]).toEqual([1 / 4, 1, 2 / 4, 1 / 4]);
    // e1 at t0 t1 -> {1,2} {1,2}.
    expect(m[1]).toEqual([0, 1, 1, 0]);
    // e2 at t2 t3 t4 -> {1,3} {0,3} {0,3}.
    expect(m[2]).toEqual([2 / 3, 1 / 3, 0, 1]);
    // e3 at t3 t4 t5 -> {0,3} {0,3} {1,0}.
    expect(m[3]).toEqual([1, 1 / 3, 0, 2 / 3]);
    expect(interLayerAffinity(build(4, 2, [A]))).toEqual([]);
  });

  it('SRP for segment lengths 1 and 2', () => {
    const c = routingConsistency(hand, [1, 2, 99], [1]);
    expect(c.segments).toEqual([1, 2]); // 99 > N tokens: no segment
    // m = 1, threshold 1: the set is exactly the token's experts, F1 = 1.
    expect(c.srp.map((r) => r.values[0])).toEqual([1, 1]);
    expect(c.srpAll[0]).toBe(1);
    // m = 2, block 0: windows (t0,t1) c=[2,2,0,0], (t1,t2) [2,1,1,0], (t2,t3) [1,0,2,1],
    // (t3,t4) [0,0,2,2], (t4,t5) [1,0,1,2]; act = 5 x 4 = 20.
    //   v=0: match 20, pred 5 x 4 x 2 = 40: F1 = 40/60
    //   v=1: sets of 2,3,3,2,3 experts: match 20, pred 26: F1 = 40/46
    //   v=2: sets {0,1} {0} {2} {2,3} {3}: match 4+2+2+4+2 = 14, pred 14: F1 = 28/34
    expect(c.srp[0]?.values[1]).toBeCloseTo(40 / 46, 12);
    // Block 2 is block 0 with experts renamed (0->1, 1->2, 2->3, 3->0): the same windows'
    // counts, so the same 40/46; pooled (one threshold, sums of both): 80/92.
    expect(c.srp[1]?.values[1]).toBeCloseTo(40 / 46, 12);
    expect(c.srpAll[1]).toBeCloseTo(80 / 92, 12);
  });

  it('SCH for segment lengths 1 and 2 (K slots per layer)', () => {
    const c = routingConsistency(hand, [1, 2], [1, 1.5]);
    const row = (layer: number, multiple: number) => c.sch.find((r) => r.layer === layer && r.multiple === multiple);
    // Block 0, 2 slots, m = 1 (LRU): t0 0 1 fill the cache (warm start, hits); t1 hits 2;
    // t2: 0 hit, 2 miss, evicts 1 (both have no use ahead; 1 is older); t3: 2 hit, 3 miss,
    // evicts 0; t4: 2 3 hit; t5: 0 miss (evicts 2: 3 is used by t5 itself), 3 hit. 9 of 12.
    expect(row(0, 1)?.slots).toBe(2);
    expect(row(0, 1)?.values[0]).toBeCloseTo(9 / 12, 12);
    // m = 2 makes the same choices here (t2 evicts 1: neither 0 nor 1 is used by t3): 9 of 12.
    expect(row(0, 1)?.values[1]).toBeCloseTo(9 / 12, 12);
    // 3 slots: t2's expert 2 is the third distinct (warm); only t3's 3 misses. 11 of 12.
    expect(row(0, 1.5)?.slots).toBe(3);
    expect(row(0, 1.5)?.values).toEqual([11 / 12, 11 / 12]);
    // Block 2, renamed, makes the same choices (ties go by recency, not by expert id).
    expect(row(2, 1)?.values).toEqual([9 / 12, 9 / 12]);
    expect(c.schMean.find((r) => r.multiple === 1)?.values).toEqual([9 / 12, 9 / 12]);
  });

  it('SCH: a longer segment keeps the expert needed next (one layer, K = 1, 2 slots)', () => {
    const t = build(3, 1, [[[0], [1], [2], [0], [1]]]);
    const c = routingConsistency(t, [1, 2], [2]);
    // m = 1 is LRU: t0 t1 warm hits; t2 evicts 0; t3 evicts 1; t4 misses: 2 of 5.
    // m = 2: at t2 the segment (t2, t3) uses 0 again, so 1 goes; t3 hits; t4 misses: 3 of 5.
    expect(c.sch[0]?.values).toEqual([2 / 5, 3 / 5]);
  });
});

describe('cache simulation', () => {
  it('Belady beats LRU on the cyclic sequence 0 1 2 3 0 1 2 3 with 3 slots', () => {
    const t = build(4, 1, [[[0], [1], [2], [3], [0], [1], [2], [3]]]);
    const r = simulateCache(t, [3, 4], ['lru', 'optimal']);
    // LRU always evicts the expert needed next: no hits. MIN: 4 cold misses; 3 evicts 2 (used
    // furthest ahead), then 0 and 1 hit, 2 misses and evicts 0 (never used again), 3 hits: 3 hits.
    expect(r).toEqual([
      { policy: 'lru', slots: 3, hitRate: 0 },
      { policy: 'lru', slots: 4, hitRate: 4 / 8 },
      { policy: 'optimal', slots: 3, hitRate: 3 / 8 },
      { policy: 'optimal', slots: 4, hitRate: 4 / 8 },
    ]);
  });

  it('with every expert fitting, only the first use of each (layer, expert) misses', () => {
    // 24 demands, 8 distinct (layer, expert) keys.
    for (const r of simulateCache(hand, [8, 20])) expect(r.hitRate).toBeCloseTo(16 / 24, 12);
  });

  it('LRU equals a plain array LRU, and no policy beats Belady, on random traces', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const r = rng(seed);
      const E = 6;
      const K = 1 + (seed % 3);
      const L = 1 + (seed % 3);
      const N = 40;
      // Locally consistent routing: a token often repeats part of the previous one's experts.
      const sel = Array.from({ length: L }, () => {
        const rows: number[][] = [];
        for (let t = 0; t < N; t++) {
          const pick: number[] = [];
          while (pick.length < K) {
            const prev = rows[t - 1];
            const e = prev && r() < 0.5 ? (prev[Math.floor(r() * K)] as number) : Math.floor(r() * E);
            if (!pick.includes(e)) pick.push(e);
          }
          rows.push(pick);
        }
        return rows;
      });
      const t = build(E, K, sel);
      const budgets = Array.from({ length: L * E - K + 1 }, (_, i) => K + i);
      const sim = simulateCache(t, budgets);
      for (const slots of budgets) {
        // Reference: resident keys in an array, least recent first; a (token, layer)'s own experts are not evicted.
        const order: number[] = [];
        let hits = 0;
        let demands = 0;
        for (let n = 0; n < N; n++) {
          for (let l = 0; l < L; l++) {
            const group = ((sel[l] as number[][])[n] as number[]).map((e) => l * E + e);
            for (const key of group) {
              demands++;
              const i = order.indexOf(key);
              if (i >= 0) {
                hits++;
                order.splice(i, 1);
              } else if (order.length >= slots) {
                const v = order.findIndex((k) => !group.includes(k));
                order.splice(v >= 0 ? v : 0, 1);
              }
              order.push(key);
            }
          }
        }
        const got = (p: string) => sim.find((x) => x.policy === p && x.slots === slots)?.hitRate as number;
        expect(got('lru'), `seed ${seed}, ${slots} slots`).toBeCloseTo(hits / demands, 12);
        for (const p of ['lru', 'lfu', 'slru']) expect(got(p)).toBeLessThanOrEqual(got('optimal') + 1e-12);
      }
    }
  });

  it('rejects unknown policies and bad budgets', () => {
    expect(() => simulateCache(hand, [0])).toThrow(/budget 0/);
    expect(() => simulateCache(hand, [2], ['fifo'])).toThrow(/unknown policy 'fifo'/);
  });
});

describe('super experts and the whole analysis', () => {
  it('finds super experts from peaks (>= 8x the median peak of used experts), [] without peaks', () => {
    // Used peaks sorted: 1 1 1 1 1 1 2 100 -> median (index 4) 1; only 100 >= 8.
    const t = build(4, 2, [A, B], undefined, [
      [1, 1, 1, 100],
      [1, 2, 1, 1],
    ]);
    expect(traceSuperExperts(t)).toEqual([{ layer: 0, expert: 3 }]);
    expect(traceSuperExperts(hand)).toEqual([]);
    // An expert never selected does not count, whatever its peak.
    const unused = build(4, 2, [[[0, 1], [0, 1]]], undefined, [[1, 1, 100, 1]]);
    expect(traceSuperExperts(unused)).toEqual([]);
  });

  it('analyzeTrace gathers everything, JSON-friendly, with default budgets of 10/25/50% of L x E (at least K)', () => {
    const a = analyzeTrace(hand);
    expect(a.budgets).toEqual([2, 4]); // 8 slots: 0.8 -> K = 2, 2, 4
    expect(a.cache).toHaveLength(4 * 2);
    expect(a.consistency.segments).toEqual([1, 2, 4]);
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
    const text = formatAnalysis(a);
    expect(text).toContain('hand (test): 6 tokens, 2 MoE layers, 4 experts, 2 per token');
    expect(text).toContain('optimal');
    expect(text).toMatch(/SRP\s+1\.000\s+0\.870/);
  });

  it('copes with an empty trace', () => {
    const empty = new TraceRecorder({ model: 'e', architecture: 'x', layers: [0, 1], experts: 4, used: 2 }).finish();
    const a = analyzeTrace(empty);
    expect(a.load[0]?.cv).toBe(0);
    expect(a.entropy[0]?.mean).toBe(0);
    expect(a.consistency.segments).toEqual([]);
    expect(a.cache.every((r) => r.hitRate === 0)).toBe(true);
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
  });
});
