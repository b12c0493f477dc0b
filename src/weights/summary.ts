/**
 * What a model file holds, for `switchyard inspect` and for memory planning: parameters (total
 * and active per token), experts, the quantization mix, every tensor, and the memory the
 * weights need - split into what every token uses (dense) and what only routed tokens use
 * (experts), which is what an expert cache can keep out of memory.
 * Expert tensors are recognised by GGUF names (`*_exps.*`, gguf-py/gguf/constants.py); file
 * type names follow gguf-py's LlamaFileType.
 */
import { dtypeInfo, rowBytes } from '../core/dtypes.js';
import { GGUFMetadata } from '../formats/gguf/metadata.js';
import type { GGUFFile } from '../formats/gguf/reader.js';
import { planConversion } from './hf/convert.js';

export interface TensorSummary {
  readonly name: string;
  readonly type: string;
  readonly shape: readonly number[];
  readonly parameters: number;
  readonly bytes: number;
  /** A stacked expert tensor ([E, ...]). */
  readonly expert: boolean;
}

export interface ModelSummary {
  readonly file: string;
  readonly format: string;
  readonly architecture: string;
  readonly name?: string;
  /** `general.file_type` as llama.cpp names it (e.g. MOSTLY_Q4_K_M), when present. */
  readonly fileType?: string;
  readonly contextLength?: number;
  readonly layers?: number;
  readonly embeddingLength?: number;
  readonly vocabularySize?: number;
  readonly parameters: {
    readonly total: number;
    /** Dense parameters plus the used fraction (K of E) of the expert parameters. */
    readonly activePerToken: number;
    readonly experts: number;
  };
  readonly experts?: { readonly count: number; readonly used: number; readonly shared: number; readonly layers: number };
  /** Per tensor type: tensors, parameters, bytes. */
  readonly types: Readonly<Record<string, { tensors: number; parameters: number; bytes: number }>>;
  readonly memory: {
    readonly weightBytes: number;
    /** Weights every token uses (everything but the routed experts). */
    readonly denseBytes: number;
    readonly expertBytes: number;
    /** Bytes of one expert in one layer (gate + up + down), summed over its tensors. */
    readonly bytesPerExpert?: number;
    /** Dense weights plus K experts of one layer: the least an expert cache can run with. */
    readonly minimumResidentBytes: number;
  };
  readonly tensors: readonly TensorSummary[];
}

const FILE_TYPES = [
  'ALL_F32', 'MOSTLY_F16', 'MOSTLY_Q4_0', 'MOSTLY_Q4_1', 'MOSTLY_Q4_1_SOME_F16', 'MOSTLY_Q4_2', 'MOSTLY_Q4_3',
  'MOSTLY_Q8_0', 'MOSTLY_Q5_0', 'MOSTLY_Q5_1', 'MOSTLY_Q2_K', 'MOSTLY_Q3_K_S', 'MOSTLY_Q3_K_M', 'MOSTLY_Q3_K_L',
  'MOSTLY_Q4_K_S', 'MOSTLY_Q4_K_M', 'MOSTLY_Q5_K_S', 'MOSTLY_Q5_K_M', 'MOSTLY_Q6_K', 'MOSTLY_IQ2_XXS',
  'MOSTLY_IQ2_XS', 'MOSTLY_Q2_K_S', 'MOSTLY_IQ3_XS', 'MOSTLY_IQ3_XXS', 'MOSTLY_IQ1_S', 'MOSTLY_IQ4_NL',
  'MOSTLY_IQ3_S', 'MOSTLY_IQ3_M', 'MOSTLY_IQ2_S', 'MOSTLY_IQ2_M', 'MOSTLY_IQ4_XS', 'MOSTLY_IQ1_M', 'MOSTLY_BF16',
  'MOSTLY_Q4_0_4_4', 'MOSTLY_Q4_0_4_8', 'MOSTLY_Q4_0_8_8', 'MOSTLY_TQ1_0', 'MOSTLY_TQ2_0', 'MOSTLY_MXFP4_MOE',
];

const EXPERT_TENSOR = /_exps\.(weight|bias)$/;
const LAYER = /^blk\.(\d+)\./;

/** What a summary is made from: GGUF metadata and tensor infos, whatever the file. */
export interface ModelDescription {
  readonly path: string;
  readonly format: string;
  readonly metadata: GGUFMetadata;
  readonly tensors: Iterable<{ name: string; type: number; shape: readonly number[]; byteLength: number }>;
}

/** Summarises an open GGUF file (metadata and tensor infos only: no tensor data is read). */
export function summarizeGGUF(file: GGUFFile): ModelSummary {
  return summarizeModel({ path: file.path, format: `GGUF v${file.version}`, metadata: file.metadata, tensors: file.tensors.values() });
}

/**
 * Summarises a Hugging Face checkpoint folder as the GGUF file `convert --type auto` would make
 * of it (names, shapes and types), reading config.json, tokenizer files and safetensors headers.
 */
export async function summarizeHuggingFace(folder: string): Promise<ModelSummary> {
  const plan = await planConversion(folder);
  await plan.close();
  const byteLength = (type: number, shape: readonly number[]) => {
    const cols = shape[shape.length - 1] as number;
    return shape.slice(0, -1).reduce((a, b) => a * b, 1) * rowBytes(type, cols);
  };
  return summarizeModel({
    path: plan.folder,
    format: 'Hugging Face safetensors (shown as GGUF with convert --type auto)',
    metadata: new GGUFMetadata(plan.metadata, plan.folder),
    tensors: plan.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape, byteLength: byteLength(t.type, t.shape) })),
  });
}

export function summarizeModel(file: ModelDescription): ModelSummary {
  const m = file.metadata;
  const arch = m.string('general.architecture', 'unknown');
  const key = (k: string) => `${arch}.${k}`;
  const int = (k: string) => (m.has(k) ? m.int(k) : undefined);

  const tensors: TensorSummary[] = [];
  const types: Record<string, { tensors: number; parameters: number; bytes: number }> = {};
  const expertLayers = new Set<number>();
  const expertBytesByLayer = new Map<number, number>();
  let total = 0;
  let expertParams = 0;
  let expertBytes = 0;
  let weightBytes = 0;
  for (const t of file.tensors) {
    const type = dtypeInfo(t.type).name;
    const parameters = t.shape.reduce((a, b) => a * b, 1);
    const expert = EXPERT_TENSOR.test(t.name);
    tensors.push({ name: t.name, type, shape: t.shape, parameters, bytes: t.byteLength, expert });
    const agg = types[type] ?? { tensors: 0, parameters: 0, bytes: 0 };
    agg.tensors++;
    agg.parameters += parameters;
    agg.bytes += t.byteLength;
    types[type] = agg;
    total += parameters;
    weightBytes += t.byteLength;
    if (expert) {
      expertParams += parameters;
      expertBytes += t.byteLength;
      const layer = Number(LAYER.exec(t.name)?.[1] ?? -1);
      expertLayers.add(layer);
      expertBytesByLayer.set(layer, (expertBytesByLayer.get(layer) ?? 0) + t.byteLength);
    }
  }

  const hasSharedExpert = tensors.some((t) => t.name.includes('_shexp.'));
  const count = int(key('expert_count')) ?? 0;
  const used = int(key('expert_used_count')) ?? 0;
  const hasExperts = count > 0 && expertParams > 0;
  const activePerToken = hasExperts ? total - expertParams + (expertParams * used) / count : total;
  const bytesPerExpert = hasExperts ? Math.max(...expertBytesByLayer.values()) / count : undefined;
  const denseBytes = weightBytes - expertBytes;
  const fileTypeId = int('general.file_type');
  const vocab = m.has('tokenizer.ggml.tokens') ? m.stringArray('tokenizer.ggml.tokens').length : int(key('vocab_size'));

  return {
    file: file.path,
    format: file.format,
    architecture: arch,
    name: m.string('general.name', undefined),
    fileType: fileTypeId === undefined ? undefined : (FILE_TYPES[fileTypeId] ?? `file type ${fileTypeId}`),
    contextLength: int(key('context_length')),
    layers: int(key('block_count')),
    embeddingLength: int(key('embedding_length')),
    vocabularySize: vocab,
    parameters: { total, activePerToken: Math.round(activePerToken), experts: expertParams },
    experts: hasExperts
      ? { count, used, shared: int(key('expert_shared_count')) ?? (hasSharedExpert ? 1 : 0), layers: expertLayers.size }
      : undefined,
    types,
    memory: {
      weightBytes,
      denseBytes,
      expertBytes,
      bytesPerExpert,
      minimumResidentBytes: Math.round(denseBytes + (bytesPerExpert ?? 0) * used),
    },
    tensors,
  };
}
