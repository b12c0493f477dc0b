/**
 * Reference twins of src/kernels/wasm/c/train.c: the kernels training needs beyond the
 * forward ones (general matrix product, backward passes of RMSNorm, SwiGLU and attention,
 * softmax cross-entropy, row scatter/dot/scale, Σx² and the AdamW step).
 *
 * Written for clarity, in float64 with float32 results (the C kernels compute in float32
 * SIMD, so the two agree to rounding, not bits; scatterAddRows and scaleRows agree bit for bit).
 * Backward formulas (derivations in the comments) are checked against finite differences of
 * the forward kernels in test/kernels/train-ops.test.ts. References: BLAS sgemm (argument
 * meaning); Zhang & Sennrich 2019 (RMSNorm); Shazeer 2020 (SwiGLU); Dao et al. 2022
 * (FlashAttention's backward: dS = P ⊙ (dP - rowsum(dO ⊙ O))); Loshchilov & Hutter 2019 (AdamW).
 */
import type { Tensor } from '../../core/tensor.js';
import type { AdamWParams, AttentionParams, GemmParams } from '../backend.js';
import {
  checkAdamW,
  checkAttentionBackward,
  checkCrossEntropy,
  checkGemm,
  checkRmsNormBackward,
  checkRowDot,
  checkScaleRows,
  checkScatterAddRows,
  checkSumSquares,
  checkSwigluBackward,
} from '../check.js';

const fr = Math.fround;

/** out [M, N] = alpha · op(a) · op(b) + beta · out (BLAS sgemm, row-major). */
export function gemm(out: Tensor, a: Tensor, b: Tensor, p: GemmParams = {}): void {
  const { M, N, K, transA, transB, alpha, beta } = checkGemm(out, a, b, p);
  const av = a.f32();
  const bv = b.f32();
  const o = out.f32();
  // op(a) as rows of K, op(b)ᵀ as rows of K: every output is one dot product.
  const A = new Float64Array(M * K);
  const Bt = new Float64Array(N * K);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) A[i * K + k] = transA ? av[k * M + i] : av[i * K + k];
  for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) Bt[j * K + k] = transB ? bv[j * K + k] : bv[k * N + j];
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += A[i * K + k] * Bt[j * K + k];
      // beta = 0 never reads out (it may hold NaN).
      o[i * N + j] = beta === 0 ? fr(alpha * acc) : fr(alpha * acc + beta * o[i * N + j]);
    }
  }
}

/**
 * y = x · r · w with r = 1 / sqrt(mean(x²) + eps). With g = dy ⊙ w:
 *   dx = r · g - x · r³ · (g · x) / C;   dw += dy ⊙ x · r.
 */
export function rmsNormBackward(dx: Tensor, dy: Tensor, x: Tensor, weight: Tensor | null, eps: number, dweight: Tensor | null): void {
  const [R, C] = checkRmsNormBackward(dx, dy, x, weight, eps, dweight);
  const xs = x.f32();
  const dys = dy.f32();
  const dxs = dx.f32();
  const w = weight?.f32();
  const dw = dweight?.f32();
  const g = new Float64Array(C);
  for (let r = 0; r < R; r++) {
    const o = r * C;
    let ss = 0;
    let gx = 0;
    for (let i = 0; i < C; i++) {
      ss += xs[o + i] * xs[o + i];
      g[i] = dys[o + i] * (w ? w[i] : 1);
      gx += g[i] * xs[o + i];
    }
    const rr = 1 / Math.sqrt(ss / C + fr(eps));
    if (dw) for (let i = 0; i < C; i++) dw[i] = fr(dw[i] + dys[o + i] * xs[o + i] * rr);
    const c = (rr * rr * rr * gx) / C;
    for (let i = 0; i < C; i++) dxs[o + i] = fr(rr * g[i] - xs[o + i] * c);
  }
}

/** out = silu(g) · u: dup = dout · silu(g); dgate = dout · u · σ(g) · (1 + g · (1 - σ(g))). */
export function swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor): void {
  const n = checkSwigluBackward(dgate, dup, dout, gate, up);
  const dg = dgate.f32();
  const du = dup.f32();
  const d = dout.f32();
  const gs = gate.f32();
  const us = up.f32();
  for (let i = 0; i < n; i++) {
    const g = gs[i];
    const s = 1 / (1 + Math.exp(-g));
    const di = d[i]; // read before dgate (which may be dout) is written
    du[i] = fr(di * g * s);
    dg[i] = fr(di * us[i] * s * (1 + g * (1 - s)));
  }
}

/**
 * Backward of attention (backend.ts), one (token, head) at a time, probabilities recomputed:
 *   s_j = scale · q·k_j (softcap: cap · tanh(scale · q·k_j / cap)), P = softmax(s),
 *   dv_j += P_j dO;  dP_j = dO·v_j;  dS_j = P_j (dP_j - Σ P dP);
 *   d(q·k_j) = dS_j · scale (softcap: · (1 - tanh²));  dq += d(q·k_j) k_j;  dk_j += d(q·k_j) q.
 */
export function attentionBackward(dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
  const { T, H, Hkv, Dk, Dv, S, qPos0, window, softcap } = checkAttentionBackward(dq, dk, dv, dout, q, k, v, p);
  const qs = q.f32();
  const ks = k.f32();
  const vs = v.f32();
  const dos = dout.f32();
  const dqs = dq.f32();
  const scale = fr(p.scale);
  const cap = fr(softcap);
  const group = H / Hkv;
  const dkAcc = new Float64Array(S * Hkv * Dk);
  const dvAcc = new Float64Array(S * Hkv * Dv);
  const P = new Float64Array(S);
  const deriv = new Float64Array(S); // ds_j / d(q·k_j)
  const dP = new Float64Array(S);
  const dqRow = new Float64Array(Dk);
  for (let t = 0; t < T; t++) {
    const pos = qPos0 + t;
    const j0 = window > 0 ? Math.max(0, pos - window + 1) : 0;
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      const qo = (t * H + h) * Dk;
      const oo = (t * H + h) * Dv;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = j0; j <= pos; j++) {
        let dot = 0;
        for (let i = 0; i < Dk; i++) dot += qs[qo + i] * ks[(j * Hkv + g) * Dk + i];
        let s = dot * scale;
        deriv[j] = scale;
        if (cap !== 0) {
          const th = Math.tanh(s / cap);
          s = cap * th;
          deriv[j] = scale * (1 - th * th);
        }
        P[j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = j0; j <= pos; j++) {
        P[j] = Math.exp(P[j] - max);
        sum += P[j];
      }
      let pdp = 0; // Σ_j P_j dP_j
      for (let j = j0; j <= pos; j++) {
        P[j] /= sum;
        let dp = 0;
        for (let d = 0; d < Dv; d++) {
          dp += dos[oo + d] * vs[(j * Hkv + g) * Dv + d];
          dvAcc[(j * Hkv + g) * Dv + d] += P[j] * dos[oo + d];
        }
        dP[j] = dp;
        pdp += P[j] * dp;
      }
      dqRow.fill(0);
      for (let j = j0; j <= pos; j++) {
        const dqk = P[j] * (dP[j] - pdp) * deriv[j];
        for (let i = 0; i < Dk; i++) {
          dqRow[i] += dqk * ks[(j * Hkv + g) * Dk + i];
          dkAcc[(j * Hkv + g) * Dk + i] += dqk * qs[qo + i];
        }
      }
      for (let i = 0; i < Dk; i++) dqs[qo + i] = fr(dqRow[i]);
    }
  }
  dk.f32().set(dkAcc);
  dv.f32().set(dvAcc);
}

/** loss = logsumexp(row) - row[target]; dlogits = (softmax(row) - onehot(target)) · gradScale. */
export function crossEntropy(loss: Tensor, dlogits: Tensor, logits: Tensor, targets: Tensor, gradScale: number): void {
  const [T, V] = checkCrossEntropy(loss, dlogits, logits, targets, gradScale);
  const x = logits.f32();
  const dl = dlogits.f32();
  const ls = loss.f32();
  const tg = targets.i32();
  for (let t = 0; t < T; t++) {
    const o = t * V;
    const target = tg[t];
    if (target < 0) {
      ls[t] = 0;
      dl.fill(0, o, o + V);
      continue;
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < V; i++) if (x[o + i] > max) max = x[o + i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(x[o + i] - max);
    const lse = max + Math.log(sum);
    ls[t] = fr(lse - x[o + target]);
    for (let i = 0; i < V; i++) dl[o + i] = fr((Math.exp(x[o + i] - lse) - (i === target ? 1 : 0)) * gradScale);
  }
}

/** out[ids[t]] += weights[t] · x[t], in order of t, each step rounded to float32 (as the C kernel). */
export function scatterAddRows(out: Tensor, x: Tensor, ids: Tensor, weights: Tensor | null): void {
  const [T, C] = checkScatterAddRows(out, x, ids, weights);
  const o = out.f32();
  const xs = x.f32();
  const id = ids.i32();
  const w = weights?.f32();
  for (let t = 0; t < T; t++) {
    const r = id[t];
    if (r < 0) continue;
    for (let c = 0; c < C; c++) {
      const v = w ? fr(w[t] * xs[t * C + c]) : xs[t * C + c];
      o[r * C + c] = fr(o[r * C + c] + v);
    }
  }
}

export function rowDot(out: Tensor, a: Tensor, b: Tensor): void {
  const [R, C] = checkRowDot(out, a, b);
  const as = a.f32();
  const bs = b.f32();
  const o = out.f32();
  for (let r = 0; r < R; r++) {
    let acc = 0;
    for (let c = 0; c < C; c++) acc += as[r * C + c] * bs[r * C + c];
    o[r] = fr(acc);
  }
}

export function scaleRows(out: Tensor, x: Tensor, s: Tensor): void {
  const [R, C] = checkScaleRows(out, x, s);
  const xs = x.f32();
  const ss = s.f32();
  const o = out.f32();
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) o[r * C + c] = fr(xs[r * C + c] * ss[r]);
}

export function sumSquares(x: Tensor): number {
  checkSumSquares(x);
  const xs = x.f32();
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i] * xs[i];
  return s;
}

/** AdamW (Loshchilov & Hutter 2019, Algorithm 2 with the learning rate folded into the decay). */
export function adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): void {
  const n = checkAdamW(param, grad, m, v, p);
  const w = param.f32();
  const g = grad.f32();
  const ms = m.f32();
  const vs = v.f32();
  const { lr, beta1, beta2, eps, weightDecay, step } = p;
  const c1 = 1 / (1 - beta1 ** step);
  const c2 = 1 / (1 - beta2 ** step);
  for (let i = 0; i < n; i++) {
    const mi = fr(beta1 * ms[i] + (1 - beta1) * g[i]);
    const vi = fr(beta2 * vs[i] + (1 - beta2) * g[i] * g[i]);
    ms[i] = mi;
    vs[i] = vi;
    w[i] = fr(w[i] - lr * ((mi * c1) / (Math.sqrt(vi * c2) + eps) + weightDecay * w[i]));
  }
}
