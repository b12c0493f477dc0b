/**
 * A deterministic seeded PRNG whose whole state is four 32-bit words, so a checkpoint can
 * save it and a resumed run draws the same numbers. The generator is xoshiro128**
 * (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2018), seeded by
 * splitmix32 so that nearby seeds give unrelated streams.
 */
import { InvalidArgumentError } from '../core/errors.js';

export class Rng {
  private s: Uint32Array;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new InvalidArgumentError(`Rng seed must be a finite number, got ${seed}`);
    this.s = new Uint32Array(4);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1; // the all-zero state is a fixed point
  }

  /** A uint32 (xoshiro128**). */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller; one value per call, no cached second value, so state() is all there is). */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]: log stays finite
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** The state as four uint32 numbers (JSON-friendly). */
  state(): number[] {
    return [...this.s];
  }

  /** Continue from a saved state() (in place). */
  restore(state: readonly number[]): void {
    if (!Array.isArray(state) || state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
      throw new InvalidArgumentError(`Rng state must be four uint32 numbers, got ${JSON.stringify(state)}`);
    }
    if (state.every((w) => w === 0)) throw new InvalidArgumentError('Rng state cannot be all zeros');
    this.s.set(state);
  }

  static from(state: readonly number[]): Rng {
    const r = new Rng(0);
    r.restore(state);
    return r;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
