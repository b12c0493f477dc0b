/**
 * GGUF data model: metadata value types, key-value entries, tensor infos and the error class.
 * Reference: the GGUF specification (ggml docs/gguf.md) and ggml/src/gguf.cpp.
 *
 * Metadata values keep their GGUF type, so a file read and written again is byte-identical:
 * 64-bit integers are bigints, other numbers are numbers, numeric arrays are typed arrays.
 */
import { SwitchyardError } from '../../core/errors.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;

export const GGUFValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GGUFValueType = (typeof GGUFValueType)[keyof typeof GGUFValueType];

/** The integer value types (any width, signed or not). */
export const GGUF_INTEGER_TYPES: ReadonlySet<number> = new Set<number>([
  GGUFValueType.UINT8,
  GGUFValueType.INT8,
  GGUFValueType.UINT16,
  GGUFValueType.INT16,
  GGUFValueType.UINT32,
  GGUFValueType.INT32,
  GGUFValueType.UINT64,
  GGUFValueType.INT64,
]);

export const GGUF_VALUE_TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(GGUFValueType).map(([name, id]) => [id, name.toLowerCase()]),
);

/** An array value: the element type and the elements (typed arrays for numbers). */
export interface GGUFArray {
  readonly itemType: GGUFValueType;
  readonly items:
    | Uint8Array
    | Int8Array
    | Uint16Array
    | Int16Array
    | Uint32Array
    | Int32Array
    | Float32Array
    | Float64Array
    | BigUint64Array
    | BigInt64Array
    | boolean[]
    | string[]
    | GGUFArray[];
}

export type GGUFValue = number | bigint | boolean | string | GGUFArray;

/** One metadata entry, in file order. */
export interface GGUFKV {
  readonly key: string;
  readonly type: GGUFValueType;
  readonly value: GGUFValue;
}

export interface GGUFTensorInfo {
  readonly name: string;
  /** GGML type id (see core/dtypes.ts). */
  readonly type: number;
  /** Outermost first, as everywhere in Switchyard: GGUF's `ne` reversed ([rows, cols] for a matrix). */
  readonly shape: readonly number[];
  /** The file holding the data (a split file for split models). */
  readonly file: string;
  /** Absolute byte offset of the data in `file`. */
  readonly offset: number;
  readonly byteLength: number;
}

/** A malformed, truncated or unsupported GGUF file. The message names the file and the field. */
export class GGUFError extends SwitchyardError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super('E_GGUF', `${file}: ${message}`);
  }
}

/** A metadata key a caller needs that is missing or has the wrong type. */
export class GGUFMetadataError extends SwitchyardError {
  constructor(
    readonly file: string,
    readonly key: string,
    message: string,
  ) {
    super('E_GGUF_METADATA', `${file}: metadata key '${key}' ${message}`);
  }
}

/** Number of elements of a shape (checked to stay an exact integer). */
export function shapeElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
