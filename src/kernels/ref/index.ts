/**
 * The reference backend: every kernel in plain TypeScript, single-threaded, written for
 * clarity. It is the twin every fast kernel is tested against, and the path any fast path
 * can be switched back to (SWITCHYARD_KERNELS=ref).
 */
import type { Tensor } from '../../core/tensor.js';
import type { AdamWParams, AttentionParams, ExpertGroupArgs, GemmParams, KernelBackend, RopeParams } from '../backend.js';
import { attention } from './attention.js';
import { convert } from './float.js';
import { dequantize, matmul } from './matmul.js';
import { expertGroup } from './moe.js';
import * as ops from './ops.js';
import * as train from './train.js';

export class RefBackend implements KernelBackend {
  readonly name = 'ref' as const;
  readonly threads = 1;

  matmul(out: Tensor, w: Tensor, x: Tensor): void {
    matmul(out, w, x);
  }
  dequantize(out: Tensor, src: Tensor): void {
    dequantize(out, src);
  }
  getRows(out: Tensor, table: Tensor, ids: Tensor): void {
    ops.getRows(out, table, ids);
  }
  convert(out: Tensor, x: Tensor): void {
    convert(out, x);
  }
  rmsNorm(out: Tensor, x: Tensor, weight: Tensor | null, eps: number): void {
    ops.rmsNorm(out, x, weight, eps);
  }
  layerNorm(out: Tensor, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): void {
    ops.layerNorm(out, x, weight, bias, eps);
  }
  rope(out: Tensor, x: Tensor, positions: Tensor, p: RopeParams): void {
    ops.rope(out, x, positions, p);
  }
  softmax(out: Tensor, x: Tensor, scale = 1): void {
    ops.softmax(out, x, scale);
  }
  silu(out: Tensor, x: Tensor): void {
    ops.silu(out, x);
  }
  gelu(out: Tensor, x: Tensor): void {
    ops.gelu(out, x);
  }
  swiglu(out: Tensor, gate: Tensor, up: Tensor): void {
    ops.swiglu(out, gate, up);
  }
  swigluOai(out: Tensor, gate: Tensor, up: Tensor, alpha: number, limit: number): void {
    ops.swigluOai(out, gate, up, alpha, limit);
  }
  add(out: Tensor, a: Tensor, b: Tensor): void {
    ops.add(out, a, b);
  }
  mul(out: Tensor, a: Tensor, b: Tensor): void {
    ops.mul(out, a, b);
  }
  scale(out: Tensor, a: Tensor, s: number): void {
    ops.scale(out, a, s);
  }
  topK(indices: Tensor, values: Tensor, x: Tensor, k: number): void {
    ops.topK(indices, values, x, k);
  }
  attention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
    attention(out, q, k, v, p);
  }
  expertGroup(args: ExpertGroupArgs): void {
    expertGroup(args);
  }

  // ---- training (./train.ts) ----
  gemm(out: Tensor, a: Tensor, b: Tensor, p?: GemmParams): void {
    train.gemm(out, a, b, p);
  }
  rmsNormBackward(dx: Tensor, dy: Tensor, x: Tensor, weight: Tensor | null, eps: number, dweight: Tensor | null): void {
    train.rmsNormBackward(dx, dy, x, weight, eps, dweight);
  }
  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor): void {
    train.swigluBackward(dgate, dup, dout, gate, up);
  }
  attentionBackward(dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
    train.attentionBackward(dq, dk, dv, dout, q, k, v, p);
  }
  crossEntropy(loss: Tensor, dlogits: Tensor, logits: Tensor, targets: Tensor, gradScale: number): void {
    train.crossEntropy(loss, dlogits, logits, targets, gradScale);
  }
  scatterAddRows(out: Tensor, x: Tensor, ids: Tensor, weights: Tensor | null): void {
    train.scatterAddRows(out, x, ids, weights);
  }
  rowDot(out: Tensor, a: Tensor, b: Tensor): void {
    train.rowDot(out, a, b);
  }
  scaleRows(out: Tensor, x: Tensor, s: Tensor): void {
    train.scaleRows(out, x, s);
  }
  sumSquares(x: Tensor): number {
    return train.sumSquares(x);
  }
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): void {
    train.adamw(param, grad, m, v, p);
  }
  dispose(): void {}
}
