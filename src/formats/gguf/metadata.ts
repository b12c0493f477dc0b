/**
 * Typed access to GGUF metadata: every getter names the key and the file when a key is
 * missing or has the wrong type, so a model loader never reads `undefined` or a string
 * where it wanted a number. Keys follow gguf-py/gguf/constants.py (`Keys`); architecture
 * keys are `<general.architecture>.<name>`, reachable through the `arch*` getters.
 */
import {
  GGUF_INTEGER_TYPES,
  GGUF_VALUE_TYPE_NAMES,
  type GGUFArray,
  type GGUFKV,
  GGUFMetadataError,
  type GGUFValue,
  GGUFValueType,
} from './types.js';

const FLOAT_TYPES = new Set<number>([GGUFValueType.FLOAT32, GGUFValueType.FLOAT64]);

function describe(kv: GGUFKV): string {
  if (kv.type === GGUFValueType.ARRAY) {
    const a = kv.value as GGUFArray;
    return `an array of ${GGUF_VALUE_TYPE_NAMES[a.itemType]}`;
  }
  return `type ${GGUF_VALUE_TYPE_NAMES[kv.type]}`;
}

export class GGUFMetadata {
  private readonly byKey: Map<string, GGUFKV>;

  constructor(
    /** Entries in file order. */
    readonly entries: readonly GGUFKV[],
    /** The file the metadata came from, for error messages. */
    readonly file: string,
  ) {
    this.byKey = new Map(entries.map((kv) => [kv.key, kv]));
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }
  entry(key: string): GGUFKV | undefined {
    return this.byKey.get(key);
  }
  /** The raw value, or undefined. */
  get(key: string): GGUFValue | undefined {
    return this.byKey.get(key)?.value;
  }
  keys(): string[] {
    return this.entries.map((kv) => kv.key);
  }

  /** `general.architecture`: the prefix of every architecture key. */
  get architecture(): string {
    return this.string('general.architecture');
  }

  private need(key: string): GGUFKV {
    const kv = this.byKey.get(key);
    if (!kv) throw new GGUFMetadataError(this.file, key, 'is missing');
    return kv;
  }
  private wrongType(kv: GGUFKV, expected: string): never {
    throw new GGUFMetadataError(this.file, kv.key, `has ${describe(kv)}, expected ${expected}`);
  }

  string(key: string): string;
  string<D>(key: string, fallback: D): string | D;
  string(key: string, ...fallback: unknown[]): unknown {
    if (fallback.length && !this.has(key)) return fallback[0];
    const kv = this.need(key);
    if (kv.type !== GGUFValueType.STRING) this.wrongType(kv, 'a string');
    return kv.value;
  }

  /** Any integer type, as a number (64-bit values must be exact in a double). */
  int(key: string): number;
  int<D>(key: string, fallback: D): number | D;
  int(key: string, ...fallback: unknown[]): unknown {
    if (fallback.length && !this.has(key)) return fallback[0];
    const kv = this.need(key);
    if (!GGUF_INTEGER_TYPES.has(kv.type)) this.wrongType(kv, 'an integer');
    const v = kv.value as number | bigint;
    if (typeof v === 'bigint') {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new GGUFMetadataError(this.file, key, `is ${v}, too large to be used as a number`);
      }
      return Number(v);
    }
    return v;
  }

  /** A float (integers are accepted too, as llama.cpp's loader does for hyper-parameters). */
  float(key: string): number;
  float<D>(key: string, fallback: D): number | D;
  float(key: string, ...fallback: unknown[]): unknown {
    if (fallback.length && !this.has(key)) return fallback[0];
    const kv = this.need(key);
    if (FLOAT_TYPES.has(kv.type)) return kv.value as number;
    if (GGUF_INTEGER_TYPES.has(kv.type)) return this.int(key);
    return this.wrongType(kv, 'a number');
  }

  bool(key: string): boolean;
  bool<D>(key: string, fallback: D): boolean | D;
  bool(key: string, ...fallback: unknown[]): unknown {
    if (fallback.length && !this.has(key)) return fallback[0];
    const kv = this.need(key);
    if (kv.type !== GGUFValueType.BOOL) this.wrongType(kv, 'a bool');
    return kv.value;
  }

  private array(key: string, ok: (t: number) => boolean, expected: string): GGUFArray {
    const kv = this.need(key);
    if (kv.type !== GGUFValueType.ARRAY || !ok((kv.value as GGUFArray).itemType)) {
      this.wrongType(kv, expected);
    }
    return kv.value as GGUFArray;
  }

  stringArray(key: string): readonly string[];
  stringArray<D>(key: string, fallback: D): readonly string[] | D;
  stringArray(key: string, ...fallback: unknown[]): unknown {
    if (fallback.length && !this.has(key)) return fallback[0];
    return this.array(key, (t) => t === GGUFValueType.STRING, 'an array of strings').items;
  }

  /** A numeric array (integers or floats) as numbers. */
  numberArray(key: string): readonly number[];
  numberArray<D>(key: string, fallback: D): readonly number[] | D;
  numberArray(key: string, ...fallback: unknown[]): unknown {
    if (fallback.length && !this.has(key)) return fallback[0];
    const a = this.array(key, (t) => GGUF_INTEGER_TYPES.has(t) || FLOAT_TYPES.has(t), 'an array of numbers');
    return Array.from(a.items as ArrayLike<number | bigint>, (v) => Number(v));
  }

  /** An architecture hyper-parameter `<arch>.<name>` that is an integer, or an array of them (one per layer). */
  archKey(name: string): string {
    return `${this.architecture}.${name}`;
  }
  archInt(name: string): number;
  archInt<D>(name: string, fallback: D): number | D;
  archInt(name: string, ...fallback: unknown[]): unknown {
    return (this.int as (k: string, ...f: unknown[]) => unknown)(this.archKey(name), ...fallback);
  }
  archFloat(name: string): number;
  archFloat<D>(name: string, fallback: D): number | D;
  archFloat(name: string, ...fallback: unknown[]): unknown {
    return (this.float as (k: string, ...f: unknown[]) => unknown)(this.archKey(name), ...fallback);
  }
  archBool(name: string): boolean;
  archBool<D>(name: string, fallback: D): boolean | D;
  archBool(name: string, ...fallback: unknown[]): unknown {
    return (this.bool as (k: string, ...f: unknown[]) => unknown)(this.archKey(name), ...fallback);
  }
  archString(name: string): string;
  archString<D>(name: string, fallback: D): string | D;
  archString(name: string, ...fallback: unknown[]): unknown {
    return (this.string as (k: string, ...f: unknown[]) => unknown)(this.archKey(name), ...fallback);
  }
  /**
   * A per-layer integer that may be stored as one value for all layers or as an array with one
   * value per layer (llama.cpp's `get_key_or_arr`, e.g. head_count_kv of some models).
   */
  archPerLayer(name: string, layers: number): number[];
  archPerLayer<D>(name: string, layers: number, fallback: D): number[] | D;
  archPerLayer(name: string, layers: number, ...fallback: unknown[]): unknown {
    const key = this.archKey(name);
    if (fallback.length && !this.has(key)) return fallback[0];
    const kv = this.need(key);
    if (kv.type !== GGUFValueType.ARRAY) return new Array(layers).fill(this.int(key));
    const values = this.numberArray(key);
    if (values.length !== layers) {
      throw new GGUFMetadataError(this.file, key, `has ${values.length} values, expected one per layer (${layers})`);
    }
    return [...values];
  }
}
