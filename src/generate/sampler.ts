/**
 * Token sampling: one row of logits [V] -> the next token, as llama.cpp's default sampler chain
 * does it. Reference: llama.cpp d32676d77 common/sampling.cpp (common_sampler_init: the chain
 * built from common_params_sampling's defaults in common/common.h) and src/llama-sampler.cpp
 * (each sampler's `apply`).
 *
 * The order (llama.cpp's default; DRY, top-n-sigma, typical-p and XTC sit in that chain too but
 * are off by default and not implemented here):
 *
 *   penalties -> top-k -> top-p -> min-p -> temperature -> dist (the seeded draw)
 *
 *   penalties    over the last `repeatLastN` accepted tokens (the prompt's included, as
 *                llama-completion accepts them): each distinct token with count c gets
 *                `logit <= 0 ? logit * repeat : logit / repeat`, then `- c * frequency - presence`
 *   top-k        keep the k highest logits (k <= 0: keep all)
 *   top-p        softmax over what is left; keep the shortest prefix (by logit, descending) whose
 *                probabilities sum to >= p (p >= 1: keep all)
 *   min-p        keep the tokens whose logit >= max + ln(p), i.e. p_i >= p * p_max (p <= 0: keep all)
 *   temperature  logits / t. Top-p and min-p therefore see the *unscaled* logits (llama.cpp's order)
 *   dist         softmax of the scaled logits, one uniform draw u: the first candidate whose
 *                running sum reaches u * sum
 *
 * Temperature <= 0 is greedy: the argmax of the penalised logits, lowest id on ties (the filters
 * in between never remove the best token). Arithmetic on logits is float32 as in llama.cpp
 * (Math.fround at each step); the draw uses our own seeded PRNG (xoshiro128**), so a seed
 * reproduces our samples exactly but not llama.cpp's std::mt19937 stream. Candidates are ordered
 * by logit descending, ties by lowest id, before the draw. The normalising sum runs over the
 * candidates in that order, or in id order when no filter removed any (then the draw needs only
 * the best few sorted: see drawUnfiltered).
 */
import { randomInt } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.js';

export interface SamplerOptions {
  /** 0 (or less) = greedy. Default 0.8. */
  readonly temperature?: number;
  /** Default 40; <= 0 disables. */
  readonly topK?: number;
  /** Default 0.95; 1 disables. */
  readonly topP?: number;
  /** Default 0.05; 0 disables. */
  readonly minP?: number;
  /** Repetition penalty (llama.cpp `--repeat-penalty`). Default 1 (off). */
  readonly repeatPenalty?: number;
  /** Tokens the penalties look back over; -1 = every accepted token, 0 = penalties off. Default 64. */
  readonly repeatLastN?: number;
  /** Subtracted once per occurrence in the window. Default 0. */
  readonly frequencyPenalty?: number;
  /** Subtracted once for any occurrence in the window. Default 0. */
  readonly presencePenalty?: number;
  /** Seed of the draw (an integer 0 .. 2^53 - 1); default: a random one (see `Sampler.seed`). */
  readonly seed?: number;
}

/** llama.cpp's defaults (common_params_sampling). */
export const SAMPLER_DEFAULTS = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  repeatLastN: 64,
  frequencyPenalty: 0,
  presencePenalty: 0,
} as const;

/** What is left after the filters, ordered by logit descending, and its distribution. */
export interface Candidates {
  readonly ids: Int32Array;
  /** Probabilities of `ids` (sum 1). */
  readonly probs: Float64Array;
}

const f = Math.fround;

export class Sampler {
  readonly seed: number;
  private readonly o: Required<Omit<SamplerOptions, 'seed'>>;
  private readonly random: () => number;
  /** The penalty window: the last accepted tokens and their counts. */
  private readonly recent: number[] = [];
  private readonly counts = new Map<number, number>();

  constructor(
    readonly vocabSize: number,
    options: SamplerOptions = {},
  ) {
    const { seed: given, ...rest } = options;
    this.o = { ...SAMPLER_DEFAULTS, ...definedOnly(rest) };
    const o = this.o;
    check('temperature', o.temperature, Number.isFinite(o.temperature), 'a finite number');
    check('topK', o.topK, Number.isInteger(o.topK), 'an integer (<= 0 disables)');
    check('topP', o.topP, o.topP >= 0 && o.topP <= 1, 'a number from 0 to 1');
    check('minP', o.minP, o.minP >= 0 && o.minP <= 1, 'a number from 0 to 1');
    check('repeatPenalty', o.repeatPenalty, o.repeatPenalty > 0 && Number.isFinite(o.repeatPenalty), 'a positive number');
    check('repeatLastN', o.repeatLastN, Number.isInteger(o.repeatLastN) && o.repeatLastN >= -1, 'an integer >= -1');
    check('frequencyPenalty', o.frequencyPenalty, Number.isFinite(o.frequencyPenalty), 'a finite number');
    check('presencePenalty', o.presencePenalty, Number.isFinite(o.presencePenalty), 'a finite number');
    const seed = given ?? randomInt(0, 2 ** 32);
    check('seed', seed, Number.isSafeInteger(seed) && seed >= 0, 'an integer from 0 to 2^53 - 1');
    this.seed = seed;
    this.random = seededRandom(seed);
  }

  /** Adds a token to the penalty window (call it for the prompt's tokens and each generated one). */
  accept(token: number): void {
    const n = this.o.repeatLastN;
    if (n === 0) return;
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
    this.recent.push(token);
    if (n > 0 && this.recent.length > n) {
      const old = this.recent.shift() as number;
      const c = (this.counts.get(old) as number) - 1;
      if (c === 0) this.counts.delete(old);
      else this.counts.set(old, c);
    }
  }

  /** The next token for `logits` [V]. */
  sample(logits: Float32Array): number {
    const chain = this.filter(logits);
    if (chain.ids === null) return this.drawUnfiltered(chain.l);
    const c = this.distribution(chain.l, chain.ids);
    if (c.ids.length === 1) return c.ids[0] as number;
    const u = this.random();
    let run = 0;
    for (let i = 0; i < c.ids.length; i++) {
      run += c.probs[i] as number;
      if (run >= u) return c.ids[i] as number;
    }
    return c.ids[c.ids.length - 1] as number; // rounding left the running sum just below u
  }

  /**
   * The draw when no filter removed anything (OpenAI's defaults: top_p 1, no top-k or min-p):
   * it usually ends among the best few candidates, so those are selected first and the rest
   * sorted only when it goes past them. The same candidates, order and sums as candidates(),
   * hence the same token as drawing from it, without sorting the vocabulary each time.
   */
  private drawUnfiltered(l: Float32Array): number {
    const { t, max, sum } = unfiltered(l, f(this.o.temperature));
    const u = this.random();
    let run = 0;
    const best = topKIds(l, Math.min(DRAW_PREFIX, l.length));
    for (const id of best) {
      run += f(Math.exp(f(f((l[id] as number) / t) - max))) / sum;
      if (run >= u) return id;
    }
    const all = sortIds(l, null); // begins with `best`
    for (let i = best.length; i < all.length; i++) {
      run += f(Math.exp(f(f((l[all[i] as number] as number) / t) - max))) / sum;
      if (run >= u) return all[i] as number;
    }
    return all[all.length - 1] as number; // rounding left the running sum just below u
  }

  /** The chain without the draw: the candidates and the distribution `sample` draws from. */
  candidates(logits: Float32Array): Candidates {
    const chain = this.filter(logits);
    if (chain.ids !== null) return this.distribution(chain.l, chain.ids);
    const l = chain.l;
    const { t, max, sum } = unfiltered(l, f(this.o.temperature));
    const ids = sortIds(l, null);
    const probs = new Float64Array(ids.length);
    for (let i = 0; i < ids.length; i++) probs[i] = f(Math.exp(f(f((l[ids[i] as number] as number) / t) - max))) / sum;
    return { ids, probs };
  }

  /**
   * Penalties, then greedy or the filters: the candidates sorted by logit descending, or null
   * when every id is left (none of top-k, top-p or min-p removed any).
   */
  private filter(logits: Float32Array): { l: Float32Array; ids: Int32Array | null } {
    if (logits.length !== this.vocabSize) {
      throw new InvalidArgumentError(`sampler: logits have ${logits.length} entries, the vocabulary ${this.vocabSize}`);
    }
    const o = this.o;
    const l = this.penalized(logits);
    if (o.temperature <= 0) return { l, ids: Int32Array.of(argmax(l)) };
    let ids: Int32Array | null = o.topK > 0 && o.topK < l.length ? topKIds(l, o.topK) : null;
    if (o.topP < 1) ids = topP(l, ids, o.topP);
    if (o.minP > 0) ids = minP(l, ids, o.minP);
    return { l, ids };
  }

  /** Temperature, then llama_sampler_dist_apply over sorted candidates: float exponentials, a double sum. */
  private distribution(l: Float32Array, ids: Int32Array): Candidates {
    if (ids.length === 1) return { ids: ids.slice(), probs: Float64Array.of(1) };
    const t = f(this.o.temperature);
    const max = f((l[ids[0] as number] as number) / t);
    const probs = new Float64Array(ids.length);
    let sum = 0;
    for (let i = 0; i < ids.length; i++) {
      probs[i] = f(Math.exp(f(f((l[ids[i] as number] as number) / t) - max)));
      sum += probs[i] as number;
    }
    for (let i = 0; i < probs.length; i++) probs[i] = (probs[i] as number) / sum;
    return { ids: ids.slice(), probs };
  }

  /** The logits with the penalties applied (a copy; the input itself when they are off). */
  private penalized(logits: Float32Array): Float32Array {
    const o = this.o;
    const off = o.repeatLastN === 0 || (o.repeatPenalty === 1 && o.frequencyPenalty === 0 && o.presencePenalty === 0);
    if (off || this.counts.size === 0) return logits;
    const l = logits.slice();
    const repeat = f(o.repeatPenalty);
    for (const [token, count] of this.counts) {
      if (token < 0 || token >= l.length) continue;
      // "multiply by the penalty instead of dividing" for negative logits (llama_sampler_penalties_apply)
      const x = l[token] as number;
      const y = x <= 0 ? f(x * repeat) : f(x / repeat);
      l[token] = f(y - f(f(count * f(o.frequencyPenalty)) + f(o.presencePenalty)));
    }
    return l;
  }
}

/** Candidates selected first when nothing is filtered (the draw rarely goes past them). */
const DRAW_PREFIX = 64;

/**
 * The distribution over every id at temperature t: its max scaled logit and the double sum of the
 * float exponentials, summed in id order (no sort needed; candidates() divides by the same sum).
 */
function unfiltered(l: Float32Array, t: number): { t: number; max: number; sum: number } {
  let best = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < l.length; i++) best = Math.max(best, l[i] as number);
  const max = f(best / t);
  let sum = 0;
  for (let i = 0; i < l.length; i++) sum += f(Math.exp(f(f((l[i] as number) / t) - max)));
  return { t, max, sum };
}

/** Index of the largest value, lowest index on ties. */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
}

/**
 * llama_sampler_top_p_apply: a float softmax over the candidates (summed in their current order,
 * id order when unsorted), then a float running sum by logit descending until it reaches p.
 * Unsorted, the best 256 are tried first (llama.cpp's adaptive partial sort), then all.
 */
function topP(l: Float32Array, ids: Int32Array | null, p: number): Int32Array {
  const n = ids ? ids.length : l.length;
  const at = (i: number) => (ids ? (ids[i] as number) : i);
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) max = Math.max(max, l[at(i)] as number);
  let sum = 0;
  for (let i = 0; i < n; i++) sum = f(sum + f(Math.exp(f((l[at(i)] as number) - max))));
  const keep = (sorted: Int32Array) => {
    let cum = 0;
    for (let i = 0; i < sorted.length; i++) {
      cum = f(cum + f(f(Math.exp(f((l[sorted[i] as number] as number) - max))) / sum));
      if (cum >= p) return sorted.subarray(0, i + 1);
    }
    return undefined;
  };
  if (ids) return keep(ids) ?? ids;
  const best = keep(topKIds(l, Math.min(256, l.length)));
  if (best) return best;
  const all = sortIds(l, null);
  return keep(all) ?? all;
}

/** llama_sampler_min_p_apply: "min logit for p_i >= p * p_max"; the best token always stays. */
function minP(l: Float32Array, ids: Int32Array | null, p: number): Int32Array {
  if (ids) {
    const threshold = f((l[ids[0] as number] as number) + f(Math.log(p)));
    let keep = 1;
    while (keep < ids.length && (l[ids[keep] as number] as number) >= threshold) keep++;
    return ids.subarray(0, keep);
  }
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < l.length; i++) max = Math.max(max, l[i] as number);
  const threshold = f(max + f(Math.log(p)));
  const kept: number[] = [];
  for (let i = 0; i < l.length; i++) if ((l[i] as number) >= threshold) kept.push(i);
  return sortIds(l, Int32Array.from(kept));
}

const ID_BITS = 2 ** 21;

/**
 * `ids` (null: every id) by logit descending, ties by lowest id. One native sort of float64 keys
 * packing the float32's order-preserving bits above the id (exact for vocabularies up to 2^21).
 */
function sortIds(l: Float32Array, ids: Int32Array | null): Int32Array {
  const n = ids ? ids.length : l.length;
  if (l.length > ID_BITS) {
    const out = ids ? ids.slice() : Int32Array.from({ length: n }, (_, i) => i);
    return out.sort((a, b) => (l[b] as number) - (l[a] as number) || a - b);
  }
  const bits = new Uint32Array(l.buffer, l.byteOffset, l.length);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const id = ids ? (ids[i] as number) : i;
    let u = bits[id] as number;
    if (u === 0x80000000) u = 0; // -0 ties with +0
    u = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
    keys[i] = u * ID_BITS + (ID_BITS - 1 - id);
  }
  keys.sort();
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = ID_BITS - 1 - ((keys[n - 1 - i] as number) % ID_BITS);
  return out;
}

/** The k best ids by logit descending, ties by lowest id (one pass, insertion into a sorted k-list). */
function topKIds(l: Float32Array, k: number): Int32Array {
  const best = new Int32Array(k);
  let n = 0;
  for (let id = 0; id < l.length; id++) {
    const v = l[id] as number;
    if (n === k && !(v > (l[best[k - 1] as number] as number))) continue;
    // ids arrive ascending, so an equal logit goes after the ones already there
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((l[best[mid] as number] as number) >= v) lo = mid + 1;
      else hi = mid;
    }
    if (n < k) n++;
    best.copyWithin(lo + 1, lo, n - 1);
    best[lo] = id;
  }
  return best;
}

/**
 * xoshiro128** (Blackman and Vigna), its state filled by splitmix32 from the seed: uniform
 * doubles in [0, 1) with 53 random bits. Seeds up to 2^53 - 1 give distinct streams.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  const splitmix32 = () => {
    a = (a + 0x9e3779b9) | 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  const s = Uint32Array.of(splitmix32(), splitmix32() ^ high, splitmix32(), splitmix32());
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));
  const next = () => {
    const result = Math.imul(rotl(Math.imul(s[1] as number, 5), 7), 9) >>> 0;
    const t = (s[1] as number) << 9;
    s[2] ^= s[0] as number;
    s[3] ^= s[1] as number;
    s[1] ^= s[2] as number;
    s[0] ^= s[3] as number;
    s[2] ^= t;
    s[3] = rotl(s[3] as number, 11);
    return result;
  };
  return () => ((next() >>> 5) * 2 ** 26 + (next() >>> 6)) / 2 ** 53;
}

function check(name: string, value: unknown, ok: boolean, expected: string): void {
  if (!ok) throw new InvalidArgumentError(`sampling option ${name} must be ${expected}, got ${value}`);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
