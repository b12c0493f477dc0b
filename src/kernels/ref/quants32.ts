/**
 * PLACEHOLDER (being written): reference twins of src/kernels/wasm/c/quants32.c.
 */
import type { RefQuantizer, RefTypeKernels } from './types.js';

export const QUANT32_KERNELS: Record<number, RefTypeKernels> = {};
export const quantizeQ8_0: RefQuantizer = () => {
  throw new Error('not implemented');
};
export const quantizeQ8_1: RefQuantizer = () => {
  throw new Error('not implemented');
};
