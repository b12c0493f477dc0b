/**
 * Export a trained model to GGUF as `qwen3moe`, the architecture whose equations src/train/model.ts
 * trains (llama.cpp src/models/qwen3moe.cpp: softmax -> top-k -> renormalised gating, per-head
 * q/k RMSNorm, tied output when `output.weight` is absent). The dense baseline exports as a
 * qwen3moe with one expert chosen with weight 1, which computes exactly its SwiGLU FFN.
 * Metadata keys follow convert_hf_to_gguf.py's Qwen3MoeModel; tensor types follow
 * outputTypeFor (norms and routers stay F32, as llama.cpp's converter and quantizer keep them).
 */
import { SwitchyardError } from '../core/errors.js';
import type { GGUFKV } from '../formats/gguf/types.js';
import { type GGUFWriteTensor, kv, writeGGUF } from '../formats/gguf/writer.js';
import { type ConvertTargetType, convertFloatTensor, ggmlTypeOfTarget } from '../weights/convert-types.js';
import { outputTypeFor } from '../weights/hf/convert.js';
import type { ModelSpec } from './config.js';
import type { ParameterStore } from './params.js';

export class ExportError extends SwitchyardError {
  constructor(message: string) {
    super('E_EXPORT', message);
  }
}

export interface ExportOptions {
  name: string;
  type: ConvertTargetType;
  /** GGUF key-values of the tokenizer (tokenizer.ggml.*). */
  tokenizer: readonly GGUFKV[];
  /** Extra general.* / switchyard.* metadata (recipe, corpus version, ...). */
  extra?: readonly GGUFKV[];
}

const FILE_TYPE: Record<ConvertTargetType, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };

/** Why a spec cannot be exported (undefined when it can). */
export function exportBlocker(m: ModelSpec): string | undefined {
  const f = m.ffn;
  if (f.kind === 'dense') return undefined;
  if (f.router.kind !== 'softmax-topk' || f.router.normalize === false) {
    return `router '${f.router.kind}'${f.router.normalize === false ? ' without renormalisation' : ''} has no llama.cpp architecture; qwen3moe needs 'softmax-topk' with normalize: true`;
  }
  if (f.sharedDim) return 'shared experts are not part of qwen3moe';
  return undefined;
}

/** Writes the model as a qwen3moe GGUF file (atomically: .tmp then rename). */
export async function exportGGUF(file: string, spec: ModelSpec, params: ParameterStore, opts: ExportOptions): Promise<void> {
  const blocker = exportBlocker(spec);
  if (blocker) throw new ExportError(`cannot export ${opts.name} to GGUF: ${blocker}`);
  const f = spec.ffn;
  const moe = f.kind === 'moe';
  const arch = 'qwen3moe';
  const a = (key: string) => `${arch}.${key}`;
  const metadata: GGUFKV[] = [
    kv.string('general.architecture', arch),
    kv.string('general.name', opts.name),
    kv.u32('general.file_type', FILE_TYPE[opts.type]),
    kv.u32('general.quantization_version', 2),
    ...(opts.extra ?? []),
    kv.u32(a('block_count'), spec.layers),
    kv.u32(a('context_length'), spec.contextLength),
    kv.u32(a('embedding_length'), spec.dim),
    kv.u32(a('feed_forward_length'), moe ? f.expertDim * f.topK : f.hiddenDim),
    kv.u32(a('attention.head_count'), spec.heads),
    kv.u32(a('attention.head_count_kv'), spec.kvHeads),
    kv.u32(a('attention.key_length'), spec.headDim),
    kv.u32(a('attention.value_length'), spec.headDim),
    kv.f32(a('rope.freq_base'), spec.ropeTheta),
    kv.f32(a('attention.layer_norm_rms_epsilon'), spec.normEps),
    kv.u32(a('expert_count'), moe ? f.experts : 1),
    kv.u32(a('expert_used_count'), moe ? f.topK : 1),
    kv.u32(a('expert_feed_forward_length'), moe ? f.expertDim : f.hiddenDim),
    ...opts.tokenizer,
  ];
  const target = ggmlTypeOfTarget(opts.type);
  const tensors: GGUFWriteTensor[] = [];
  const add = (name: string, shape: readonly number[], values: () => Float32Array) => {
    const type = outputTypeFor(name, shape, target);
    tensors.push({ name, type, shape, data: async () => convertFloatTensor(values(), 'F32', type) });
  };
  for (const p of params.list) {
    // The dense FFN becomes expert 0 of a one-expert layer (the router's single logit gets weight 1).
    const dense = /^blk\.\d+\.ffn_(gate|up|down)\.weight$/.exec(p.name);
    if (dense) {
      const il = p.name.split('.')[1];
      if (dense[1] === 'gate') add(`blk.${il}.ffn_gate_inp.weight`, [1, spec.dim], () => new Float32Array(spec.dim));
      add(`blk.${il}.ffn_${dense[1]}_exps.weight`, [1, ...p.shape], () => p.value.f32().slice());
      continue;
    }
    add(p.name, p.shape, () => p.value.f32().slice());
  }
  await writeGGUF(file, { metadata, tensors });
}
