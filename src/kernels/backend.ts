/**
 * The kernel backend contract. Everything numeric that models, routers and experts do
 * goes through one of these methods; a backend implements all of them over tensors in
 * a Heap. Backends: `ref` (plain TypeScript twins, src/kernels/ref/), `simd128` and
 * `relaxed` (WebAssembly builds of src/kernels/wasm/c, with a thread pool).
 *
 * Conventions for every method:
 * - shapes are outermost first; the last dimension is contiguous (see core/tensor.ts);
 * - `out` may alias an input only where the method says so;
 * - float outputs are F32; integer inputs (ids, positions) are I32;
 * - a backend validates shapes and types and throws InvalidArgumentError /
 *   UnsupportedTypeError naming the argument; it never reads or writes out of bounds.
 *
 * Shape legend: T tokens, D model dim, F FFN dim, E experts, K active experts,
 * H / Hkv query / key-value heads, Dh head dim, S cached positions, V vocabulary.
 */
import type { Tensor } from '../core/tensor.js';

export type KernelBackendName = 'ref' | 'simd128' | 'relaxed';

export interface RopeParams {
  /** Rotated dimensions of each head, from its start (partial rotary when < Dh). */
  nDims: number;
  /** 'norm' rotates pairs (x[2i], x[2i+1]); 'neox' rotates (x[i], x[i + nDims/2]). */
  mode: 'norm' | 'neox';
  freqBase: number;
  /** Linear position scaling: 1 / factor (1 = none). */
  freqScale?: number;
  /** YaRN: the context length the model was trained with (needed when extFactor != 0). */
  nCtxOrig?: number;
  /** YaRN extrapolation mix factor (0 = off, 1 = YaRN). */
  extFactor?: number;
  /** Multiplies cos and sin (YaRN's mscale, LongRoPE's attention factor). Default 1. */
  attnFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  /** Per-pair frequency divisors [nDims / 2] (LongRoPE / llama3 rope factors). */
  freqFactors?: Tensor;
}

export interface AttentionParams {
  /** Multiplier of q·k (usually 1 / sqrt(Dh)). */
  scale: number;
  /** Position of query row 0; query t is at qPos0 + t and sees keys at positions <= its own. */
  qPos0: number;
  /** Sliding window: a query at i sees keys j with i - j < window. 0 = unlimited. */
  window?: number;
  /** Logit soft-capping: s = softcap * tanh(s / softcap). 0 = off. */
  softcap?: number;
  /** Attention sinks: one logit per head [H] that joins each softmax denominator. */
  sinks?: Tensor;
}

export type ExpertActivation =
  | { kind: 'silu' }
  | { kind: 'gelu' }
  /** gpt-oss: a = min(g, limit) * sigmoid(alpha * min(g, limit)) * (clamp(u, -limit, limit) + 1). */
  | { kind: 'swiglu_oai'; alpha: number; limit: number };

/** Weights of one expert: gate and up [F, D], down [D, F], optional biases [F] / [D]. */
export interface ExpertWeights {
  gate: Tensor;
  up: Tensor;
  down: Tensor;
  gateBias?: Tensor;
  upBias?: Tensor;
  downBias?: Tensor;
}

export interface ExpertGroupArgs {
  /** [T, D] F32, overwritten with Σ_k weights[t, k] * expert_{ids[t, k]}(x[t]). */
  out: Tensor;
  /** [T, D] F32. */
  x: Tensor;
  /** Experts by id; only the selected ones are read. All share one type per matrix. */
  experts: readonly (ExpertWeights | undefined)[];
  /** [T, K] I32 selected expert ids (a negative id skips that slot). */
  ids: Tensor;
  /** [T, K] F32 routing weights. */
  weights: Tensor;
  activation: ExpertActivation;
}

// ---- Training ------------------------------------------------------------------------

/** gemm options: out = alpha · op(a) · op(b) + beta · out. */
export interface GemmParams {
  /** op(a) = aᵀ: a is [K, M]. */
  transA?: boolean;
  /** op(b) = bᵀ: b is [N, K]. */
  transB?: boolean;
  /** Default 1. */
  alpha?: number;
  /** Default 0; 0 never reads out (NaN-safe). */
  beta?: number;
}

/** One AdamW step (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", Algorithm 2). */
export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1 for the first step (bias corrections 1 - beta^step). */
  step: number;
}

export interface KernelBackend {
  readonly name: KernelBackendName;
  /** Threads a kernel call may use. */
  readonly threads: number;

  /** out [T, R] = x [T, C] · W [R, C]ᵀ, W of any kernel type; T = 1 is a matrix-vector product. */
  matmul(out: Tensor, w: Tensor, x: Tensor): void;
  /** out [R, C] F32 = exact dequantization of src [R, C]. */
  dequantize(out: Tensor, src: Tensor): void;
  /** out [N, C] F32 = rows ids[n] of table [V, C] (any kernel type), dequantized exactly. */
  getRows(out: Tensor, table: Tensor, ids: Tensor): void;
  /**
   * out = x [any shape] F32 in out's type: F32 (a copy of the bits), F16 or BF16 (each value
   * rounded to nearest even, as ggml's set_rows / cpy into an F16 / BF16 KV cache). out has x's
   * element count (its shape may differ) and must not overlap x. Writes the KV cache.
   */
  convert(out: Tensor, x: Tensor): void;

  /** out = x / sqrt(mean(x²) + eps) * weight, per row of x [R, C]; weight [C] optional. out may be x. */
  rmsNorm(out: Tensor, x: Tensor, weight: Tensor | null, eps: number): void;
  /** out = (x - mean) / sqrt(var + eps) * weight + bias, per row. out may be x. */
  layerNorm(out: Tensor, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): void;
  /** Rotary embedding of x [T, H, Dh] at positions [T] (I32). out may be x. */
  rope(out: Tensor, x: Tensor, positions: Tensor, p: RopeParams): void;
  /** Row-wise softmax of x [R, C] * scale. out may be x. */
  softmax(out: Tensor, x: Tensor, scale?: number): void;

  silu(out: Tensor, x: Tensor): void;
  /** GELU, tanh approximation (as ggml_gelu). */
  gelu(out: Tensor, x: Tensor): void;
  /** out = silu(gate) * up. */
  swiglu(out: Tensor, gate: Tensor, up: Tensor): void;
  /** gpt-oss clamped SwiGLU (see ExpertActivation). */
  swigluOai(out: Tensor, gate: Tensor, up: Tensor, alpha: number, limit: number): void;

  /** out = a + b; b has a's shape or is one row [C] broadcast over a's rows. out may be a. */
  add(out: Tensor, a: Tensor, b: Tensor): void;
  /** out = a * b (element-wise), broadcast as add. out may be a. */
  mul(out: Tensor, a: Tensor, b: Tensor): void;
  /** out = a * s. out may be a. */
  scale(out: Tensor, a: Tensor, s: number): void;

  /** The k largest values of each row of x [R, C], descending (ties: lower index first; NaN ranks below every number). */
  topK(indices: Tensor, values: Tensor, x: Tensor, k: number): void;

  /**
   * out [T, H, Dv] = softmax(scale · q kᵀ + mask) v for queries q [T, H, Dk] against a
   * cache k [S, Hkv, Dk], v [S, Hkv, Dv] (F32 or F16); grouped-query (H a multiple of Hkv).
   */
  attention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void;

  /** One layer's routed experts for a batch of tokens, in one dispatch (the MoE hot path). */
  expertGroup(args: ExpertGroupArgs): void;

  // ---- Training: backward passes, the loss, the optimizer (src/train/) ----------------

  /**
   * out [M, N] = alpha · op(a) · op(b) + beta · out. op(a) is [M, K]: a is [M, K], or [K, M]
   * when transA. op(b) is [K, N]: b is [K, N], or [N, K] when transB. beta = 0 never reads
   * out (NaN-safe). out must not overlap a or b. a, b, out F32, leading dims folded into rows.
   */
  gemm(out: Tensor, a: Tensor, b: Tensor, p?: GemmParams): void;
  /**
   * Backward of rmsNorm (y = x / rms(x) · w) per row of x [R, C]: dx from dy, x and weight [C]
   * (or null). If dweight [C] is given, dweight += Σ_rows dy ⊙ x / rms(x). dx may alias dy.
   */
  rmsNormBackward(dx: Tensor, dy: Tensor, x: Tensor, weight: Tensor | null, eps: number, dweight: Tensor | null): void;
  /** Backward of out = silu(gate) ⊙ up: dgate, dup (overwritten) from dout. dgate may alias dout. */
  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor): void;
  /**
   * Backward of attention(out, q, k, v, p) with F32 q [T, H, Dk], k [S, Hkv, Dk], v [S, Hkv, Dv]
   * and the same params (causal from qPos0, window, softcap; sinks are not supported): dq, dk,
   * dv (shaped as q, k, v) overwritten. Recomputes the probabilities.
   */
  attentionBackward(dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void;
  /**
   * Softmax cross-entropy per row of logits [T, V], targets [T] I32 (negative = ignored):
   * loss [T] = logsumexp(row) - row[target] (0 when ignored); dlogits [T, V] (may alias logits)
   * = (softmax(row) - onehot(target)) · gradScale (a zero row when ignored).
   */
  crossEntropy(loss: Tensor, dlogits: Tensor, logits: Tensor, targets: Tensor, gradScale: number): void;
  /**
   * out [N, C]: row ids[t] += weights[t] · x[t] for x [T, C], ids [T] I32 (negative = skip),
   * weights [T] or null (= 1). Repeated ids accumulate in order of t (deterministic).
   */
  scatterAddRows(out: Tensor, x: Tensor, ids: Tensor, weights: Tensor | null): void;
  /** out [R] = Σ_c a[r, c] · b[r, c] for a, b [R, C]. */
  rowDot(out: Tensor, a: Tensor, b: Tensor): void;
  /** out [R, C] = x [R, C] · s[r] (s [R]). out may alias x. */
  scaleRows(out: Tensor, x: Tensor, s: Tensor): void;
  /** Σ x² over every element of x (F32), accumulated in float64. */
  sumSquares(x: Tensor): number;
  /**
   * One AdamW step in place over param, grad, m, v (F32, same element count, no overlap):
   * m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g²; param -= lr · (m̂ / (sqrt(v̂) + eps) +
   * weightDecay · param) with m̂ = m / (1 - b1^step), v̂ = v / (1 - b2^step); step >= 1.
   */
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): void;

  /** Release threads and instances. */
  dispose(): void;
}
