/**
 * Hugging Face config.json <-> GGUF hyper-parameter metadata, for the eight architectures
 * Switchyard runs. `ggufMetadataFromHuggingFaceConfig` writes the `general.architecture` and
 * `<arch>.*` entries that llama.cpp's convert_hf_to_gguf.py writes for the model class (same
 * keys, GGUF value types and values); `huggingFaceConfigFromGGUF` is the inverse, a config.json
 * a Hugging Face user recognises for that model type (used to export GGUF models as checkpoints).
 * `ropeTensorsFromHuggingFaceConfig` gives the tensors the converter derives from the config
 * (Phi-MoE LongRoPE factors, Llama 3 `rope_freqs`) for the caller to write as F32 tensors.
 *
 * Reference: llama.cpp d32676d77 conversion/base.py (TextModel.set_gguf_parameters) and the
 * model classes in conversion/{llama,qwen,olmo,deepseek,gpt_oss,granite,phi}.py; key types from
 * gguf-py/gguf/gguf_writer.py; transformers' configuration_<model_type>.py for field names.
 *
 * Key order follows the golden models' metadata (tools/gen_models.py in ../shared/golden), so a
 * golden GGUF -> config.json -> GGUF round trip gives the same entries in the same order; the
 * converter's order differs slightly (key order has no meaning to llama.cpp).
 * The caller adds general.type/name/file_type/quantization_version and tokenizer.* entries.
 *
 * Deliberate differences from convert_hf_to_gguf.py, each so that a model survives the trip:
 * - deepseek2: `q_lora_rank: null` is written as `attention.q_lora_rank` = 0 (the converter omits
 *   it; llama.cpp then refuses any model whose layer count it does not recognise as "lite").
 * - Granite: `head_dim` is honoured (key/value length and rope dimensions) when present; the
 *   converter drops it (transformers' Granite derives the head size from hidden_size / heads).
 * - OLMoE: `rms_norm_eps` is taken from the config; the converter always writes 1e-5 (the value
 *   of every released OLMoE config).
 * - rope types llama.cpp cannot run (dynamic NTK, unknown) are refused instead of warned about.
 */
import { SwitchyardError } from '../../core/errors.js';
import { type GGUFKV, type GGUFMetadata, GGUFMetadataError, GGUFValueType, kv } from '../../formats/gguf/index.js';
import type { Architecture } from '../../models/config.js';

/** A config.json that cannot be converted: the message names the file and the field. */
export class HFConfigError extends SwitchyardError {
  constructor(
    readonly file: string,
    readonly field: string,
    message: string,
  ) {
    super('E_HF_CONFIG', `${file}: config.json field '${field}' ${message}`);
  }
}

export interface HFConfigOptions {
  /** The config.json path, for error messages. */
  readonly file?: string;
}

export interface HFExportOptions {
  /** The GGUF's tensor names: decides `tie_word_embeddings` (no `output.weight`). */
  readonly tensorNames?: Iterable<string>;
  /** Phi-MoE: the values of `rope_factors_long.weight` / `rope_factors_short.weight`. Without them
   *  `rope_scaling` lacks long_factor / short_factor, which the caller must then add. */
  readonly ropeFactors?: { readonly long: ArrayLike<number>; readonly short: ArrayLike<number> };
}

/** A tensor the converter derives from config.json (written as F32, shape [values.length]). */
export interface DerivedTensor {
  readonly name: string;
  readonly values: Float32Array;
}

/** A parsed config.json. */
export type HuggingFaceConfig = Record<string, unknown>;
type Json = HuggingFaceConfig;
const shown = (v: unknown) => (v === undefined || v === null ? 'missing' : JSON.stringify(v).slice(0, 60));
const F32_MAX = 3.4028234663852886e38;

// --- reading config.json ------------------------------------------------------------------

/** Typed access to config.json fields; null counts as absent (Python's dict.get). */
class HFConfig {
  readonly raw: Json;
  constructor(
    raw: unknown,
    readonly file: string,
  ) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new HFConfigError(file, '(root)', 'is not a JSON object');
    }
    const r = raw as Json;
    // conversion/base.py: "move the text_config to the root level"
    const text = r.text_config;
    this.raw = typeof text === 'object' && text !== null && !Array.isArray(text) ? { ...r, ...(text as Json) } : r;
  }
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }
  /** The first present key of `keys` (conversion/base.py find_hparam). */
  find(keys: readonly string[]): string | undefined {
    return keys.find((k) => this.has(k));
  }
  private fail(field: string, message: string): never {
    throw new HFConfigError(this.file, field, message);
  }
  optU32(keys: string | readonly string[], min = 0): number | undefined {
    const list = typeof keys === 'string' ? [keys] : keys;
    const key = this.find(list);
    if (key === undefined) return undefined;
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 0xffffffff) {
      this.fail(key, `is ${shown(v)}, expected an integer from ${min} to ${0xffffffff}`);
    }
    return v;
  }
  u32(keys: string | readonly string[], min = 0): number {
    const v = this.optU32(keys, min);
    return v ?? this.fail(typeof keys === 'string' ? keys : keys.join("' or '"), 'is missing');
  }
  optF32(keys: string | readonly string[], from: Json = this.raw): number | undefined {
    const list = typeof keys === 'string' ? [keys] : keys;
    const key = list.find((k) => from[k] !== undefined && from[k] !== null);
    if (key === undefined) return undefined;
    const v = from[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > F32_MAX) {
      this.fail(key, `is ${shown(v)}, expected a finite number`);
    }
    return v;
  }
  f32(keys: string | readonly string[]): number {
    return this.optF32(keys) ?? this.fail(typeof keys === 'string' ? keys : keys.join("' or '"), 'is missing');
  }
  optBool(key: string): boolean | undefined {
    if (!this.has(key)) return undefined;
    const v = this.raw[key];
    return typeof v === 'boolean' ? v : this.fail(key, `is ${shown(v)}, expected true or false`);
  }
  optString(key: string, from: Json = this.raw): string | undefined {
    const v = from[key];
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? v : this.fail(key, `is ${shown(v)}, expected a string`);
  }
  /** RoPE parameters: `rope_parameters` (transformers 5) or `rope_scaling`, as base.py reads them. */
  rope(): Json {
    const key = this.has('rope_parameters') ? 'rope_parameters' : 'rope_scaling';
    if (!this.has(key)) return {};
    const v = this.raw[key];
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, `is ${shown(v)}, expected an object`);
    const rp = v as Json;
    return typeof rp.full_attention === 'object' && rp.full_attention !== null ? (rp.full_attention as Json) : rp;
  }
  ropeType(): string | undefined {
    const rp = this.rope();
    return (this.optString('rope_type', rp) ?? this.optString('type', rp))?.toLowerCase();
  }
  numbers(key: string, from: Json): number[] {
    const v = from[key];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      this.fail(key, `is ${shown(v)}, expected an array of numbers`);
    }
    return v as number[];
  }
}

// Field names conversion/base.py looks for, in its order.
const F = {
  layers: ['n_layers', 'num_hidden_layers', 'n_layer', 'num_layers'],
  context: ['max_position_embeddings', 'n_ctx', 'n_positions', 'max_length', 'max_sequence_length', 'model_max_length'],
  embedding: ['hidden_size', 'n_embd', 'dim'],
  ff: ['prefix_dense_intermediate_size', 'dense_intermediate_size', 'intermediate_size', 'n_inner', 'hidden_dim'],
  heads: ['num_attention_heads', 'n_head', 'n_heads'],
  kvHeads: ['num_key_value_heads', 'n_kv_heads'],
  ropeTheta: ['global_rope_theta', 'rope_global_theta', 'rope_theta_global', 'rope_theta', 'rotary_emb_base'],
  rmsEps: ['rms_norm_eps', 'norm_eps'],
  experts: ['num_local_experts', 'num_experts', 'n_routed_experts'],
  expertsUsed: ['num_experts_per_tok', 'num_experts_per_token', 'top_k_experts'],
  scoreFunc: ['score_function', 'scoring_func', 'score_func', 'moe_router_activation', 'moe_router_activation_func', 'expert_selection_fn'],
} as const;

/** Collects `<arch>.*` entries; a key written twice keeps its first position (gguf-py overwrites in place). */
class Entries {
  readonly list: GGUFKV[] = [];
  constructor(readonly arch: Architecture) {
    this.list.push(kv.string('general.architecture', arch));
  }
  private put(e: GGUFKV): void {
    const at = this.list.findIndex((x) => x.key === e.key);
    if (at >= 0) this.list[at] = e;
    else this.list.push(e);
  }
  u32(name: string, v: number | undefined): void {
    if (v !== undefined) this.put(kv.u32(`${this.arch}.${name}`, v));
  }
  f32(name: string, v: number | undefined): void {
    if (v !== undefined) this.put(kv.f32(`${this.arch}.${name}`, Math.fround(v)));
  }
  bool(name: string, v: boolean): void {
    this.put(kv.bool(`${this.arch}.${name}`, v));
  }
  string(name: string, v: string): void {
    this.put(kv.string(`${this.arch}.${name}`, v));
  }
}

// --- config.json -> GGUF: shared pieces (conversion/base.py TextModel.set_gguf_parameters) --

interface CommonOptions {
  /** deepseek2 (MLA) is converted to a single kv head. */
  readonly kvHeads?: number;
  readonly rmsEpsDefault?: number;
}
function ropeTheta(c: HFConfig): number | undefined {
  return c.optF32('rope_theta', c.rope()) ?? c.optF32(F.ropeTheta);
}
function common(c: HFConfig, w: Entries, o: CommonOptions = {}): void {
  w.u32('block_count', c.u32(F.layers, 1));
  w.u32('context_length', c.u32(F.context, 1));
  w.u32('embedding_length', c.u32(F.embedding, 1));
  w.u32('feed_forward_length', c.u32(F.ff, 1));
  w.u32('attention.head_count', c.u32(F.heads, 1));
  w.u32('attention.head_count_kv', o.kvHeads ?? c.optU32(F.kvHeads, 1));
  w.f32('rope.freq_base', ropeTheta(c));
  w.f32('attention.layer_norm_rms_epsilon', c.optF32(F.rmsEps) ?? o.rmsEpsDefault ?? c.f32(F.rmsEps));
  w.u32('expert_count', c.optU32(F.experts));
  w.u32('expert_used_count', c.optU32(F.expertsUsed));
}
/** Expert groups and the gating function (DeepSeek-style routers). */
function routing(c: HFConfig, w: Entries): void {
  w.u32('expert_group_count', c.optU32('n_group'));
  w.u32('expert_group_used_count', c.optU32('topk_group'));
  const key = c.find(F.scoreFunc);
  if (key === undefined) return;
  const f = c.optString(key);
  if (f === 'softmax') w.u32('expert_gating_func', 1);
  else if (f === 'sigmoid') w.u32('expert_gating_func', 2);
  else throw new HFConfigError(c.file, key, `is '${f}', expected 'softmax' or 'sigmoid'`);
}
/** `head_dim` -> key/value length (base.py writes both from it). */
function headDim(c: HFConfig, w: Entries): void {
  const d = c.optU32('head_dim', 1);
  w.u32('attention.key_length', d);
  w.u32('attention.value_length', d);
}
/** The rope scaling keys base.py writes for linear and YaRN scaling. */
function ropeScaling(c: HFConfig, w: Entries): void {
  const rp = c.rope();
  const type = c.ropeType();
  const factor = c.optF32('factor', rp);
  if (type === undefined || type === 'default' || type === 'llama3') return; // llama3: the rope_freqs tensor
  if (type === 'linear' && factor !== undefined) {
    w.string('rope.scaling.type', 'linear');
    w.f32('rope.scaling.factor', factor);
  } else if (type === 'yarn' && factor !== undefined) {
    w.string('rope.scaling.type', 'yarn');
    w.f32('rope.scaling.factor', factor);
    const orig = rp.original_max_position_embeddings;
    if (typeof orig !== 'number' || !Number.isInteger(orig) || orig < 1 || orig > 0xffffffff) {
      throw new HFConfigError(
        c.file,
        'rope_scaling.original_max_position_embeddings',
        `is ${shown(orig)}, YaRN needs the original context length`,
      );
    }
    w.u32('rope.scaling.original_context_length', orig);
    w.f32('rope.scaling.yarn_ext_factor', c.optF32('extrapolation_factor', rp));
    w.f32('rope.scaling.yarn_attn_factor', c.optF32(['attention_factor', 'attn_factor'], rp));
    w.f32('rope.scaling.yarn_beta_fast', c.optF32('beta_fast', rp));
    w.f32('rope.scaling.yarn_beta_slow', c.optF32('beta_slow', rp));
  } else if (type === 'longrope' || type === 'su') {
    w.string('rope.scaling.type', 'longrope');
  } else if (type !== 'linear' && type !== 'yarn') {
    throw new HFConfigError(c.file, 'rope_scaling', `has rope type '${type}', which llama.cpp cannot run for this architecture`);
  }
}
function ropeDims(c: HFConfig): number {
  return c.optU32('head_dim', 1) ?? Math.floor(c.u32(F.embedding, 1) / c.u32(F.heads, 1));
}

// --- config.json -> GGUF: one function per model class, keys in golden order -------------

function llamaToGGUF(c: HFConfig, w: Entries): void {
  common(c, w);
  routing(c, w);
  w.u32('vocab_size', c.u32('vocab_size', 1));
  w.u32('rope.dimension_count', ropeDims(c));
  headDim(c, w);
  ropeScaling(c, w);
}
function qwenMoeToGGUF(c: HFConfig, w: Entries): void {
  common(c, w);
  routing(c, w);
  w.u32('expert_feed_forward_length', c.optU32('moe_intermediate_size'));
  w.u32('expert_shared_feed_forward_length', c.optU32('shared_expert_intermediate_size'));
  headDim(c, w);
  ropeScaling(c, w);
}
function olmoeToGGUF(c: HFConfig, w: Entries): void {
  common(c, w, { rmsEpsDefault: 1e-5 });
  routing(c, w);
  headDim(c, w);
  ropeScaling(c, w);
}
function deepseekToGGUF(c: HFConfig, w: Entries): void {
  common(c, w, { kvHeads: 1, rmsEpsDefault: 1e-6 });
  const layers = c.u32(F.layers, 1);
  const hasExperts = c.has('n_routed_experts');
  // "if no MoE, all layers are dense; if MoE, none are dense"
  w.u32('leading_dense_block_count', c.optU32('first_k_dense_replace') ?? (hasExperts ? 0 : layers));
  w.u32('vocab_size', c.u32('vocab_size', 1));
  w.u32('attention.q_lora_rank', c.optU32('q_lora_rank') ?? 0);
  const kvLora = c.optU32('kv_lora_rank', 1) ?? 512;
  const rope = c.u32('qk_rope_head_dim', 1);
  w.u32('attention.kv_lora_rank', kvLora);
  w.u32('attention.key_length', kvLora + rope);
  w.u32('attention.value_length', kvLora);
  w.u32('attention.key_length_mla', c.u32('qk_nope_head_dim', 1) + rope);
  w.u32('attention.value_length_mla', c.u32('v_head_dim', 1));
  w.u32('expert_feed_forward_length', c.u32(['moe_intermediate_size', 'intermediate_size'], 1));
  w.u32('expert_shared_count', c.optU32('n_shared_experts') ?? 0);
  w.f32('expert_weights_scale', c.optF32('routed_scaling_factor'));
  if (c.optBool('norm_topk_prob')) w.bool('expert_weights_norm', true);
  routing(c, w);
  w.u32('rope.dimension_count', rope);
  ropeScaling(c, w);
  // [TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]: stored as 0.1 x mscale_all_dim for legacy reasons.
  const mscaleAll = c.optF32('mscale_all_dim', c.rope());
  if (mscaleAll !== undefined) w.f32('rope.scaling.yarn_log_multiplier', 0.1 * mscaleAll);
}
function gptOssToGGUF(c: HFConfig, w: Entries): void {
  common(c, w);
  w.u32('expert_feed_forward_length', c.u32('intermediate_size', 1));
  headDim(c, w);
  w.u32('attention.sliding_window', c.u32('sliding_window', 1));
  routing(c, w);
  ropeScaling(c, w);
}
function graniteMoeToGGUF(c: HFConfig, w: Entries): void {
  common(c, w);
  routing(c, w);
  w.u32('vocab_size', c.u32('vocab_size', 1));
  w.u32('rope.dimension_count', ropeDims(c));
  headDim(c, w); // honoured, unlike the converter (see the file header)
  // granite.py uses truthiness: a multiplier of 0 is not written.
  w.f32('attention.scale', c.optF32('attention_multiplier') || undefined);
  w.f32('embedding_scale', c.optF32('embedding_multiplier') || undefined);
  w.f32('residual_scale', c.optF32('residual_multiplier') || undefined);
  w.f32('logit_scale', c.optF32('logits_scaling') || undefined);
  w.u32('expert_shared_feed_forward_length', c.optU32('shared_intermediate_size') || undefined);
  ropeScaling(c, w);
}
/** Phi-MoE (phi.py Phi3MiniModel + PhiMoeModel; it does not use base.py's keys). */
function phimoeToGGUF(c: HFConfig, w: Entries): void {
  const rp = c.rope();
  w.u32('block_count', c.u32(F.layers, 1));
  const ctx = c.u32(['n_positions', 'max_position_embeddings'], 1);
  w.u32('context_length', ctx);
  const embd = c.u32(['hidden_size', 'n_embd'], 1);
  w.u32('embedding_length', embd);
  w.u32('feed_forward_length', c.u32('intermediate_size', 1));
  const heads = c.u32(['num_attention_heads', 'n_head'], 1);
  w.u32('attention.head_count', heads);
  w.u32('attention.head_count_kv', c.u32(['num_key_value_heads', 'n_head_kv'], 1));
  w.f32('rope.freq_base', c.optF32('rope_theta', rp) ?? c.f32('rope_theta'));
  w.f32('attention.layer_norm_rms_epsilon', c.f32('rms_norm_eps'));
  w.u32('expert_count', c.u32(['num_local_experts', 'num_experts'], 1));
  w.u32('expert_used_count', c.u32(['num_experts_per_tok', 'num_experts_per_token'], 1));
  w.u32('rope.dimension_count', phiRopeDims(c, embd, heads));
  const orig = phiOriginalContext(c);
  w.u32('rope.scaling.original_context_length', orig);
  if (Array.isArray(rp.long_factor) && rp.long_factor.length > 0) {
    // phi.py generate_extra_tensors: the LongRoPE attention factor follows from the context ratio.
    const type = c.ropeType();
    const scale = ctx / orig;
    if (type === 'su' || type === 'longrope') {
      w.f32('rope.scaling.attn_factor', scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(orig)) : 1);
    } else if (type === 'yarn') {
      w.f32('rope.scaling.attn_factor', scale > 1 ? 0.1 * Math.log(scale) + 1 : 1);
    } else {
      throw new HFConfigError(c.file, 'rope_scaling.type', `is ${JSON.stringify(type)}, expected 'longrope' with long_factor`);
    }
  }
  // "use zero value of sliding_window to distinguish Phi-4 from other PHI3 models"
  w.u32('attention.sliding_window', c.optU32('sliding_window') ?? 0);
}
function phiRopeDims(c: HFConfig, embd: number, heads: number): number {
  const pct = c.optF32('partial_rotary_factor', c.rope()) ?? c.optF32('partial_rotary_factor') ?? 1;
  return Math.floor(Math.floor(pct * embd) / heads);
}
function phiOriginalContext(c: HFConfig): number {
  const rp = c.rope();
  const v = rp.original_max_position_embeddings ?? c.raw.original_max_position_embeddings;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0xffffffff) {
    throw new HFConfigError(c.file, 'original_max_position_embeddings', `is ${shown(v)}, expected a positive integer`);
  }
  return v;
}

// --- the model classes --------------------------------------------------------------------

interface HFModelClass {
  /** config.json "architectures" entry and "model_type". */
  readonly className: string;
  readonly modelType: string;
  readonly arch: Architecture;
  readonly toGGUF: (c: HFConfig, w: Entries) => void;
}
const MODEL_CLASSES: readonly HFModelClass[] = [
  { className: 'LlamaForCausalLM', modelType: 'llama', arch: 'llama', toGGUF: llamaToGGUF },
  { className: 'MixtralForCausalLM', modelType: 'mixtral', arch: 'llama', toGGUF: llamaToGGUF },
  { className: 'Qwen2MoeForCausalLM', modelType: 'qwen2_moe', arch: 'qwen2moe', toGGUF: qwenMoeToGGUF },
  { className: 'Qwen3MoeForCausalLM', modelType: 'qwen3_moe', arch: 'qwen3moe', toGGUF: qwenMoeToGGUF },
  { className: 'OlmoeForCausalLM', modelType: 'olmoe', arch: 'olmoe', toGGUF: olmoeToGGUF },
  { className: 'DeepseekV2ForCausalLM', modelType: 'deepseek_v2', arch: 'deepseek2', toGGUF: deepseekToGGUF },
  { className: 'DeepseekV3ForCausalLM', modelType: 'deepseek_v3', arch: 'deepseek2', toGGUF: deepseekToGGUF },
  { className: 'GptOssForCausalLM', modelType: 'gpt_oss', arch: 'gpt-oss', toGGUF: gptOssToGGUF },
  { className: 'GraniteMoeForCausalLM', modelType: 'granitemoe', arch: 'granitemoe', toGGUF: graniteMoeToGGUF },
  { className: 'GraniteMoeSharedForCausalLM', modelType: 'granitemoeshared', arch: 'granitemoe', toGGUF: graniteMoeToGGUF },
  { className: 'PhiMoEForCausalLM', modelType: 'phimoe', arch: 'phimoe', toGGUF: phimoeToGGUF },
];

/** The model class of a config: its first known `architectures` entry, else its `model_type`. */
function modelClass(c: HFConfig): HFModelClass {
  const archs = c.raw.architectures;
  if (archs !== undefined && archs !== null && (!Array.isArray(archs) || !archs.every((a) => typeof a === 'string'))) {
    throw new HFConfigError(c.file, 'architectures', `is ${shown(archs)}, expected an array of class names`);
  }
  const names = (archs as string[] | undefined | null) ?? [];
  const type = c.optString('model_type');
  const found =
    MODEL_CLASSES.find((m) => names.includes(m.className)) ??
    (names.length === 0 ? MODEL_CLASSES.find((m) => m.modelType === type) : undefined);
  if (found) return found;
  const what = names.length ? `architectures ${JSON.stringify(names)}` : `model_type ${JSON.stringify(type ?? null)}`;
  throw new HFConfigError(
    c.file,
    names.length ? 'architectures' : 'model_type',
    `names ${what}, which Switchyard cannot convert (supported: ${MODEL_CLASSES.map((m) => `${m.className} (${m.modelType})`).join(', ')})`,
  );
}

/**
 * The `general.architecture` and `<arch>.*` hyper-parameter entries convert_hf_to_gguf.py writes
 * for this config (see the file header for the deliberate differences).
 */
export function ggufMetadataFromHuggingFaceConfig(config: unknown, options: HFConfigOptions = {}): GGUFKV[] {
  const c = new HFConfig(config, options.file ?? 'config.json');
  const cls = modelClass(c);
  const w = new Entries(cls.arch);
  cls.toGGUF(c, w);
  return w.list;
}

/**
 * Tensors the converter computes from config.json, to be written as F32: Phi-MoE's LongRoPE
 * `rope_factors_long.weight` / `rope_factors_short.weight` (rope_scaling.long_factor /
 * short_factor, each rope_dims / 2 long), and Llama 3's `rope_freqs.weight` (rope type
 * "llama3", llama.py generate_extra_tensors; computed in float64 and rounded once, where the
 * converter rounds each step to float32: they may differ in the last bit).
 */
export function ropeTensorsFromHuggingFaceConfig(config: unknown, options: HFConfigOptions = {}): DerivedTensor[] {
  const c = new HFConfig(config, options.file ?? 'config.json');
  const cls = modelClass(c);
  const rp = c.rope();
  if (cls.arch === 'phimoe' && Array.isArray(rp.long_factor) && rp.long_factor.length > 0) {
    const long = c.numbers('long_factor', rp);
    const short = c.numbers('short_factor', rp);
    const half = phiRopeDims(c, c.u32(['hidden_size', 'n_embd'], 1), c.u32(['num_attention_heads', 'n_head'], 1)) / 2;
    if (long.length !== half || short.length !== half) {
      throw new HFConfigError(
        c.file,
        'rope_scaling.long_factor',
        `has ${long.length} values and short_factor ${short.length}: both must have rope_dims / 2 = ${half}`,
      );
    }
    return [
      { name: 'rope_factors_long.weight', values: Float32Array.from(long) },
      { name: 'rope_factors_short.weight', values: Float32Array.from(short) },
    ];
  }
  if (cls.arch === 'llama' && c.ropeType() === 'llama3') {
    const base = c.optF32('rope_theta', rp) ?? c.optF32(F.ropeTheta) ?? 10000;
    const dim = ropeDims(c);
    const factor = c.optF32('factor', rp) ?? 8;
    const lowFreqFactor = c.optF32('low_freq_factor', rp) ?? 1;
    const highFreqFactor = c.optF32('high_freq_factor', rp) ?? 4;
    const oldContext = c.optF32('original_max_position_embeddings', rp) ?? 8192;
    const lowFreqWavelen = oldContext / lowFreqFactor;
    const highFreqWavelen = oldContext / highFreqFactor;
    const values = new Float32Array(Math.ceil(dim / 2));
    for (let i = 0; i < values.length; i++) {
      const wavelen = (2 * Math.PI) / (1 / base ** ((2 * i) / dim));
      if (wavelen < highFreqWavelen) values[i] = 1;
      else if (wavelen > lowFreqWavelen) values[i] = factor;
      else {
        const smooth = (oldContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        values[i] = 1 / ((1 - smooth) / factor + smooth);
      }
    }
    return [{ name: 'rope_freqs.weight', values }];
  }
  return [];
}

// --- GGUF -> config.json ------------------------------------------------------------------

/** The shortest decimal that `same` accepts (so 1e-5 stored as float32 reads back as 1e-05). */
function decimal(x: number, same: (c: number) => boolean = (c) => Math.fround(c) === x): number {
  for (let p = 1; p <= 17; p++) {
    const c = Number(x.toPrecision(p));
    if (same(c)) return c;
  }
  return x;
}

/** Reads the GGUF side; errors name the key that a config.json cannot express. */
class Reader {
  constructor(readonly m: GGUFMetadata) {}
  key(name: string): string {
    return this.m.archKey(name);
  }
  has(name: string): boolean {
    return this.m.has(this.key(name));
  }
  int(name: string): number;
  int(name: string, fallback: number): number;
  int(name: string, fallback: number | undefined): number | undefined;
  int(name: string, ...fallback: (number | undefined)[]): number | undefined {
    if (fallback.length && !this.has(name)) return fallback[0];
    const kvEntry = this.m.entry(this.key(name));
    if (kvEntry?.type === GGUFValueType.ARRAY) {
      throw new GGUFMetadataError(this.m.file, this.key(name), 'has one value per layer, which a config.json cannot express');
    }
    return this.m.archInt(name);
  }
  float(name: string): number | undefined {
    return this.has(name) ? decimal(this.m.archFloat(name)) : undefined;
  }
  vocabSize(): number {
    if (this.has('vocab_size')) return this.int('vocab_size');
    return this.m.stringArray('tokenizer.ggml.tokens').length;
  }
  refuse(name: string, why: string): never {
    throw new GGUFMetadataError(this.m.file, this.key(name), why);
  }
}

/** Drops undefined fields, so the JSON lists only what the GGUF says. */
function defined(o: Json): Json {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Fields every exported config has, in the order transformers writes them. */
function commonFields(r: Reader, opts: HFExportOptions, headDimField: boolean): Json {
  const heads = r.int('attention.head_count');
  const k = r.int('attention.key_length', undefined);
  const v = r.int('attention.value_length', undefined);
  if (headDimField && k !== v) r.refuse('attention.value_length', `is ${v} but key_length is ${k}: config.json has one head_dim`);
  const names = opts.tensorNames ? new Set(opts.tensorNames) : undefined;
  const m = r.m;
  return defined({
    vocab_size: r.vocabSize(),
    hidden_size: r.int('embedding_length'),
    intermediate_size: r.int('feed_forward_length', undefined),
    num_hidden_layers: r.int('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: r.int('attention.head_count_kv', heads),
    head_dim: headDimField ? k : undefined,
    hidden_act: 'silu',
    max_position_embeddings: r.int('context_length'),
    rms_norm_eps: r.float('attention.layer_norm_rms_epsilon'),
    rope_theta: r.float('rope.freq_base'),
    tie_word_embeddings: names ? !names.has('output.weight') : undefined,
    bos_token_id: m.has('tokenizer.ggml.bos_token_id') ? m.int('tokenizer.ggml.bos_token_id') : undefined,
    eos_token_id: m.has('tokenizer.ggml.eos_token_id') ? m.int('tokenizer.ggml.eos_token_id') : undefined,
  });
}

/** rope_scaling for linear / YaRN / LongRoPE-without-factors, or undefined. */
function ropeScalingField(r: Reader, typeKey: 'rope_type' | 'type'): Json | undefined {
  if (!r.has('rope.scaling.type')) return undefined;
  const type = r.m.string(r.key('rope.scaling.type'));
  if (type === 'none') return undefined;
  if (type === 'linear') return { [typeKey]: 'linear', factor: r.float('rope.scaling.factor') };
  if (type === 'longrope') return { [typeKey]: 'longrope' };
  return defined({
    [typeKey]: 'yarn',
    factor: r.float('rope.scaling.factor'),
    original_max_position_embeddings: r.int('rope.scaling.original_context_length', undefined),
    beta_fast: r.float('rope.scaling.yarn_beta_fast'),
    beta_slow: r.float('rope.scaling.yarn_beta_slow'),
    extrapolation_factor: r.float('rope.scaling.yarn_ext_factor'),
    attention_factor: r.float('rope.scaling.yarn_attn_factor'),
  });
}

function moeFields(r: Reader, expertsField: string): Json {
  return defined({ [expertsField]: r.int('expert_count', undefined), num_experts_per_tok: r.int('expert_used_count', undefined) });
}

type Exporter = (r: Reader, opts: HFExportOptions) => Json;

const EXPORTERS: Record<Architecture, Exporter> = {
  llama(r, opts) {
    const moe = r.has('expert_count') && r.int('expert_count') > 0;
    const heads = r.int('attention.head_count');
    const dims = r.int('rope.dimension_count', undefined);
    const k = r.int('attention.key_length', undefined);
    const derived = Math.floor(r.int('embedding_length') / heads);
    if (dims !== undefined && dims !== (k ?? derived)) r.refuse('rope.dimension_count', `is ${dims}, not the head size`);
    if (opts.tensorNames && new Set(opts.tensorNames).has('rope_freqs.weight')) {
      r.refuse('rope.freq_base', 'comes with a rope_freqs.weight tensor (Llama 3 rope scaling), which this export cannot express');
    }
    return {
      architectures: [moe ? 'MixtralForCausalLM' : 'LlamaForCausalLM'],
      model_type: moe ? 'mixtral' : 'llama',
      ...commonFields(r, opts, k !== undefined),
      ...(moe ? moeFields(r, 'num_local_experts') : {}),
      ...defined({ rope_scaling: ropeScalingField(r, 'rope_type') }),
      attention_bias: false,
    };
  },
  qwen2moe: (r, opts) => ({
    architectures: ['Qwen2MoeForCausalLM'],
    model_type: 'qwen2_moe',
    ...commonFields(r, opts, r.has('attention.key_length')),
    ...defined({
      moe_intermediate_size: r.int('expert_feed_forward_length', undefined),
      shared_expert_intermediate_size: r.int('expert_shared_feed_forward_length', undefined),
      rope_scaling: ropeScalingField(r, 'rope_type'),
    }),
    ...moeFields(r, 'num_experts'),
    norm_topk_prob: false,
    decoder_sparse_step: 1,
    mlp_only_layers: [],
    use_sliding_window: false,
  }),
  qwen3moe: (r, opts) => ({
    architectures: ['Qwen3MoeForCausalLM'],
    model_type: 'qwen3_moe',
    ...commonFields(r, opts, r.has('attention.key_length')),
    ...defined({ moe_intermediate_size: r.int('expert_feed_forward_length', undefined), rope_scaling: ropeScalingField(r, 'rope_type') }),
    ...moeFields(r, 'num_experts'),
    norm_topk_prob: true,
    decoder_sparse_step: 1,
    mlp_only_layers: [],
    attention_bias: false,
  }),
  olmoe: (r, opts) => ({
    architectures: ['OlmoeForCausalLM'],
    model_type: 'olmoe',
    ...commonFields(r, opts, r.has('attention.key_length')),
    ...moeFields(r, 'num_experts'),
    ...defined({ rope_scaling: ropeScalingField(r, 'rope_type') }),
    norm_topk_prob: false,
    clip_qkv: null,
    attention_bias: false,
  }),
  deepseek2: exportDeepseek,
  'gpt-oss': exportGptOss,
  granitemoe(r, opts) {
    const shared = r.int('expert_shared_feed_forward_length', undefined);
    return {
      architectures: [shared ? 'GraniteMoeSharedForCausalLM' : 'GraniteMoeForCausalLM'],
      model_type: shared ? 'granitemoeshared' : 'granitemoe',
      ...commonFields(r, opts, r.has('attention.key_length')),
      ...moeFields(r, 'num_local_experts'),
      ...defined({
        shared_intermediate_size: shared,
        attention_multiplier: r.float('attention.scale'),
        embedding_multiplier: r.float('embedding_scale'),
        residual_multiplier: r.float('residual_scale'),
        logits_scaling: r.float('logit_scale'),
        rope_scaling: ropeScalingField(r, 'rope_type'),
      }),
      attention_bias: false,
    };
  },
  phimoe: exportPhimoe,
};

function exportDeepseek(r: Reader, opts: HFExportOptions): Json {
  const rope = r.int('rope.dimension_count');
  const kvLora = r.int('attention.kv_lora_rank');
  const k = r.int('attention.key_length_mla', undefined) ?? r.int('attention.key_length');
  const v = r.int('attention.value_length_mla', undefined) ?? r.int('attention.value_length');
  if (r.has('attention.key_length_mla') && r.int('attention.key_length') !== kvLora + rope) {
    r.refuse('attention.key_length', `is ${r.int('attention.key_length')}, expected kv_lora_rank + rope dimensions = ${kvLora + rope}`);
  }
  const gating = r.int('expert_gating_func', undefined);
  if (gating !== undefined && gating !== 1 && gating !== 2) r.refuse('expert_gating_func', `is ${gating}, expected 1 or 2`);
  const groups = r.int('expert_group_count', undefined);
  const v3 = gating === 2;
  const common = commonFields(r, opts, false);
  const rp = ropeScalingField(r, 'type');
  if (rp && r.has('rope.scaling.yarn_log_multiplier')) {
    // Undo the 0.1 factor of [TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]; llama.cpp takes mscale = mscale_all_dim.
    const stored = r.m.archFloat('rope.scaling.yarn_log_multiplier');
    const all = decimal(stored / 0.1, (c) => Math.fround(0.1 * c) === stored);
    rp.mscale = all;
    rp.mscale_all_dim = all;
  }
  return {
    architectures: [v3 ? 'DeepseekV3ForCausalLM' : 'DeepseekV2ForCausalLM'],
    model_type: v3 ? 'deepseek_v3' : 'deepseek_v2',
    ...common,
    // MLA keeps every head's keys and values: the single GGUF kv head is llama.cpp's absorbed form.
    num_key_value_heads: common.num_attention_heads,
    ...defined({
      moe_intermediate_size: r.int('expert_feed_forward_length', undefined),
      n_routed_experts: r.int('expert_count', undefined),
      n_shared_experts: r.int('expert_shared_count', undefined),
      num_experts_per_tok: r.int('expert_used_count', undefined),
      first_k_dense_replace: r.int('leading_dense_block_count', undefined),
      routed_scaling_factor: r.float('expert_weights_scale'),
      scoring_func: gating === undefined ? undefined : gating === 2 ? 'sigmoid' : 'softmax',
      n_group: groups,
      topk_group: r.int('expert_group_used_count', undefined),
    }),
    norm_topk_prob: r.has('expert_weights_norm') ? r.m.archBool('expert_weights_norm') : false,
    topk_method: v3 ? 'noaux_tc' : groups !== undefined && groups > 1 ? 'group_limited_greedy' : 'greedy',
    q_lora_rank: r.int('attention.q_lora_rank', 0) || null,
    kv_lora_rank: kvLora,
    qk_nope_head_dim: k - rope,
    qk_rope_head_dim: rope,
    v_head_dim: v,
    moe_layer_freq: 1,
    ...defined({ rope_scaling: rp }),
    attention_bias: false,
  };
}

function exportGptOss(r: Reader, opts: HFExportOptions): Json {
  const ff = r.int('feed_forward_length', undefined);
  const expertFF = r.int('expert_feed_forward_length');
  if (ff !== undefined && ff !== expertFF)
    r.refuse('feed_forward_length', `is ${ff} but expert_feed_forward_length is ${expertFF}: gpt-oss has one intermediate_size`);
  const layers = r.int('block_count');
  const period = r.int('attention.sliding_window_pattern', 2);
  const rp = ropeScalingField(r, 'rope_type');
  return {
    architectures: ['GptOssForCausalLM'],
    model_type: 'gpt_oss',
    ...commonFields(r, opts, r.has('attention.key_length')),
    intermediate_size: expertFF,
    ...moeFields(r, 'num_local_experts'),
    experts_per_token: r.int('expert_used_count', undefined),
    sliding_window: r.int('attention.sliding_window'),
    layer_types: Array.from({ length: layers }, (_, il) =>
      period === 0 || il % period < period - 1 ? 'sliding_attention' : 'full_attention',
    ),
    ...defined({ rope_scaling: rp ? { ...rp, truncate: false } : undefined, initial_context_length: rp?.original_max_position_embeddings }),
    attention_bias: true,
    swiglu_limit: 7.0,
  };
}

function exportPhimoe(r: Reader, opts: HFExportOptions): Json {
  const embd = r.int('embedding_length');
  const heads = r.int('attention.head_count');
  const dims = r.int('rope.dimension_count', undefined);
  const ctx = r.int('context_length');
  const orig = r.int('rope.scaling.original_context_length', ctx);
  const attnFactor = r.float('rope.scaling.attn_factor');
  let ropeScaling: Json | null = null;
  if (attnFactor !== undefined) {
    const f = opts.ropeFactors;
    ropeScaling = defined({
      type: 'longrope',
      long_factor: f ? Array.from(f.long, (x) => decimal(x)) : undefined,
      short_factor: f ? Array.from(f.short, (x) => decimal(x)) : undefined,
      // transformers multiplies cos/sin by these; llama.cpp by rope.scaling.attn_factor.
      long_mscale: attnFactor,
      short_mscale: attnFactor,
      original_max_position_embeddings: orig,
    });
  }
  return {
    architectures: ['PhiMoEForCausalLM'],
    model_type: 'phimoe',
    ...commonFields(r, opts, false),
    ...moeFields(r, 'num_local_experts'),
    ...defined({ partial_rotary_factor: dims !== undefined && dims !== Math.floor(embd / heads) ? (dims * heads) / embd : undefined }),
    original_max_position_embeddings: orig,
    rope_scaling: ropeScaling,
    sliding_window: r.int('attention.sliding_window', undefined) || null,
    attention_bias: true,
    lm_head_bias: true,
  };
}

/**
 * A config.json for the GGUF's model (the inverse of `ggufMetadataFromHuggingFaceConfig`):
 * converting it back gives the same hyper-parameter entries. Errors name a key the config
 * cannot express (per-layer head counts, differing key and value head sizes...).
 */
export function huggingFaceConfigFromGGUF(metadata: GGUFMetadata, options: HFExportOptions = {}): Record<string, unknown> {
  const arch = metadata.architecture;
  const exporter = (EXPORTERS as Record<string, Exporter | undefined>)[arch];
  if (!exporter) {
    throw new GGUFMetadataError(
      metadata.file,
      'general.architecture',
      `is '${arch}', which has no Hugging Face export (supported: ${Object.keys(EXPORTERS).join(', ')})`,
    );
  }
  // An iterator (Map.keys()) can be read once: make it an array the exporters may read twice.
  const tensorNames = options.tensorNames ? [...options.tensorNames] : undefined;
  return exporter(new Reader(metadata), { ...options, tensorNames });
}
