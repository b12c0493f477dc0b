// The sampler chain (src/generate/sampler.ts) against distributions computed by hand, in
// llama.cpp's order: penalties -> top-k -> top-p -> min-p -> temperature -> draw
// (common/sampling.cpp, src/llama-sampler.cpp at d32676d77). Draws are seeded.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { argmax, SAMPLER_DEFAULTS, Sampler, type SamplerOptions, seededRandom } from '../../src/generate/sampler.js';
import { rng } from '../helpers/random.js';

/** No filters, temperature 1: candidates() is the plain softmax of the (penalised) logits. */
const PLAIN: SamplerOptions = { temperature: 1, topK: 0, topP: 1, minP: 0 };

const softmax = (xs: number[]) => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};
const normalize = (ps: number[]) => ps.map((p) => p / ps.reduce((a, b) => a + b, 0));
const logits = (xs: number[]) => Float32Array.from(xs);

function expectDistribution(s: Sampler, row: Float32Array, ids: number[], probs: number[]) {
  const c = s.candidates(row);
  expect([...c.ids]).toEqual(ids);
  expect(c.probs.length).toBe(probs.length);
  probs.forEach((p, i) => {
    expect(c.probs[i]).toBeCloseTo(p, 6);
  });
}

describe('greedy (temperature 0)', () => {
  it('is the argmax, lowest id on ties, and draws nothing', () => {
    const s = new Sampler(5, { temperature: 0, seed: 1 });
    expect(s.sample(logits([1, 3, 2, 3, 0]))).toBe(1);
    expect(argmax([0, 5, 5, -1])).toBe(1);
    expectDistribution(s, logits([1, 3, 2, 3, 0]), [1], [1]);
  });

  it('sees the penalties (they come first in the chain)', () => {
    const s = new Sampler(3, { temperature: 0, repeatPenalty: 2 });
    s.accept(0);
    expect(s.sample(logits([4, 3, 1]))).toBe(1); // 4 / 2 = 2 < 3
  });
});

describe('filters and temperature (hand-computed)', () => {
  const row = logits([1, 2, 3, 4, 0]);

  it('top-k keeps the k best, by logit descending', () => {
    expectDistribution(new Sampler(5, { ...PLAIN, topK: 3 }), row, [3, 2, 1], softmax([4, 3, 2]));
    // 1 / (1 + e^-1 + e^-2) = 0.66524
    expect(new Sampler(5, { ...PLAIN, topK: 3 }).candidates(row).probs[0]).toBeCloseTo(0.665241, 5);
  });

  it('temperature divides the logits: softmax([4, 3, 2] / 2)', () => {
    expectDistribution(new Sampler(5, { ...PLAIN, topK: 3, temperature: 2 }), row, [3, 2, 1], [0.50648, 0.307196, 0.186324]);
  });

  const p = [0.5, 0.3, 0.15, 0.05];
  const lp = logits(p.map(Math.log));

  it('top-p keeps the shortest prefix reaching p', () => {
    // cumulative 0.5, 0.8: 0.8 >= 0.75 -> two tokens, renormalised
    expectDistribution(new Sampler(4, { ...PLAIN, topP: 0.75 }), lp, [0, 1], [0.625, 0.375]);
    expectDistribution(new Sampler(4, { ...PLAIN, topP: 0.9 }), lp, [0, 1, 2], normalize([0.5, 0.3, 0.15]));
  });

  it('min-p keeps p_i >= minP * p_max', () => {
    expectDistribution(new Sampler(4, { ...PLAIN, minP: 0.2 }), lp, [0, 1, 2], normalize([0.5, 0.3, 0.15]));
    expectDistribution(new Sampler(4, { ...PLAIN, minP: 0.7 }), lp, [0], [1]);
  });

  it('top-p and min-p see the logits before temperature (llama.cpp order)', () => {
    // Unscaled: cumulative 0.5, 0.8, 0.95 -> top-p 0.85 keeps three; then temperature 0.5
    // squares the probabilities. (Temperature first would have kept two: 0.685 + 0.247 >= 0.85.)
    const s = new Sampler(4, { ...PLAIN, topP: 0.85, temperature: 0.5 });
    expectDistribution(s, lp, [0, 1, 2], normalize([0.25, 0.09, 0.0225]));
  });

  it('top-p beyond the best 256 sorts every candidate', () => {
    const c = new Sampler(1000, { ...PLAIN, topP: 0.5 }).candidates(new Float32Array(1000)); // uniform
    expect(Math.abs(c.ids.length - 500)).toBeLessThanOrEqual(1); // float running sum of 0.001s
    expect([...c.ids]).toEqual(Array.from({ length: c.ids.length }, (_, i) => i)); // ties: lowest id first
  });

  it('top-k, then top-p over the top-k renormalised', () => {
    // top-k 2 -> [0.5, 0.3] renormalised [0.625, 0.375]; top-p 0.6 -> cumulative 0.625 keeps one
    expectDistribution(new Sampler(4, { ...PLAIN, topK: 2, topP: 0.6 }), lp, [0], [1]);
  });

  it('ties are ordered by lowest id; top-k selection equals a full sort', () => {
    const r = rng(7);
    const v = logits(Array.from({ length: 500 }, () => Math.round(r() * 20) / 4)); // many ties
    const full = [...new Sampler(500, PLAIN).candidates(v).ids];
    for (const k of [1, 7, 40, 499]) expect([...new Sampler(500, { ...PLAIN, topK: k }).candidates(v).ids]).toEqual(full.slice(0, k));
    for (let i = 1; i < full.length; i++) {
      const [a, b] = [full[i - 1] as number, full[i] as number];
      expect(v[a] > (v[b] as number) || (v[a] === v[b] && a < b)).toBe(true);
    }
  });

  it("defaults are llama.cpp's: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8", () => {
    expect(SAMPLER_DEFAULTS).toMatchObject({ temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, repeatLastN: 64 });
    const c = new Sampler(5).candidates(logits([0, 0, 0, 0, 10]));
    expect([...c.ids]).toEqual([4]); // min-p 0.05: e^-10 < 0.05
  });
});

describe('penalties', () => {
  it('repetition: positive logits divided, negative multiplied, each distinct token once', () => {
    const s = new Sampler(4, { ...PLAIN, repeatPenalty: 2 });
    for (const t of [0, 1, 1]) s.accept(t);
    expectDistribution(s, logits([2, -2, 1, 0.5]), [0, 2, 3, 1], softmax([1, 1, 0.5, -4]));
  });

  it('frequency per occurrence, presence once', () => {
    const s = new Sampler(3, { ...PLAIN, frequencyPenalty: 0.5, presencePenalty: 0.25 });
    for (const t of [0, 0, 1]) s.accept(t);
    expectDistribution(s, logits([1, 1, 1]), [2, 1, 0], softmax([1, 0.25, -0.25]));
  });

  it('look at the last repeatLastN tokens only; 0 turns them off, -1 looks at all', () => {
    const window = new Sampler(3, { ...PLAIN, repeatPenalty: 2, repeatLastN: 2 });
    for (const t of [0, 1, 2]) window.accept(t); // token 0 has left the window
    expectDistribution(window, logits([2, 2, 2]), [0, 1, 2], softmax([2, 1, 1]));
    const off = new Sampler(3, { ...PLAIN, repeatPenalty: 2, repeatLastN: 0 });
    off.accept(0);
    expectDistribution(off, logits([2, 1, 0]), [0, 1, 2], softmax([2, 1, 0]));
    const all = new Sampler(3, { ...PLAIN, presencePenalty: 1, repeatLastN: -1 });
    for (let i = 0; i < 100; i++) all.accept(i === 0 ? 0 : 1);
    expectDistribution(all, logits([2, 2, 2]), [2, 0, 1], softmax([2, 1, 1]));
  });
});

describe('seeded draws', () => {
  it('the same seed gives the same tokens; the frequencies follow the distribution', () => {
    const row = logits([1, 2, 3, 4, 0]);
    const opts = { ...PLAIN, topK: 3, seed: 1234 };
    const a = new Sampler(5, opts);
    const b = new Sampler(5, opts);
    const counts = new Map<number, number>();
    const N = 20000;
    for (let i = 0; i < N; i++) {
      const t = a.sample(row);
      expect(b.sample(row)).toBe(t);
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    const expected = softmax([4, 3, 2]);
    [3, 2, 1].forEach((id, i) => {
      expect(Math.abs((counts.get(id) ?? 0) / N - (expected[i] as number))).toBeLessThan(0.015);
    });
    expect(counts.has(0) || counts.has(4)).toBe(false);
    expect(a.seed).toBe(1234);
  });

  it('with no filter, a draw is the inverse CDF over candidates() (also when it goes past the best 64)', () => {
    const V = 3000;
    const rng = seededRandom(99);
    const opts = { temperature: 1.3, topK: 0, topP: 1, minP: 0, seed: 5 };
    const a = new Sampler(V, opts);
    const reference = new Sampler(V, opts);
    const u = seededRandom(5); // the sampler's own stream: one number per draw
    let past = 0;
    for (let n = 0; n < 300; n++) {
      // Rows from nearly flat (the draw runs deep) to peaked.
      const spread = n % 3 === 0 ? 0.01 : 4;
      const row = Float32Array.from({ length: V }, () => (rng() - 0.5) * spread);
      const c = reference.candidates(row);
      const x = u();
      let run = 0;
      let i = 0;
      while (i < c.ids.length - 1 && (run += c.probs[i] as number) < x) i++;
      if (i >= 64) past++;
      expect(a.sample(row)).toBe(c.ids[i]);
    }
    expect(past).toBeGreaterThan(50);
  });

  it('different seeds give different streams; the generator is uniform on [0, 1)', () => {
    const x = seededRandom(1);
    const y = seededRandom(2);
    const z = seededRandom(2 ** 32 + 1); // the high part of the seed counts
    const xs = Array.from({ length: 10000 }, x);
    expect(xs.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(Math.abs(xs.reduce((s, v) => s + v, 0) / xs.length - 0.5)).toBeLessThan(0.01);
    expect(Array.from({ length: 4 }, y)).not.toEqual(xs.slice(0, 4));
    expect(Array.from({ length: 4 }, z)).not.toEqual(xs.slice(0, 4));
    expect(Array.from({ length: 4 }, seededRandom(1))).toEqual(xs.slice(0, 4));
  });

  it('without a seed one is chosen and reported', () => {
    const s = new Sampler(3);
    expect(Number.isSafeInteger(s.seed)).toBe(true);
  });
});

describe('validation', () => {
  it('refuses bad options, naming them', () => {
    expect(() => new Sampler(3, { topP: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => new Sampler(3, { topP: 1.5 })).toThrow(/topP/);
    expect(() => new Sampler(3, { repeatLastN: -2 })).toThrow(/repeatLastN/);
    expect(() => new Sampler(3, { temperature: Number.NaN })).toThrow(/temperature/);
    expect(() => new Sampler(3, { seed: -1 })).toThrow(/seed/);
    expect(() => new Sampler(3, { repeatPenalty: 0 })).toThrow(/repeatPenalty/);
    expect(() => new Sampler(3).candidates(new Float32Array(4))).toThrow(/4 entries/);
  });
});
