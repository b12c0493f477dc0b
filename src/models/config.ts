/**
 * ModelConfig: the one description of a model's hyper-parameters that the runtime reads,
 * built from GGUF metadata (and, through src/weights/hf/config.ts, from a Hugging Face
 * config.json). It holds what llama.cpp's `llama_hparams` holds for the eight supported
 * architectures, plus the per-architecture facts llama.cpp hard-codes in its graph builders
 * (RoPE layout, expert gating, top-k renormalisation), so a model file needs no key names.
 *
 * Reference: llama.cpp d32676d77 (the goldens' commit): src/llama-model.cpp
 * (`load_hparams`, `llama_model_rope_type`), src/models/<arch>.cpp (`load_arch_hparams`,
 * `load_arch_tensors`, the `build_moe_ffn` arguments), src/llama-hparams.{h,cpp}; key names
 * from src/llama-arch.cpp / gguf-py/gguf/constants.py.
 *
 * Tensor facts are not metadata: tied embeddings (no `output.weight`) are reported only when
 * the caller passes the tensor names; optional tensors (biases, `exp_probs_b`, rope factor
 * tensors, q/k norms) are for the weight loader to find.
 */
import { SwitchyardError } from '../core/errors.js';
import { type GGUFMetadata, GGUFMetadataError } from '../formats/gguf/index.js';

export const SUPPORTED_ARCHITECTURES = ['llama', 'qwen2moe', 'qwen3moe', 'olmoe', 'deepseek2', 'gpt-oss', 'granitemoe', 'phimoe'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

/** llama.cpp's LLAMA_MAX_LAYERS and LLAMA_MAX_EXPERTS: larger counts are refused, not allocated. */
export const MAX_LAYERS = 512;
export const MAX_EXPERTS = 512;

/** `general.architecture` names an architecture Switchyard does not run. */
export class UnsupportedArchitectureError extends SwitchyardError {
  constructor(
    readonly file: string,
    readonly architecture: string,
  ) {
    super(
      'E_UNSUPPORTED_ARCHITECTURE',
      `${file}: architecture '${architecture}' is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`,
    );
  }
}

/** NORM rotates adjacent pairs (x0,x1),(x2,x3)...; NEOX rotates (x_i, x_{i+n/2}). */
export type RopeType = 'norm' | 'neox';
export type RopeScalingType = 'none' | 'linear' | 'yarn' | 'longrope';
/**
 * softmax / sigmoid: probabilities over all experts, then top-k (llama.cpp gating 1 / 2);
 * softmax-weight: top-k on the raw logits, softmax over the k chosen (gpt-oss, gating 3).
 */
export type ExpertGating = 'softmax' | 'sigmoid' | 'softmax-weight';
/** silu: SwiGLU silu(g)·u; swiglu-oai: gpt-oss's clamped variant (alpha 1.702, limit 7, llama-graph.cpp). */
export type FeedForwardActivation = 'silu' | 'swiglu-oai';

export interface AttentionConfig {
  /** H per layer. */
  readonly headCount: readonly number[];
  /** Hkv per layer (defaults to H). */
  readonly headCountKV: readonly number[];
  /** Dk, Dv per head as stored (`attention.key_length`, default D / H). For deepseek2 these
   *  are llama.cpp's absorbed MLA sizes (kv_lora + rope, kv_lora); see `mla` for the per-head ones. */
  readonly keyLength: number;
  readonly valueLength: number;
  /** `attention.scale` (Granite); undefined = 1/sqrt(head size), or deepseek2's YaRN-corrected scale. */
  readonly scale: number | undefined;
  /** Keys visible to a query on a sliding layer: positions j with i - j < slidingWindow. 0 = none. */
  readonly slidingWindow: number;
  readonly slidingLayers: readonly boolean[];
  /** gpt-oss: one learned sink logit per head joins each softmax (`attn_sinks`). */
  readonly sinks: boolean;
}

export interface RopeConfig {
  readonly type: RopeType;
  /** Rotated dimensions per head (n_rot, default key length). */
  readonly dimensionCount: number;
  readonly freqBase: number;
  /** gpt-oss `rope.freq_base_swa` for sliding layers (defaults to freqBase). */
  readonly freqBaseSliding: number;
  /** The key absent means llama.cpp's "linear" with factor 1, i.e. no scaling: reported as 'none'. */
  readonly scalingType: RopeScalingType;
  /** Context extension factor (1 = none; llama.cpp's freq_scale is its inverse). */
  readonly scalingFactor: number;
  /** n_ctx_orig_yarn (default: the training context length). */
  readonly originalContextLength: number;
  /** llama.cpp d32676d77 never reads the beta keys (it always uses 32 / 1); we read them with those defaults. */
  readonly yarnBetaFast: number;
  readonly yarnBetaSlow: number;
  /** mscale_all_dim. deepseek2 files store 0.1 x it and llama.cpp divides by 0.1 on load
   *  ([TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]); this is the divided value. 0 = none. */
  readonly yarnLogMultiplier: number;
  /** `rope.scaling.attn_factor` (Phi-MoE LongRoPE): multiplies cos/sin. Default 1. */
  readonly attnFactor: number;
}

export interface MoEConfig {
  /** E routed experts and K used per token. */
  readonly expertCount: number;
  readonly expertUsedCount: number;
  /** F of one routed expert. */
  readonly expertFeedForwardLength: number;
  readonly gating: ExpertGating;
  /** Renormalise the K weights to sum 1 (Hugging Face `norm_topk_prob`). */
  readonly normalizeWeights: boolean;
  /** Multiply the K weights (DeepSeek `routed_scaling_factor`); 1 = none. */
  readonly weightsScale: number;
  /** Group-limited routing (DeepSeek-V3): G groups, the best `groupUsedCount` kept; G <= 1 = off. */
  readonly groupCount: number;
  readonly groupUsedCount: number;
  /** The first layers have a dense FFN instead of experts (deepseek2). */
  readonly leadingDenseBlockCount: number;
  /** Shared experts, run for every token: their count and the total width of the shared FFN. */
  readonly sharedExpertCount: number;
  readonly sharedExpertFeedForwardLength: number;
  /** Qwen2-MoE: the shared expert's output is scaled by sigmoid(ffn_gate_inp_shexp · x). */
  readonly sharedExpertGate: boolean;
}

/** DeepSeek multi-head latent attention sizes (per head, before llama.cpp's absorption). */
export interface MLAConfig {
  /** 0 = no query compression (plain `attn_q`). */
  readonly qLoraRank: number;
  readonly kvLoraRank: number;
  /** qk_nope + qk_rope (`key_length_mla`) and v_head_dim (`value_length_mla`). */
  readonly keyLength: number;
  readonly valueLength: number;
  /** keyLength - rope.dimensionCount. */
  readonly nopeLength: number;
}

export interface ModelConfig {
  readonly architecture: Architecture;
  /** V: `<arch>.vocab_size`, else the length of `tokenizer.ggml.tokens`. */
  readonly vocabSize: number;
  readonly contextLength: number;
  /** D */
  readonly embeddingLength: number;
  readonly blockCount: number;
  /** `feed_forward_length` per layer: the dense FFN width (for llama/olmoe/granitemoe/phimoe MoE layers, the expert width). */
  readonly feedForwardLength: readonly number[];
  readonly activation: FeedForwardActivation;
  /** All eight architectures use RMSNorm (phimoe adds norm biases: a tensor fact). */
  readonly normEpsilon: number;
  readonly attention: AttentionConfig;
  readonly rope: RopeConfig;
  /** null for dense models. */
  readonly moe: MoEConfig | null;
  /** deepseek2 only. */
  readonly mla: MLAConfig | null;
  /** Granite multipliers (1 elsewhere): embeddings x embeddingScale, each residual branch x
   *  residualScale, logits / logitScale (Hugging Face `logits_scaling`). */
  readonly embeddingScale: number;
  readonly residualScale: number;
  readonly logitScale: number;
  /** No `output.weight`: the token embedding is the output matrix. Undefined when the tensor names were not given. */
  readonly tiedEmbeddings: boolean | undefined;
}

export interface ModelConfigOptions {
  /** The file's tensor names, to decide `tiedEmbeddings`. */
  readonly tensorNames?: Iterable<string>;
}

/** Does layer `il` route through experts (rather than a dense FFN)? */
export function isMoELayer(config: ModelConfig, il: number): boolean {
  return config.moe !== null && il >= config.moe.leadingDenseBlockCount;
}

// --- reading ------------------------------------------------------------------------------

/** A non-negative integer no larger than `max`. */
function count(m: GGUFMetadata, name: string, max: number, fallback?: number): number {
  const v = fallback === undefined ? m.archInt(name) : m.archInt(name, fallback);
  if (v < 0 || v > max) throw new GGUFMetadataError(m.file, m.archKey(name), `is ${v}, expected 0..${max}`);
  return v;
}
function positive(m: GGUFMetadata, name: string, max: number, fallback?: number): number {
  const v = count(m, name, max, fallback);
  if (v === 0) throw new GGUFMetadataError(m.file, m.archKey(name), 'is 0, expected a positive count');
  return v;
}
function perLayer(m: GGUFMetadata, name: string, layers: number, fallback?: number[]): number[] {
  const values = fallback === undefined ? m.archPerLayer(name, layers) : m.archPerLayer(name, layers, fallback);
  for (const v of values) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new GGUFMetadataError(m.file, m.archKey(name), `holds ${v}, expected non-negative integers`);
    }
  }
  return values;
}
/** A finite float; required when no fallback is given. */
function finite(m: GGUFMetadata, name: string, fallback?: number): number {
  const v = fallback === undefined ? m.archFloat(name) : m.archFloat(name, fallback);
  if (!Number.isFinite(v)) throw new GGUFMetadataError(m.file, m.archKey(name), `is ${v}, expected a finite number`);
  return v;
}

const SIZE = 1 << 24; // generous bound on any width (D, F, head size, ranks)

function vocabSize(m: GGUFMetadata): number {
  const tokens = m.has('tokenizer.ggml.tokens') ? m.stringArray('tokenizer.ggml.tokens').length : undefined;
  if (m.has(m.archKey('vocab_size'))) {
    const v = positive(m, 'vocab_size', 0xffffffff);
    if (tokens !== undefined && tokens !== v) {
      throw new GGUFMetadataError(m.file, m.archKey('vocab_size'), `is ${v} but tokenizer.ggml.tokens has ${tokens} entries`);
    }
    return v;
  }
  if (tokens === undefined || tokens === 0) {
    throw new GGUFMetadataError(m.file, m.archKey('vocab_size'), 'is missing and there is no tokenizer.ggml.tokens list to count');
  }
  return tokens;
}

const ROPE_SCALING_TYPES: readonly RopeScalingType[] = ['none', 'linear', 'yarn', 'longrope'];

function readRope(m: GGUFMetadata, arch: Architecture, keyLength: number, contextLength: number): RopeConfig {
  const scalingKey = m.archKey('rope.scaling.type');
  const factorName = m.has(m.archKey('rope.scaling.factor')) ? 'rope.scaling.factor' : 'rope.scale_linear';
  const factor = finite(m, factorName, 0);
  let scalingType: RopeScalingType = factor !== 0 && factor !== 1 ? 'linear' : 'none';
  if (m.has(scalingKey)) {
    const s = m.string(scalingKey);
    if (!(ROPE_SCALING_TYPES as readonly string[]).includes(s)) {
      throw new GGUFMetadataError(m.file, scalingKey, `is '${s}', expected one of ${ROPE_SCALING_TYPES.join(', ')}`);
    }
    scalingType = s as RopeScalingType;
  }
  const freqBase = finite(m, 'rope.freq_base', 10000);
  let logMul = finite(m, 'rope.scaling.yarn_log_multiplier', 0);
  // llama.cpp deepseek2.cpp: "cancel the factor from the convert script" (a float division).
  if (arch === 'deepseek2') logMul = Math.fround(logMul / Math.fround(0.1));
  return {
    type: ROPE_TYPES[arch],
    dimensionCount: count(m, 'rope.dimension_count', SIZE, keyLength),
    freqBase,
    freqBaseSliding: arch === 'gpt-oss' ? finite(m, 'rope.freq_base_swa', freqBase) : freqBase,
    scalingType,
    scalingFactor: factor === 0 ? 1 : factor,
    originalContextLength: count(m, 'rope.scaling.original_context_length', 0xffffffff, contextLength),
    yarnBetaFast: finite(m, 'rope.scaling.yarn_beta_fast', 32),
    yarnBetaSlow: finite(m, 'rope.scaling.yarn_beta_slow', 1),
    yarnLogMultiplier: logMul,
    attnFactor: finite(m, 'rope.scaling.attn_factor', 1),
  };
}

/** llama.cpp `llama_model_rope_type`. */
const ROPE_TYPES: Record<Architecture, RopeType> = {
  llama: 'norm',
  deepseek2: 'norm',
  granitemoe: 'norm',
  qwen2moe: 'neox',
  qwen3moe: 'neox',
  olmoe: 'neox',
  'gpt-oss': 'neox',
  phimoe: 'neox',
};

/** What each architecture's `build_moe_ffn` call and `load_arch_tensors` hard-code. */
interface MoESpec {
  /** The experts are optional (llama: dense or Mixtral-style). */
  readonly optional?: boolean;
  /** Routed expert width: 'ff' = feed_forward_length; 'exp' = expert_feed_forward_length
   *  (required); 'exp-or-ff/k' = that key, else feed_forward_length / K (qwen2moe, qwen3moe). */
  readonly width: 'ff' | 'exp' | 'exp-or-ff/k';
  readonly gating: ExpertGating | 'metadata';
  readonly normalizeWeights: boolean | 'metadata';
  /** 'optional': expert_shared_feed_forward_length when > 0 (granitemoe, llama); 'gated': Qwen2-MoE
   *  (width defaults to feed_forward_length); 'count': deepseek2 (expert_shared_count x expert width). */
  readonly shared?: 'optional' | 'gated' | 'count';
}
const MOE_SPECS: Record<Architecture, MoESpec> = {
  llama: { optional: true, width: 'ff', gating: 'softmax', normalizeWeights: true, shared: 'optional' },
  qwen2moe: { width: 'exp-or-ff/k', gating: 'softmax', normalizeWeights: false, shared: 'gated' },
  qwen3moe: { width: 'exp-or-ff/k', gating: 'softmax', normalizeWeights: true },
  olmoe: { width: 'ff', gating: 'softmax', normalizeWeights: false },
  deepseek2: { width: 'exp', gating: 'metadata', normalizeWeights: 'metadata', shared: 'count' },
  'gpt-oss': { width: 'exp', gating: 'softmax-weight', normalizeWeights: false },
  granitemoe: { width: 'ff', gating: 'softmax', normalizeWeights: true, shared: 'optional' },
  phimoe: { width: 'ff', gating: 'softmax', normalizeWeights: true },
};

function readGating(m: GGUFMetadata, layers: number, vocab: number): ExpertGating {
  const key = m.archKey('expert_gating_func');
  if (!m.has(key)) {
    // llama.cpp deepseek2.cpp: "for compatibility with existing DeepSeek V2 and V2.5 GGUFs that have
    // no expert_gating_func model parameter set" -> softmax, except GLM 4.7 Lite (sigmoid).
    return (layers === 47 || layers === 48) && vocab === 154880 ? 'sigmoid' : 'softmax';
  }
  const g = m.int(key);
  if (g === 1) return 'softmax';
  if (g === 2) return 'sigmoid';
  throw new GGUFMetadataError(m.file, key, `is ${g}, expected 1 (softmax) or 2 (sigmoid)`);
}

function readMoE(m: GGUFMetadata, arch: Architecture, layers: number, ff: number[], vocab: number): MoEConfig | null {
  const spec = MOE_SPECS[arch];
  const expertCount = count(m, 'expert_count', MAX_EXPERTS, 0);
  const used = count(m, 'expert_used_count', expertCount, 0);
  const groups = count(m, 'expert_group_count', MAX_EXPERTS, 0);
  const groupsUsed = count(m, 'expert_group_used_count', MAX_EXPERTS, 0);
  if (expertCount === 0) {
    if (spec.optional && used === 0 && groups === 0) return null;
    throw new GGUFMetadataError(m.file, m.archKey('expert_count'), `is missing or 0, but ${arch} needs experts`);
  }
  // llama.cpp load_hparams asserts these.
  if (used === 0) throw new GGUFMetadataError(m.file, m.archKey('expert_used_count'), 'is missing or 0 while the model has experts');
  if (groups >= expertCount || (groups > 1 && (expertCount % groups !== 0 || groupsUsed === 0 || groupsUsed >= groups))) {
    throw new GGUFMetadataError(
      m.file,
      m.archKey('expert_group_count'),
      `is ${groups} with ${groupsUsed} used and ${expertCount} experts: groups must divide the experts and 0 < used < groups`,
    );
  }
  let width: number;
  if (spec.width === 'ff') width = ff[0];
  else if (spec.width === 'exp') width = positive(m, 'expert_feed_forward_length', SIZE);
  else width = count(m, 'expert_feed_forward_length', SIZE, 0) || Math.floor(ff[0] / used);
  if (width === 0) throw new GGUFMetadataError(m.file, m.archKey('feed_forward_length'), 'gives an expert width of 0');

  let sharedCount = 0;
  let sharedWidth = 0;
  if (spec.shared === 'optional') {
    sharedWidth = count(m, 'expert_shared_feed_forward_length', SIZE, 0);
    sharedCount = sharedWidth > 0 ? 1 : 0;
  } else if (spec.shared === 'gated') {
    sharedWidth = count(m, 'expert_shared_feed_forward_length', SIZE, 0) || ff[0];
    sharedCount = 1;
  } else if (spec.shared === 'count') {
    sharedCount = count(m, 'expert_shared_count', MAX_EXPERTS);
    sharedWidth = sharedCount * width;
  }
  const dense = arch === 'deepseek2' ? count(m, 'leading_dense_block_count', layers, 0) : 0;
  const scale = arch === 'deepseek2' ? finite(m, 'expert_weights_scale', 0) : 0;
  return {
    expertCount,
    expertUsedCount: used,
    expertFeedForwardLength: width,
    gating: spec.gating === 'metadata' ? readGating(m, layers, vocab) : spec.gating,
    normalizeWeights: spec.normalizeWeights === 'metadata' ? m.archBool('expert_weights_norm', false) : spec.normalizeWeights,
    // llama-graph.cpp build_moe_ffn scales only when w_scale is neither 0 nor 1.
    weightsScale: scale === 0 ? 1 : scale,
    groupCount: groups,
    groupUsedCount: groupsUsed,
    leadingDenseBlockCount: dense,
    sharedExpertCount: sharedCount,
    sharedExpertFeedForwardLength: sharedWidth,
    sharedExpertGate: spec.shared === 'gated',
  };
}

function readMLA(m: GGUFMetadata, keyLength: number, valueLength: number, ropeDims: number): MLAConfig {
  // The MLA lengths default to the plain ones (llama_hparams::n_embd_head_k_mla()).
  const k = count(m, 'attention.key_length_mla', SIZE, keyLength);
  const v = count(m, 'attention.value_length_mla', SIZE, valueLength);
  if (k <= ropeDims) {
    throw new GGUFMetadataError(m.file, m.archKey('attention.key_length_mla'), `is ${k}, must exceed rope.dimension_count (${ropeDims})`);
  }
  return {
    // Required unless llama.cpp recognises a "lite" model by its layer count; absent = 0 here.
    qLoraRank: count(m, 'attention.q_lora_rank', SIZE, 0),
    kvLoraRank: positive(m, 'attention.kv_lora_rank', SIZE),
    keyLength: k,
    valueLength: v,
    nopeLength: k - ropeDims,
  };
}

function logitScale(m: GGUFMetadata): number {
  const v = finite(m, 'logit_scale');
  if (v === 0) throw new GGUFMetadataError(m.file, m.archKey('logit_scale'), 'is 0; logits are divided by it');
  return v;
}

/** Reads a model's hyper-parameters; throws GGUFMetadataError naming any missing or bad key. */
export function modelConfigFromGGUF(m: GGUFMetadata, options: ModelConfigOptions = {}): ModelConfig {
  const name = m.architecture;
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(name)) throw new UnsupportedArchitectureError(m.file, name);
  const arch = name as Architecture;

  const blockCount = positive(m, 'block_count', MAX_LAYERS);
  const contextLength = positive(m, 'context_length', 0xffffffff);
  const embeddingLength = positive(m, 'embedding_length', SIZE);
  const vocab = vocabSize(m);
  const ff = perLayer(m, 'feed_forward_length', blockCount, new Array(blockCount).fill(0));
  const heads = perLayer(m, 'attention.head_count', blockCount);
  const kvHeads = perLayer(m, 'attention.head_count_kv', blockCount, heads);
  heads.forEach((h, il) => {
    if (h === 0 || kvHeads[il] === 0 || h % kvHeads[il] !== 0) {
      throw new GGUFMetadataError(
        m.file,
        m.archKey('attention.head_count_kv'),
        `layer ${il}: ${h} heads, ${kvHeads[il]} kv heads (kv heads must divide heads)`,
      );
    }
  });
  // llama.cpp: head sizes default to n_embd / n_head (of layer 0).
  const keyLength = positive(m, 'attention.key_length', SIZE, Math.floor(embeddingLength / heads[0]));
  const valueLength = positive(m, 'attention.value_length', SIZE, Math.floor(embeddingLength / heads[0]));
  const rope = readRope(m, arch, keyLength, contextLength);
  const ropeDimsKey = m.archKey('rope.dimension_count');
  if (rope.dimensionCount % 2 !== 0 || (arch !== 'deepseek2' && rope.dimensionCount > keyLength)) {
    throw new GGUFMetadataError(m.file, ropeDimsKey, `is ${rope.dimensionCount}, expected an even count <= the head size ${keyLength}`);
  }
  if (arch === 'llama' && rope.dimensionCount !== keyLength) {
    // llama.cpp load_hparams: "invalid n_rot: %u, expected %u"
    throw new GGUFMetadataError(m.file, ropeDimsKey, `is ${rope.dimensionCount}, llama needs the head size ${keyLength}`);
  }

  let slidingWindow = 0;
  let slidingLayers: boolean[] = new Array(blockCount).fill(false);
  if (arch === 'gpt-oss') {
    slidingWindow = positive(m, 'attention.sliding_window', 0xffffffff);
    // hparams.set_swa_pattern(period): layer il slides when il % period < period - 1.
    const period = count(m, 'attention.sliding_window_pattern', MAX_LAYERS, 2);
    slidingLayers = slidingLayers.map((_, il) => period === 0 || il % period < period - 1);
  }
  // phimoe's `attention.sliding_window` is ignored by llama.cpp's phimoe loader: full attention.

  const granite = arch === 'granitemoe';
  const tensorNames = options.tensorNames ? new Set(options.tensorNames) : undefined;
  return {
    architecture: arch,
    vocabSize: vocab,
    contextLength,
    embeddingLength,
    blockCount,
    feedForwardLength: ff,
    activation: arch === 'gpt-oss' ? 'swiglu-oai' : 'silu',
    normEpsilon: finite(m, 'attention.layer_norm_rms_epsilon'),
    attention: {
      headCount: heads,
      headCountKV: kvHeads,
      keyLength,
      valueLength,
      scale: granite ? finite(m, 'attention.scale', 0) || undefined : undefined,
      slidingWindow,
      slidingLayers,
      sinks: arch === 'gpt-oss',
    },
    rope,
    moe: readMoE(m, arch, blockCount, ff, vocab),
    mla: arch === 'deepseek2' ? readMLA(m, keyLength, valueLength, rope.dimensionCount) : null,
    // granite-moe.cpp: the embedding and residual scales are optional (0 = unscaled), logit_scale is required.
    embeddingScale: (granite && finite(m, 'embedding_scale', 0)) || 1,
    residualScale: (granite && finite(m, 'residual_scale', 0)) || 1,
    logitScale: granite ? logitScale(m) : 1,
    tiedEmbeddings: tensorNames ? !tensorNames.has('output.weight') : undefined,
  };
}
