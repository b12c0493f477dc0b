// convert (float32 -> F32 / F16 / BF16, the KV cache writes; src/kernels/wasm/c/float.c
// op_convert): every wasm build at 1 and 2 threads against the twin (src/kernels/ref/float.ts),
// then the twin against an independent round-to-nearest-even, against llama.cpp's own F16 /
// BF16 conversions (shared/golden/quants: <TYPE>.source.f32 -> <TYPE>.blocks.bin), the
// argument checks, and the KV cache's staging rows and writes (src/generate/kv-cache.ts).
//
// Tolerance: none. Every output must equal the twin's BIT FOR BIT (NaN payloads and signs
// included), on random values, random bit patterns (NaNs, infinities, subnormals) and every
// binary16 rounding boundary, at sizes off the 8-element vector groups.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { bf16ToF32, f16ToF32, f32ToF16 } from '../../src/core/fp16.js';
import type { Arena } from '../../src/core/heap.js';
import { type Tensor, allocTensor, f32Tensor, i32Tensor } from '../../src/core/tensor.js';
import { KVCache } from '../../src/generate/kv-cache.js';
import type { KernelBackend } from '../../src/kernels/backend.js';
import { device, disposeDevices, randomF32, ref, rng, wasmBuilds } from '../helpers/backends.js';

afterAll(disposeDevices);

const TYPES = [
  ['F32', GGMLType.F32],
  ['F16', GGMLType.F16],
  ['BF16', GGMLType.BF16],
] as const;
const SIZES = [1, 3, 7, 8, 9, 17, 100, 1003, 40_001]; // 40k: enough work for two threads
const THREADS = [1, 2];

const u32 = (f: Float32Array): Uint32Array => new Uint32Array(f.buffer, f.byteOffset, f.length);
const f32 = (u: Uint32Array): Float32Array => new Float32Array(u.buffer, u.byteOffset, u.length);

/** Inputs as float32 bit patterns: random values of several magnitudes, or random bits. */
function inputs(n: number, seed: number): [string, Uint32Array][] {
  const r = rng(seed);
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) bits[i] = Math.floor(r(0, 4294967296)) >>> 0;
  const specials = u32(randomF32(n, seed + 1, 70_000)); // past binary16's largest value
  const SP = [0, -0, 65504, 65519.99, 65520, -65520, 1e-8, -3e-8, 6e-8, 2.9e-8, 1e39, -1e39, Number.NaN];
  const sp = f32(specials);
  for (let i = 0; i < n; i += 3) sp[i] = SP[(i / 3 + seed) % SP.length] as number;
  for (let i = 1; i < n; i += 7) specials[i] = 0x7f800001 + i; // NaN payloads, both signs
  for (let i = 2; i < n; i += 11) specials[i] = (0xff800000 + i) >>> 0;
  return [
    ['uniform ±1', u32(randomF32(n, seed, 1))],
    ['uniform ±1e-5 (F16 subnormals)', u32(randomF32(n, seed + 2, 1e-5))],
    ['specials and ±7e4', specials],
    ['random bit patterns', bits],
  ];
}

function put(arena: Arena, bits: Uint32Array, shape: readonly number[]): Tensor {
  const t = allocTensor(arena, GGMLType.F32, shape);
  new Uint32Array(t.heap.memory.buffer, t.offset, bits.length).set(bits);
  return t;
}

/** The output's raw elements (u32 for F32, u16 for F16 / BF16), copied out. */
function raw(t: Tensor): Uint32Array | Uint16Array {
  const buf = t.heap.memory.buffer;
  return t.type === GGMLType.F32 ? new Uint32Array(buf, t.offset, t.numel).slice() : new Uint16Array(buf, t.offset, t.numel).slice();
}

function expectSameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  const d: number[] = [];
  for (let i = 0; i < want.length && d.length < 5; i++) if (got[i] !== want[i]) d.push(i);
  const show = d.map((i) => `[${i}] 0x${(got[i] as number).toString(16)} vs 0x${(want[i] as number).toString(16)}`);
  expect(got.length, what).toBe(want.length);
  expect(show, `${what}: differs`).toEqual([]);
}

/** Runs convert on `backend` and on the twin over the same input; returns both outputs. */
function both(backend: KernelBackend, arena: Arena, bits: Uint32Array, type: number, shape: readonly number[]) {
  const x = put(arena, bits, shape);
  const out = allocTensor(arena, type, shape);
  const twin = allocTensor(arena, type, shape);
  out.bytes.fill(0x5a); // so that an element the kernel skips cannot match by chance
  backend.convert(out, x);
  ref.convert(twin, x);
  return { got: raw(out), want: raw(twin) };
}

/** Every binary16 value, the midpoints between neighbours, and one float32 ulp either side (both signs). */
function f16Boundaries(): Uint32Array {
  const vals: number[] = [];
  const one = new Float32Array(1);
  const bits = u32(one);
  for (let h = 0; h < 0x7c00; h++) {
    const a = f16ToF32(h);
    const b = h === 0x7bff ? 65536 : f16ToF32(h + 1); // past 65504, rounding meets inf at 65520
    one[0] = a;
    const at = bits[0] as number;
    one[0] = (a + b) / 2; // exact in float32
    const mid = bits[0] as number;
    for (const v of [at, mid - 1, mid, mid + 1]) vals.push(v >>> 0, (v | 0x80000000) >>> 0);
  }
  return Uint32Array.from(vals);
}

for (const build of wasmBuilds()) {
  for (const threads of THREADS) {
    describe(`convert on ${build}, ${threads} thread(s), bit for bit with the twin`, () => {
      const dev = () => device(build, threads);
      for (const [name, type] of TYPES) {
        it(`to ${name}: random values and bit patterns, sizes ${SIZES.join(', ')}`, async () => {
          const d = await dev();
          const arena = d.heap.arena('test convert');
          try {
            for (const n of SIZES) {
              for (const [what, bits] of inputs(n, n * 7 + type)) {
                const { got, want } = both(d.backend, arena, bits, type, [n]);
                expectSameBits(got, want, `${name}, n = ${n}, ${what}`);
              }
              arena.reset();
            }
          } finally {
            arena.reset();
          }
        });
      }

      it('to F16: every rounding boundary of binary16 (both signs)', async () => {
        const d = await dev();
        const arena = d.heap.arena('test convert');
        try {
          const bits = f16Boundaries();
          const { got, want } = both(d.backend, arena, bits, GGMLType.F16, [bits.length]);
          expectSameBits(got, want, 'F16 boundaries');
        } finally {
          arena.reset();
        }
      });

      it('writes rows of any length into a differently shaped output, and nothing past it', async () => {
        const d = await dev();
        const arena = d.heap.arena('test convert');
        try {
          // A KV-cache write: [T, Hkv·Dk] F32 scratch -> rows [pos, pos + T) of an F16 [S, Hkv, Dk] cache.
          const [S, Hkv, Dk, pos, T] = [9, 3, 5, 2, 4];
          const cache = allocTensor(arena, GGMLType.F16, [S, Hkv, Dk]);
          cache.u16().fill(0xabcd);
          const x = f32Tensor(arena, [T, Hkv * Dk], randomF32(T * Hkv * Dk, 5));
          d.backend.convert(cache.slice(pos, T), x);
          const c = cache.u16();
          const xs = x.f32();
          for (let i = 0; i < S * Hkv * Dk; i++) {
            const j = i - pos * Hkv * Dk;
            if (j < 0 || j >= T * Hkv * Dk) expect(c[i], `untouched element ${i}`).toBe(0xabcd);
            else expect(Math.abs(f16ToF32(c[i] as number) - (xs[j] as number)), `element ${i}`).toBeLessThanOrEqual(2 ** -11);
          }
        } finally {
          arena.reset();
        }
      });
    });
  }
}

describe('convert twin against independent rounding', () => {
  it('F16 is the nearest binary16, ties to even, on every rounding boundary', async () => {
    const d = await device(wasmBuilds()[0] ?? 'simd128', 1);
    const arena = d.heap.arena('test convert');
    try {
      const bits = f16Boundaries();
      const x = put(arena, bits, [bits.length]);
      const out = allocTensor(arena, GGMLType.F16, [bits.length]);
      ref.convert(out, x);
      const xs = x.f32();
      const h = out.u16();
      let bad = 0;
      for (let i = 0; i < bits.length; i++) {
        const v = xs[i] as number;
        const got = f16ToF32(h[i] as number);
        // float64: every binary16 value and the midpoints are exact.
        const mag = Math.abs(v);
        let want = Math.sign(v) * Number.POSITIVE_INFINITY;
        if (mag < 65520) {
          const e = Math.max(Math.floor(Math.log2(mag || 1)), -14); // binary16 exponent (subnormals: -14)
          const ulp = 2 ** (e - 10);
          const q = mag / ulp;
          let r = Math.floor(q);
          if (q - r > 0.5 || (q - r === 0.5 && r % 2 === 1)) r++;
          want = Math.sign(v) * r * ulp; // -0 for a negative value that rounds to zero
        }
        if (!Object.is(got, want)) bad++;
      }
      expect(bad).toBe(0);
    } finally {
      arena.reset();
    }
  });

  it('special values: ±0, ±inf, NaN (quiet, sign kept), overflow, underflow', async () => {
    const d = await device(wasmBuilds()[0] ?? 'simd128', 1);
    const arena = d.heap.arena('test convert');
    try {
      const cases: [number, number, number][] = [
        // [float32 bits, F16, BF16]
        [0x00000000, 0x0000, 0x0000],
        [0x80000000, 0x8000, 0x8000],
        [0x7f800000, 0x7c00, 0x7f80],
        [0xff800000, 0xfc00, 0xff80],
        [0x7fc00000, 0x7e00, 0x7fc0],
        [0xffc00001, 0xfe00, 0xffc0],
        [0x7f800001, 0x7e00, 0x7fc0], // signalling NaN: quiet in both
        [0x477fe000, 0x7bff, 0x4780], // 65504, the largest binary16
        [0x477ff000, 0x7c00, 0x4780], // 65520 rounds to inf in binary16
        [0x33000000, 0x0000, 0x3300], // 2^-25: a tie, to the even 0
        [0x33000001, 0x0001, 0x3300], // just above: the smallest subnormal
        [0x3f808000, 0x3c04, 0x3f80], // BF16 tie, even stays
        [0x3f818000, 0x3c0c, 0x3f82], // BF16 tie, odd rounds up
        [0x7f7fffff, 0x7c00, 0x7f80], // float32 max: inf in both
      ];
      const bits = Uint32Array.from(cases.map((c) => c[0] >>> 0));
      const x = put(arena, bits, [bits.length]);
      const h = allocTensor(arena, GGMLType.F16, [bits.length]);
      const b = allocTensor(arena, GGMLType.BF16, [bits.length]);
      for (const backend of [ref, d.backend]) {
        backend.convert(h, x);
        backend.convert(b, x);
        expect([...h.u16()].map((v) => v.toString(16)), backend.name).toEqual(cases.map((c) => c[1].toString(16)));
        expect([...b.u16()].map((v) => v.toString(16)), backend.name).toEqual(cases.map((c) => c[2].toString(16)));
      }
      // BF16 round trip of the finite values within half an ulp.
      const xs = x.f32();
      for (let i = 0; i < bits.length; i++) {
        const v = xs[i] as number;
        if (Number.isFinite(v) && Math.abs(v) < 3e38) expect(Math.abs(bf16ToF32(b.u16()[i] as number) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8);
      }
    } finally {
      arena.reset();
    }
  });
});

// llama.cpp's F16 and BF16 model files are made by the same conversions (ggml_fp32_to_fp16_row,
// ggml_fp32_to_bf16_row_ref): its blocks must come out of the source rows byte for byte.
const GOLDEN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/golden/quants');
const haveGolden = existsSync(path.join(GOLDEN, 'F16.source.f32'));
describe('convert against llama.cpp (shared/golden/quants)', () => {
  if (!haveGolden) {
    if (process.env.CI === 'true') {
      it('the golden quant files are present', () => {
        throw new Error(`convert: ${GOLDEN} is absent; CI must check against llama.cpp's F16 / BF16 blocks`);
      });
    } else {
      it.skip(`F16 / BF16 blocks from source.f32 (absent: ${GOLDEN})`, () => {});
    }
    return;
  }
  for (const [name, type] of [['F16', GGMLType.F16], ['BF16', GGMLType.BF16]] as const) {
    it.each(['ref', ...wasmBuilds()])(`${name}.source.f32 -> ${name}.blocks.bin byte for byte on %s`, async (b) => {
      const d = await device(b === 'ref' ? (wasmBuilds()[0] ?? 'simd128') : (b as 'simd128' | 'relaxed'), 2);
      const backend = b === 'ref' ? ref : d.backend;
      const arena = d.heap.arena('test convert');
      try {
        const src = new Uint8Array(readFileSync(path.join(GOLDEN, `${name}.source.f32`)));
        const want = new Uint8Array(readFileSync(path.join(GOLDEN, `${name}.blocks.bin`)));
        const rows = src.length / 4 / 256;
        const x = allocTensor(arena, GGMLType.F32, [rows, 256]).setBytes(src);
        const out = allocTensor(arena, type, [rows, 256]);
        backend.convert(out, x);
        expect(Buffer.compare(Buffer.from(out.bytes), Buffer.from(want))).toBe(0);
      } finally {
        arena.reset();
      }
    });
  }
});

describe('convert argument checks', () => {
  it.each(['ref', ...wasmBuilds()])('on %s: errors name the kernel and the argument', async (b) => {
    const d = await device(b === 'ref' ? (wasmBuilds()[0] ?? 'simd128') : (b as 'simd128' | 'relaxed'), 2);
    const backend = b === 'ref' ? ref : d.backend;
    const arena = d.heap.arena('test convert');
    try {
      const big = f32Tensor(arena, [8, 8], randomF32(64, 3));
      const x = big.slice(0, 4);
      const ids = i32Tensor(arena, [32]);
      const bad: [() => void, RegExp][] = [
        [() => backend.convert(allocTensor(arena, GGMLType.Q8_0, [1, 32]), x), /convert: out must be F32 or F16 or BF16, got Q8_0/],
        [() => backend.convert(allocTensor(arena, GGMLType.F16, [4, 8]), ids), /convert: x must be F32, got I32/],
        [() => backend.convert(allocTensor(arena, GGMLType.F16, [4, 9]), x), /convert: out has 36 elements, expected 32/],
        [() => backend.convert(big.slice(2, 4), x), /convert: out .* overlaps x/],
      ];
      for (const [f, msg] of bad) {
        expect(f).toThrow(InvalidArgumentError);
        expect(f).toThrow(msg);
      }
      const before = big.f32().slice();
      backend.convert(x, x); // F32 onto itself: allowed, nothing changes
      expect(big.f32()).toEqual(before);
      backend.convert(allocTensor(arena, GGMLType.F16, [0, 8]), f32Tensor(arena, [0])); // empty: nothing to do
    } finally {
      arena.reset();
    }
  });
});

describe('KVCache writes through convert (src/generate/kv-cache.ts)', () => {
  const layers = [
    { headsKV: 2, keyLength: 6, valueLength: 3 },
    { headsKV: 1, keyLength: 6, valueLength: 3 },
  ];

  it.each(['f16', 'f32'] as const)('%s cache: staging rows, write, and rows read back', async (type) => {
    const d = await device(wasmBuilds()[0] ?? 'simd128', 2);
    const arena = d.heap.arena('test kv cache');
    const steps = d.heap.arena('test kv steps');
    try {
      const cache = new KVCache(arena, 10, layers, type);
      expect(cache.keys[0]?.type).toBe(type === 'f16' ? GGMLType.F16 : GGMLType.F32);
      expect(cache.byteLength).toBe(10 * (2 * 6 + 2 * 3 + 6 + 3) * (type === 'f16' ? 2 : 4));
      const buf = d.heap.memory.buffer;
      for (const t of [...cache.keys, ...cache.values]) {
        if (type === 'f16') new Uint16Array(buf, t.offset, t.numel).fill(0x7e01); // marks (NaNs)
        else new Uint32Array(buf, t.offset, t.numel).fill(0x7fc00001);
      }
      const [il, pos, T] = [0, 3, 4];
      const rows = cache.staging(steps, il, pos, T);
      expect(rows.k.shape).toEqual([T, 2, 6]);
      expect(rows.v.shape).toEqual([T, 2, 3]);
      expect(rows.k.type).toBe(GGMLType.F32);
      // An F32 cache hands out its own rows (no copy); an F16 one, F32 rows of the step.
      expect(rows.k.offset === cache.slot(il, pos, T).k.offset).toBe(type === 'f32');
      const k = randomF32(T * 12, 11, 3);
      const v = randomF32(T * 6, 12, 3);
      rows.k.f32().set(k);
      rows.v.f32().set(v);
      cache.write(d.backend, il, pos, { k: rows.k.reshape([T, 12]), v: rows.v });
      const back = (t: Tensor): number[] => (t.type === GGMLType.F16 ? [...t.u16()].map(f16ToF32) : [...t.f32()]);
      const want = (a: Float32Array): number[] => [...a].map((x) => (type === 'f16' ? f16ToF32(f32ToF16(x)) : x));
      const got = cache.upTo(il, pos + T);
      expect(back(got.k.slice(pos, T))).toEqual(want(k));
      expect(back(got.v.slice(pos, T))).toEqual(want(v));
      // Nothing else moved: rows before pos, after pos + T, and the other layer.
      const marks = (t: Tensor) => [...raw(t)].every((x) => x === (type === 'f16' ? 0x7e01 : 0x7fc00001));
      expect(marks(cache.slot(il, 0, pos).k) && marks(cache.slot(il, pos + T, 10 - pos - T).v)).toBe(true);
      expect(marks(cache.keys[1] as Tensor) && marks(cache.values[1] as Tensor)).toBe(true);
      // Keys only (an MLA cache may fill one side), and an unknown type.
      cache.write(d.backend, 1, 0, { k: f32Tensor(steps, [2, 6], randomF32(12, 13)) });
      expect(marks(cache.slot(1, 0, 2).k)).toBe(false);
      expect(marks(cache.values[1] as Tensor)).toBe(true);
      expect(() => new KVCache(arena, 2, layers, 'q8_0' as 'f16')).toThrow(/KV cache type must be one of f16, f32, got 'q8_0'/);
    } finally {
      steps.reset();
      arena.reset();
    }
  });
});
