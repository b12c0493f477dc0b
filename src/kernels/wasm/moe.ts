/**
 * PLACEHOLDER (being written): wasm wrapper of src/kernels/wasm/c/moe.c.
 */
import type { ExpertGroupArgs } from '../backend.js';
import type { WasmContext } from './context.js';

export function expertGroup(c: WasmContext, args: ExpertGroupArgs): void {
  throw new Error('expertGroup: not implemented yet');
}
