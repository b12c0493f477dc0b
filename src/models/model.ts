/**
 * A loaded model: configuration, weights in device memory, a KV cache, and the forward pass of
 * its architecture. `eval(tokens, pos)` runs T tokens at positions [pos, pos + T) (a prompt in
 * one batch, or one token while decoding) and returns their logits.
 */
import { freemem } from 'node:os';
import { GGMLType } from '../core/dtypes.js';
import { OutOfMemoryError, SwitchyardError } from '../core/errors.js';
import { type Arena, fmtBytes, type Heap } from '../core/heap.js';
import type { Tensor } from '../core/tensor.js';
import { ExpertCache, type ExpertRef, type SlotAllocation } from '../experts/cache.js';
import {
  availableMemory,
  type ExpertLayout,
  type ExpertMemoryPlan,
  expertLayout,
  OFFLOADED_TENSOR,
  parseExpertMemory,
  planExpertMemory,
} from '../experts/layout.js';
import type { PolicyName } from '../experts/policy.js';
import type { RoutingControls } from '../router/adaptive.js';
import type { CacheAwareOptions } from '../router/cache-aware.js';
import { i32Tensor } from '../core/tensor.js';
import { GGUFFile } from '../formats/gguf/reader.js';
import { KVCache, type KVCacheType } from '../generate/kv-cache.js';
import type { KernelChoice } from '../kernels/device.js';
import { DeviceSet } from '../kernels/device-set.js';
import { type ModelConfig, modelConfigFromGGUF, UnsupportedArchitectureError } from './config.js';
import type { ExpertOffload, RoutingObserver, Step, StepSegment } from './nn/layers.js';
import { ARCHITECTURES, type Forward } from './registry.js';
import { type LoadProgress, ModelWeights } from './weights.js';

/** Room kept free in the first heap for a step's activations and logits. */
const ACTIVATION_HEADROOM_BYTES = 512 * 2 ** 20;
/** With a small heap (tests), at least this share of it stays free for activations. */
const ACTIVATION_HEADROOM_SHARE = 0.25;

export interface ModelLoadOptions {
  /** Positions the KV cache holds (default: the model's context length, at most 4096). */
  readonly contextLength?: number;
  readonly kernels?: KernelChoice;
  readonly threads?: number;
  readonly onProgress?: (p: LoadProgress) => void;
  /**
   * Dequantize every weight to F32 at load and compute in float32 (the reference path: it
   * reproduces llama.cpp's results on the dequantized weights, the goldens' `f32math`).
   */
  readonly dequantize?: boolean;
  /**
   * Size limit of each wasm memory (default and maximum 4 GiB). Weights that do not fit in one
   * memory spread over several; a smaller limit forces that (tests).
   */
  readonly maxHeapBytes?: number;
  /**
   * Element type of the KV cache: 'f16' (default, as llama.cpp; half the memory) or 'f32'
   * (exact float32 attention inputs, what the golden references use).
   */
  readonly kvCacheType?: KVCacheType;
  /**
   * Memory for routed experts: bytes, a size ('4GiB', '512MiB'), a share of the expert bytes
   * ('25%'), or 'all' (every expert resident, no cache). Default: all when the model fits in
   * memory, else a cache of half the memory left after the other weights.
   */
  readonly expertMemory?: number | string;
  /** How the expert cache works (used when experts are not all resident). */
  readonly expertCache?: ExpertCacheSettings;
  /**
   * Sequences that can be in progress at once (default 1): one KV cache of `contextLength`
   * positions each, allocated at load (`caches`), for evalBatch.
   */
  readonly sequences?: number;
}

export interface EvalOptions {
  /** Only the last token's logits (prompt processing). */
  readonly last?: boolean;
  /** The KV cache to use (default: the model's own; newKVCache() makes more). */
  readonly cache?: KVCache;
  /** Routing controls for this step (src/router/adaptive.ts). */
  readonly routing?: RoutingControls;
}

export interface ExpertCacheSettings {
  /** Eviction policy: 'lru' (default), 'lfu' or 'slru'. */
  readonly policy?: PolicyName;
  /** 'shared' (default: any layer takes any slot of its heap) or 'per-layer' (equal quotas). */
  readonly allocation?: SlotAllocation;
  /** Experts kept resident for good (e.g. the most used ones of a calibration profile). */
  readonly pin?: readonly ExpertRef[];
  /** Layers ahead the prefetcher predicts (0 = the current layer only); false = no prefetch. Default 1. */
  readonly prefetch?: number | false;
  /** I/O threads reading experts (default 2). */
  readonly ioThreads?: number;
  /** Inexact, opt-in: prefer resident experts (see src/router/cache-aware.ts). */
  readonly cacheAware?: CacheAwareOptions;
}

export class Model {
  private readonly activations: Arena;
  /** Called with every MoE layer's routing while set (expert profiles, routing traces). */
  onRouting: RoutingObserver | undefined;

  private constructor(
    readonly path: string,
    readonly file: GGUFFile,
    readonly config: ModelConfig,
    /** devices[0] holds the activations, the KV cache and the small tensors; weights fill the rest. */
    readonly devices: DeviceSet,
    readonly weights: ModelWeights,
    /** One KV cache per sequence (ModelLoadOptions.sequences); caches[0] is `cache`, the default. */
    readonly caches: readonly KVCache[],
    private readonly run: Forward,
    /** The expert cache and how it is used; absent when every expert is resident. */
    readonly offload: ExpertOffload | undefined,
    /** What the expert memory budget came to (undefined for a dense model). */
    readonly expertPlan: ExpertMemoryPlan | undefined,
    /** Where the routed experts are in the file (undefined for a dense model). */
    readonly expertLayout: ExpertLayout | undefined,
  ) {
    this.activations = devices.devices[0]?.heap.arena('activations') as Arena;
  }

  /** The KV cache eval() uses unless told otherwise (the first sequence's). */
  get cache(): KVCache {
    return this.caches[0] as KVCache;
  }

  /** Whether evalBatch can run several sequences in one step (not multi-head latent attention). */
  get canBatch(): boolean {
    return this.config.architecture !== 'deepseek2';
  }

  /** The device of the activations and the KV cache. */
  get device() {
    return this.devices.devices[0] as NonNullable<DeviceSet['devices'][0]>;
  }

  static async load(path: string, options: ModelLoadOptions = {}): Promise<Model> {
    const file = await GGUFFile.open(path);
    let devices: DeviceSet | undefined;
    try {
      const config = modelConfigFromGGUF(file.metadata, { tensorNames: file.tensors.keys() });
      const run = ARCHITECTURES[config.architecture];
      if (!run) throw new UnsupportedArchitectureError(path, config.architecture);
      const ctx = options.contextLength ?? Math.min(config.contextLength, 4096);
      if (!Number.isInteger(ctx) || ctx < 1) {
        throw new SwitchyardError('E_INVALID_ARGUMENT', `contextLength must be a positive integer, got ${ctx}`);
      }
      const sequences = options.sequences ?? 1;
      if (!Number.isInteger(sequences) || sequences < 1) {
        throw new SwitchyardError('E_INVALID_ARGUMENT', `sequences must be a positive integer, got ${sequences}`);
      }
      devices = await DeviceSet.create({
        kernels: options.kernels,
        threads: options.threads,
        ...(options.maxHeapBytes ? { heap: { maxBytes: options.maxHeapBytes } } : {}),
      });
      const first = devices.devices[0] as NonNullable<DeviceSet['devices'][0]>;
      // The caches first, then cap the first heap's weights so activations keep room there.
      const caches: KVCache[] = [];
      try {
        for (let i = 0; i < sequences; i++) caches.push(newKVCache(first.heap, config, ctx, options.kvCacheType ?? 'f16'));
      } catch (e) {
        if (!(e instanceof OutOfMemoryError)) throw e;
        const each = caches[0]?.bytes;
        throw new SwitchyardError(
          'E_OUT_OF_MEMORY',
          `${path}: ${sequences} sequences of ${ctx} positions need ${sequences} KV caches` +
            `${each ? ` of ${fmtBytes(each)} each` : ''}, more than one wasm memory holds (${fmtBytes(first.heap.maxBytes)}): ` +
            `use fewer sequences or a smaller contextLength (only ${caches.length} fit)`,
        );
      }
      const cacheBytes = caches.reduce((n, c) => n + c.bytes, 0);
      const headroom = Math.min(ACTIVATION_HEADROOM_BYTES, first.heap.freeBytes * ACTIVATION_HEADROOM_SHARE);
      const layout = config.moe ? expertLayout(file, config.moe.expertUsedCount) : undefined;
      const plan = layout ? planExperts(layout, options, cacheBytes + headroom) : undefined;
      const offloaded = plan && !plan.resident;
      first.heap.arena('weights', Math.max(0, first.heap.freeBytes - headroom));
      let weights = await ModelWeights.load(file, devices, options.onProgress, offloaded ? OFFLOADED_TENSOR : undefined);
      if (options.dequantize) weights = weights.dequantized(first.backend, first.heap.arena('weights (f32)'));
      let offload: ExpertOffload | undefined;
      if (offloaded && layout) {
        const settings = options.expertCache ?? {};
        const biases = new Map<string, Tensor>();
        for (const name of file.tensors.keys()) {
          if (/^blk\.\d+\.ffn_(gate|up|down)_exps\.bias$/.test(name)) biases.set(name, weights.get(name));
        }
        const expertCache = await ExpertCache.create(layout, file.paths, devices, {
          slots: plan.slots,
          ...(settings.policy ? { policy: settings.policy } : {}),
          ...(settings.allocation ? { allocation: settings.allocation } : {}),
          ...(settings.pin ? { pin: settings.pin } : {}),
          ...(settings.ioThreads !== undefined ? { ioThreads: settings.ioThreads } : {}),
          biases,
          firstHeapBytes: Math.max(0, first.heap.freeBytes - headroom),
          heapHeadroomBytes: Math.min(ACTIVATION_HEADROOM_BYTES, first.heap.maxBytes * ACTIVATION_HEADROOM_SHARE),
        });
        const lookahead = settings.prefetch === false ? undefined : (settings.prefetch ?? 1);
        offload = { cache: expertCache, ...(lookahead !== undefined ? { lookahead } : {}), ...(settings.cacheAware ? { cacheAware: settings.cacheAware } : {}) };
      }
      return new Model(path, file, config, devices, weights, caches, run, offload, plan, layout);
    } catch (e) {
      devices?.dispose();
      await file.close();
      throw e;
    }
  }

  /**
   * Runs tokens at positions [pos, pos + T) and returns the logits [T, V] (or only the last
   * row with `last`). Positions from pos on are overwritten in the cache.
   */
  eval(tokens: readonly number[], pos: number, options: EvalOptions = {}): Float32Array {
    const T = tokens.length;
    if (T === 0) return new Float32Array(0);
    this.checkTokens(tokens);
    const cache = options.cache ?? this.cache;
    cache.reserve(pos, T);
    try {
      const rows = options.last ? 1 : T;
      const step = { cache, pos, lastOnly: !!options.last };
      const logits = this.forward(tokens, Array.from({ length: T }, (_, i) => pos + i), step, rows, options.routing);
      cache.length = pos + T;
      return logits;
    } finally {
      this.activations.reset();
    }
  }

  /** One forward step: the model's own Step fields plus `fields`; the logits [rows, V], checked. */
  private forward(
    tokens: readonly number[],
    positions: number[],
    fields: Pick<Step, 'cache' | 'pos' | 'lastOnly' | 'segments'>,
    rows: number,
    routing: RoutingControls | undefined,
  ): Float32Array {
    const T = tokens.length;
    const V = this.config.vocabSize;
    const step: Step = {
      backend: this.device.backend,
      devices: this.devices,
      arena: this.activations,
      weights: this.weights,
      config: this.config,
      T,
      positions: i32Tensor(this.activations, [T], positions),
      ...fields,
      ...(this.offload ? { offload: this.offload } : {}),
      ...(this.onRouting ? { onRouting: this.onRouting } : {}),
      ...(routing ? { routing } : {}),
    };
    this.offload?.cache.countTokens(T);
    const logits = this.run(step, tokens);
    if (logits.type !== GGMLType.F32 || logits.shape[0] !== rows || logits.shape[1] !== V) {
      throw new Error(`${this.config.architecture} forward returned ${logits}, expected [${rows}, ${V}] F32`);
    }
    return logits.f32().slice();
  }

  private checkTokens(tokens: readonly number[]): void {
    const V = this.config.vocabSize;
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= V) {
        throw new SwitchyardError('E_INVALID_ARGUMENT', `token id ${t} is outside the vocabulary (0..${V - 1})`);
      }
    }
  }

  /**
   * Several sequences in one forward step: each runs its tokens at positions [pos, pos + n) of
   * its own KV cache (newKVCache()), and gets the logits [V] of its last token. Projections,
   * norms and experts run once over all rows (sequences that pick the same experts share one
   * dispatch); attention runs per sequence. Groundwork for batching concurrent decode steps.
   */
  evalBatch(seqs: readonly { readonly tokens: readonly number[]; readonly pos: number; readonly cache: KVCache }[], options: { routing?: RoutingControls } = {}): Float32Array[] {
    if (seqs.length === 0) return [];
    if (!this.canBatch) {
      throw new SwitchyardError('E_UNSUPPORTED', 'evalBatch: deepseek2 (multi-head latent attention) evaluates one sequence per step');
    }
    if (new Set(seqs.map((q) => q.cache)).size !== seqs.length) {
      throw new SwitchyardError('E_INVALID_ARGUMENT', 'evalBatch: every sequence needs its own KV cache');
    }
    const segments: StepSegment[] = [];
    let start = 0;
    for (const q of seqs) {
      if (q.tokens.length === 0) throw new SwitchyardError('E_INVALID_ARGUMENT', 'evalBatch: a sequence has no tokens');
      this.checkTokens(q.tokens);
      q.cache.reserve(q.pos, q.tokens.length);
      segments.push({ start, count: q.tokens.length, cache: q.cache, pos: q.pos });
      start += q.tokens.length;
    }
    const first = seqs[0] as (typeof seqs)[0];
    const V = this.config.vocabSize;
    try {
      const positions = seqs.flatMap((q) => q.tokens.map((_, i) => q.pos + i));
      const step = { cache: first.cache, pos: first.pos, lastOnly: true, segments };
      const all = this.forward(seqs.flatMap((q) => q.tokens), positions, step, seqs.length, options.routing);
      for (const q of seqs) q.cache.length = q.pos + q.tokens.length;
      return seqs.map((_, i) => all.slice(i * V, (i + 1) * V));
    } finally {
      this.activations.reset();
    }
  }

  /** Another KV cache of this model's size and type (a second sequence, e.g. self-contrast's weak one). */
  newKVCache(): KVCache {
    return newKVCache(this.device.heap, this.config, this.cache.size, this.cache.type);
  }

  /**
   * Bytes by kind over every heap: resident weights, expert cache, KV cache, and the peak of a
   * step's activations and kernel scratch so far (they are freed between steps).
   */
  memory(): { weights: number; expertCache: number; kvCache: number; activations: number; heaps: number } {
    const sum = (arena: string, peak = false) =>
      this.devices.devices.reduce((n, d) => {
        const a = d.heap.arenaUsage().find((x) => x.name === arena);
        return n + (a ? (peak ? a.peakBytes : a.usedBytes) : 0);
      }, 0);
    return {
      weights: sum('weights') + sum('weights (f32)'),
      expertCache: sum('expert cache') + sum('expert biases'),
      kvCache: sum('kv cache'),
      activations: sum('activations', true) + sum('scratch', true),
      heaps: this.devices.devices.length,
    };
  }

  async close(): Promise<void> {
    await this.offload?.cache.close();
    this.devices.dispose();
    await this.file.close();
  }
}

/** A KV cache of `size` positions for the model of `config`, in the heap's 'kv cache' arena. */
function newKVCache(heap: Heap, config: ModelConfig, size: number, type: KVCacheType): KVCache {
  const a = config.attention;
  const layers = a.headCountKV.map((hkv) => ({ headsKV: hkv, keyLength: a.keyLength, valueLength: a.valueLength }));
  return new KVCache(heap.arena('kv cache'), size, layers, type);
}

/** The expert-memory plan of a load: the request (or the default) against this machine's memory. */
function planExperts(layout: ExpertLayout, options: ModelLoadOptions, otherBytes: number): ExpertMemoryPlan {
  const request = options.expertMemory !== undefined ? parseExpertMemory(options.expertMemory) : undefined;
  if (options.dequantize && request?.kind !== 'all' && request !== undefined) {
    throw new SwitchyardError('E_INVALID_ARGUMENT', 'dequantize needs every expert resident: leave expertMemory unset or use "all"');
  }
  if (options.dequantize) return planExpertMemory(layout, { kind: 'all' }, { available: 0, otherBytes });
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return planExpertMemory(layout, request, { available: availableMemory(freemem(), constrained), otherBytes });
}
