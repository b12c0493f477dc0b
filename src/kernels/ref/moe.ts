/**
 * PLACEHOLDER (being written): reference twin of src/kernels/wasm/c/moe.c.
 */
import type { ExpertGroupArgs } from '../backend.js';

export function expertGroup(args: ExpertGroupArgs): void {
  throw new Error('expertGroup: not implemented yet');
}
