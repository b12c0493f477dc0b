/**
 * PLACEHOLDER (being written): wasm wrappers of src/kernels/wasm/c/ops.c.
 */
import type { Tensor } from '../../core/tensor.js';
import type { RopeParams } from '../backend.js';
import type { WasmContext } from './context.js';

const todo = (name: string): never => {
  throw new Error(`${name}: not implemented yet`);
};
export function getRows(c: WasmContext, out: Tensor, table: Tensor, ids: Tensor): void { todo('getRows'); }
export function rmsNorm(c: WasmContext, out: Tensor, x: Tensor, weight: Tensor | null, eps: number): void { todo('rmsNorm'); }
export function layerNorm(c: WasmContext, out: Tensor, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): void { todo('layerNorm'); }
export function rope(c: WasmContext, out: Tensor, x: Tensor, positions: Tensor, p: RopeParams): void { todo('rope'); }
export function softmax(c: WasmContext, out: Tensor, x: Tensor, scale = 1): void { todo('softmax'); }
export function silu(c: WasmContext, out: Tensor, x: Tensor): void { todo('silu'); }
export function gelu(c: WasmContext, out: Tensor, x: Tensor): void { todo('gelu'); }
export function swiglu(c: WasmContext, out: Tensor, gate: Tensor, up: Tensor): void { todo('swiglu'); }
export function swigluOai(c: WasmContext, out: Tensor, gate: Tensor, up: Tensor, alpha: number, limit: number): void { todo('swigluOai'); }
export function add(c: WasmContext, out: Tensor, a: Tensor, b: Tensor): void { todo('add'); }
export function mul(c: WasmContext, out: Tensor, a: Tensor, b: Tensor): void { todo('mul'); }
export function scale(c: WasmContext, out: Tensor, a: Tensor, s: number): void { todo('scale'); }
export function topK(c: WasmContext, indices: Tensor, values: Tensor, x: Tensor, k: number): void { todo('topK'); }
