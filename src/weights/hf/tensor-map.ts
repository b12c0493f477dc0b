/**
 * The Hugging Face -> GGUF tensor table: for every supported architecture, which checkpoint
 * tensors become which GGUF tensors, and the named transform (transforms.ts) where a rename is
 * not enough. This file is data plus the small helpers that read it; the converter
 * (convert.ts) and the exporter (export.ts) are its two readers, in opposite directions.
 *
 * Names: `{bid}` is a layer (block) index, `{xid}` an expert index (one checkpoint tensor per
 * expert, stacked by `stackExperts`). The rules of an architecture are listed in the order the
 * GGUF file holds them (global tensors, then each block's tensors), which is the order the golden
 * models (../shared/golden/tools/gen_models.py) and llama.cpp use. Several rules may produce the
 * same GGUF tensors from different checkpoint layouts (per-expert vs. fused experts, gpt-oss BF16
 * vs. MXFP4): the converter uses the one whose checkpoint tensors are present, the exporter the
 * first one that accepts the GGUF tensor's type.
 *
 * Reference: llama.cpp d32676d77 gguf-py/gguf/tensor_mapping.py (the HF names),
 * gguf-py/gguf/constants.py (the GGUF names) and conversion/{llama,qwen,olmo,deepseek,gpt_oss,
 * granite,phi}.py (which model permutes, stacks or splits what).
 */
import type { TransformName } from './transforms.js';

export interface TensorRule {
  /** GGUF tensors produced, in file order (`{bid}` = block). */
  readonly gguf: readonly string[];
  /** Checkpoint tensors consumed (`{bid}` = layer, `{xid}` = expert). */
  readonly hf: readonly string[];
  /** How the data changes; a plain rename when absent. */
  readonly transform?: TransformName;
}

export interface ArchitectureTensorMap {
  /** GGUF `general.architecture`. */
  readonly architecture: string;
  /** The config.json `architectures[0]` values converted to this architecture. */
  readonly hfArchitectures: readonly string[];
  /** In GGUF file order: global tensors, then one block's tensors. */
  readonly rules: readonly TensorRule[];
  /** Checkpoint tensors dropped on purpose (patterns as in `hf`). */
  readonly ignored?: readonly string[];
  /**
   * Layers at or past config.num_hidden_layers are dropped: DeepSeek-V3 checkpoints append a
   * multi-token-prediction layer that llama.cpp does not use (DeepseekV2Model.skip_mtp).
   */
  readonly ignoreLayersPastCount?: boolean;
}

/** Tensors no architecture converts: rotary caches and attention masks (convert_hf_to_gguf drops them). */
export const IGNORED_EVERYWHERE: readonly string[] = [
  'model.layers.{bid}.self_attn.rotary_emb.inv_freq',
  'model.rotary_emb.inv_freq',
];

// Shorthands: a HF layer prefix and a GGUF block prefix.
const L = 'model.layers.{bid}.';
const B = 'blk.{bid}.';

const r = (gguf: string | string[], hf: string | string[], transform?: TransformName): TensorRule => ({
  gguf: typeof gguf === 'string' ? [gguf] : gguf,
  hf: typeof hf === 'string' ? [hf] : hf,
  ...(transform ? { transform } : {}),
});

/** token_embd, output_norm, output: the same three in every architecture here. */
const EMBEDDINGS: readonly TensorRule[] = [
  r('token_embd.weight', 'model.embed_tokens.weight'),
  r('output_norm.weight', 'model.norm.weight'),
  r('output.weight', 'lm_head.weight'),
];

/** q/k/v/o projections without rotary permutation, with optional biases (listed after the weights, as GGUF files order them). */
function attention(opts: { bias: boolean; outputBias: boolean }): TensorRule[] {
  const rules = [
    r(`${B}attn_q.weight`, `${L}self_attn.q_proj.weight`),
    r(`${B}attn_k.weight`, `${L}self_attn.k_proj.weight`),
    r(`${B}attn_v.weight`, `${L}self_attn.v_proj.weight`),
  ];
  if (opts.bias) {
    rules.push(
      r(`${B}attn_q.bias`, `${L}self_attn.q_proj.bias`),
      r(`${B}attn_k.bias`, `${L}self_attn.k_proj.bias`),
      r(`${B}attn_v.bias`, `${L}self_attn.v_proj.bias`),
    );
  }
  rules.push(r(`${B}attn_output.weight`, `${L}self_attn.o_proj.weight`));
  if (opts.outputBias) rules.push(r(`${B}attn_output.bias`, `${L}self_attn.o_proj.bias`));
  return rules;
}

/** Experts stored one module per expert under `moduleName.{xid}.{gate,up,down}`. */
function perExpert(prefix: string, gate: string, up: string, down: string): TensorRule[] {
  return [
    r(`${B}ffn_gate_exps.weight`, `${L}${prefix}.{xid}.${gate}.weight`, 'stackExperts'),
    r(`${B}ffn_up_exps.weight`, `${L}${prefix}.{xid}.${up}.weight`, 'stackExperts'),
    r(`${B}ffn_down_exps.weight`, `${L}${prefix}.{xid}.${down}.weight`, 'stackExperts'),
  ];
}

/**
 * The same experts as transformers v5 saves them: one fused `gate_up_proj` [E, 2F, D] and one
 * `down_proj` [E, D, F] per layer (Qwen2MoeModel.modify_tensors handles this layout).
 */
const FUSED_EXPERTS: readonly TensorRule[] = [
  r([`${B}ffn_gate_exps.weight`, `${B}ffn_up_exps.weight`], `${L}mlp.experts.gate_up_proj`, 'splitGateUp'),
  r(`${B}ffn_down_exps.weight`, `${L}mlp.experts.down_proj`),
];

/** Dense SwiGLU feed-forward (`mlp.{gate,up,down}_proj`). */
function denseFFN(hfPrefix: string, ggufSuffix = ''): TensorRule[] {
  return [
    r(`${B}ffn_gate${ggufSuffix}.weight`, `${L}${hfPrefix}.gate_proj.weight`),
    r(`${B}ffn_up${ggufSuffix}.weight`, `${L}${hfPrefix}.up_proj.weight`),
    r(`${B}ffn_down${ggufSuffix}.weight`, `${L}${hfPrefix}.down_proj.weight`),
  ];
}

const LLAMA: ArchitectureTensorMap = {
  architecture: 'llama',
  hfArchitectures: ['LlamaForCausalLM', 'MistralForCausalLM', 'MixtralForCausalLM'],
  rules: [
    ...EMBEDDINGS,
    r(`${B}attn_norm.weight`, `${L}input_layernorm.weight`),
    // LlamaModel.undo_permute: q and k (weights and, with attention_bias, biases) are permuted
    r(`${B}attn_q.weight`, `${L}self_attn.q_proj.weight`, 'permuteQ'),
    r(`${B}attn_k.weight`, `${L}self_attn.k_proj.weight`, 'permuteK'),
    r(`${B}attn_v.weight`, `${L}self_attn.v_proj.weight`),
    r(`${B}attn_q.bias`, `${L}self_attn.q_proj.bias`, 'permuteQ'),
    r(`${B}attn_k.bias`, `${L}self_attn.k_proj.bias`, 'permuteK'),
    r(`${B}attn_v.bias`, `${L}self_attn.v_proj.bias`),
    r(`${B}attn_output.weight`, `${L}self_attn.o_proj.weight`),
    r(`${B}attn_output.bias`, `${L}self_attn.o_proj.bias`),
    r(`${B}ffn_norm.weight`, `${L}post_attention_layernorm.weight`),
    // Mixtral: w1 = gate, w3 = up, w2 = down
    r(`${B}ffn_gate_inp.weight`, `${L}block_sparse_moe.gate.weight`),
    ...perExpert('block_sparse_moe.experts', 'w1', 'w3', 'w2'),
    ...denseFFN('mlp'),
  ],
};

const QWEN2MOE: ArchitectureTensorMap = {
  architecture: 'qwen2moe',
  hfArchitectures: ['Qwen2MoeForCausalLM'],
  rules: [
    ...EMBEDDINGS,
    r(`${B}attn_norm.weight`, `${L}input_layernorm.weight`),
    ...attention({ bias: true, outputBias: false }),
    r(`${B}ffn_norm.weight`, `${L}post_attention_layernorm.weight`),
    r(`${B}ffn_gate_inp.weight`, `${L}mlp.gate.weight`),
    ...perExpert('mlp.experts', 'gate_proj', 'up_proj', 'down_proj'),
    ...FUSED_EXPERTS,
    r(`${B}ffn_gate_inp_shexp.weight`, `${L}mlp.shared_expert_gate.weight`, 'squeeze'),
    ...denseFFN('mlp.shared_expert', '_shexp'),
  ],
};

const QWEN3MOE: ArchitectureTensorMap = {
  architecture: 'qwen3moe',
  hfArchitectures: ['Qwen3MoeForCausalLM'],
  rules: [
    ...EMBEDDINGS,
    r(`${B}attn_norm.weight`, `${L}input_layernorm.weight`),
    ...attention({ bias: false, outputBias: false }),
    r(`${B}attn_q_norm.weight`, `${L}self_attn.q_norm.weight`),
    r(`${B}attn_k_norm.weight`, `${L}self_attn.k_norm.weight`),
    r(`${B}ffn_norm.weight`, `${L}post_attention_layernorm.weight`),
    r(`${B}ffn_gate_inp.weight`, `${L}mlp.gate.weight`),
    ...perExpert('mlp.experts', 'gate_proj', 'up_proj', 'down_proj'),
    ...FUSED_EXPERTS,
  ],
};

const OLMOE: ArchitectureTensorMap = {
  architecture: 'olmoe',
  hfArchitectures: ['OlmoeForCausalLM'],
  rules: [
    ...EMBEDDINGS,
    r(`${B}attn_norm.weight`, `${L}input_layernorm.weight`),
    ...attention({ bias: false, outputBias: false }),
    // OLMoE normalises the whole q and k projections: [n_embd] weights
    r(`${B}attn_q_norm.weight`, `${L}self_attn.q_norm.weight`),
    r(`${B}attn_k_norm.weight`, `${L}self_attn.k_norm.weight`),
    r(`${B}ffn_norm.weight`, `${L}post_attention_layernorm.weight`),
    r(`${B}ffn_gate_inp.weight`, `${L}mlp.gate.weight`),
    ...perExpert('mlp.experts', 'gate_proj', 'up_proj', 'down_proj'),
    ...FUSED_EXPERTS,
  ],
};

const DEEPSEEK2: ArchitectureTensorMap = {
  architecture: 'deepseek2',
  hfArchitectures: ['DeepseekV2ForCausalLM', 'DeepseekV3ForCausalLM'],
  rules: [
    ...EMBEDDINGS,
    r(`${B}attn_norm.weight`, `${L}input_layernorm.weight`),
    r(`${B}attn_q_a_norm.weight`, `${L}self_attn.q_a_layernorm.weight`),
    r(`${B}attn_kv_a_norm.weight`, `${L}self_attn.kv_a_layernorm.weight`),
    // q_lora_rank > 0 (V3): q = q_b(norm(q_a(x))); q_lora_rank null/0 (V2-Lite): q_proj
    r(`${B}attn_q_a.weight`, `${L}self_attn.q_a_proj.weight`),
    r(`${B}attn_q_b.weight`, `${L}self_attn.q_b_proj.weight`),
    r(`${B}attn_q.weight`, `${L}self_attn.q_proj.weight`),
    r(`${B}attn_kv_a_mqa.weight`, `${L}self_attn.kv_a_proj_with_mqa.weight`),
    r([`${B}attn_k_b.weight`, `${B}attn_v_b.weight`], `${L}self_attn.kv_b_proj.weight`, 'splitKvB'),
    r(`${B}attn_output.weight`, `${L}self_attn.o_proj.weight`),
    r(`${B}ffn_norm.weight`, `${L}post_attention_layernorm.weight`),
    // the first `first_k_dense_replace` layers are dense
    ...denseFFN('mlp'),
    r(`${B}ffn_gate_inp.weight`, `${L}mlp.gate.weight`),
    ...perExpert('mlp.experts', 'gate_proj', 'up_proj', 'down_proj'),
    // V3 selection bias (ModelBase.filter_tensors renames it to e_score_correction.bias)
    r(`${B}exp_probs_b.bias`, `${L}mlp.gate.e_score_correction_bias`),
    ...denseFFN('mlp.shared_experts', '_shexp'),
  ],
  ignoreLayersPastCount: true,
};

const GPT_OSS: ArchitectureTensorMap = {
  architecture: 'gpt-oss',
  hfArchitectures: ['GptOssForCausalLM'],
  rules: [
    ...EMBEDDINGS,
    r(`${B}attn_norm.weight`, `${L}input_layernorm.weight`),
    ...attention({ bias: true, outputBias: true }),
    r(`${B}attn_sinks.weight`, `${L}self_attn.sinks`),
    r(`${B}post_attention_norm.weight`, `${L}post_attention_layernorm.weight`),
    r(`${B}ffn_gate_inp.weight`, `${L}mlp.router.weight`),
    // MXFP4 checkpoints (the released ones): kept in MXFP4 whatever the output type, as llama.cpp does
    r(
      [`${B}ffn_gate_exps.weight`, `${B}ffn_up_exps.weight`],
      [`${L}mlp.experts.gate_up_proj_blocks`, `${L}mlp.experts.gate_up_proj_scales`],
      'mxfp4GateUp',
    ),
    r(
      `${B}ffn_down_exps.weight`,
      [`${L}mlp.experts.down_proj_blocks`, `${L}mlp.experts.down_proj_scales`],
      'mxfp4Experts',
    ),
    // BF16/F32 checkpoints: [E, in, out], gate/up interleaved
    r([`${B}ffn_gate_exps.weight`, `${B}ffn_up_exps.weight`], `${L}mlp.experts.gate_up_proj`, 'gptOssGateUp'),
    r(`${B}ffn_down_exps.weight`, `${L}mlp.experts.down_proj`, 'transposeExperts'),
    r(`${B}ffn_gate_inp.bias`, `${L}mlp.router.bias`),
    r([`${B}ffn_gate_exps.bias`, `${B}ffn_up_exps.bias`], `${L}mlp.experts.gate_up_proj_bias`, 'gptOssGateUpBias'),
    r(`${B}ffn_down_exps.bias`, `${L}mlp.experts.down_proj_bias`),
  ],
};

const GRANITEMOE: ArchitectureTensorMap = {
  architecture: 'granitemoe',
  hfArchitectures: ['GraniteMoeForCausalLM'],
  rules: [
    ...EMBEDDINGS,
    r(`${B}attn_norm.weight`, `${L}input_layernorm.weight`),
    // GraniteModel extends LlamaModel: q and k are permuted
    r(`${B}attn_q.weight`, `${L}self_attn.q_proj.weight`, 'permuteQ'),
    r(`${B}attn_k.weight`, `${L}self_attn.k_proj.weight`, 'permuteK'),
    r(`${B}attn_v.weight`, `${L}self_attn.v_proj.weight`),
    r(`${B}attn_output.weight`, `${L}self_attn.o_proj.weight`),
    r(`${B}ffn_norm.weight`, `${L}post_attention_layernorm.weight`),
    r(`${B}ffn_gate_inp.weight`, `${L}block_sparse_moe.router.layer.weight`),
    // JetMoE-style parallel experts: input_linear [E, 2F, D] = gate rows then up rows
    r([`${B}ffn_gate_exps.weight`, `${B}ffn_up_exps.weight`], `${L}block_sparse_moe.input_linear.weight`, 'splitGateUp'),
    r(`${B}ffn_down_exps.weight`, `${L}block_sparse_moe.output_linear.weight`),
  ],
};

const PHIMOE: ArchitectureTensorMap = {
  architecture: 'phimoe',
  hfArchitectures: ['PhiMoEForCausalLM'],
  rules: [
    r('token_embd.weight', 'model.embed_tokens.weight'),
    r('output_norm.weight', 'model.norm.weight'),
    r('output_norm.bias', 'model.norm.bias'),
    r('output.weight', 'lm_head.weight'),
    r('output.bias', 'lm_head.bias'),
    r(`${B}attn_norm.weight`, `${L}input_layernorm.weight`),
    r(`${B}attn_norm.bias`, `${L}input_layernorm.bias`),
    ...attention({ bias: true, outputBias: true }),
    r(`${B}ffn_norm.weight`, `${L}post_attention_layernorm.weight`),
    r(`${B}ffn_norm.bias`, `${L}post_attention_layernorm.bias`),
    r(`${B}ffn_gate_inp.weight`, `${L}block_sparse_moe.gate.weight`),
    ...perExpert('block_sparse_moe.experts', 'w1', 'w3', 'w2'),
  ],
};

/** Every architecture the converter knows, by GGUF `general.architecture`. */
export const TENSOR_MAPS: readonly ArchitectureTensorMap[] = [
  LLAMA,
  QWEN2MOE,
  QWEN3MOE,
  OLMOE,
  DEEPSEEK2,
  GPT_OSS,
  GRANITEMOE,
  PHIMOE,
];

/** The table for a config.json `architectures[0]`, or undefined. */
export function tensorMapForHuggingFace(hfArchitecture: string): ArchitectureTensorMap | undefined {
  return TENSOR_MAPS.find((m) => m.hfArchitectures.includes(hfArchitecture));
}

/** The table for a GGUF `general.architecture`, or undefined. */
export function tensorMapForGGUF(architecture: string): ArchitectureTensorMap | undefined {
  return TENSOR_MAPS.find((m) => m.architecture === architecture);
}

export const SUPPORTED_HF_ARCHITECTURES: readonly string[] = TENSOR_MAPS.flatMap((m) => m.hfArchitectures);

// ---- name patterns -------------------------------------------------------------------------

/** A concrete name for a pattern. */
export function formatTensorName(pattern: string, bid?: number, xid?: number): string {
  let s = pattern;
  if (s.includes('{bid}')) {
    if (bid === undefined) throw new Error(`pattern '${pattern}' needs a block index`);
    s = s.replaceAll('{bid}', String(bid));
  }
  if (s.includes('{xid}')) {
    if (xid === undefined) throw new Error(`pattern '${pattern}' needs an expert index`);
    s = s.replaceAll('{xid}', String(xid));
  }
  return s;
}

export interface NameMatch {
  readonly bid?: number;
  readonly xid?: number;
}

const patternCache = new Map<string, RegExp>();

/** Matches a concrete name against a pattern, giving its block and expert indices. */
export function matchTensorName(pattern: string, name: string): NameMatch | undefined {
  let re = patternCache.get(pattern);
  if (!re) {
    const body = pattern
      .split(/(\{bid\}|\{xid\})/)
      .map((part) =>
        part === '{bid}'
          ? '(?<bid>0|[1-9]\\d*)'
          : part === '{xid}'
            ? '(?<xid>0|[1-9]\\d*)'
            : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      )
      .join('');
    re = new RegExp(`^${body}$`);
    patternCache.set(pattern, re);
  }
  const m = re.exec(name);
  if (!m) return undefined;
  const g = m.groups ?? {};
  return {
    ...(g.bid !== undefined ? { bid: Number(g.bid) } : {}),
    ...(g.xid !== undefined ? { xid: Number(g.xid) } : {}),
  };
}

/** Whether a rule's tensors repeat per block. */
export function isBlockRule(rule: TensorRule): boolean {
  return rule.gguf.some((n) => n.includes('{bid}'));
}

/** Whether a rule consumes one checkpoint tensor per expert. */
export function isPerExpertRule(rule: TensorRule): boolean {
  return rule.hf.some((n) => n.includes('{xid}'));
}
