/**
 * A model's weights in device memory, by GGUF tensor name (the one naming vocabulary), with
 * per-expert views of the stacked expert tensors ([E, F, D] -> E matrices [F, D]) so an expert
 * can be used (and later paged) alone. Reference: llama.cpp src/llama-model.cpp (create_tensor).
 */
import { dtypeInfo, GGMLType } from '../core/dtypes.js';
import { SwitchyardError } from '../core/errors.js';
import type { Arena } from '../core/heap.js';
import { allocTensor, Tensor } from '../core/tensor.js';
import type { GGUFFile } from '../formats/gguf/reader.js';
import type { GGUFTensorInfo } from '../formats/gguf/types.js';
import type { DeviceSet } from '../kernels/device-set.js';
import type { Device } from '../kernels/device.js';
import type { ExpertWeights, KernelBackend } from '../kernels/backend.js';

/** A tensor a model needs is missing or has an unexpected shape. */
export class ModelWeightsError extends SwitchyardError {
  constructor(message: string) {
    super('E_MODEL_WEIGHTS', message);
  }
}

export interface LoadProgress {
  readonly tensors: number;
  readonly totalTensors: number;
  readonly bytes: number;
  readonly totalBytes: number;
}

export class ModelWeights {
  private constructor(
    readonly file: string,
    private readonly tensors: ReadonlyMap<string, Tensor>,
  ) {}

  /**
   * Reads every tensor of the file into device memory (positional reads straight into wasm
   * memory). 1-D tensors (norms, biases, factors) go to the first device, next to the
   * activations; each layer's expert stacks and their biases share one device; other tensors
   * go to the first device with room.
   */
  static async load(
    file: GGUFFile,
    devices: DeviceSet,
    onProgress?: (p: LoadProgress) => void,
    /** Tensors left in the file (routed experts an expert cache reads). */
    skip?: RegExp,
  ): Promise<ModelWeights> {
    const tensors = new Map<string, Tensor>();
    const infos = [...file.tensors.values()].filter((t) => !skip?.test(t.name));
    const totalBytes = infos.reduce((n, t) => n + t.byteLength, 0);
    let bytes = 0;
    for (const info of infos) {
      if (!dtypeInfo(info.type).kernels) {
        throw new ModelWeightsError(
          `${file.path}: tensor '${info.name}' has type ${dtypeInfo(info.type).name}, which the kernels do not implement`,
        );
      }
    }
    const expertGroup = (name: string) => /^(blk\.\d+)\.ffn_\w+_exps\.(weight|bias)$/.exec(name)?.[1];
    const groups = new Map<string, GGUFTensorInfo[]>();
    for (const info of infos) {
      const g = expertGroup(info.name);
      if (g) groups.set(g, [...(groups.get(g) ?? []), info]);
    }
    const first = devices.devices[0] as Device;
    for (const info of infos) {
      if (tensors.has(info.name)) continue;
      const g = expertGroup(info.name);
      const batch = g ? (groups.get(g) as GGUFTensorInfo[]) : [info];
      const placed =
        info.shape.length === 1
          ? [allocTensor(first.heap.arena('weights'), info.type, info.shape, info.name)]
          : await devices.allocWeights(batch.map((t) => ({ type: t.type, shape: t.shape, purpose: t.name })));
      for (let i = 0; i < batch.length; i++) {
        const t = batch[i] as GGUFTensorInfo;
        await file.readInto(t.name, (placed[i] as Tensor).bytes);
        tensors.set(t.name, placed[i] as Tensor);
        bytes += t.byteLength;
        onProgress?.({ tensors: tensors.size, totalTensors: infos.length, bytes, totalBytes });
      }
    }
    return new ModelWeights(file.path, tensors);
  }

  /** Weights made in memory (tests). */
  static fromTensors(name: string, tensors: ReadonlyMap<string, Tensor>): ModelWeights {
    return new ModelWeights(name, tensors);
  }

  /** The same weights with every non-F32 tensor dequantized exactly to F32 (in `arena`). */
  dequantized(backend: KernelBackend, arena: Arena): ModelWeights {
    const out = new Map<string, Tensor>();
    for (const [name, t] of this.tensors) {
      if (t.type === GGMLType.F32) {
        out.set(name, t);
        continue;
      }
      const f = allocTensor(arena, GGMLType.F32, t.shape, name);
      backend.dequantize(f.reshape([t.rows, t.cols]), t.reshape([t.rows, t.cols]));
      out.set(name, f);
    }
    return new ModelWeights(this.file, out);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  optional(name: string): Tensor | undefined {
    return this.tensors.get(name);
  }

  /** The named tensor; with `shape`, checked against it (outermost first). */
  get(name: string, shape?: readonly number[]): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new ModelWeightsError(`${this.file}: tensor '${name}' is missing`);
    if (shape && (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i]))) {
      throw new ModelWeightsError(
        `${this.file}: tensor '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`,
      );
    }
    return t;
  }

  /** Row `e` of a stacked tensor [E, ...rest] as a tensor [...rest] over the same bytes. */
  static expertView(stack: Tensor, e: number): Tensor {
    const rest = stack.shape.slice(1);
    const bytes = stack.byteLength / (stack.shape[0] as number);
    return new Tensor(stack.heap, stack.offset + e * bytes, stack.type, rest);
  }

  /**
   * The routed experts of block `il`: views of ffn_{gate,up,down}_exps (+ their biases when
   * present), one ExpertWeights per expert.
   */
  experts(il: number, count: number): ExpertWeights[] {
    const p = `blk.${il}.`;
    const gate = this.get(`${p}ffn_gate_exps.weight`);
    const up = this.get(`${p}ffn_up_exps.weight`);
    const down = this.get(`${p}ffn_down_exps.weight`);
    for (const t of [gate, up, down]) {
      if (t.shape[0] !== count) {
        throw new ModelWeightsError(`${this.file}: '${p}ffn_*_exps.weight' holds ${t.shape[0]} experts, expected ${count}`);
      }
    }
    const gateBias = this.optional(`${p}ffn_gate_exps.bias`);
    const upBias = this.optional(`${p}ffn_up_exps.bias`);
    const downBias = this.optional(`${p}ffn_down_exps.bias`);
    const v = ModelWeights.expertView;
    return Array.from({ length: count }, (_, e) => ({
      gate: v(gate, e),
      up: v(up, e),
      down: v(down, e),
      ...(gateBias ? { gateBias: v(gateBias, e) } : {}),
      ...(upBias ? { upBias: v(upBias, e) } : {}),
      ...(downBias ? { downBias: v(downBias, e) } : {}),
    }));
  }
}
