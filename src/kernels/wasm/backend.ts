/**
 * The WebAssembly backend: kernels from a wasm build (simd128 or relaxed) running on a
 * thread pool over one heap. Each method validates its arguments (check.ts) and calls
 * the kernel through the slots described in abi.ts.
 */
import type { Heap } from '../../core/heap.js';
import type { Tensor } from '../../core/tensor.js';
import type { AdamWParams, AttentionParams, ExpertGroupArgs, GemmParams, KernelBackend, RopeParams } from '../backend.js';
import { type KernelBuild, KernelInstance } from './abi.js';
import { attention } from './attention.js';
import { WasmContext } from './context.js';
import { dequantize, matmul } from './matmul.js';
import { expertGroup } from './moe.js';
import * as ops from './ops.js';
import { ThreadPool } from './pool.js';
import * as train from './train.js';

export class WasmBackend implements KernelBackend {
  private constructor(
    readonly name: KernelBuild,
    readonly ctx: WasmContext,
    private readonly pool: ThreadPool,
  ) {}

  /** Instantiate `build` over `heap` and start its threads. */
  static async create(build: KernelBuild, heap: Heap, threads: number): Promise<WasmBackend> {
    const instance = new KernelInstance(build, heap.memory);
    if (instance.heapBase > heap.base) {
      throw new Error(`${heap.name} reserves ${heap.base} bytes but the ${build} kernels need ${instance.heapBase}`);
    }
    const pool = await ThreadPool.start(build, instance, heap.arena('system'), threads);
    return new WasmBackend(build, new WasmContext(instance, heap, pool.threads), pool);
  }

  get threads(): number {
    return this.ctx.threads;
  }

  matmul(out: Tensor, w: Tensor, x: Tensor): void {
    matmul(this.ctx, out, w, x);
  }
  dequantize(out: Tensor, src: Tensor): void {
    dequantize(this.ctx, out, src);
  }
  getRows(out: Tensor, table: Tensor, ids: Tensor): void {
    ops.getRows(this.ctx, out, table, ids);
  }
  convert(out: Tensor, x: Tensor): void {
    ops.convert(this.ctx, out, x);
  }
  rmsNorm(out: Tensor, x: Tensor, weight: Tensor | null, eps: number): void {
    ops.rmsNorm(this.ctx, out, x, weight, eps);
  }
  layerNorm(out: Tensor, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): void {
    ops.layerNorm(this.ctx, out, x, weight, bias, eps);
  }
  rope(out: Tensor, x: Tensor, positions: Tensor, p: RopeParams): void {
    ops.rope(this.ctx, out, x, positions, p);
  }
  softmax(out: Tensor, x: Tensor, scale = 1): void {
    ops.softmax(this.ctx, out, x, scale);
  }
  silu(out: Tensor, x: Tensor): void {
    ops.silu(this.ctx, out, x);
  }
  gelu(out: Tensor, x: Tensor): void {
    ops.gelu(this.ctx, out, x);
  }
  swiglu(out: Tensor, gate: Tensor, up: Tensor): void {
    ops.swiglu(this.ctx, out, gate, up);
  }
  swigluOai(out: Tensor, gate: Tensor, up: Tensor, alpha: number, limit: number): void {
    ops.swigluOai(this.ctx, out, gate, up, alpha, limit);
  }
  add(out: Tensor, a: Tensor, b: Tensor): void {
    ops.add(this.ctx, out, a, b);
  }
  mul(out: Tensor, a: Tensor, b: Tensor): void {
    ops.mul(this.ctx, out, a, b);
  }
  scale(out: Tensor, a: Tensor, s: number): void {
    ops.scale(this.ctx, out, a, s);
  }
  topK(indices: Tensor, values: Tensor, x: Tensor, k: number): void {
    ops.topK(this.ctx, indices, values, x, k);
  }
  attention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
    attention(this.ctx, out, q, k, v, p);
  }
  expertGroup(args: ExpertGroupArgs): void {
    expertGroup(this.ctx, args);
  }

  // ---- training (./train.ts) ----
  gemm(out: Tensor, a: Tensor, b: Tensor, p?: GemmParams): void {
    train.gemm(this.ctx, out, a, b, p);
  }
  rmsNormBackward(dx: Tensor, dy: Tensor, x: Tensor, weight: Tensor | null, eps: number, dweight: Tensor | null): void {
    train.rmsNormBackward(this.ctx, dx, dy, x, weight, eps, dweight);
  }
  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor): void {
    train.swigluBackward(this.ctx, dgate, dup, dout, gate, up);
  }
  attentionBackward(dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
    train.attentionBackward(this.ctx, dq, dk, dv, dout, q, k, v, p);
  }
  crossEntropy(loss: Tensor, dlogits: Tensor, logits: Tensor, targets: Tensor, gradScale: number): void {
    train.crossEntropy(this.ctx, loss, dlogits, logits, targets, gradScale);
  }
  scatterAddRows(out: Tensor, x: Tensor, ids: Tensor, weights: Tensor | null): void {
    train.scatterAddRows(this.ctx, out, x, ids, weights);
  }
  rowDot(out: Tensor, a: Tensor, b: Tensor): void {
    train.rowDot(this.ctx, out, a, b);
  }
  scaleRows(out: Tensor, x: Tensor, s: Tensor): void {
    train.scaleRows(this.ctx, out, x, s);
  }
  sumSquares(x: Tensor): number {
    return train.sumSquares(this.ctx, x);
  }
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): void {
    train.adamw(this.ctx, param, grad, m, v, p);
  }
  dispose(): void {
    this.pool.dispose();
  }
}
