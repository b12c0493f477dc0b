/**
 * The key/value cache: per layer, keys [S, Hkv, Dk] and values [S, Hkv, Dv] for S positions.
 * A forward pass writes the keys and values of its tokens at their positions and attends over
 * positions [0, pos + T). Reference: llama.cpp src/llama-kv-cache.cpp (one unified cell range;
 * cpy_k / cpy_v store a step's F32 keys and values with ggml_set_rows, which rounds them to the
 * cache type).
 *
 * Type: 'f16' (llama.cpp's default, half the memory; attention rounds q to F16 against it) or
 * 'f32' (exact float32, what the goldens are computed with). A step computes its keys and values
 * in F32 rows from `staging()` (for an F32 cache, the cache rows themselves: no copy) and stores
 * them with `write()` (an F16 cache rounds them to nearest even there).
 */
import { GGMLType } from '../core/dtypes.js';
import { InvalidArgumentError, SwitchyardError } from '../core/errors.js';
import type { Arena } from '../core/heap.js';
import { allocTensor, type Tensor } from '../core/tensor.js';
import type { KernelBackend } from '../kernels/backend.js';

export type KVCacheType = 'f16' | 'f32';
export const KV_CACHE_TYPES: readonly KVCacheType[] = ['f16', 'f32'];

/** The context is full: names the limit and what to do. */
export class ContextLengthError extends SwitchyardError {
  constructor(message: string) {
    super('E_CONTEXT_LENGTH', message);
  }
}

export interface KVLayerShape {
  readonly headsKV: number;
  readonly keyLength: number;
  readonly valueLength: number;
}

export class KVCache {
  readonly keys: Tensor[];
  readonly values: Tensor[];
  /** Positions filled so far (the next token goes at this position). */
  length = 0;

  constructor(
    arena: Arena,
    readonly size: number,
    layers: readonly KVLayerShape[],
    readonly type: KVCacheType = 'f32',
  ) {
    if (!KV_CACHE_TYPES.includes(type)) {
      throw new InvalidArgumentError(`KV cache type must be one of ${KV_CACHE_TYPES.join(', ')}, got '${type}'`);
    }
    const t = type === 'f16' ? GGMLType.F16 : GGMLType.F32;
    this.keys = layers.map((l, il) => allocTensor(arena, t, [size, l.headsKV, l.keyLength], `kv cache keys, layer ${il}`));
    this.values = layers.map((l, il) => allocTensor(arena, t, [size, l.headsKV, l.valueLength], `kv cache values, layer ${il}`));
  }

  /** Bytes of every layer's keys and values. */
  get bytes(): number {
    return [...this.keys, ...this.values].reduce((n, t) => n + t.byteLength, 0);
  }

  /** Checks that T more tokens fit after `pos`. */
  reserve(pos: number, T: number): void {
    if (pos + T > this.size) {
      throw new ContextLengthError(
        `the context holds ${this.size} tokens and ${pos + T} are needed (${pos} already in it, ${T} new): ` +
          'start a new sequence, shorten the prompt, or load the model with a larger contextLength',
      );
    }
  }

  /** Bytes the cache holds (keys and values of every layer). */
  get byteLength(): number {
    let n = 0;
    for (const t of [...this.keys, ...this.values]) n += t.byteLength;
    return n;
  }

  /** Rows [pos, pos + T) of layer il's keys and values, where this step writes (in the cache type). */
  slot(il: number, pos: number, T: number): { k: Tensor; v: Tensor } {
    return { k: (this.keys[il] as Tensor).slice(pos, T), v: (this.values[il] as Tensor).slice(pos, T) };
  }

  /**
   * F32 rows for this step's keys [T, Hkv, Dk] and values [T, Hkv, Dv] of layer il: the cache
   * rows themselves for an F32 cache (computing into them is the write), else new rows in
   * `arena` (the step's activations) that `write()` then rounds into the cache.
   */
  staging(arena: Arena, il: number, pos: number, T: number): { k: Tensor; v: Tensor } {
    const slot = this.slot(il, pos, T);
    if (this.type === 'f32') return slot;
    return {
      k: allocTensor(arena, GGMLType.F32, slot.k.shape, `kv staging keys, layer ${il}`),
      v: allocTensor(arena, GGMLType.F32, slot.v.shape, `kv staging values, layer ${il}`),
    };
  }

  /**
   * Stores this step's F32 keys and values (either may be left out) into rows [pos, pos + T)
   * of layer il, converted to the cache type (ggml_set_rows: F16 rounds to nearest even). The
   * rows of `staging()` for an F32 cache are already in place and are not copied. Shapes may
   * differ from the cache's ([T, Hkv·Dk] is fine) as long as T is outermost and the element
   * counts match.
   */
  write(backend: KernelBackend, il: number, pos: number, rows: { k?: Tensor; v?: Tensor }): void {
    const T = (rows.k ?? rows.v)?.shape[0];
    if (T === undefined) return;
    const slot = this.slot(il, pos, T);
    for (const [src, dst] of [
      [rows.k, slot.k],
      [rows.v, slot.v],
    ] as const) {
      if (!src || (src.heap === dst.heap && src.offset === dst.offset && src.type === dst.type)) continue;
      backend.convert(dst, src);
    }
  }

  /** Rows [0, end) of layer il's keys and values, what attention reads. */
  upTo(il: number, end: number): { k: Tensor; v: Tensor } {
    return { k: (this.keys[il] as Tensor).slice(0, end), v: (this.values[il] as Tensor).slice(0, end) };
  }
}
