/**
 * Training checkpoints: one GGUF file (src/formats/gguf/writer.ts, written to .tmp and renamed,
 * so a crash never leaves half a checkpoint) holding everything a run needs to resume exactly:
 * - every parameter under its own name (F32, its shape), and AdamW's moments as
 *   `<name>.adam_m` / `<name>.adam_v`;
 * - `switchyard.train.step` (optimizer steps taken, for bias correction), the AdamW settings,
 *   the RNG state and the caller's JSON state (data cursor, config) as `switchyard.train.*` keys.
 * Loading checks every name and shape before touching the store and names what does not match.
 */
import { GGMLType } from '../core/dtypes.js';
import { SwitchyardError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { GGUFFile } from '../formats/gguf/reader.js';
import { kv, writeGGUF, type GGUFWriteTensor } from '../formats/gguf/writer.js';
import type { AdamW } from './optim.js';
import type { ParameterStore } from './params.js';

/** A checkpoint that does not fit the model being trained, or is not a checkpoint. */
export class CheckpointError extends SwitchyardError {
  constructor(message: string) {
    super('E_CHECKPOINT', message);
  }
}

const FORMAT = 'switchyard-train-checkpoint';
const VERSION = 1;
const K = {
  format: 'switchyard.train.format',
  version: 'switchyard.train.version',
  step: 'switchyard.train.step',
  adamw: 'switchyard.train.adamw',
  rng: 'switchyard.train.rng',
  state: 'switchyard.train.state',
} as const;

export interface CheckpointExtra {
  /** Rng.state(). */
  rng: readonly number[];
  /** Any JSON-serialisable trainer state (data cursor, config, router state...). */
  state: unknown;
}

export interface LoadedCheckpoint {
  /** Optimizer steps taken when the checkpoint was written (also set on the optimizer). */
  step: number;
  rng: number[];
  state: unknown;
}

/** The three tensors saved per parameter: value and the two AdamW moments. */
function entries(store: ParameterStore): { name: string; tensor: Tensor }[] {
  const out: { name: string; tensor: Tensor }[] = [];
  for (const p of store.list) {
    out.push({ name: p.name, tensor: p.value }, { name: `${p.name}.adam_m`, tensor: p.m }, { name: `${p.name}.adam_v`, tensor: p.v });
  }
  return out;
}

/** Writes the store's values, AdamW moments and step, the RNG state and `extra.state` to `file`. */
export async function saveCheckpoint(file: string, store: ParameterStore, optimizer: AdamW, extra: CheckpointExtra): Promise<void> {
  const tensors: GGUFWriteTensor[] = entries(store).map(({ name, tensor }) => ({
    name,
    type: GGMLType.F32,
    shape: tensor.shape,
    // A copy out of wasm memory, taken when the writer reaches this tensor.
    data: async () => tensor.bytes.slice(),
  }));
  const adamw = { beta1: optimizer.beta1, beta2: optimizer.beta2, eps: optimizer.eps, weightDecay: optimizer.weightDecay };
  await writeGGUF(file, {
    metadata: [
      kv.string('general.type', 'checkpoint'),
      kv.string(K.format, FORMAT),
      kv.u32(K.version, VERSION),
      kv.u64(K.step, BigInt(optimizer.steps)),
      kv.string(K.adamw, JSON.stringify(adamw)),
      kv.string(K.rng, JSON.stringify(extra.rng)),
      kv.string(K.state, JSON.stringify(extra.state ?? null)),
    ],
    tensors,
  });
}

/**
 * Reads a checkpoint into the store (values and AdamW moments) and the optimizer (its step),
 * after checking that its tensors are exactly the store's (names, shapes, F32).
 */
export async function loadCheckpoint(file: string, store: ParameterStore, optimizer: AdamW): Promise<LoadedCheckpoint> {
  const gguf = await GGUFFile.open(file);
  try {
    const md = gguf.metadata;
    if (md.get(K.format) !== FORMAT) throw new CheckpointError(`${file} is not a Switchyard training checkpoint (no ${K.format} = '${FORMAT}')`);
    const version = Number(md.get(K.version));
    if (version !== VERSION) throw new CheckpointError(`${file}: checkpoint version ${version}, this Switchyard reads version ${VERSION}`);
    const want = entries(store);
    const wanted = new Set(want.map((e) => e.name));
    for (const { name, tensor } of want) {
      const info = gguf.tensors.get(name);
      if (!info) throw new CheckpointError(`${file} has no tensor '${name}' (is it a checkpoint of another model?)`);
      if (info.type !== GGMLType.F32) throw new CheckpointError(`${file}: tensor '${name}' is not F32`);
      if (info.shape.length !== tensor.shape.length || info.shape.some((d, i) => d !== tensor.shape[i])) {
        throw new CheckpointError(`${file}: tensor '${name}' has shape [${info.shape.join(', ')}], the model expects [${tensor.shape.join(', ')}]`);
      }
    }
    for (const name of gguf.tensors.keys()) {
      if (!wanted.has(name)) throw new CheckpointError(`${file} has a tensor '${name}' that the model does not have`);
    }
    const json = (key: string): unknown => {
      const v = md.get(key);
      if (typeof v !== 'string') throw new CheckpointError(`${file}: metadata '${key}' is missing`);
      try {
        return JSON.parse(v);
      } catch {
        throw new CheckpointError(`${file}: metadata '${key}' is not valid JSON`);
      }
    };
    const rng = json(K.rng);
    if (!Array.isArray(rng)) throw new CheckpointError(`${file}: metadata '${K.rng}' is not an array`);
    const state = json(K.state);
    const stepValue = md.get(K.step);
    const step = Number(stepValue);
    if (stepValue === undefined || !Number.isSafeInteger(step) || step < 0) throw new CheckpointError(`${file}: metadata '${K.step}' is missing or invalid`);
    for (const { name, tensor } of want) tensor.bytes.set(await gguf.read(name));
    optimizer.steps = step;
    return { step, rng: rng as number[], state };
  } finally {
    await gguf.close();
  }
}
