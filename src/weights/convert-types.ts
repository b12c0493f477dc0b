/**
 * Float type conversion for the Hugging Face -> GGUF converter: source tensors in F32, F16 or
 * BF16 (the float dtypes of safetensors checkpoints) become GGUF data in F32, F16, BF16 or
 * Q8_0, bit for bit as ggml makes them, so a converted file equals one that llama-quantize or
 * convert_hf_to_gguf.py writes from the same values.
 *
 * References (ggml at llama.cpp d32676d77): ggml/src/ggml-impl.h `ggml_compute_fp32_to_fp16`
 * (round to nearest even; F16C on x86 gives the same bits) and `ggml_compute_fp32_to_bf16`
 * (NaN -> quiet NaN keeping the sign and top payload bits, otherwise round to nearest even);
 * ggml/src/ggml-quants.c `quantize_row_q8_0_ref`; gguf-py/gguf/quants.py (the same rules in
 * numpy, used by convert_hf_to_gguf.py). src/core/fp16.ts holds the per-value twins; the loops
 * here work on the raw bits of whole rows.
 */
import { GGMLType } from '../core/dtypes.js';
import { InvalidArgumentError } from '../core/errors.js';
import { f32BitsToBF16, f32BitsToF16 } from '../core/fp16.js';

/** Float element types a safetensors checkpoint stores and the converter reads. */
export type SourceFloatType = 'F32' | 'F16' | 'BF16';

/** Elements of one tensor as read: float32 values, or the raw 16-bit patterns of F16/BF16. */
export type FloatElements = Float32Array | Uint16Array;

/** The GGUF types the converter writes. */
export const CONVERT_TARGET_TYPES = ['f32', 'f16', 'bf16', 'q8_0'] as const;
export type ConvertTargetType = (typeof CONVERT_TARGET_TYPES)[number];

const TARGET_GGML: Record<ConvertTargetType, number> = {
  f32: GGMLType.F32,
  f16: GGMLType.F16,
  bf16: GGMLType.BF16,
  q8_0: GGMLType.Q8_0,
};

export function ggmlTypeOfTarget(target: ConvertTargetType): number {
  return TARGET_GGML[target];
}

/** Q8_0: 32 elements per block, an f16 scale then 32 int8 codes (ggml-common.h block_q8_0). */
export const Q8_0_BLOCK = 32;
const Q8_0_BYTES = 34;

// f16 bit pattern -> f32 bit pattern for all 65536 values, NaN payloads kept as ggml's
// GGML_FP16_TO_FP32 (F16C) keeps them. Bits, not floats: reading a signalling NaN as a JS
// number would quiet it.
let f16Table: Uint32Array | undefined;
function f16ToF32Table(): Uint32Array {
  if (f16Table) return f16Table;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    if (exp === 31) {
      bits[h] = sign | 0x7f800000 | (man << 13);
    } else if (exp !== 0) {
      bits[h] = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man === 0) {
      bits[h] = sign;
    } else {
      // subnormal: normalise the mantissa
      let e = 113;
      let m = man;
      while ((m & 0x400) === 0) {
        m <<= 1;
        e--;
      }
      bits[h] = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
  }
  f16Table = bits;
  return f16Table;
}


/** Bit patterns of src[start, end) as float32, into `out` (F16 and BF16 widen exactly). */
function widenBits(src: Uint16Array, type: 'F16' | 'BF16', start: number, end: number, out: Uint32Array): void {
  if (type === 'F16') {
    const table = f16ToF32Table();
    for (let i = start; i < end; i++) out[i - start] = table[src[i] as number] as number;
  } else {
    for (let i = start; i < end; i++) out[i - start] = (src[i] as number) << 16;
  }
}

/** Source elements as float32 values (exact: F16 and BF16 widen without rounding). */
export function toFloat32(src: FloatElements, type: SourceFloatType): Float32Array {
  if (type === 'F32') return src as Float32Array;
  const out = new Float32Array(src.length);
  widenBits(src as Uint16Array, type, 0, src.length, new Uint32Array(out.buffer));
  return out;
}

/**
 * quantize_row_q8_0_ref over blocks of 32: d = max|x| / 127 and codes roundf(x * (1/d)), all
 * in float32 (Math.fround after each operation); d stored as f16. Writes n/32 blocks at out[o].
 */
function quantizeQ8_0Into(src: Float32Array, out: Uint8Array, o: number): void {
  const codes = new Int8Array(out.buffer, out.byteOffset, out.byteLength);
  const fr = Math.fround;
  const nb = src.length / Q8_0_BLOCK;
  for (let b = 0; b < nb; b++, o += Q8_0_BYTES) {
    const x0 = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const a = Math.abs(src[x0 + j] as number);
      amax = amax > a ? amax : a; // ggml's MAX(amax, fabsf(v)), NaN behaviour included
    }
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    F32_SCRATCH[0] = d;
    const h = f32BitsToF16(U32_SCRATCH[0] as number);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const v = fr((src[x0 + j] as number) * id);
      codes[o + 2 + j] = v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5); // C roundf: halves away from zero
    }
  }
}
const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/** quantize_row_q8_0_ref of a whole tensor (n a multiple of 32). */
export function quantizeQ8_0(src: Float32Array): Uint8Array {
  if (src.length % Q8_0_BLOCK !== 0) {
    throw new InvalidArgumentError(`Q8_0 needs a multiple of ${Q8_0_BLOCK} elements, got ${src.length}`);
  }
  const out = new Uint8Array((src.length / Q8_0_BLOCK) * Q8_0_BYTES);
  quantizeQ8_0Into(src, out, 0);
  return out;
}

const crossTables = new Map<string, Uint16Array>();
function crossTable(srcType: 'F16' | 'BF16', target: number): Uint16Array {
  const key = `${srcType}>${target}`;
  let table = crossTables.get(key);
  if (!table) {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    table = new Uint16Array(convertFloatTensor(toFloat32(all, srcType), 'F32', target).buffer);
    crossTables.set(key, table);
  }
  return table;
}

/** Elements per step when a 16-bit source is widened to float32 on the way (a multiple of 32). */
const CHUNK = 1 << 16;

/**
 * Converts one tensor's elements to GGUF bytes of type `target` (a GGML type id: F32, F16,
 * BF16 or Q8_0). Same-type conversions copy the bits unchanged; everything else goes through
 * float32 bit patterns, as ggml and gguf-py do, a chunk at a time (no float32 copy of the whole
 * tensor). Q8_0 needs a multiple of 32 elements; callers choose another type first when the
 * rows are not.
 */
export function convertFloatTensor(src: FloatElements, srcType: SourceFloatType, target: number): Uint8Array {
  if (
    (target === GGMLType.F32 && srcType === 'F32') ||
    (target === GGMLType.F16 && srcType === 'F16') ||
    (target === GGMLType.BF16 && srcType === 'BF16')
  ) {
    return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  }
  if (target === GGMLType.F32) {
    const f32 = toFloat32(src, srcType);
    return new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  }
  if (srcType !== 'F32' && (target === GGMLType.F16 || target === GGMLType.BF16)) {
    // BF16 <-> F16: one lookup per element in a table made by the general path below
    const table = crossTable(srcType, target);
    const out16 = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out16[i] = table[src[i] as number] as number;
    return new Uint8Array(out16.buffer);
  }
  const n = src.length;
  let out: Uint8Array;
  if (target === GGMLType.F16 || target === GGMLType.BF16) out = new Uint8Array(n * 2);
  else if (target === GGMLType.Q8_0) {
    if (n % Q8_0_BLOCK !== 0) throw new InvalidArgumentError(`Q8_0 needs a multiple of ${Q8_0_BLOCK} elements, got ${n}`);
    out = new Uint8Array((n / Q8_0_BLOCK) * Q8_0_BYTES);
  } else {
    throw new InvalidArgumentError(`cannot convert floats to GGML type ${target} (F32, F16, BF16 or Q8_0)`);
  }
  const out16 = new Uint16Array(out.buffer);
  const scratch = srcType === 'F32' ? undefined : new Uint32Array(Math.min(CHUNK, n));
  for (let start = 0; start < n; start += CHUNK) {
    const end = Math.min(n, start + CHUNK);
    let bits: Uint32Array;
    if (scratch) {
      widenBits(src as Uint16Array, srcType as 'F16' | 'BF16', start, end, scratch);
      bits = scratch.subarray(0, end - start);
    } else {
      bits = new Uint32Array(src.buffer, src.byteOffset + start * 4, end - start);
    }
    if (target === GGMLType.F16) {
      for (let i = 0; i < bits.length; i++) out16[start + i] = f32BitsToF16(bits[i] as number);
    } else if (target === GGMLType.BF16) {
      for (let i = 0; i < bits.length; i++) out16[start + i] = f32BitsToBF16(bits[i] as number);
    } else {
      quantizeQ8_0Into(new Float32Array(bits.buffer, bits.byteOffset, bits.length), out, (start / Q8_0_BLOCK) * Q8_0_BYTES);
    }
  }
  return out;
}

/** Reads raw little-endian bytes of a float tensor as its element array (copying only when misaligned). */
export function floatElementsOf(bytes: Uint8Array, type: SourceFloatType): FloatElements {
  const size = type === 'F32' ? 4 : 2;
  if (bytes.byteLength % size !== 0) {
    throw new InvalidArgumentError(`${bytes.byteLength} bytes are not a whole number of ${type} elements`);
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return type === 'F32'
    ? new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4)
    : new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
}

/**
 * Index of the first NaN or infinity in a float tensor and how many there are ({ count: 0 }
 * when all are finite). A checkpoint with them is broken: quantizing it gives garbage scales
 * (llama-quantize refuses such rows too, ggml-quants.c validate_row_data).
 */
export function findNonFinite(src: FloatElements, type: SourceFloatType): { first: number; count: number } {
  let first = -1;
  let count = 0;
  if (type === 'F32') {
    const f = src as Float32Array;
    for (let i = 0; i < f.length; i++) {
      if (!Number.isFinite(f[i] as number)) {
        if (first < 0) first = i;
        count++;
      }
    }
  } else {
    const mask = type === 'F16' ? 0x7c00 : 0x7f80; // all-ones exponent
    const u = src as Uint16Array;
    for (let i = 0; i < u.length; i++) {
      if (((u[i] as number) & mask) === mask) {
        if (first < 0) first = i;
        count++;
      }
    }
  }
  return { first, count };
}

