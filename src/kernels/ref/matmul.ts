/**
 * Reference matrix products and dequantization: the twins of src/kernels/wasm/c/matmul.c.
 * Activations are converted to the weight type's dot format row by row, then every
 * output is one vecDot, exactly as the C kernel does (so integer-dot types agree bit for bit).
 */
import { dotRowBytes, dtypeInfo } from '../../core/dtypes.js';
import type { Tensor } from '../../core/tensor.js';
import { checkDequantize, checkMatmul } from '../check.js';
import { refQuantizer, refTypeKernels } from './types.js';

/** Convert rows of x [T, C] to w-type dot format; returns the bytes and the row stride. */
export function quantizeActivations(weightType: number, x: Float32Array, T: number, C: number): { q: Uint8Array; stride: number } {
  const stride = dotRowBytes(weightType, C);
  const q = new Uint8Array(stride * T);
  const quant = refQuantizer(dtypeInfo(weightType).dotType as number);
  for (let t = 0; t < T; t++) quant(x, t * C, q, t * stride, C);
  return { q, stride };
}

export function matmul(out: Tensor, w: Tensor, x: Tensor): void {
  const [T, R, C] = checkMatmul(out, w, x);
  const { q, stride } = quantizeActivations(w.type, x.f32(), T, C);
  const mem = new Uint8Array(w.heap.memory.buffer);
  const k = refTypeKernels(w.type);
  const o = out.f32();
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < R; r++) o[t * R + r] = k.vecDot(C, mem, w.offset + r * w.rowBytes, q, t * stride);
  }
}

export function dequantize(out: Tensor, src: Tensor): void {
  checkDequantize(out, src);
  const mem = new Uint8Array(src.heap.memory.buffer);
  const k = refTypeKernels(src.type);
  const o = out.f32();
  for (let r = 0; r < src.rows; r++) k.dequantize(mem, src.offset + r * src.rowBytes, o, r * src.cols, src.cols);
}
