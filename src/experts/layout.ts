/**
 * Where a model's routed experts are in its GGUF file, and what an expert-memory budget buys.
 * The unit of caching is one expert of one layer: its rows of blk.N.ffn_{gate,up,down}_exps
 * (GGUF stacks experts outermost, so each is one contiguous byte range of its tensor). A cache
 * slot holds the three slices, each 64-byte aligned; every slot has the size of the largest
 * expert (quantization mixes can differ by layer). Expert biases stay resident: they are tiny.
 * Reference: ggml docs/gguf.md (tensor data layout); llama.cpp llama-model.cpp (the *_exps names).
 */
import { SwitchyardError } from '../core/errors.js';
import { fmtBytes } from '../core/heap.js';
import type { GGUFFile } from '../formats/gguf/reader.js';

/** One expert's slice of one stacked tensor. */
export interface ExpertSlice {
  /** GGUF tensor name, e.g. blk.3.ffn_up_exps.weight. */
  readonly tensor: string;
  readonly type: number;
  /** Shape of one expert's matrix ([F, D] for gate/up, [D, F] for down). */
  readonly shape: readonly number[];
  /** Index of the file (split models) in GGUFFile.paths. */
  readonly file: number;
  /** Absolute file position of expert 0's slice. */
  readonly position: number;
  /** Bytes of one expert's slice. */
  readonly bytes: number;
  /** Offset of this slice inside a cache slot. */
  readonly slotOffset: number;
}

export interface LayerExperts {
  readonly layer: number;
  /** Routed experts in the layer (E). */
  readonly count: number;
  readonly gate: ExpertSlice;
  readonly up: ExpertSlice;
  readonly down: ExpertSlice;
  /** Bytes one expert reads from the file (the three slices). */
  readonly expertBytes: number;
}

export interface ExpertLayout {
  readonly file: string;
  /** Per block: its routed experts, or undefined for a dense block. */
  readonly layers: readonly (LayerExperts | undefined)[];
  /** Experts each token uses per layer (K). */
  readonly used: number;
  /** Bytes of every routed expert tensor (what an expert cache can keep in the file). */
  readonly expertBytes: number;
  /** Bytes of every other tensor (always resident). */
  readonly residentBytes: number;
  /** Bytes of one cache slot: the largest expert, each slice 64-byte aligned. */
  readonly slotBytes: number;
  /** Number of routed experts over all layers. */
  readonly experts: number;
}

/** The names of the tensors an expert cache reads (instead of loading them whole). */
export const OFFLOADED_TENSOR = /^blk\.(\d+)\.ffn_(gate|up|down)_exps\.weight$/;

const align64 = (n: number): number => Math.ceil(n / 64) * 64;

/** An expert-memory value that cannot be used (bad syntax, below the minimum). */
export class ExpertMemoryError extends SwitchyardError {
  constructor(message: string) {
    super('E_EXPERT_MEMORY', message);
  }
}

/**
 * The expert layout of a GGUF file (undefined when it has no routed expert tensors).
 * `used` is the model's experts per token (K).
 */
export function expertLayout(file: GGUFFile, used: number): ExpertLayout | undefined {
  const paths = file.paths;
  const byLayer = new Map<number, Partial<Record<'gate' | 'up' | 'down', ExpertSlice>>>();
  let expertBytes = 0;
  const counts = new Map<number, number>();
  for (const t of file.tensors.values()) {
    const m = OFFLOADED_TENSOR.exec(t.name);
    if (!m) continue;
    const layer = Number(m[1]);
    const part = m[2] as 'gate' | 'up' | 'down';
    const E = t.shape[0] as number;
    if (t.shape.length !== 3 || E < 1 || t.byteLength % E !== 0) {
      throw new ExpertMemoryError(`${file.path}: tensor '${t.name}' has shape [${t.shape.join(', ')}], expected [experts, rows, cols]`);
    }
    if ((counts.get(layer) ?? E) !== E) {
      throw new ExpertMemoryError(`${file.path}: the expert tensors of block ${layer} disagree on the number of experts`);
    }
    counts.set(layer, E);
    const entry = byLayer.get(layer) ?? {};
    entry[part] = {
      tensor: t.name,
      type: t.type,
      shape: t.shape.slice(1),
      file: paths.indexOf(t.file),
      position: t.offset,
      bytes: t.byteLength / E,
      slotOffset: 0,
    };
    byLayer.set(layer, entry);
    expertBytes += t.byteLength;
  }
  if (byLayer.size === 0) return undefined;
  const blocks = Math.max(...byLayer.keys()) + 1;
  const layers: (LayerExperts | undefined)[] = new Array(blocks).fill(undefined);
  let slotBytes = 0;
  let experts = 0;
  for (const [layer, e] of byLayer) {
    for (const part of ['gate', 'up', 'down'] as const) {
      if (!e[part]) throw new ExpertMemoryError(`${file.path}: block ${layer} has expert tensors but no 'blk.${layer}.ffn_${part}_exps.weight'`);
    }
    const gate = e.gate as ExpertSlice;
    const up = { ...(e.up as ExpertSlice), slotOffset: align64(gate.bytes) };
    const down = { ...(e.down as ExpertSlice), slotOffset: up.slotOffset + align64(up.bytes) };
    const count = counts.get(layer) as number;
    layers[layer] = { layer, count, gate, up, down, expertBytes: gate.bytes + up.bytes + down.bytes };
    slotBytes = Math.max(slotBytes, down.slotOffset + align64(down.bytes));
    experts += count;
  }
  return { file: file.path, layers, used, expertBytes, residentBytes: file.tensorBytes - expertBytes, slotBytes, experts };
}

/** The smallest budget that runs: one layer's K active experts at once. */
export function minimumExpertMemory(layout: ExpertLayout): number {
  return layout.used * layout.slotBytes;
}

/** Budget that holds every expert (one slot each). */
export function fullExpertMemory(layout: ExpertLayout): number {
  return layout.experts * layout.slotBytes;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 2 ** 10,
  m: 1e6,
  mb: 1e6,
  mib: 2 ** 20,
  g: 1e9,
  gb: 1e9,
  gib: 2 ** 30,
  t: 1e12,
  tb: 1e12,
  tib: 2 ** 40,
};

/** What --expert-memory / `expertMemory` asks for. */
export type ExpertMemoryRequest =
  | { readonly kind: 'all' }
  | { readonly kind: 'bytes'; readonly bytes: number }
  | { readonly kind: 'share'; readonly share: number };

/**
 * Parses an expert-memory value: bytes (a number), a size with a unit ('4GiB', '512MiB', '1.5GB';
 * KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000), a share of the model's expert bytes ('25%'),
 * or 'all' (every expert resident, no cache). `source` names the flag or option in errors.
 */
export function parseExpertMemory(value: number | string, source = 'expertMemory'): ExpertMemoryRequest {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new ExpertMemoryError(`${source} must be a positive number of bytes, got ${value}`);
    return { kind: 'bytes', bytes: Math.floor(value) };
  }
  const v = value.trim().toLowerCase();
  if (v === 'all') return { kind: 'all' };
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(v);
  if (pct) {
    const share = Number(pct[1]) / 100;
    if (share <= 0 || share > 1) throw new ExpertMemoryError(`${source} must be a share above 0% and at most 100%, got '${value}'`);
    return { kind: 'share', share };
  }
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(v);
  const unit = m ? UNITS[m[2] as string] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) {
    throw new ExpertMemoryError(
      `${source} must be a size such as 4GiB, 512MiB or 2000000000 (bytes), a share such as 25%, or 'all'; got '${value}'`,
    );
  }
  return { kind: 'bytes', bytes: Math.floor(Number(m[1]) * unit) };
}

export interface ExpertMemoryPlan {
  /** Budget for expert slots in bytes; 0 with `resident`. */
  readonly budgetBytes: number;
  /** Every expert loaded at start (no cache). */
  readonly resident: boolean;
  /** Cache slots the budget buys (0 when resident). */
  readonly slots: number;
  /** Share of all experts the slots hold (1 when resident). */
  readonly share: number;
  /** Why this budget (for reports): 'requested', 'default: fits in memory', ... */
  readonly reason: string;
}

/** Memory the machine lets this process use: the cgroup limit when set, else available RAM. */
export function availableMemory(freeMemory: number, constrained?: number): number {
  return constrained && constrained > 0 && constrained < 2 ** 52 ? Math.min(constrained, freeMemory) : freeMemory;
}

/**
 * Turns a request (or none: the default) into a budget. Default: everything resident when the
 * whole model with `otherBytes` (KV cache, activations) fits in 80% of `available`; otherwise
 * half of what is left after the resident weights, at least the minimum.
 */
export function planExpertMemory(
  layout: ExpertLayout,
  request: ExpertMemoryRequest | undefined,
  env: { readonly available: number; readonly otherBytes: number },
): ExpertMemoryPlan {
  const min = minimumExpertMemory(layout);
  const full = fullExpertMemory(layout);
  const plan = (budget: number, reason: string): ExpertMemoryPlan => {
    if (budget < min) {
      throw new ExpertMemoryError(
        `expert memory ${fmtBytes(budget)} is below the minimum of ${fmtBytes(min)}: one layer's ${layout.used} active experts of ${fmtBytes(layout.slotBytes)} each must fit at once`,
      );
    }
    const slots = Math.min(layout.experts, Math.floor(budget / layout.slotBytes));
    return { budgetBytes: slots * layout.slotBytes, resident: false, slots, share: slots / layout.experts, reason };
  };
  if (request?.kind === 'all') return { budgetBytes: 0, resident: true, slots: 0, share: 1, reason: 'requested: all experts resident' };
  if (request?.kind === 'bytes') return plan(request.bytes, 'requested');
  if (request?.kind === 'share') return plan(Math.floor(request.share * layout.experts) * layout.slotBytes, `requested: ${+(request.share * 100).toFixed(2)}% of the experts`);
  const need = layout.residentBytes + layout.expertBytes + env.otherBytes;
  if (need <= 0.8 * env.available) return { budgetBytes: 0, resident: true, slots: 0, share: 1, reason: 'default: the whole model fits in memory' };
  const left = env.available - layout.residentBytes - env.otherBytes;
  return plan(Math.max(min, Math.min(full, Math.floor(left / 2))), `default: half of the ${fmtBytes(Math.max(0, left))} left after the resident weights`);
}
