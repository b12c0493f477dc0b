/**
 * Trainable routers: from router logits [T, L] to K expert ids per token and their weights,
 * with the gradient flowing from the weights back to the logits (selection itself has no
 * gradient). One small interface, short implementations, one conformance suite
 * (test/train/routers.test.ts) that all pass.
 *
 *   softmax-topk        p = softmax(l); ids = top-k(p); w = p[ids] (/ Σ if normalised)   Mixtral / Qwen (Qwen3-MoE: normalised)
 *   softmax-after-topk  ids = top-k(l); w = softmax(l[ids])                              Mixtral paper (Jiang et al. 2024, eq. 1)
 *   sigmoid-bias        s = σ(l); ids = top-k(s + b); w = s[ids] / Σ                      DeepSeek-V3 (aux-loss-free balance, §2.1.2)
 *   top-p               p = softmax(l); fewest ids (≤ K) with Σ p ≥ threshold; w = p[ids]  Huang et al. 2024
 *   null-experts        softmax-topk over E routed + N null ids that compute nothing         AdaMoE (Zeng et al. 2024)
 *   moe-plus-plus       softmax-topk over E routed + zero / copy / constant experts          MoE++ (Jin et al. 2024)
 *
 * Expert ids: [0, E) routed FFN experts, then `zero`, `copy`, `constant` and `null` special
 * experts in that order (the MoE layer, src/train/moe.ts, gives each kind its meaning), so
 * L = nLogits = E + specials. Every kind of router accepts special experts; the last two names
 * are softmax-topk with them. Ties in a top-k pick the lower id (as src/router/route.ts).
 *
 * The per-token maths on [T, L] runs in TypeScript (L is at most a few hundred); the expert
 * FFNs, the hot loops, run in kernels.
 */
import { GGMLType } from '../core/dtypes.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { BalanceSpec, RouterKind, RouterSpec } from './config.js';
import { entropyLoss, GlobalBatchLoad, type RouterScores, rowProbs, rowProbsBackward, switchLoss, weightedSum, zLoss } from './losses.js';
import type { ParameterSpec } from './params.js';
import type { Tape, Var } from './tape.js';

/** Special experts after the E routed ones (MoE++ zero / copy / constant, AdaMoE null). */
export interface ExpertLayout {
  readonly zero: number;
  readonly copy: number;
  readonly constant: number;
  readonly null: number;
}

export interface RouteResult {
  /** [T, K] I32 selected ids (K = maxK); -1 = an empty slot (top-p picked fewer). */
  readonly ids: Tensor;
  /** [T, K] routing weights, 0 in empty slots. */
  readonly weights: Var;
  /** Scalar auxiliary loss, already multiplied by its coefficients; null when none (or not training). */
  readonly aux: Var | null;
  /** [nLogits] slots routed to each id in this call. */
  readonly load: Float64Array;
}

export interface RouteOptions {
  /** false for evaluation: no auxiliary loss, and the load is not counted toward bias updates. Default true. */
  readonly training?: boolean;
}

export interface Router {
  readonly name: string;
  /** Routed FFN experts E. */
  readonly nExperts: number;
  /** Router logits (rows of ffn_gate_inp): E plus the special experts. */
  readonly nLogits: number;
  /** Slots per token K (top-p: the most it may pick). */
  readonly maxK: number;
  readonly layout: ExpertLayout;
  /** The weights of each token sum to 1. */
  readonly normalized: boolean;
  route(tape: Tape, logits: Var, opts?: RouteOptions): RouteResult;
  /** Extra parameters the layer needs (MoE++ constant vectors), names prefixed. */
  parameterSpecs(prefix: string, D: number): ParameterSpec[];
  /** Call after each optimizer step: bias updates (sigmoid-bias), global-batch counts reset. */
  afterStep(): void;
  /** Router state for checkpoints (the selection bias); [] when stateless. */
  state(): number[];
  restore(state: readonly number[]): void;
}

export interface RouterOptions {
  /** Routed experts E. */
  experts: number;
  /** Slots per token K. */
  k: number;
  layout?: Partial<ExpertLayout>;
  /** Auxiliary losses and their coefficients (0 or absent = off). */
  balance?: BalanceSpec;
}

const f32 = Math.fround;
/** ggml_clamp(sum, 6.103515625e-5, INFINITY) in llama.cpp's build_moe_ffn. */
const MIN_WEIGHT_SUM = 6.103515625e-5;

/** The n largest of v into ids[0..n) (descending; ties: lower index first). */
function topKInto(v: ArrayLike<number>, n: number, ids: Int32Array, taken: Uint8Array): void {
  taken.fill(0);
  for (let k = 0; k < n; k++) {
    let best = -1;
    for (let e = 0; e < v.length; e++) if (!taken[e] && (best < 0 || v[e] > v[best])) best = e;
    ids[k] = best;
    taken[best] = 1;
  }
}

/** Softmax in float32 steps exactly as src/router/route.ts (so selections match bit for bit). */
function softmaxF32(row: Float32Array, p: Float32Array): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let e = 0; e < row.length; e++) max = Math.max(max, row[e]);
  let sum = 0;
  for (let e = 0; e < row.length; e++) sum += p[e] = f32(Math.exp(row[e] - max));
  for (let e = 0; e < row.length; e++) p[e] = f32(p[e] / sum);
}

abstract class BaseRouter implements Router {
  abstract readonly name: string;
  abstract readonly normalized: boolean;
  readonly nExperts: number;
  readonly nLogits: number;
  readonly maxK: number;
  readonly layout: ExpertLayout;
  /** Slots per id since the last afterStep() (training routes only). */
  readonly stepLoad: Float64Array;
  protected readonly balance: BalanceSpec;
  /** Probabilities the balancing loss averages. */
  protected scores: RouterScores = 'softmax';
  private readonly global: GlobalBatchLoad | null;
  protected readonly taken: Uint8Array;

  constructor(o: RouterOptions) {
    const layout = { zero: 0, copy: 0, constant: 0, null: 0, ...o.layout };
    for (const [k, n] of Object.entries(layout)) {
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`router: ${k} experts must be a whole number >= 0, got ${n}`);
    }
    if (!Number.isInteger(o.experts) || o.experts < 1) throw new InvalidArgumentError(`router: experts must be >= 1, got ${o.experts}`);
    this.nExperts = o.experts;
    this.layout = layout;
    this.nLogits = o.experts + layout.zero + layout.copy + layout.constant + layout.null;
    if (!Number.isInteger(o.k) || o.k < 1 || o.k > this.nLogits) {
      throw new InvalidArgumentError(`router: k must be in [1, ${this.nLogits}] (the router's ids), got ${o.k}`);
    }
    this.maxK = o.k;
    this.balance = o.balance ?? {};
    this.stepLoad = new Float64Array(this.nLogits);
    this.global = this.balance.globalBatch ? new GlobalBatchLoad(this.nLogits) : null;
    this.taken = new Uint8Array(this.nLogits);
  }

  /** Fill one token's ids and weights (ids pre-filled with -1, weights with 0). */
  protected abstract pick(row: Float32Array, ids: Int32Array, w: Float32Array): void;
  /** dl += ∂(Σ_k g_k w_k)/∂l for one token. */
  protected abstract backRow(row: Float32Array, ids: Int32Array, g: Float32Array, dl: Float32Array): void;

  route(tape: Tape, logits: Var, opts: RouteOptions = {}): RouteResult {
    const L = this.nLogits;
    const K = this.maxK;
    if (logits.shape.length !== 2 || logits.shape[1] !== L) {
      throw new InvalidArgumentError(`${this.name} router: logits must be [T, ${L}], got [${logits.shape.join(', ')}]`);
    }
    const T = logits.shape[0];
    const ids = tape.alloc([T, K], GGMLType.I32);
    const w = tape.alloc([T, K]);
    const lv = logits.value.f32();
    const iv = ids.i32();
    const wv = w.f32();
    iv.fill(-1);
    wv.fill(0);
    const load = new Float64Array(L);
    for (let t = 0; t < T; t++) {
      const row = lv.subarray(t * L, (t + 1) * L);
      if (!row.every(Number.isFinite)) throw new InvalidArgumentError(`${this.name} router: token ${t} has a non-finite logit`);
      this.pick(row, iv.subarray(t * K, (t + 1) * K), wv.subarray(t * K, (t + 1) * K));
    }
    for (const id of iv) if (id >= 0) load[id]++;

    const weights = tape.record(w, [logits], (g) => {
      const dl = tape.grad(logits).f32();
      const lv = logits.value.f32();
      const iv = ids.i32();
      const gv = g.f32();
      for (let t = 0; t < T; t++) {
        this.backRow(lv.subarray(t * L, (t + 1) * L), iv.subarray(t * K, (t + 1) * K), gv.subarray(t * K, (t + 1) * K), dl.subarray(t * L, (t + 1) * L));
      }
    });

    if (opts.training === false) return { ids, weights, aux: null, load };
    for (let e = 0; e < L; e++) this.stepLoad[e] += load[e];
    const b = this.balance;
    const terms: [Var, number][] = [];
    const balanceOpts = { scores: this.scores, nullExperts: this.layout.null };
    if (b.switch) {
      if (this.global) {
        this.global.observe(ids);
        terms.push([switchLoss(tape, logits, ids, { ...balanceOpts, counts: this.global.counts }), b.switch]);
      } else terms.push([switchLoss(tape, logits, ids, balanceOpts), b.switch]);
    }
    if (b.zLoss) terms.push([zLoss(tape, logits), b.zLoss]);
    if (b.entropy) terms.push([entropyLoss(tape, logits), b.entropy]);
    return { ids, weights, aux: weightedSum(tape, terms), load };
  }

  parameterSpecs(prefix: string, D: number): ParameterSpec[] {
    const n = this.layout.constant;
    return n > 0 ? [{ name: `${prefix}ffn_const_exps.weight`, shape: [n, D], init: { kind: 'normal', std: 0.02 } }] : [];
  }

  afterStep(): void {
    this.stepLoad.fill(0);
    this.global?.reset();
  }

  state(): number[] {
    return [];
  }

  restore(state: readonly number[]): void {
    if (state.length !== 0) throw new InvalidArgumentError(`${this.name} router has no state, got ${state.length} numbers`);
  }
}

/**
 * Softmax then top-k (Mixtral / Qwen as llama.cpp's build_moe_ffn): p = softmax(l),
 * ids = top-k(p), w = p[ids], divided by their sum when `normalize` (Qwen3-MoE's
 * norm_topk_prob; the sum is clamped at 6.1e-5 as llama.cpp does). Gradient: through the
 * normalisation and the softmax to every logit.
 */
export class SoftmaxTopKRouter extends BaseRouter {
  readonly name: string;
  readonly normalized: boolean;
  protected readonly p: Float32Array;
  protected readonly p64: Float64Array;
  protected readonly dp: Float64Array;

  constructor(
    o: RouterOptions,
    readonly normalize = true,
    name?: string,
  ) {
    super(o);
    this.normalized = normalize;
    this.name = name ?? (normalize ? 'softmax-topk-renorm' : 'softmax-topk');
    this.p = new Float32Array(this.nLogits);
    this.p64 = new Float64Array(this.nLogits);
    this.dp = new Float64Array(this.nLogits);
  }

  protected pick(row: Float32Array, ids: Int32Array, w: Float32Array): void {
    softmaxF32(row, this.p);
    topKInto(this.p, this.maxK, ids, this.taken);
    this.weigh(ids, w);
  }

  /** w = p[ids] (filled slots), normalised if asked. */
  protected weigh(ids: Int32Array, w: Float32Array): void {
    let s = 0;
    for (let k = 0; k < ids.length; k++) if (ids[k] >= 0) s = f32(s + (w[k] = this.p[ids[k]]));
    if (!this.normalize) return;
    s = Math.max(s, MIN_WEIGHT_SUM);
    for (let k = 0; k < ids.length; k++) w[k] = f32(w[k] / s);
  }

  protected backRow(row: Float32Array, ids: Int32Array, g: Float32Array, dl: Float32Array): void {
    const p = this.p64;
    const dp = this.dp;
    rowProbs(row, 'softmax', p);
    dp.fill(0);
    if (this.normalize) {
      // w_k = p_k / S: ∂w_k/∂p_j = (δ_kj - w_k) / S (the clamp, when active, has no gradient)
      let S = 0;
      for (let k = 0; k < ids.length; k++) if (ids[k] >= 0) S += p[ids[k]];
      const clamped = S < MIN_WEIGHT_SUM;
      S = Math.max(S, MIN_WEIGHT_SUM);
      let gw = 0;
      if (!clamped) for (let k = 0; k < ids.length; k++) if (ids[k] >= 0) gw += (g[k] * p[ids[k]]) / S;
      for (let k = 0; k < ids.length; k++) if (ids[k] >= 0) dp[ids[k]] += (g[k] - gw) / S;
    } else {
      for (let k = 0; k < ids.length; k++) if (ids[k] >= 0) dp[ids[k]] += g[k];
    }
    rowProbsBackward(row, 'softmax', p, dp, dl);
  }
}

/**
 * Top-k on the logits, then softmax over the k chosen (the Mixtral paper's
 * G(x) = softmax(topk(x · W_g)), Jiang et al. 2024, eq. 1). Weights sum to 1; the gradient
 * reaches only the selected logits: dl_k = w_k (g_k - Σ_j g_j w_j).
 */
export class SoftmaxAfterTopKRouter extends BaseRouter {
  readonly name = 'softmax-after-topk';
  readonly normalized = true;

  protected pick(row: Float32Array, ids: Int32Array, w: Float32Array): void {
    topKInto(row, this.maxK, ids, this.taken);
    const max = row[ids[0]];
    let s = 0;
    for (let k = 0; k < ids.length; k++) s += w[k] = Math.exp(row[ids[k]] - max);
    for (let k = 0; k < ids.length; k++) w[k] = f32(w[k] / s);
  }

  protected backRow(row: Float32Array, ids: Int32Array, g: Float32Array, dl: Float32Array): void {
    const K = ids.length;
    const w = new Float64Array(K);
    const max = row[ids[0]];
    let s = 0;
    for (let k = 0; k < K; k++) s += w[k] = Math.exp(row[ids[k]] - max);
    let gw = 0;
    for (let k = 0; k < K; k++) gw += g[k] * (w[k] /= s);
    for (let k = 0; k < K; k++) dl[ids[k]] += w[k] * (g[k] - gw);
  }
}

/**
 * Sigmoid scores with DeepSeek-V3's auxiliary-loss-free balancing (DeepSeek-AI 2024,
 * "DeepSeek-V3 Technical Report", §2.1.2): s = σ(l); the selection uses s + b (a bias per
 * expert that is not a parameter and gets no gradient); the weights are the selected s
 * normalised, w_k = s_k / Σ_j s_j (times `scale`, routed_scaling_factor). After each step,
 * b_i += u · sign(mean load - load_i): overloaded experts become less likely to be picked.
 * Matches src/router/route.ts with gating 'sigmoid', selectionBias b, normalize true.
 */
export class SigmoidBiasRouter extends BaseRouter {
  readonly name = 'sigmoid-bias';
  readonly normalized = true;
  /** [L] selection bias (exp_probs_b in GGUF). */
  readonly bias: Float32Array;
  private readonly s: Float32Array;
  private readonly sel: Float32Array;

  constructor(
    o: RouterOptions,
    /** u: bias update speed (DeepSeek-V3: 0.001). */
    readonly updateRate = 0.001,
    readonly scale = 1,
  ) {
    super(o);
    this.scores = 'sigmoid';
    this.bias = new Float32Array(this.nLogits);
    this.s = new Float32Array(this.nLogits);
    this.sel = new Float32Array(this.nLogits);
  }

  protected pick(row: Float32Array, ids: Int32Array, w: Float32Array): void {
    for (let e = 0; e < row.length; e++) {
      this.s[e] = f32(1 / (1 + Math.exp(-row[e])));
      this.sel[e] = f32(this.s[e] + this.bias[e]);
    }
    topKInto(this.sel, this.maxK, ids, this.taken);
    let sum = 0;
    for (let k = 0; k < ids.length; k++) sum = f32(sum + (w[k] = this.s[ids[k]]));
    sum = Math.max(sum, MIN_WEIGHT_SUM);
    for (let k = 0; k < ids.length; k++) w[k] = f32(f32(w[k] / sum) * this.scale);
  }

  protected backRow(row: Float32Array, ids: Int32Array, g: Float32Array, dl: Float32Array): void {
    // w_k = c s_k / S: ds_j = c (g_j - Σ_k g_k s_k / S) / S, then dl = ds · s (1 - s).
    const K = ids.length;
    const s = new Float64Array(K);
    let S = 0;
    for (let k = 0; k < K; k++) S += s[k] = 1 / (1 + Math.exp(-row[ids[k]]));
    const clamped = S < MIN_WEIGHT_SUM;
    S = Math.max(S, MIN_WEIGHT_SUM);
    let gw = 0;
    if (!clamped) for (let k = 0; k < K; k++) gw += (g[k] * s[k]) / S;
    for (let k = 0; k < K; k++) dl[ids[k]] += ((this.scale * (g[k] - gw)) / S) * s[k] * (1 - s[k]);
  }

  /** b_i += u · sign(mean load - load_i) over this step's training routes, then the base reset. */
  override afterStep(): void {
    const L = this.nLogits;
    let total = 0;
    for (let e = 0; e < L; e++) total += this.stepLoad[e];
    if (total > 0) {
      const mean = total / L;
      for (let e = 0; e < L; e++) this.bias[e] = f32(this.bias[e] + this.updateRate * Math.sign(mean - this.stepLoad[e]));
    }
    super.afterStep();
  }

  override state(): number[] {
    return Array.from(this.bias);
  }

  override restore(state: readonly number[]): void {
    if (state.length !== this.nLogits) throw new InvalidArgumentError(`sigmoid-bias router: expected ${this.nLogits} bias values, got ${state.length}`);
    this.bias.set(state);
  }
}

/**
 * Top-p dynamic routing (Huang et al. 2024, "Harder Tasks Need More Experts: Dynamic Routing
 * in MoE Models", eq. 3-5): p = softmax(l); the experts in order of p until their cumulative
 * probability reaches `threshold` (at least 1, at most maxK); w = p[ids], not renormalised.
 * Empty slots hold id -1. The paper's dynamic loss (routing entropy, losses.ts entropyLoss)
 * keeps the router from spreading p to use every slot; BalanceSpec.entropy sets it (default
 * 1e-4 here when unset).
 */
export class TopPRouter extends SoftmaxTopKRouter {
  constructor(
    o: RouterOptions,
    readonly threshold = 0.4,
  ) {
    super({ ...o, balance: { entropy: 1e-4, ...o.balance } }, false, 'top-p');
    if (!(threshold > 0 && threshold <= 1)) throw new InvalidArgumentError(`top-p router: threshold must be in (0, 1], got ${threshold}`);
  }

  protected override pick(row: Float32Array, ids: Int32Array, w: Float32Array): void {
    softmaxF32(row, this.p);
    topKInto(this.p, this.maxK, ids, this.taken);
    let cum = 0;
    for (let k = 0; k < ids.length; k++) {
      if (cum >= this.threshold) ids[k] = -1;
      else cum += this.p[ids[k]];
    }
    this.weigh(ids, w);
  }
}

/**
 * The router for a config entry (src/train/config.ts): `experts` routed experts, `topK`
 * slots, the special experts of spec, and the balancing losses of `balance`.
 */
export function createRouter(spec: RouterSpec, experts: number, topK: number, balance?: BalanceSpec): Router {
  const o: RouterOptions = {
    experts,
    k: topK,
    balance,
    layout: { zero: spec.zeroExperts ?? 0, copy: spec.copyExperts ?? 0, constant: spec.constantExperts ?? 0, null: spec.nullExperts ?? 0 },
  };
  const kind: RouterKind = spec.kind;
  switch (kind) {
    case 'softmax-topk':
      return new SoftmaxTopKRouter(o, spec.normalize ?? true);
    case 'null-experts':
    case 'moe-plus-plus':
      return new SoftmaxTopKRouter(o, spec.normalize ?? true, kind);
    case 'softmax-after-topk':
      return new SoftmaxAfterTopKRouter(o);
    case 'sigmoid-bias':
      return new SigmoidBiasRouter(o, spec.biasUpdateRate ?? 0.001);
    case 'top-p':
      return new TopPRouter(o, spec.p ?? 0.4);
    default:
      throw new InvalidArgumentError(`unknown router kind '${kind as string}'`);
  }
}
