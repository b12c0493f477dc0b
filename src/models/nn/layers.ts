/**
 * Shared layers of the model files: a forward step's context, linear layers, norms, RoPE
 * parameters, grouped-query attention with the KV cache, the dense SwiGLU FFN and the routed
 * MoE FFN (router -> top-k -> expert group -> weighted sum). Each model file composes these so
 * that its forward pass reads like the equations. Every numeric step is one kernel call.
 * Reference: llama.cpp src/llama-graph.cpp (build_norm, build_attn, build_ffn, build_moe_ffn).
 *
 * Shapes: T tokens, D model dim, H/Hkv heads, Dk/Dv head dims, F FFN dim, E experts, K used.
 */
import { GGMLType } from '../../core/dtypes.js';
import type { Arena } from '../../core/heap.js';
import { allocTensor, i32Tensor, type Tensor } from '../../core/tensor.js';
import type { KVCache } from '../../generate/kv-cache.js';
import type { ExpertActivation, ExpertWeights, KernelBackend, RopeParams } from '../../kernels/backend.js';
import type { DeviceSet } from '../../kernels/device-set.js';
import type { ExpertCache } from '../../experts/cache.js';
import { type RoutingControls, routeWithControls } from '../../router/adaptive.js';
import { type CacheAwareOptions, routeCacheAware } from '../../router/cache-aware.js';
import { type RouterOptions, type Routing, route } from '../../router/route.js';
import type { ModelConfig } from '../config.js';
import type { ModelWeights } from '../weights.js';

/** One forward step: T tokens at positions [pos, pos + T). */
export interface Step {
  /** The kernels of the device holding the activations and the KV cache (devices[0]). */
  readonly backend: KernelBackend;
  /** Every device holding weights (models beyond one 4 GiB wasm memory use several). */
  readonly devices: DeviceSet;
  /** Activations of this step (reset when the step ends). */
  readonly arena: Arena;
  readonly weights: ModelWeights;
  readonly config: ModelConfig;
  readonly cache: KVCache;
  readonly pos: number;
  readonly T: number;
  /** [T] I32 positions. */
  readonly positions: Tensor;
  /** Only the last token's logits are wanted (prompt processing while generating). */
  readonly lastOnly?: boolean;
  /** Routed experts read from the file through a cache (absent: every expert is resident). */
  readonly offload?: ExpertOffload;
  /** Sees every MoE layer's final routing (ids, weights [T, K]): profiles and traces. */
  readonly onRouting?: RoutingObserver;
  /** Per-request routing controls: top-k / top-p / skipping, banned, forced and scaled experts. */
  readonly routing?: RoutingControls;
  /**
   * Several sequences in one step (Model.evalBatch): rows [start, start + count) are one
   * sequence at positions [pos, pos + count) of its own KV cache. Row-wise layers (projections,
   * norms, experts) run on all rows at once; attention runs per sequence. Absent: one sequence,
   * `cache` and `pos`.
   */
  readonly segments?: readonly StepSegment[];
}

export interface StepSegment {
  readonly start: number;
  readonly count: number;
  readonly cache: KVCache;
  readonly pos: number;
}

/**
 * Called with a layer's routing, and `expertOutputs(ids)`, which runs expert ids[t] alone on
 * token t (ids [T]; negative = none) and returns the unweighted outputs [T, D] (expert profiles
 * look for the experts whose outputs carry massive activations).
 */
export type RoutingObserver = (
  layer: number,
  routing: Routing,
  expertOutputs: (ids: Int32Array) => Float32Array,
  /** The router's logits [T, E]. */
  logits: Float32Array,
) => void;

/** How a model with an expert cache runs its routed experts. */
export interface ExpertOffload {
  readonly cache: ExpertCache;
  /** Layers beyond the current one whose experts the prefetcher predicts; undefined = no prefetch. */
  readonly lookahead?: number;
  /** Opt-in inexact routing that prefers resident experts (src/router/cache-aware.ts). */
  readonly cacheAware?: CacheAwareOptions;
}

export const newF32 = (s: Step, shape: readonly number[]): Tensor => allocTensor(s.arena, GGMLType.F32, shape, 'activation');

/**
 * Runs `op` on the device whose heap holds `weight`: the inputs are copied there and `out`
 * copied back when that is not the activations' device (models beyond one wasm memory).
 * Activations are small next to the weights they meet, so the copies cost little.
 */
export function onWeightDevice(
  s: Step,
  weight: Tensor,
  out: Tensor,
  inputs: readonly Tensor[],
  op: (backend: KernelBackend, out: Tensor, inputs: Tensor[]) => void,
): void {
  if (weight.heap === out.heap) {
    op(s.backend, out, [...inputs]);
    return;
  }
  const device = s.devices.deviceOf(weight);
  const arena = device.heap.arena('activations');
  try {
    const remote = inputs.map((t) => s.devices.toDevice(t, device));
    const remoteOut = allocTensor(arena, out.type, out.shape, 'remote output');
    op(device.backend, remoteOut, remote);
    out.bytes.set(remoteOut.bytes);
  } finally {
    arena.reset();
  }
}

/** out [T, R] = x [T, C] · Wᵀ, on the device holding W. */
export function matmulInto(s: Step, out: Tensor, w: Tensor, x: Tensor): void {
  onWeightDevice(s, w, out, [x], (backend, o, [xx]) => backend.matmul(o, w, xx as Tensor));
}

/** Token embeddings: rows of token_embd [V, D] for tokens [T] -> [T, D]. */
export function embed(s: Step, tokens: readonly number[]): Tensor {
  const table = s.weights.get('token_embd.weight');
  const ids = i32Tensor(s.arena, [tokens.length], tokens);
  const x = newF32(s, [tokens.length, table.cols]);
  onWeightDevice(s, table, x, [ids], (backend, o, [i]) => backend.getRows(o, table, i as Tensor));
  return x;
}

/** x [T, C] · Wᵀ (+ b) -> [T, R]. */
export function linear(s: Step, x: Tensor, w: Tensor, b?: Tensor): Tensor {
  const out = newF32(s, [x.rows, w.rows]);
  matmulInto(s, out, w, x);
  if (b) s.backend.add(out, out, b);
  return out;
}

/** The named linear layer with its optional bias (`<name>.weight`, `<name>.bias`). */
export function dense(s: Step, x: Tensor, name: string): Tensor {
  return linear(s, x, s.weights.get(`${name}.weight`), s.weights.optional(`${name}.bias`));
}

/** RMSNorm(x, w) (+ b when the model has a norm bias, as phi3's). */
export function rmsNorm(s: Step, x: Tensor, name: string): Tensor {
  const out = newF32(s, x.shape);
  s.backend.rmsNorm(out, x, s.weights.get(`${name}.weight`), s.config.normEpsilon);
  const b = s.weights.optional(`${name}.bias`);
  if (b) s.backend.add(out, out, b);
  return out;
}

/** a + b * scale (the residual stream), written into a. */
export function residual(s: Step, a: Tensor, b: Tensor, scale = 1): Tensor {
  if (scale !== 1) s.backend.scale(b, b, scale);
  s.backend.add(a, a, b);
  return a;
}

const f = Math.fround;
const logf = (x: number): number => f(Math.log(x));

/**
 * llama.cpp's `cparams.yarn_attn_factor` (llama-context.cpp), the attn_factor every rope call
 * receives. With YaRN the kernel multiplies cos/sin by attnFactor · (1 + 0.1 ln factor)
 * (rope_yarn), and llama.cpp pre-divides by that second factor:
 *   "cparams.yarn_attn_factor *= 1.0f / (1.0f + 0.1f * logf(factor));"
 * For deepseek2 (mscale = mscale_all_dim) the net cos/sin scale is 1: the YaRN magnitude
 * correction goes into the score scale instead (`mlaScoreScale`).
 */
export function yarnAttnFactor(c: ModelConfig): number {
  const r = c.rope;
  let attnFactor = 1; // hparams.yarn_attn_factor (no GGUF key read here)
  if (r.scalingType === 'yarn') {
    const factor = f(1 / f(1 / r.scalingFactor)); // 1.0f / cparams.rope_freq_scale
    // get_mscale = scale <= 1.0f ? 1.0f : (0.1f * mscale * logf(scale) + 1.0f)
    const getMscale = (scale: number, mscale: number): number => (scale <= 1 ? 1 : f(f(f(f(0.1) * mscale) * logf(scale)) + 1));
    const all = r.yarnLogMultiplier; // mscale_all_dim
    if (all !== 0) {
      // "special-case DEEPSEEK v2": mscale = mscale_all_dims unless it is 1
      const mscale = c.architecture === 'deepseek2' && all !== 1 ? all : 1;
      attnFactor = f(getMscale(factor, mscale) / getMscale(factor, all));
    } else {
      attnFactor = getMscale(factor, 1);
    }
    attnFactor = f(attnFactor * f(1 / f(1 + f(f(0.1) * logf(factor)))));
  }
  return f(attnFactor * r.attnFactor); // *= hparams.rope_attn_factor
}

/** RoPE parameters of a layer from the configuration (llama.cpp llama_model / llm_graph_context). */
export function ropeParams(c: ModelConfig, freqFactors?: Tensor, sliding = false): RopeParams {
  const r = c.rope;
  const scaled = r.scalingType === 'linear' || r.scalingType === 'yarn';
  return {
    nDims: r.dimensionCount,
    mode: r.type,
    freqBase: sliding ? r.freqBaseSliding : r.freqBase,
    freqScale: scaled ? 1 / r.scalingFactor : 1,
    ...(r.scalingType === 'yarn'
      ? { extFactor: 1, nCtxOrig: r.originalContextLength, betaFast: r.yarnBetaFast, betaSlow: r.yarnBetaSlow }
      : {}),
    attnFactor: yarnAttnFactor(c),
    ...(freqFactors ? { freqFactors } : {}),
  };
}

export interface AttentionOptions {
  /** q/k RMSNorm: per head (qwen3moe) or over the whole projection (olmoe). */
  readonly qkNorm?: 'head' | 'full';
  /** Multiplier of q·k; default attention.scale, else 1/sqrt(Dk). */
  readonly scale?: number;
  /** Per-pair RoPE frequency divisors (rope_freqs, LongRoPE factors). */
  readonly freqFactors?: Tensor;
  readonly sliding?: boolean;
  /** Attention sinks [H] (gpt-oss). */
  readonly sinks?: Tensor;
}

/**
 * Grouped-query self-attention of block il on x [T, D] -> [T, D]:
 *   q, k, v = Wq x (+bq), Wk x (+bk), Wv x (+bv);  q, k = rope(norm?(q)), rope(norm?(k))
 *   cache[pos .. pos+T) = k, v;  o = softmax(scale q kᵀ + causal mask) v;  out = Wo o (+bo)
 * Keys and values are computed in F32 rows from cache.staging() (an F32 cache's own rows, so
 * no copy) and stored with cache.write() (an F16 cache rounds them there, as ggml_set_rows).
 */
export function attention(s: Step, il: number, x: Tensor, o: AttentionOptions = {}): Tensor {
  const c = s.config;
  const a = c.attention;
  const H = a.headCount[il] as number;
  const Hkv = a.headCountKV[il] as number;
  const Dk = a.keyLength;
  const Dv = a.valueLength;
  const p = `blk.${il}.`;
  const { T, backend } = s;

  let q = dense(s, x, `${p}attn_q`); // [T, H·Dk]
  // Several sequences: keys and values of all rows in the step's own F32 rows, then per sequence.
  const rows = s.segments
    ? { k: newF32(s, [T, Hkv, Dk]), v: newF32(s, [T, Hkv, Dv]) }
    : s.cache.staging(s.arena, il, s.pos, T);
  const k = rows.k.reshape([T, Hkv * Dk]); // [T, Hkv·Dk] F32 (in the cache when it is F32)
  const v = rows.v.reshape([T, Hkv * Dv]);
  matmulInto(s, k, s.weights.get(`${p}attn_k.weight`), x);
  matmulInto(s, v, s.weights.get(`${p}attn_v.weight`), x);
  const bk = s.weights.optional(`${p}attn_k.bias`);
  const bv = s.weights.optional(`${p}attn_v.bias`);
  if (bk) backend.add(k, k, bk);
  if (bv) backend.add(v, v, bv);

  if (o.qkNorm === 'full') {
    q = rmsNorm(s, q, `${p}attn_q_norm`);
    backend.rmsNorm(k, k, s.weights.get(`${p}attn_k_norm.weight`), c.normEpsilon);
  }
  let q3 = q.reshape([T, H, Dk]);
  const k3 = k.reshape([T, Hkv, Dk]);
  if (o.qkNorm === 'head') {
    q3 = rmsNorm(s, q3.reshape([T * H, Dk]), `${p}attn_q_norm`).reshape([T, H, Dk]);
    backend.rmsNorm(k3.reshape([T * Hkv, Dk]), k3.reshape([T * Hkv, Dk]), s.weights.get(`${p}attn_k_norm.weight`), c.normEpsilon);
  }
  const rope = ropeParams(c, o.freqFactors, o.sliding);
  backend.rope(q3, q3, s.positions, rope);
  backend.rope(k3, k3, s.positions, rope);
  const out = newF32(s, [T, H, Dv]);
  const params = {
    scale: o.scale ?? a.scale ?? 1 / Math.sqrt(Dk),
    ...(o.sliding ? { window: a.slidingWindow } : {}),
    ...(o.sinks ? { sinks: o.sinks } : {}),
  };
  for (const seg of s.segments ?? [{ start: 0, count: T, cache: s.cache, pos: s.pos }]) {
    const mine = s.segments ? { k: rows.k.slice(seg.start, seg.count), v: rows.v.slice(seg.start, seg.count) } : rows;
    seg.cache.write(backend, il, seg.pos, mine);
    const cached = seg.cache.upTo(il, seg.pos + seg.count);
    const q = s.segments ? q3.slice(seg.start, seg.count) : q3;
    backend.attention(s.segments ? out.slice(seg.start, seg.count) : out, q, cached.k, cached.v, { ...params, qPos0: seg.pos });
  }
  return dense(s, out.reshape([T, H * Dv]), `${p}attn_output`);
}

/** The SwiGLU FFN `<prefix>{gate,up,down}<suffix>`: down(silu(gate x) ⊙ up x). */
export function swigluFFN(s: Step, x: Tensor, il: number, suffix = ''): Tensor {
  const p = `blk.${il}.ffn_`;
  const g = dense(s, x, `${p}gate${suffix}`); // [T, F]
  const u = dense(s, x, `${p}up${suffix}`);
  s.backend.swiglu(g, g, u);
  return dense(s, g, `${p}down${suffix}`); // [T, D]
}

/** Router options of the model's MoE configuration (gating, normalisation, scale, groups, bias). */
export function routerOptions(s: Step, il: number): RouterOptions {
  const m = s.config.moe;
  if (!m) throw new Error('routerOptions: the model has no experts');
  const bias = s.weights.optional(`blk.${il}.exp_probs_b.bias`);
  return {
    experts: m.expertCount,
    used: m.expertUsedCount,
    gating: m.gating,
    normalize: m.normalizeWeights,
    scale: m.weightsScale,
    ...(bias ? { selectionBias: bias.f32().slice() } : {}),
    groupCount: m.groupCount,
    groupUsed: m.groupUsedCount,
  };
}

/**
 * The routed experts of block il on x [T, D] -> [T, D]:
 *   logits = W_router x (+b) [T, E];  ids, weights = route(logits);  out = Σ_k w_k · expert_{id_k}(x)
 * With an expert cache the selected experts are made resident first (token chunks that fit in
 * the layer's slots; rows are independent, so the result is the resident run's bit for bit).
 */
export function moeFFN(s: Step, x: Tensor, il: number, activation: ExpertActivation = { kind: 'silu' }): Tensor {
  if (!s.config.moe) throw new Error('moeFFN: the model has no experts');
  const logits = dense(s, x, `blk.${il}.ffn_gate_inp`); // [T, E]
  const options = routerOptions(s, il);
  const off = s.offload;
  let routing: Routing;
  // Cache-aware routing replaces the model's own routing; explicit routing controls take precedence.
  if (off?.cacheAware && !s.routing) {
    const r = routeCacheAware(logits.f32(), s.T, options, (e) => off.cache.available(il, e), off.cacheAware);
    off.cache.countRouting(r.substituted, r.dropped);
    routing = r;
  } else {
    routing = routeWithControls(logits.f32(), s.T, options, il, s.routing);
  }
  s.onRouting?.(il, routing, (ids) => routedExperts(s, x, il, { ids, weights: new Float32Array(ids.length).fill(1) }, activation).f32().slice(), logits.f32());
  return routedExperts(s, x, il, routing, activation);
}

/** Σ_k weights[t, k] · expert_{ids[t, k]}(x[t]) from the resident stacks, or through the expert cache. */
function routedExperts(s: Step, x: Tensor, il: number, routing: Routing, activation: ExpertActivation): Tensor {
  const off = s.offload;
  if (!off) return runExperts(s, x, s.weights.experts(il, s.config.moe?.expertCount ?? 0), routing, activation);
  const out = newF32(s, x.shape);
  const K = routing.ids.length / s.T;
  off.cache.forEachResident(il, routing.ids, s.T, (t0, n, experts) => {
    const part = { ids: routing.ids.subarray(t0 * K, (t0 + n) * K), weights: routing.weights.subarray(t0 * K, (t0 + n) * K) };
    runExpertsInto(s, out.slice(t0, n), x.slice(t0, n), experts, part, activation);
  });
  return out;
}

/**
 * Training-free pre-gating (a layer's router applied early): at the start of block il, the
 * routers of blocks il .. il + lookahead are applied to the residual stream h [T, D] (each
 * after its own FFN norm) and the experts they select are read ahead, so reads overlap the
 * attention and the layers in between. A wrong guess costs bandwidth, never correctness.
 * `norm` names the norm in front of the block's MoE (ffn_norm; gpt-oss: post_attention_norm).
 */
export function prefetchExperts(s: Step, il: number, h: Tensor, norm = 'ffn_norm'): void {
  const off = s.offload;
  if (!off || off.lookahead === undefined) return;
  const layers = off.cache.layout.layers;
  for (let j = il; j <= Math.min(il + off.lookahead, layers.length - 1); j++) {
    const L = layers[j];
    if (!L) continue;
    const x = s.weights.has(`blk.${j}.${norm}.weight`) ? rmsNorm(s, h, `blk.${j}.${norm}`) : h;
    const r = route(dense(s, x, `blk.${j}.ffn_gate_inp`).f32(), s.T, routerOptions(s, j));
    // Most wanted first: summed routing weight over the step's tokens.
    const want = new Float64Array(L.count);
    for (let i = 0; i < r.ids.length; i++) if ((r.ids[i] as number) >= 0) want[r.ids[i] as number] += (r.weights[i] as number) + 1e-9;
    const order = Array.from({ length: L.count }, (_, e) => e).filter((e) => (want[e] as number) > 0);
    order.sort((a, b) => (want[b] as number) - (want[a] as number));
    off.cache.prefetch(j, order);
  }
}

/**
 * out [T, D] = Σ_k weights[t, k] · experts[ids[t, k]](x[t]): one expert-group dispatch on the
 * device holding the experts.
 */
export function runExperts(
  s: Step,
  x: Tensor,
  experts: readonly (ExpertWeights | undefined)[],
  routing: Routing,
  activation: ExpertActivation = { kind: 'silu' },
): Tensor {
  const out = newF32(s, x.shape);
  runExpertsInto(s, out, x, experts, routing, activation);
  return out;
}

/** runExperts writing into `out` [T, D] (rows of a larger activation while chunking). */
function runExpertsInto(
  s: Step,
  out: Tensor,
  x: Tensor,
  experts: readonly (ExpertWeights | undefined)[],
  routing: Routing,
  activation: ExpertActivation,
): void {
  const T = x.rows;
  const K = routing.ids.length / T;
  const ids = i32Tensor(s.arena, [T, K], routing.ids);
  const weights = newF32(s, [T, K]);
  weights.f32().set(routing.weights);
  const home = experts.find((e) => e !== undefined)?.gate as Tensor;
  onWeightDevice(s, home, out, [x, ids, weights], (backend, o, [xx, ii, ww]) =>
    backend.expertGroup({ out: o, x: xx as Tensor, experts, ids: ii as Tensor, weights: ww as Tensor, activation }),
  );
}

/** Final norm and output projection: logits [T, V], or [1, V] with lastOnly (the output matrix is token_embd when tied). */
export function outputLogits(s: Step, x: Tensor): Tensor {
  let last = x.slice(x.rows - 1, 1);
  if (s.lastOnly && s.segments) {
    // The last row of every sequence: [S, D].
    last = newF32(s, [s.segments.length, x.cols]);
    s.segments.forEach((seg, i) => {
      last.slice(i, 1).bytes.set(x.slice(seg.start + seg.count - 1, 1).bytes);
    });
  }
  const h = rmsNorm(s, s.lastOnly ? last : x, 'output_norm');
  const w = s.weights.optional('output.weight') ?? s.weights.get('token_embd.weight');
  return linear(s, h, w, s.weights.optional('output.bias'));
}
