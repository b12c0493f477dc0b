/**
 * PLACEHOLDER (being written): reference twins of src/kernels/wasm/c/kquants.c.
 */
import type { RefQuantizer, RefTypeKernels } from './types.js';

export const KQUANT_KERNELS: Record<number, RefTypeKernels> = {};
export const quantizeQ8K: RefQuantizer = () => {
  throw new Error('not implemented');
};
