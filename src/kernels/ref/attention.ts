/**
 * PLACEHOLDER (being written): reference twin of src/kernels/wasm/c/attention.c.
 */
import type { Tensor } from '../../core/tensor.js';
import type { AttentionParams } from '../backend.js';

export function attention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
  throw new Error('attention: not implemented yet');
}
