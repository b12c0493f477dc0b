/**
 * Self-contrast decoding (src/generate/contrast.ts, SCMoE: Shi et al. 2024) on a five-token case
 * worked out by hand: (1 + β)·z_strong − β·z_weak on the tokens with p_strong ≥ α·max p_strong,
 * −∞ elsewhere; the plausibility mask checked on probabilities; the log-probability form of the
 * contrast gives the same distribution; β = 0 keeps the strong ranking; invalid options.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { CONTRAST_DEFAULTS, contrastLogits } from '../../src/generate/contrast.js';

const NEG = Number.NEGATIVE_INFINITY;
const row = (xs: number[]) => Float32Array.from(xs);
const softmax = (xs: ArrayLike<number>) => {
  const v = Array.from(xs);
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};
const argmax = (xs: ArrayLike<number>) => Array.from(xs).reduce((best, x, i, a) => (x > (a[best] as number) ? i : best), 0);

const STRONG = row([2, 1, 0, -1, 1.5]);
const WEAK = row([3, 0, 1, 0, -1]);

describe('contrastLogits', () => {
  it('equals the documented formula on a hand-computed case (β = 0.5, α = 0.1)', () => {
    // Plausible: p_s(x) / max p_s = e^(z - 2) >= 0.1  <=>  z >= 2 + ln 0.1 = -0.3026: tokens 0, 1, 2, 4.
    // 1.5·2 − 0.5·3 = 1.5; 1.5·1 − 0.5·0 = 1.5; 1.5·0 − 0.5·1 = −0.5; token 3 masked; 1.5·1.5 + 0.5 = 2.75
    const out = contrastLogits(STRONG, WEAK, { beta: 0.5, alpha: 0.1 });
    expect(Array.from(out)).toEqual([1.5, 1.5, -0.5, NEG, 2.75]);
    // the contrast moves the choice from the strong argmax (0) to token 4, which the weak routing dislikes
    expect(argmax(STRONG)).toBe(0);
    expect(argmax(out)).toBe(4);
  });

  it('masks exactly the tokens below α times the strong top probability', () => {
    const p = softmax(STRONG);
    const top = Math.max(...p);
    for (const alpha of [0, 0.05, 0.1, 0.2, 0.5, 0.7, 1]) {
      const out = contrastLogits(STRONG, WEAK, { beta: 0.5, alpha });
      p.forEach((px, x) => {
        expect(out[x] === NEG, `alpha ${alpha}, token ${x}`).toBe(px < alpha * top);
      });
    }
    // α = 1 keeps only the strong argmax; α = 0 keeps every token
    expect(Array.from(contrastLogits(STRONG, WEAK, { beta: 0.5, alpha: 1 })).filter((z) => z !== NEG)).toHaveLength(1);
    expect(Array.from(contrastLogits(STRONG, WEAK, { beta: 0.5, alpha: 0 })).every((z) => z !== NEG)).toBe(true);
  });

  it('gives the same distribution as the contrast written on log-probabilities', () => {
    const logp = (xs: Float32Array) => softmax(xs).map(Math.log);
    const ls = logp(STRONG);
    const lw = logp(WEAK);
    const beta = 0.7;
    const alpha = 0.1;
    const top = Math.max(...softmax(STRONG));
    const viaLogProbs = softmax(ls.map((l, x) => (Math.exp(l) >= alpha * top ? (1 + beta) * l - beta * (lw[x] as number) : NEG)));
    const viaLogits = softmax(contrastLogits(STRONG, WEAK, { beta, alpha }));
    viaLogits.forEach((p, x) => {
      expect(p).toBeCloseTo(viaLogProbs[x] as number, 6);
    });
  });

  it('β = 0 keeps the strong logits (and so their ranking) on the plausible tokens', () => {
    const out = contrastLogits(STRONG, WEAK, { beta: 0, alpha: 0 });
    expect(Array.from(out)).toEqual(Array.from(STRONG));
    // a −∞ weak logit does not turn into NaN when β = 0
    const withInf = contrastLogits(STRONG, row([NEG, 0, 0, 0, 0]), { beta: 0, alpha: 0.1 });
    expect(Array.from(withInf)).toEqual([2, 1, 0, NEG, 1.5]);
  });

  it('documents the reference defaults', () => {
    expect(CONTRAST_DEFAULTS).toEqual({ beta: 0.5, alpha: 0.1 });
  });

  it('refuses rows of different or zero length and out-of-range options', () => {
    const ok = { beta: 0.5, alpha: 0.1 };
    expect(() => contrastLogits(STRONG, row([1, 2]), ok)).toThrow(InvalidArgumentError);
    expect(() => contrastLogits(row([]), row([]), ok)).toThrow(/same non-empty vocabulary/);
    for (const beta of [-0.1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => contrastLogits(STRONG, WEAK, { beta, alpha: 0.1 })).toThrow(/beta must be/);
    }
    for (const alpha of [-0.1, 1.5, Number.NaN]) {
      expect(() => contrastLogits(STRONG, WEAK, { beta: 0.5, alpha })).toThrow(/alpha must be in \[0, 1\]/);
    }
  });
});
