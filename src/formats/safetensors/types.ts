/**
 * safetensors: element types, the public tensor descriptions and the error class shared by the
 * reader and the writer.
 *
 * Reference: the format section of https://github.com/huggingface/safetensors (README.md) and its
 * Rust crate, safetensors/src/tensor.rs (`Dtype`, `bitsize`, `Metadata::validate`).
 */
import { SwitchyardError } from '../../core/errors.js';

/**
 * Every element type the current spec names, in the order of the reference crate's `Dtype` enum.
 * That order is the crate's "increasing alignment" order, and its writer sorts tensors by it
 * (descending) before their names, so the writer here needs it to lay files out the same way.
 */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const;

export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

const DTYPE_BITS: Record<SafetensorsDType, number> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

const DTYPE_RANK = new Map<string, number>(SAFETENSORS_DTYPES.map((d, i) => [d, i]));

export function isSafetensorsDType(name: unknown): name is SafetensorsDType {
  return typeof name === 'string' && DTYPE_RANK.has(name);
}

/** Bits per element: 4 for F4, 6 for the F6 types, 8 to 64 for the others. */
export function safetensorsDTypeBits(d: SafetensorsDType): number {
  return DTYPE_BITS[d];
}

/** Bytes per element; fractional (0.5, 0.75) for the sub-byte types F4, F6_E2M3 and F6_E3M2. */
export function safetensorsDTypeBytes(d: SafetensorsDType): number {
  return DTYPE_BITS[d] / 8;
}

/** Position in the reference crate's enum order (used to sort tensors the way it does). */
export function safetensorsDTypeRank(d: SafetensorsDType): number {
  return DTYPE_RANK.get(d)!;
}

/** One tensor of an opened checkpoint. */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDType;
  /** Outermost first, as stored (the last dimension is contiguous). */
  shape: number[];
  /** Absolute path of the shard holding it. */
  file: string;
  /** Absolute byte offset of the data in that file. */
  offset: number;
  byteLength: number;
}

/** One tensor to write. `data` holds exactly the tensor's bytes, little-endian, row-major. */
export interface SafetensorsTensorInput {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  data: Uint8Array;
}

/** A bad safetensors file, index or write request; the message names the file and the field. */
export class SafetensorsError extends SwitchyardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_SAFETENSORS', message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** The reference crate's limit: a header above 100 MB is refused before anything is allocated. */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * The byte size of a tensor, guarding every step: each dimension must be a non-negative safe
 * integer, the element count and bit count must stay at or below 2^53 - 1 (the reference refuses
 * what overflows its u64 arithmetic; we refuse what JavaScript numbers cannot hold exactly), and
 * sub-byte types must fill whole bytes. `fail` throws with the caller's context (file, tensor).
 */
export function tensorByteLength(
  dtype: SafetensorsDType,
  shape: readonly unknown[],
  fail: (what: string) => never,
): number {
  let elements = 1;
  for (let i = 0; i < shape.length; i++) {
    const dim = shape[i];
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      fail(`shape[${i}] is ${describeValue(dim)}; dimensions must be integers in [0, 2^53)`);
    }
    elements *= dim;
    if (elements > Number.MAX_SAFE_INTEGER) {
      fail(`shape [${shape.join(', ')}] has more than 2^53 elements (overflow)`);
    }
  }
  const bits = elements * DTYPE_BITS[dtype];
  if (!Number.isSafeInteger(bits)) {
    fail(`shape [${shape.join(', ')}] of ${dtype} is more than 2^53 bits (overflow)`);
  }
  if (bits % 8 !== 0) {
    fail(`${elements} elements of ${dtype} (${DTYPE_BITS[dtype]} bits each) do not fill whole bytes`);
  }
  return bits / 8;
}

/** A short, safe rendering of an unexpected value for error messages. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v);
  if (typeof v === 'bigint') return v.toString();
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Map) return 'an object';
  return typeof v;
}
