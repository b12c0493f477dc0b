/**
 * Wasm wrappers of src/kernels/wasm/c/train.c: the training kernels (see backend.ts,
 * "Training"). Arguments are checked with the same functions as the reference twins
 * (src/kernels/check.ts, src/kernels/ref/train.ts); slots are written in the order documented
 * above each SY_KERNEL in train.c.
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
import type { WasmContext } from './context.js';

/** Elements per thread below which waking another thread costs more than it saves. */
const MIN_PER_THREAD = 16 * 1024;

// gemm blocking (train.c): KC inner-dimension steps per packed block, NC columns per B block;
// packed panels are MR rows of A and NR = 8 columns of B (scratch rounds up to them; MR <= 8).
const GEMM_KC = 256;
const GEMM_NC = 1024;

export function gemm(c: WasmContext, out: Tensor, a: Tensor, b: Tensor, p?: GemmParams): void {
  const { M, N, K, transA, transB, alpha, beta } = checkGemm(out, a, b, p);
  if (M === 0 || N === 0) return;
  const kc = Math.max(1, Math.min(K, GEMM_KC));
  const nc = Math.min(N, GEMM_NC);
  const floats = (Math.ceil(M / 8) * 8 + 8 + Math.ceil(nc / 8) * 8) * kc;
  const scratch = c.scratch(floats * 4);
  // One thread per ~256 K multiply-adds: below that, waking workers costs more than it saves.
  const nth = c.threadsFor(M * N * Math.max(K, 1), 256 * 1024);
  const ints = [out.offset, a.offset, b.offset, scratch, M, N, K, transA ? 1 : 0, transB ? 1 : 0, 0, 0, kc, GEMM_NC];
  c.run('gemm', ints, { 9: alpha, 10: beta }, nth);
}

export function rmsNormBackward(c: WasmContext, dx: Tensor, dy: Tensor, x: Tensor, weight: Tensor | null, eps: number, dweight: Tensor | null): void {
  const [R, C] = checkRmsNormBackward(dx, dy, x, weight, eps, dweight);
  if (R === 0 || C === 0) return;
  const nth = c.threadsFor(R * C, MIN_PER_THREAD);
  const scratch = dweight ? c.scratch(nth * C * 4) : 0;
  const ints = [dx.offset, dy.offset, x.offset, weight ? weight.offset : 0, dweight ? dweight.offset : 0, scratch, R, C];
  c.run('rms_norm_backward', ints, { 8: eps }, nth);
}

export function swigluBackward(c: WasmContext, dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor): void {
  const n = checkSwigluBackward(dgate, dup, dout, gate, up);
  if (n === 0) return;
  c.run('swiglu_backward', [dgate.offset, dup.offset, dout.offset, gate.offset, up.offset, n], {}, c.threadsFor(n, MIN_PER_THREAD));
}

export function attentionBackward(c: WasmContext, dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
  const { T, H, Hkv, Dk, Dv, S, qPos0, window, softcap } = checkAttentionBackward(dq, dk, dv, dout, q, k, v, p);
  if (T === 0 && S > 0) {
    dk.f32().fill(0);
    dv.f32().fill(0);
    return;
  }
  if (T === 0) return;
  const keys = window > 0 ? Math.min(window, qPos0 + T) : qPos0 + T;
  const nth = Math.min(c.threadsFor(T * H * keys * (Dk + Dv), 32 * 1024), H);
  // Per thread: private dk, dv accumulators, then P, dP and tanh rows of S floats (16-byte aligned).
  const per = Math.ceil((S * Hkv * (Dk + Dv) + 3 * S) / 4) * 4;
  const scratch = c.scratch(nth * per * 4);
  const ints = [dq.offset, dk.offset, dv.offset, dout.offset, q.offset, k.offset, v.offset, scratch, per, T, H, Hkv, Dk, Dv, S, qPos0, window];
  c.run('attention_backward', ints, { 17: p.scale, 18: softcap }, nth);
}

export function crossEntropy(c: WasmContext, loss: Tensor, dlogits: Tensor, logits: Tensor, targets: Tensor, gradScale: number): void {
  const [T, V] = checkCrossEntropy(loss, dlogits, logits, targets, gradScale);
  if (T === 0) return;
  if (V === 0) {
    loss.f32().fill(0);
    return;
  }
  const nth = Math.min(c.threadsFor(T * V, MIN_PER_THREAD), T);
  c.run('cross_entropy', [loss.offset, dlogits.offset, logits.offset, targets.offset, T, V], { 6: gradScale }, nth);
}

export function scatterAddRows(c: WasmContext, out: Tensor, x: Tensor, ids: Tensor, weights: Tensor | null): void {
  const [T, C] = checkScatterAddRows(out, x, ids, weights);
  if (T === 0 || C === 0) return;
  // Threads split the columns in whole vectors.
  const nth = Math.min(c.threadsFor(T * C, MIN_PER_THREAD), Math.ceil(C / 4));
  c.run('scatter_add_rows', [out.offset, x.offset, ids.offset, weights ? weights.offset : 0, T, C], {}, nth);
}

export function rowDot(c: WasmContext, out: Tensor, a: Tensor, b: Tensor): void {
  const [R, C] = checkRowDot(out, a, b);
  if (R === 0) return;
  c.run('row_dot', [out.offset, a.offset, b.offset, R, C], {}, c.threadsFor(R * C, MIN_PER_THREAD));
}

export function scaleRows(c: WasmContext, out: Tensor, x: Tensor, s: Tensor): void {
  const [R, C] = checkScaleRows(out, x, s);
  if (R === 0 || C === 0) return;
  c.run('scale_rows', [out.offset, x.offset, s.offset, R, C], {}, c.threadsFor(R * C, MIN_PER_THREAD));
}

export function sumSquares(c: WasmContext, x: Tensor): number {
  const n = checkSumSquares(x);
  if (n === 0) return 0;
  const nth = c.threadsFor(n, 64 * 1024);
  const scratch = c.scratch(nth * 8);
  c.run('sum_squares', [scratch, x.offset, n], {}, nth);
  const parts = new Float64Array(c.heap.memory.buffer, scratch, nth);
  let s = 0;
  for (let i = 0; i < nth; i++) s += parts[i];
  return s;
}

export function adamw(c: WasmContext, param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): void {
  const n = checkAdamW(param, grad, m, v, p);
  if (n === 0) return;
  const c1 = 1 / (1 - p.beta1 ** p.step);
  const c2 = 1 / (1 - p.beta2 ** p.step);
  const floats = { 5: p.lr, 6: p.beta1, 7: p.beta2, 8: p.eps, 9: p.weightDecay, 10: c1, 11: c2 };
  c.run('adamw', [param.offset, grad.offset, m.offset, v.offset, n], floats, c.threadsFor(n, 64 * 1024));
}
