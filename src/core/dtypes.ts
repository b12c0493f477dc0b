/**
 * GGML tensor types: ids, block geometry and the activation format each weight type's
 * dot product uses. Ids and byte layouts follow ggml (ggml.h `enum ggml_type`,
 * ggml-common.h `block_*`); the C side mirrors this table in
 * src/kernels/wasm/c/types.c, and a test checks that the two agree.
 */
import { UnsupportedTypeError } from './errors.js';

export const GGMLType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
} as const;
export type GGMLType = (typeof GGMLType)[keyof typeof GGMLType];
export type GGMLTypeName = keyof typeof GGMLType;

export interface DTypeInfo {
  readonly id: GGMLType;
  readonly name: GGMLTypeName;
  /** Elements per block (1 for plain types). */
  readonly blockElems: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /** Activation format of this type's dot product (weights only), as in ggml's `vec_dot_type`. */
  readonly dotType?: GGMLType;
  /** Whether the kernels can multiply with and dequantize this type. */
  readonly kernels: boolean;
}

const T = GGMLType;
const table: DTypeInfo[] = [
  { id: T.F32, name: 'F32', blockElems: 1, blockBytes: 4, dotType: T.F32, kernels: true },
  { id: T.F16, name: 'F16', blockElems: 1, blockBytes: 2, dotType: T.F16, kernels: true },
  { id: T.BF16, name: 'BF16', blockElems: 1, blockBytes: 2, dotType: T.BF16, kernels: true },
  { id: T.Q4_0, name: 'Q4_0', blockElems: 32, blockBytes: 18, dotType: T.Q8_0, kernels: true },
  { id: T.Q4_1, name: 'Q4_1', blockElems: 32, blockBytes: 20, dotType: T.Q8_1, kernels: true },
  { id: T.Q5_0, name: 'Q5_0', blockElems: 32, blockBytes: 22, dotType: T.Q8_0, kernels: true },
  { id: T.Q5_1, name: 'Q5_1', blockElems: 32, blockBytes: 24, dotType: T.Q8_1, kernels: true },
  { id: T.Q8_0, name: 'Q8_0', blockElems: 32, blockBytes: 34, dotType: T.Q8_0, kernels: true },
  { id: T.Q8_1, name: 'Q8_1', blockElems: 32, blockBytes: 36, kernels: false },
  { id: T.Q2_K, name: 'Q2_K', blockElems: 256, blockBytes: 84, dotType: T.Q8_K, kernels: true },
  { id: T.Q3_K, name: 'Q3_K', blockElems: 256, blockBytes: 110, dotType: T.Q8_K, kernels: true },
  { id: T.Q4_K, name: 'Q4_K', blockElems: 256, blockBytes: 144, dotType: T.Q8_K, kernels: true },
  { id: T.Q5_K, name: 'Q5_K', blockElems: 256, blockBytes: 176, dotType: T.Q8_K, kernels: true },
  { id: T.Q6_K, name: 'Q6_K', blockElems: 256, blockBytes: 210, dotType: T.Q8_K, kernels: true },
  { id: T.Q8_K, name: 'Q8_K', blockElems: 256, blockBytes: 292, kernels: false },
  { id: T.IQ2_XXS, name: 'IQ2_XXS', blockElems: 256, blockBytes: 66, kernels: false },
  { id: T.IQ2_XS, name: 'IQ2_XS', blockElems: 256, blockBytes: 74, kernels: false },
  { id: T.IQ3_XXS, name: 'IQ3_XXS', blockElems: 256, blockBytes: 98, kernels: false },
  { id: T.IQ1_S, name: 'IQ1_S', blockElems: 256, blockBytes: 50, kernels: false },
  { id: T.IQ4_NL, name: 'IQ4_NL', blockElems: 32, blockBytes: 18, dotType: T.Q8_0, kernels: true },
  { id: T.IQ3_S, name: 'IQ3_S', blockElems: 256, blockBytes: 110, kernels: false },
  { id: T.IQ2_S, name: 'IQ2_S', blockElems: 256, blockBytes: 82, kernels: false },
  { id: T.IQ4_XS, name: 'IQ4_XS', blockElems: 256, blockBytes: 136, dotType: T.Q8_K, kernels: true },
  { id: T.I8, name: 'I8', blockElems: 1, blockBytes: 1, kernels: false },
  { id: T.I16, name: 'I16', blockElems: 1, blockBytes: 2, kernels: false },
  { id: T.I32, name: 'I32', blockElems: 1, blockBytes: 4, kernels: false },
  { id: T.I64, name: 'I64', blockElems: 1, blockBytes: 8, kernels: false },
  { id: T.F64, name: 'F64', blockElems: 1, blockBytes: 8, kernels: false },
  { id: T.IQ1_M, name: 'IQ1_M', blockElems: 256, blockBytes: 56, kernels: false },
  { id: T.TQ1_0, name: 'TQ1_0', blockElems: 256, blockBytes: 54, dotType: T.Q8_K, kernels: true },
  { id: T.TQ2_0, name: 'TQ2_0', blockElems: 256, blockBytes: 66, dotType: T.Q8_K, kernels: true },
  { id: T.MXFP4, name: 'MXFP4', blockElems: 32, blockBytes: 17, dotType: T.Q8_0, kernels: true },
];

const byId = new Map<number, DTypeInfo>(table.map((t) => [t.id, t]));

/** All known types, in id order. */
export const DTYPES: readonly DTypeInfo[] = [...table].sort((a, b) => a.id - b.id);

/** Types the kernels implement (dequantize, matrix-vector, matrix-matrix). */
export const KERNEL_DTYPES: readonly DTypeInfo[] = DTYPES.filter((t) => t.kernels);

/** Info for a type id; throws UnsupportedTypeError naming the id when unknown. */
export function dtypeInfo(id: number): DTypeInfo {
  const info = byId.get(id);
  if (!info) throw new UnsupportedTypeError(`unknown GGML tensor type id ${id}`);
  return info;
}

export function dtypeByName(name: string): DTypeInfo {
  const id = (GGMLType as Record<string, number>)[name.toUpperCase()];
  if (id === undefined) {
    throw new UnsupportedTypeError(
      `unknown tensor type '${name}' (known: ${DTYPES.map((t) => t.name).join(', ')})`,
    );
  }
  return dtypeInfo(id);
}

/**
 * Bytes of a row of `n` elements. Throws when n is not a whole number of blocks,
 * because GGML types cannot hold a partial block.
 */
export function rowBytes(type: number, n: number): number {
  const t = dtypeInfo(type);
  if (n % t.blockElems !== 0) {
    throw new UnsupportedTypeError(
      `a ${t.name} row must hold a multiple of ${t.blockElems} elements, got ${n}`,
    );
  }
  return (n / t.blockElems) * t.blockBytes;
}

/**
 * Bytes of the activation buffer a weight type's dot product needs for `n` elements.
 * F16 and BF16 activations are kept as float32 values rounded to that precision; Q8_0 and
 * Q8_1 rows carry per-block float scales and sums after the ggml blocks (wasm/c/types.h).
 */
export function dotRowBytes(weightType: number, n: number): number {
  const dot = dtypeInfo(weightType).dotType;
  if (dot === undefined) throw new UnsupportedTypeError(`${dtypeInfo(weightType).name} has no dot product`);
  if (dot === GGMLType.F16 || dot === GGMLType.BF16) return n * 4;
  if (dot === GGMLType.Q8_0 || dot === GGMLType.Q8_1) {
    // The ggml blocks padded to 16 bytes, then per block a float32 scale and an int32 sum
    // (Q8_1: a float32 s), each array padded to 4 entries (src/kernels/wasm/c/types.h).
    const nb = n / 32;
    return Math.ceil(rowBytes(dot, n) / 16) * 16 + 8 * Math.ceil(nb / 4) * 4;
  }
  return rowBytes(dot, n);
}
