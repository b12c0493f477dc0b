// Expert cache policies (src/experts/policy.ts) against brute-force reference simulators written
// here from the definitions (LRU: an array ordered by last use; LFU: counts recomputed from the
// whole trace as sum of 2^-(agings since each use); SLRU: two arrays, Karedla et al. 1994),
// on random traces with random evictable masks; then a scan-plus-hot-set trace through a tiny
// cache simulator showing that SLRU and LFU keep the hot set where a one-off scan flushes LRU.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { type CachePolicy, createPolicy, POLICY_NAMES, type PolicyName } from '../../src/experts/policy.js';
import { rng } from '../helpers/random.js';

type Evictable = (key: number) => boolean;
type Reference = Omit<CachePolicy, 'name'>;

/** LRU: resident keys in an array, least recently admitted/touched first. */
function referenceLru(): Reference {
  const order: number[] = [];
  return {
    admit: (key) => void order.push(key),
    touch: (key) => {
      const i = order.indexOf(key);
      if (i >= 0) order.push(...order.splice(i, 1));
    },
    victim: (ok: Evictable) => order.find(ok),
    remove: (key) => void order.splice(order.indexOf(key), 1),
  };
}

/** LFU from the full event log: a use j counts 2^-(agings after it); ties: older last event. */
function referenceLfu(capacity: number): Reference {
  const period = 10 * capacity;
  const log: { key: number; touch: boolean }[] = [];
  const resident = new Set<number>();
  return {
    admit: (key) => {
      log.push({ key, touch: false });
      resident.add(key);
    },
    touch: (key) => void log.push({ key, touch: true }),
    victim: (ok: Evictable) => {
      const total = log.filter((e) => e.touch).length;
      const score = new Map<number, { count: number; last: number }>();
      for (const key of resident) score.set(key, { count: 0, last: -1 });
      let j = 0;
      log.forEach((e, i) => {
        if (e.touch) j++;
        const s = score.get(e.key);
        if (!s) return;
        s.last = i; // the log has only admits and touches, so this is the last of either
        // Aging happens right after touches period, 2*period, ...: those at or after j halve it.
        if (e.touch) s.count += 2 ** -(Math.floor(total / period) - Math.floor((j - 1) / period));
      });
      const candidates = [...resident].filter(ok);
      candidates.sort((a, b) => score.get(a)!.count - score.get(b)!.count || score.get(a)!.last - score.get(b)!.last);
      return candidates[0];
    },
    remove: (key) => void resident.delete(key),
  };
}

/** SLRU: probation and protected arrays (LRU first), protected at most floor(0.8 capacity). */
function referenceSlru(capacity: number): Reference {
  const limit = Math.floor(0.8 * capacity);
  const probation: number[] = [];
  const protectedKeys: number[] = [];
  const loadUsePending = new Set<number>();
  const take = (a: number[], key: number) => a.splice(a.indexOf(key), 1);
  return {
    admit: (key) => {
      probation.push(key);
      loadUsePending.add(key);
    },
    touch: (key) => {
      if (protectedKeys.includes(key)) {
        protectedKeys.push(...take(protectedKeys, key));
      } else if (probation.includes(key)) {
        take(probation, key);
        if (loadUsePending.delete(key) || limit === 0) {
          probation.push(key);
        } else {
          protectedKeys.push(key);
          if (protectedKeys.length > limit) probation.push(protectedKeys.shift()!);
        }
      }
    },
    victim: (ok: Evictable) => probation.find(ok) ?? protectedKeys.find(ok),
    remove: (key) => {
      loadUsePending.delete(key);
      take(probation.includes(key) ? probation : protectedKeys, key);
    },
  };
}

function reference(name: PolicyName, capacity: number): Reference {
  return name === 'lru' ? referenceLru() : name === 'lfu' ? referenceLfu(capacity) : referenceSlru(capacity);
}

/**
 * Drives a policy and its reference through the same random cache run: demand loads (admit then
 * touch), hits, prefetches (admit only), evictions under random masks, removals, touches of keys
 * that are not resident (pinned ones). Compares every victim. Returns how many were compared.
 */
function fuzz(name: PolicyName, capacity: number, steps: number, seed: number): number {
  const r = rng(seed);
  const policy = createPolicy(name, capacity);
  const ref = reference(name, capacity);
  const resident = new Set<number>();
  const universe = 3 * capacity + 2;
  // Skewed key choice (a few hot experts, as routing gives), sometimes uniform.
  const pick = () => Math.floor(universe * (r() < 0.5 ? r() ** 3 : r()));
  let compared = 0;
  const victim = (): number | undefined => {
    const mask = new Set([...resident].filter(() => r() < 0.7));
    const ok = (key: number) => mask.has(key);
    const got = policy.victim(ok);
    expect(got).toBe(ref.victim(ok));
    if (got !== undefined) expect(mask.has(got)).toBe(true);
    compared++;
    return got;
  };
  const both = (op: 'admit' | 'touch' | 'remove', key: number) => {
    policy[op](key);
    ref[op](key);
    if (op === 'admit') resident.add(key);
    if (op === 'remove') resident.delete(key);
  };
  /** Makes room for one key; false when the mask allowed no victim. */
  const room = (): boolean => {
    if (resident.size < capacity) return true;
    const v = victim();
    if (v === undefined) return false;
    both('remove', v);
    return true;
  };
  for (let step = 0; step < steps; step++) {
    const u = r();
    const key = pick();
    if (u < 0.7) {
      if (resident.has(key)) both('touch', key);
      else if (room()) {
        both('admit', key);
        both('touch', key);
      }
    } else if (u < 0.8) {
      if (!resident.has(key) && room()) both('admit', key);
    } else if (u < 0.85) {
      const keys = [...resident];
      if (keys.length > 0) both('remove', keys[Math.floor(r() * keys.length)]!);
    } else if (u < 0.9) {
      if (!resident.has(key)) both('touch', key);
    } else {
      victim();
    }
  }
  return compared;
}

describe.each(POLICY_NAMES)('%s against its brute-force reference', (name) => {
  it.each([1, 2, 5, 8, 13])('capacity %i: every victim agrees on random traces and masks', (capacity) => {
    let compared = 0;
    for (let seed = 1; seed <= 3; seed++) compared += fuzz(name, capacity, 1500, seed * 7919 + capacity);
    expect(compared).toBeGreaterThan(300);
  });
});

describe('policy behaviour in small cases', () => {
  it('lru evicts the least recently admitted or touched key, skipping the unevictable', () => {
    const p = createPolicy('lru', 3);
    for (const k of [10, 11, 12]) p.admit(k);
    p.touch(10);
    expect(p.victim(() => true)).toBe(11);
    expect(p.victim((k) => k !== 11)).toBe(12);
    expect(p.victim(() => false)).toBeUndefined();
  });

  it('slru: the use a key was loaded for does not promote it; the next use does', () => {
    const p = createPolicy('slru', 5); // protected holds at most 4
    p.admit(1);
    p.touch(1); // the load's use: stays on probation
    p.admit(2);
    p.touch(2);
    p.touch(2); // a re-reference: protected
    p.admit(3);
    p.touch(3);
    // Probation LRU first (1, then 3), protected (2) only when probation has nothing evictable.
    expect(p.victim(() => true)).toBe(1);
    expect(p.victim((k) => k !== 1)).toBe(3);
    expect(p.victim((k) => k === 2)).toBe(2);
  });

  it('slru: a full protected segment demotes its LRU key to probation MRU', () => {
    const p = createPolicy('slru', 2); // protected holds 1
    p.admit(1);
    p.touch(1);
    p.touch(1); // 1 protected
    p.admit(2);
    p.touch(2);
    p.touch(2); // 2 protected, 1 demoted to probation
    expect(p.victim(() => true)).toBe(1);
  });

  it('lfu remembers the uses of evicted keys and halves all counts every 10 * capacity touches', () => {
    const p = createPolicy('lfu', 2);
    p.admit(1);
    for (let i = 0; i < 5; i++) p.touch(1); // count 5
    p.remove(1);
    p.admit(2);
    for (let i = 0; i < 3; i++) p.touch(2); // count 3
    p.admit(1); // returns with its history: 5 > 3
    expect(p.victim(() => true)).toBe(2);
    // 8 touches so far; 12 more of key 3 reach 20 = 10 * capacity: counts 2.5, 1.5, 6 after.
    for (let i = 0; i < 12; i++) p.touch(3);
    p.remove(2);
    p.admit(3);
    p.touch(1); // 3.5 vs 6
    expect(p.victim(() => true)).toBe(1);
  });

  it('lfu breaks equal counts by recency', () => {
    const p = createPolicy('lfu', 4);
    for (const k of [1, 2, 3]) p.admit(k);
    for (const k of [3, 1, 2]) p.touch(k);
    expect(p.victim(() => true)).toBe(3);
  });
});

/** Hits of a demand-only cache of `capacity` experts over a trace of keys. */
function simulateHits(name: PolicyName, capacity: number, trace: number[]): { hits: number; hotHits: number } {
  const policy = createPolicy(name, capacity);
  const resident = new Set<number>();
  let hits = 0;
  let hotHits = 0;
  for (const key of trace) {
    if (resident.has(key)) {
      hits++;
      if (key < 100) hotHits++;
    } else {
      if (resident.size === capacity) {
        const v = policy.victim(() => true)!;
        policy.remove(v);
        resident.delete(v);
      }
      policy.admit(key);
      resident.add(key);
    }
    policy.touch(key);
  }
  return { hits, hotHits };
}

describe('scan resistance', () => {
  it('a one-off scan flushes the hot set from LRU but not from SLRU or LFU', () => {
    const r = rng(42);
    const capacity = 8;
    const hot = [0, 1, 2, 3];
    const trace: number[] = [];
    let scanKey = 100;
    for (let phase = 0; phase < 5; phase++) {
      for (let round = 0; round < 20; round++) trace.push(...[...hot].sort(() => r() - 0.5));
      for (let i = 0; i < 12; i++) trace.push(scanKey++); // distinct keys, each used once
    }
    const hotAccesses = trace.filter((k) => k < 100).length;
    const lru = simulateHits('lru', capacity, trace);
    const slru = simulateHits('slru', capacity, trace);
    const lfu = simulateHits('lfu', capacity, trace);
    // LRU misses the whole hot set after every scan; the others only on first use.
    expect(lru.hotHits).toBe(hotAccesses - hot.length * 5);
    expect(slru.hotHits).toBe(hotAccesses - hot.length);
    expect(lfu.hotHits).toBe(hotAccesses - hot.length);
    expect(slru.hits).toBeGreaterThan(lru.hits);
    expect(lfu.hits).toBeGreaterThan(lru.hits);
  });
});

describe('errors', () => {
  it('names the valid policies for an unknown name', () => {
    expect(() => createPolicy('fifo' as PolicyName, 4)).toThrow(InvalidArgumentError);
    expect(() => createPolicy('fifo' as PolicyName, 4)).toThrow(/'fifo'.*lru, lfu, slru/);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects capacity %s', (capacity) => {
    for (const name of POLICY_NAMES) expect(() => createPolicy(name, capacity)).toThrow(/capacity must be a positive integer/);
  });

  it.each(POLICY_NAMES)('%s rejects admitting a resident key and removing a key that is not resident', (name) => {
    const p = createPolicy(name, 2);
    p.admit(7);
    expect(() => p.admit(7)).toThrow(/already resident/);
    expect(() => p.remove(8)).toThrow(/not resident/);
    p.remove(7);
    expect(() => p.remove(7)).toThrow(/not resident/);
  });
});
