/**
 * Wasm wrappers of src/kernels/wasm/c/matmul.c: matrix products, dequantization, and
 * (for tests) activation quantization and single dot products.
 */
import { dotRowBytes, dtypeInfo } from '../../core/dtypes.js';
import type { Tensor } from '../../core/tensor.js';
import { checkDequantize, checkMatmul } from '../check.js';
import type { WasmContext } from './context.js';

export function matmul(c: WasmContext, out: Tensor, w: Tensor, x: Tensor): void {
  const [T, R, C] = checkMatmul(out, w, x);
  const scratch = c.scratch(dotRowBytes(w.type, C) * T);
  // One thread per ~64 KiB of weights: below that, waking workers costs more than it saves.
  const nth = c.threadsFor(w.byteLength * T, 64 * 1024);
  c.run('matmul', [out.offset, w.offset, x.offset, scratch, R, C, T, w.type, 0], {}, nth);
}

export function dequantize(c: WasmContext, out: Tensor, src: Tensor): void {
  checkDequantize(out, src);
  c.run('dequantize', [out.offset, src.offset, src.type, src.rows, src.cols], {}, c.threadsFor(src.byteLength, 64 * 1024));
}

/** Convert rows of x [T, C] to the dot format of weight type `weightType`; returns the bytes. */
export function quantizeActivations(c: WasmContext, weightType: number, x: Tensor): Uint8Array {
  const stride = dotRowBytes(weightType, x.cols);
  const dst = c.scratch(stride * x.rows);
  const dot = dtypeInfo(weightType).dotType as number;
  c.run('quantize', [dst, x.offset, dot, x.rows, x.cols], {}, 1);
  return new Uint8Array(c.heap.memory.buffer, dst, stride * x.rows).slice();
}

