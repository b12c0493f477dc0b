/**
 * PLACEHOLDER (being written): wasm wrapper of src/kernels/wasm/c/attention.c.
 */
import type { Tensor } from '../../core/tensor.js';
import type { AttentionParams } from '../backend.js';
import type { WasmContext } from './context.js';

export function attention(c: WasmContext, out: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
  throw new Error('attention: not implemented yet');
}
