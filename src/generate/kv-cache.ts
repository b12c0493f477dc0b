/**
 * The key/value cache: per layer, keys [S, Hkv, Dk] and values [S, Hkv, Dv] for S positions.
 * A forward pass writes the keys and values of its tokens at their positions and attends over
 * positions [0, pos + T). Reference: llama.cpp src/llama-kv-cache.cpp (one unified cell range).
 */
import { GGMLType } from '../core/dtypes.js';
import { SwitchyardError } from '../core/errors.js';
import type { Arena } from '../core/heap.js';
import { allocTensor, type Tensor } from '../core/tensor.js';

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
    readonly type: 'f32' = 'f32',
  ) {
    const t = GGMLType.F32;
    this.keys = layers.map((l, il) => allocTensor(arena, t, [size, l.headsKV, l.keyLength], `kv cache keys, layer ${il}`));
    this.values = layers.map((l, il) => allocTensor(arena, t, [size, l.headsKV, l.valueLength], `kv cache values, layer ${il}`));
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

  /** Rows [pos, pos + T) of layer il's keys and values, where this step writes. */
  slot(il: number, pos: number, T: number): { k: Tensor; v: Tensor } {
    return { k: (this.keys[il] as Tensor).slice(pos, T), v: (this.values[il] as Tensor).slice(pos, T) };
  }

  /** Rows [0, end) of layer il's keys and values, what attention reads. */
  upTo(il: number, end: number): { k: Tensor; v: Tensor } {
    return { k: (this.keys[il] as Tensor).slice(0, end), v: (this.values[il] as Tensor).slice(0, end) };
  }
}
