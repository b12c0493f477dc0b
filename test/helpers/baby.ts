// "Baby" models: tiny random-weight GGUF files, one per architecture variant, with the metadata
// keys and tensor names of ../shared/golden/ARCHITECTURES.md (llama.cpp d32676d77) at toy sizes,
// written by the tests themselves (no fixture). The mlx-lm idea: vocab 100, hidden 32, 4 experts
// top-2, 2 layers (deepseek2 3: one leading dense block), so every code path of an architecture
// runs in milliseconds.
//
// Shapes are outermost first (GGUF `ne` reversed): gate/up experts [E, F, D], down [E, D, F].
// Values: uniform, matrices scaled by sqrt(3 / columns) so every layer keeps unit-variance
// activations, router rows wider (router logits σ ≈ 2, as in the goldens), norms 1 ± 0.2.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { GGMLType } from '../../src/core/dtypes.js';
import { type GGUFKV, kv, writeGGUF } from '../../src/formats/gguf/index.js';
import type { Architecture } from '../../src/models/config.js';
import { quantizeQ8_0 } from '../../src/weights/convert-types.js';
import { rng } from './random.js';

export const BABY = { vocab: 100, embd: 32, layers: 2, experts: 4, used: 2, heads: 4, headsKV: 2, headDim: 8, ff: 64, expertFF: 32 };

type Kind = 'matrix' | 'router' | 'embedding' | 'norm' | 'bias' | 'factors' | 'small';
interface BabyTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly kind: Kind;
}

export interface BabyModel {
  /** Variant name (an architecture may have several: llama dense and Mixtral, DeepSeek V2 and V3). */
  readonly name: string;
  readonly architecture: Architecture;
  readonly metadata: readonly GGUFKV[];
  readonly tensors: readonly BabyTensor[];
  /** Largest sliding window used (gpt-oss), so tests can run past it. */
  readonly slidingWindow?: number;
}

const { vocab: V, embd: D, experts: E, used: K, heads: H, headsKV: Hkv, headDim: Dh, ff: F, expertFF: FE } = BABY;

/** Metadata builder: `<arch>.` keys typed as llama.cpp's converters write them. */
function meta(arch: Architecture, name: string, ints: Record<string, number>, floats: Record<string, number> = {}, extra: GGUFKV[] = []): GGUFKV[] {
  return [
    kv.string('general.architecture', arch),
    kv.string('general.type', 'model'),
    kv.string('general.name', `baby-${name}`),
    kv.u32(`${arch}.vocab_size`, V),
    kv.u32(`${arch}.embedding_length`, D),
    ...Object.entries(ints).map(([k, v]) => kv.u32(`${arch}.${k}`, v)),
    ...Object.entries(floats).map(([k, v]) => kv.f32(`${arch}.${k}`, v)),
    ...extra,
  ];
}

const t = (name: string, shape: number[], kind: Kind = 'matrix'): BabyTensor => ({ name, shape, kind });

/** token_embd, output_norm (+ bias), output (+ bias) unless tied. */
function ends(o: { tied?: boolean; normBias?: boolean; outputBias?: boolean } = {}): BabyTensor[] {
  return [
    t('token_embd.weight', [V, D], 'embedding'),
    t('output_norm.weight', [D], 'norm'),
    ...(o.normBias ? [t('output_norm.bias', [D], 'bias')] : []),
    ...(o.tied ? [] : [t('output.weight', [V, D])]),
    ...(o.outputBias ? [t('output.bias', [V], 'bias')] : []),
  ];
}

/** attn_norm, q/k/v/output (+ biases) of a standard attention block with head size hd. */
function attn(p: string, o: { hd?: number; qkv?: boolean; outBias?: boolean; qkNorm?: 'head' | 'full'; normBias?: boolean } = {}): BabyTensor[] {
  const hd = o.hd ?? Dh;
  const out = [t(`${p}.attn_norm.weight`, [D], 'norm')];
  if (o.normBias) out.push(t(`${p}.attn_norm.bias`, [D], 'bias'));
  out.push(t(`${p}.attn_q.weight`, [H * hd, D]), t(`${p}.attn_k.weight`, [Hkv * hd, D]), t(`${p}.attn_v.weight`, [Hkv * hd, D]));
  if (o.qkv) out.push(t(`${p}.attn_q.bias`, [H * hd], 'bias'), t(`${p}.attn_k.bias`, [Hkv * hd], 'bias'), t(`${p}.attn_v.bias`, [Hkv * hd], 'bias'));
  out.push(t(`${p}.attn_output.weight`, [D, H * hd]));
  if (o.outBias) out.push(t(`${p}.attn_output.bias`, [D], 'bias'));
  if (o.qkNorm === 'head') out.push(t(`${p}.attn_q_norm.weight`, [hd], 'norm'), t(`${p}.attn_k_norm.weight`, [hd], 'norm'));
  if (o.qkNorm === 'full') out.push(t(`${p}.attn_q_norm.weight`, [H * hd], 'norm'), t(`${p}.attn_k_norm.weight`, [Hkv * hd], 'norm'));
  return out;
}

/** Router and stacked routed experts (+ biases) of width f. */
function experts(p: string, f: number, o: { biases?: boolean } = {}): BabyTensor[] {
  const out = [
    t(`${p}.ffn_gate_inp.weight`, [E, D], 'router'),
    t(`${p}.ffn_gate_exps.weight`, [E, f, D]),
    t(`${p}.ffn_up_exps.weight`, [E, f, D]),
    t(`${p}.ffn_down_exps.weight`, [E, D, f]),
  ];
  if (o.biases) {
    out.push(
      t(`${p}.ffn_gate_inp.bias`, [E], 'bias'),
      t(`${p}.ffn_gate_exps.bias`, [E, f], 'bias'),
      t(`${p}.ffn_up_exps.bias`, [E, f], 'bias'),
      t(`${p}.ffn_down_exps.bias`, [E, D], 'bias'),
    );
  }
  return out;
}

function swiglu(p: string, f: number, suffix = ''): BabyTensor[] {
  return [t(`${p}.ffn_gate${suffix}.weight`, [f, D]), t(`${p}.ffn_up${suffix}.weight`, [f, D]), t(`${p}.ffn_down${suffix}.weight`, [D, f])];
}

function layers(n: number, f: (p: string, il: number) => BabyTensor[]): BabyTensor[] {
  return Array.from({ length: n }, (_, il) => f(`blk.${il}`, il)).flat();
}

const L = BABY.layers;
const common = { block_count: L, context_length: 4096, 'attention.head_count': H, 'attention.head_count_kv': Hkv };

function llama(moe: boolean): BabyModel {
  const name = moe ? 'mixtral' : 'llama_dense';
  return {
    name,
    architecture: 'llama',
    metadata: meta(
      'llama',
      name,
      { ...common, feed_forward_length: moe ? FE : F, 'rope.dimension_count': Dh, 'attention.key_length': Dh, 'attention.value_length': Dh, ...(moe ? { expert_count: E, expert_used_count: K } : {}) },
      { 'rope.freq_base': 10000, 'attention.layer_norm_rms_epsilon': 1e-5 },
    ),
    tensors: [
      ...ends({ tied: true }),
      ...layers(L, (p) => [...attn(p), t(`${p}.ffn_norm.weight`, [D], 'norm'), ...(moe ? experts(p, FE) : swiglu(p, F))]),
    ],
  };
}

const qwen2moe: BabyModel = {
  name: 'qwen2moe',
  architecture: 'qwen2moe',
  // attn_q is {n_embd, n_embd}: heads x head size = D.
  metadata: meta(
    'qwen2moe',
    'qwen2moe',
    { ...common, feed_forward_length: F, expert_count: E, expert_used_count: K, expert_feed_forward_length: FE, expert_shared_feed_forward_length: F },
    { 'rope.freq_base': 1e6, 'attention.layer_norm_rms_epsilon': 1e-6 },
  ),
  tensors: [
    ...ends(),
    ...layers(L, (p) => [
      ...attn(p, { qkv: true }),
      t(`${p}.ffn_norm.weight`, [D], 'norm'),
      ...experts(p, FE),
      t(`${p}.ffn_gate_inp_shexp.weight`, [D], 'small'),
      ...swiglu(p, F, '_shexp'),
    ]),
  ],
};

const qwen3moe: BabyModel = {
  name: 'qwen3moe',
  architecture: 'qwen3moe',
  // head size 16: H x Dh = 64 != D, as in the golden.
  metadata: meta(
    'qwen3moe',
    'qwen3moe',
    { ...common, feed_forward_length: F, expert_count: E, expert_used_count: K, expert_feed_forward_length: FE, 'attention.key_length': 16, 'attention.value_length': 16 },
    { 'rope.freq_base': 1e6, 'attention.layer_norm_rms_epsilon': 1e-6 },
  ),
  tensors: [...ends({ tied: true }), ...layers(L, (p) => [...attn(p, { hd: 16, qkNorm: 'head' }), t(`${p}.ffn_norm.weight`, [D], 'norm'), ...experts(p, FE)])],
};

const olmoe: BabyModel = {
  name: 'olmoe',
  architecture: 'olmoe',
  // q/k norms over the whole projection: no GQA (kv heads = heads).
  metadata: meta(
    'olmoe',
    'olmoe',
    { ...common, 'attention.head_count_kv': H, feed_forward_length: FE, expert_count: E, expert_used_count: K },
    { 'rope.freq_base': 10000, 'attention.layer_norm_rms_epsilon': 1e-5 },
  ),
  tensors: [
    ...ends(),
    ...layers(L, (p) => [
      t(`${p}.attn_norm.weight`, [D], 'norm'),
      t(`${p}.attn_q.weight`, [D, D]),
      t(`${p}.attn_k.weight`, [D, D]),
      t(`${p}.attn_v.weight`, [D, D]),
      t(`${p}.attn_output.weight`, [D, D]),
      t(`${p}.attn_q_norm.weight`, [D], 'norm'),
      t(`${p}.attn_k_norm.weight`, [D], 'norm'),
      t(`${p}.ffn_norm.weight`, [D], 'norm'),
      ...experts(p, FE),
    ]),
  ],
};

/** DeepSeek-V2-Lite style (softmax, no q compression) or V3 style (q LoRA, sigmoid + bias, groups). */
function deepseek2(v3: boolean): BabyModel {
  const name = v3 ? 'deepseek2_v3' : 'deepseek2_lite';
  const kvLora = 16;
  const rope = 8;
  const nope = 8;
  const vHead = 8;
  const qLora = v3 ? 24 : 0;
  const layerCount = 3; // one leading dense block, then two MoE blocks
  return {
    name,
    architecture: 'deepseek2',
    metadata: meta(
      'deepseek2',
      name,
      {
        ...common,
        block_count: layerCount,
        context_length: 163840,
        'attention.head_count_kv': 1,
        feed_forward_length: F,
        expert_count: E,
        expert_used_count: K,
        leading_dense_block_count: 1,
        'attention.q_lora_rank': qLora,
        'attention.kv_lora_rank': kvLora,
        // llama.cpp's absorbed sizes: key = kv_lora + rope, value = kv_lora.
        'attention.key_length': kvLora + rope,
        'attention.value_length': kvLora,
        'attention.key_length_mla': nope + rope,
        'attention.value_length_mla': vHead,
        expert_feed_forward_length: FE,
        expert_shared_count: 1,
        expert_group_count: v3 ? 2 : 1,
        expert_group_used_count: 1,
        expert_gating_func: v3 ? 2 : 1,
        'rope.dimension_count': rope,
        'rope.scaling.original_context_length': 4096,
      },
      {
        'rope.freq_base': 10000,
        'attention.layer_norm_rms_epsilon': 1e-6,
        expert_weights_scale: v3 ? 2.5 : 2.0,
        'rope.scaling.factor': 40,
        'rope.scaling.yarn_beta_fast': 32,
        'rope.scaling.yarn_beta_slow': 1,
        'rope.scaling.yarn_log_multiplier': v3 ? 0.1 : 0.0707,
      },
      [kv.string('deepseek2.rope.scaling.type', 'yarn'), ...(v3 ? [kv.bool('deepseek2.expert_weights_norm', true)] : [])],
    ),
    tensors: [
      ...ends({ tied: true }),
      ...layers(layerCount, (p, il) => [
        t(`${p}.attn_norm.weight`, [D], 'norm'),
        ...(v3
          ? [t(`${p}.attn_q_a_norm.weight`, [qLora], 'norm'), t(`${p}.attn_q_a.weight`, [qLora, D]), t(`${p}.attn_q_b.weight`, [H * (nope + rope), qLora])]
          : [t(`${p}.attn_q.weight`, [H * (nope + rope), D])]),
        t(`${p}.attn_kv_a_norm.weight`, [kvLora], 'norm'),
        t(`${p}.attn_kv_a_mqa.weight`, [kvLora + rope, D]),
        t(`${p}.attn_k_b.weight`, [H, kvLora, nope]), // ggml {qk_nope, kv_lora, n_head}
        t(`${p}.attn_v_b.weight`, [H, vHead, kvLora]), // ggml {kv_lora, v_head_dim, n_head}
        t(`${p}.attn_output.weight`, [D, H * vHead]),
        t(`${p}.ffn_norm.weight`, [D], 'norm'),
        ...(il === 0
          ? swiglu(p, F)
          : [...experts(p, FE), ...(v3 ? [t(`${p}.exp_probs_b.bias`, [E], 'small')] : []), ...swiglu(p, FE, '_shexp')]),
      ]),
    ],
  };
}

const SLIDING_WINDOW = 4;
const gptOss: BabyModel = {
  name: 'gpt_oss',
  architecture: 'gpt-oss',
  slidingWindow: SLIDING_WINDOW,
  metadata: meta(
    'gpt-oss',
    'gpt_oss',
    {
      ...common,
      context_length: 131072,
      feed_forward_length: F,
      expert_count: E,
      expert_used_count: K,
      expert_feed_forward_length: FE,
      'attention.key_length': Dh,
      'attention.value_length': Dh,
      'attention.sliding_window': SLIDING_WINDOW,
      'rope.scaling.original_context_length': 4096,
    },
    { 'rope.freq_base': 150000, 'attention.layer_norm_rms_epsilon': 1e-5, 'rope.scaling.factor': 32, 'rope.scaling.yarn_beta_fast': 32, 'rope.scaling.yarn_beta_slow': 1 },
    [kv.string('gpt-oss.rope.scaling.type', 'yarn')],
  ),
  tensors: [
    ...ends(),
    ...layers(L, (p) => [
      ...attn(p, { qkv: true, outBias: true }),
      t(`${p}.attn_sinks.weight`, [H], 'small'),
      t(`${p}.post_attention_norm.weight`, [D], 'norm'),
      ...experts(p, FE, { biases: true }),
    ]),
  ],
};

const granitemoe: BabyModel = {
  name: 'granitemoe',
  architecture: 'granitemoe',
  metadata: meta(
    'granitemoe',
    'granitemoe',
    { ...common, feed_forward_length: FE, expert_count: E, expert_used_count: K, 'rope.dimension_count': Dh, 'attention.key_length': Dh, 'attention.value_length': Dh },
    {
      'rope.freq_base': 10000,
      'attention.layer_norm_rms_epsilon': 1e-6,
      'attention.scale': 1 / 64,
      embedding_scale: 12,
      residual_scale: 0.22,
      logit_scale: 6,
    },
  ),
  tensors: [...ends({ tied: true }), ...layers(L, (p) => [...attn(p), t(`${p}.ffn_norm.weight`, [D], 'norm'), ...experts(p, FE)])],
};

const phimoe: BabyModel = {
  name: 'phimoe',
  architecture: 'phimoe',
  metadata: meta(
    'phimoe',
    'phimoe',
    {
      ...common,
      context_length: 131072,
      feed_forward_length: FE,
      expert_count: E,
      expert_used_count: K,
      'rope.dimension_count': Dh,
      'rope.scaling.original_context_length': 4096,
      'attention.sliding_window': 131072,
    },
    { 'rope.freq_base': 10000, 'attention.layer_norm_rms_epsilon': 1e-5, 'rope.scaling.attn_factor': 1.19024 },
  ),
  tensors: [
    ...ends({ normBias: true, outputBias: true }),
    t('rope_factors_long.weight', [Dh / 2], 'factors'),
    t('rope_factors_short.weight', [Dh / 2], 'factors'),
    ...layers(L, (p) => [
      ...attn(p, { qkv: true, outBias: true, normBias: true }),
      t(`${p}.ffn_norm.weight`, [D], 'norm'),
      t(`${p}.ffn_norm.bias`, [D], 'bias'),
      ...experts(p, FE),
    ]),
  ],
};

/** Every baby model: at least one per architecture Switchyard supports. */
export const BABY_MODELS: readonly BabyModel[] = [
  llama(false),
  llama(true),
  qwen2moe,
  qwen3moe,
  olmoe,
  deepseek2(false),
  deepseek2(true),
  gptOss,
  granitemoe,
  phimoe,
];

/** Deterministic values for one tensor (seeded by its name). */
function values(tensor: BabyTensor, seed: number): Float32Array {
  let h = seed >>> 0;
  for (let i = 0; i < tensor.name.length; i++) h = Math.imul(h ^ tensor.name.charCodeAt(i), 0x01000193) >>> 0;
  const r = rng(h);
  const n = tensor.shape.reduce((a, b) => a * b, 1);
  const cols = tensor.shape[tensor.shape.length - 1] as number;
  const out = new Float32Array(n);
  const u = (a: number, b: number) => a + (b - a) * r();
  const scale: Record<Kind, () => number> = {
    matrix: () => u(-1, 1) * Math.sqrt(3 / cols),
    router: () => u(-1, 1) * 2 * Math.sqrt(3 / cols),
    embedding: () => u(-1, 1),
    norm: () => u(0.8, 1.2),
    bias: () => u(-0.2, 0.2),
    factors: () => u(1, 1.5),
    small: () => u(-0.5, 0.5),
  };
  const next = scale[tensor.kind];
  for (let i = 0; i < n; i++) out[i] = next();
  return out;
}

export interface BabyWriteOptions {
  /** Weight type of the matrices whose rows are a multiple of 32 (norms, biases and routers stay F32). */
  readonly type?: 'f32' | 'q8_0';
  readonly seed?: number;
}

/** Writes `model` as `<dir>/<name>-<type>.gguf` and returns the path. */
export async function writeBaby(model: BabyModel, dir: string, options: BabyWriteOptions = {}): Promise<string> {
  const type = options.type ?? 'f32';
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${model.name}-${type}.gguf`);
  await writeGGUF(file, {
    metadata: model.metadata,
    tensors: model.tensors.map((tensor) => {
      const v = values(tensor, options.seed ?? 1);
      const cols = tensor.shape[tensor.shape.length - 1] as number;
      const quantize = type === 'q8_0' && (tensor.kind === 'matrix' || tensor.kind === 'embedding') && cols % 32 === 0;
      return {
        name: tensor.name,
        type: quantize ? GGMLType.Q8_0 : GGMLType.F32,
        shape: tensor.shape,
        data: quantize ? quantizeQ8_0(v) : new Uint8Array(v.buffer),
      };
    }),
  });
  return file;
}
