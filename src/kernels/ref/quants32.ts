/**
 * Reference twins of src/kernels/wasm/c/quants32.c: the 32-element block types Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, IQ4_NL and MXFP4 (exact dequantization, dot products with quantized
 * activations) and the Q8_0 / Q8_1 activation quantizers.
 *
 * References: ggml-common.h (block layouts, as in shared/golden/quants/README.md),
 * ggml-quants.c dequantize_row_*, ggml-cpu/quants.c ggml_vec_dot_*_generic, and
 * ggml-cpu/arch/x86/quants.c quantize_row_q8_0 / quantize_row_q8_1 (AVX path).
 *
 * Dot products (weight type -> activation format as in ggml's CPU backend: Q4_0, Q5_0, Q8_0,
 * IQ4_NL, MXFP4 -> Q8_0; Q4_1, Q5_1 -> Q8_1) use this FLOAT ORDER, the same as the C:
 *   isum_b = exact integer dot of block b's codes with its int8 activations;
 *   term_b = (dw_b * dx_b) * isum_b                 (+ mw_b * sx_b for Q4_1 / Q5_1);
 *   acc[b % 4] += term_b   (four float32 accumulators from +0, blocks in order);
 *   result = (acc[0] + acc[1]) + (acc[2] + acc[3]);
 * every step rounded to float32 with Math.fround, no fused multiply-add. The result equals
 * the wasm kernels bit for bit in both builds.
 */
import { GGMLType } from '../../core/dtypes.js';
import { f16ToF32, f32ToF16 } from '../../core/fp16.js';
import type { RefQuantizer, RefTypeKernels } from './types.js';

const fr = Math.fround;

/** IQ4_NL's non-uniform levels (ggml kvalues_iq4nl). */
export const IQ4NL_LEVELS: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
/** MXFP4: twice the E2M1 value of each code (ggml kvalues_mxfp4); code 8 ("-0") is 0. */
export const MXFP4_LEVELS: readonly number[] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

function f16(mem: Uint8Array, p: number): number {
  return f16ToF32(mem[p] | (mem[p + 1] << 8));
}

function i8(v: number): number {
  return (v << 24) >> 24;
}

function u32(mem: Uint8Array, p: number): number {
  return (mem[p] | (mem[p + 1] << 8) | (mem[p + 2] << 16) | (mem[p + 3] << 24)) >>> 0;
}

/**
 * E8M0 exponent -> 2^(e - 128), half the block scale (ggml ggml_e8m0_to_fp32_half: float bits
 * (e - 1) << 23, or the subnormals 0x00400000 / 0x00200000 for e = 1 / 0). Exact in float32.
 */
export function e8m0Half(e: number): number {
  return 2 ** (e - 128);
}

/**
 * One 32-element block type: how to read its scales and its 32 signed integer codes
 * (the value of element i is code[i] * d (+ m)).
 */
interface Block32 {
  type: number;
  bytes: number;
  /** Activation format: Q8_0 (34-byte blocks) or Q8_1 (36-byte blocks, with s). */
  q8_1: boolean;
  scale(mem: Uint8Array, p: number): number;
  /** The offset m (Q4_1 / Q5_1), else undefined. */
  min?(mem: Uint8Array, p: number): number;
  /** Writes the block's 32 integer codes (already offset: c - 8, c - 16, T[c], ...). */
  codes(mem: Uint8Array, p: number, out: Int32Array): void;
}

/** 16 packed bytes at q: element j is the low nibble of byte j, element j + 16 its high nibble. */
function nibbles(mem: Uint8Array, q: number, out: Int32Array, map: (c: number) => number): void {
  for (let j = 0; j < 16; j++) {
    out[j] = map(mem[q + j] & 15);
    out[j + 16] = map(mem[q + j] >> 4);
  }
}

/** Q5 codes: low nibbles at q plus fifth bits (bit i of the LE uint32 at qh is element i's). */
function fiveBit(mem: Uint8Array, qh: number, q: number, out: Int32Array, offset: number): void {
  const h = u32(mem, qh);
  for (let j = 0; j < 16; j++) {
    out[j] = ((mem[q + j] & 15) | (((h >>> j) & 1) << 4)) - offset;
    out[j + 16] = ((mem[q + j] >> 4) | (((h >>> (j + 16)) & 1) << 4)) - offset;
  }
}

const BLOCKS: Block32[] = [
  {
    type: GGMLType.Q4_0,
    bytes: 18,
    q8_1: false,
    scale: f16,
    codes: (m, p, o) => nibbles(m, p + 2, o, (c) => c - 8),
  },
  {
    type: GGMLType.Q4_1,
    bytes: 20,
    q8_1: true,
    scale: f16,
    min: (m, p) => f16(m, p + 2),
    codes: (m, p, o) => nibbles(m, p + 4, o, (c) => c),
  },
  {
    type: GGMLType.Q5_0,
    bytes: 22,
    q8_1: false,
    scale: f16,
    codes: (m, p, o) => fiveBit(m, p + 2, p + 6, o, 16),
  },
  {
    type: GGMLType.Q5_1,
    bytes: 24,
    q8_1: true,
    scale: f16,
    min: (m, p) => f16(m, p + 2),
    codes: (m, p, o) => fiveBit(m, p + 4, p + 8, o, 0),
  },
  {
    type: GGMLType.Q8_0,
    bytes: 34,
    q8_1: false,
    scale: f16,
    codes: (m, p, o) => {
      for (let j = 0; j < 32; j++) o[j] = i8(m[p + 2 + j]);
    },
  },
  {
    type: GGMLType.IQ4_NL,
    bytes: 18,
    q8_1: false,
    scale: f16,
    codes: (m, p, o) => nibbles(m, p + 2, o, (c) => IQ4NL_LEVELS[c]),
  },
  {
    type: GGMLType.MXFP4,
    bytes: 17,
    q8_1: false,
    scale: (m, p) => e8m0Half(m[p]),
    codes: (m, p, o) => nibbles(m, p + 1, o, (c) => MXFP4_LEVELS[c]),
  },
];

function block32Kernels(t: Block32): RefTypeKernels {
  const codes = new Int32Array(32);
  const xBytes = t.q8_1 ? 36 : 34;
  const xCodes = t.q8_1 ? 4 : 2;
  return {
    // Value = (float)code * d, then + m: the product is exact, so only "+ m" rounds, and a
    // zero code times a negative d gives -0.0 (ggml's dequantize_row_*).
    dequantize(mem, src, dst, dstOff, n) {
      for (let b = 0; b < n / 32; b++) {
        const p = src + b * t.bytes;
        const d = t.scale(mem, p);
        const m = t.min?.(mem, p);
        t.codes(mem, p, codes);
        for (let j = 0; j < 32; j++) {
          const v = fr(codes[j] * d);
          dst[dstOff + 32 * b + j] = m === undefined ? v : fr(v + m);
        }
      }
    },
    vecDot(n, wMem, w, xMem, xq) {
      const acc = [0, 0, 0, 0];
      for (let b = 0; b < n / 32; b++) {
        const p = w + b * t.bytes;
        const x = xq + b * xBytes;
        t.codes(wMem, p, codes);
        let isum = 0;
        for (let j = 0; j < 32; j++) isum += codes[j] * i8(xMem[x + xCodes + j]);
        let term = fr(fr(t.scale(wMem, p) * f16(xMem, x)) * isum);
        if (t.min) term = fr(term + fr(t.min(wMem, p) * f16(xMem, x + 2)));
        acc[b & 3] = fr(acc[b & 3] + term);
      }
      return fr(fr(acc[0] + acc[1]) + fr(acc[2] + acc[3]));
    },
  };
}

export const QUANT32_KERNELS: Record<number, RefTypeKernels> = Object.fromEntries(
  BLOCKS.map((t) => [t.type, block32Kernels(t)]),
);

/** Round half to even (x86 _mm256_round_ps with _MM_ROUND_NEAREST), for float32 values. */
export function roundEven(v: number): number {
  const f = Math.floor(v);
  const diff = v - f; // exact: v is a float32 value
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * One Q8 block as ggml's x86 AVX quantize_row_q8_0 / q8_1 compute it (quoted in quants32.c:
 * "const float d = maxScalar / 127.f;", "const float id = ( maxScalar != 0.0f ) ? 127.f / maxScalar : 0.0f;",
 * "_mm256_round_ps( v0, _MM_ROUND_NEAREST )", "_mm256_cvtps_epi32", packs with saturation,
 * "y[i].s = GGML_CPU_FP32_TO_FP16(d * hsum_i32_8(...))"):
 * d = max|x| / 127, id = 127 / max|x| (0 for an all-zero block), code = round-half-even(x * id)
 * converted like cvtps_epi32 (NaN or |v| >= 2^31 -> -2^31) and saturated to int8 by the packs.
 * Writes the codes at mem[q..q+31]; returns d and the wrapping int32 sum of the unsaturated codes.
 */
function quantizeQ8Block(x: Float32Array, o: number, mem: Uint8Array, q: number): { d: number; sum: number; qsum: number } {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
  const d = fr(amax / 127);
  const id = amax !== 0 ? fr(127 / amax) : 0;
  let sum = 0;
  let qsum = 0;
  for (let j = 0; j < 32; j++) {
    const r = roundEven(fr(x[o + j] * id));
    const c = Number.isNaN(r) || Math.abs(r) >= 2 ** 31 ? -(2 ** 31) : r;
    sum = (sum + c) | 0;
    const stored = Math.max(-128, Math.min(127, c));
    qsum += stored;
    mem[q + j] = stored & 0xff;
  }
  return { d, sum, qsum };
}

function putU16(mem: Uint8Array, p: number, v: number): void {
  mem[p] = v & 0xff;
  mem[p + 1] = v >> 8;
}

/** The float32 bits of binary16 h, as sy_f16_to_f32 makes them (NaN payload included). */
function f16ToF32Bits(h: number): number {
  if (((h >> 10) & 0x1f) === 31) return (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
  f32Scratch[0] = f16ToF32(h);
  return u32Scratch[0];
}
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Little-endian uint32 at mem[p] (bytes past the end of mem are dropped, as typed arrays do). */
function putU32(mem: Uint8Array, p: number, v: number): void {
  for (let k = 0; k < 4; k++) mem[p + k] = (v >>> (8 * k)) & 0xff;
}

/**
 * Our Q8_0 / Q8_1 dot rows (src/kernels/wasm/c/types.h, dotRowBytes): the nb ggml blocks,
 * zero padding to a multiple of 16 bytes, then two arrays of nb4 = nb rounded up to 4
 * four-byte values with zero tails: the block scales d as float32, then (Q8_0) the int32
 * sums of the stored codes or (Q8_1) the s values as float32. The kernels read these
 * instead of converting the same activation scales for every weight row; the twins'
 * vecDot reads only the ggml blocks.
 */
function writeSide(mem: Uint8Array, dst: number, nb: number, blockBytes: number, first: number[], second: number[]): void {
  const side = dst + Math.ceil((nb * blockBytes) / 16) * 16;
  const nb4 = Math.ceil(nb / 4) * 4;
  for (let p = dst + nb * blockBytes; p < side; p++) mem[p] = 0;
  for (let b = 0; b < nb4; b++) {
    putU32(mem, side + 4 * b, b < nb ? first[b] : 0);
    putU32(mem, side + 4 * (nb4 + b), b < nb ? second[b] : 0);
  }
}

/** Q8_0 activations: fp16 d, int8 codes[32] per block; then float d[] and int32 Σ codes[]. */
export const quantizeQ8_0: RefQuantizer = (x, xOff, mem, dst, n) => {
  const nb = n / 32;
  const ds: number[] = [];
  const sums: number[] = [];
  for (let b = 0; b < nb; b++) {
    const { d, qsum } = quantizeQ8Block(x, xOff + 32 * b, mem, dst + 34 * b + 2);
    const h = f32ToF16(d);
    putU16(mem, dst + 34 * b, h);
    ds.push(f16ToF32Bits(h));
    sums.push(qsum >>> 0);
  }
  writeSide(mem, dst, nb, 34, ds, sums);
};

/**
 * Q8_1 activations: fp16 d, fp16 s = d * Σ codes (d before fp16 rounding), int8 codes[32];
 * then float d[] and float s[].
 */
export const quantizeQ8_1: RefQuantizer = (x, xOff, mem, dst, n) => {
  const nb = n / 32;
  const ds: number[] = [];
  const ss: number[] = [];
  for (let b = 0; b < nb; b++) {
    const { d, sum } = quantizeQ8Block(x, xOff + 32 * b, mem, dst + 36 * b + 4);
    const hd = f32ToF16(d);
    const hs = f32ToF16(fr(d * fr(sum)));
    putU16(mem, dst + 36 * b, hd);
    putU16(mem, dst + 36 * b + 2, hs);
    ds.push(f16ToF32Bits(hd));
    ss.push(f16ToF32Bits(hs));
  }
  writeSide(mem, dst, nb, 36, ds, ss);
};
