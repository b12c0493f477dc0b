/**
 * PLACEHOLDER (being written): reference twins of src/kernels/wasm/c/ops.c.
 */
import type { Tensor } from '../../core/tensor.js';
import type { RopeParams } from '../backend.js';

const todo = (name: string): never => {
  throw new Error(`${name}: not implemented yet`);
};
export function getRows(out: Tensor, table: Tensor, ids: Tensor): void { todo('getRows'); }
export function rmsNorm(out: Tensor, x: Tensor, weight: Tensor | null, eps: number): void { todo('rmsNorm'); }
export function layerNorm(out: Tensor, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): void { todo('layerNorm'); }
export function rope(out: Tensor, x: Tensor, positions: Tensor, p: RopeParams): void { todo('rope'); }
export function softmax(out: Tensor, x: Tensor, scale = 1): void { todo('softmax'); }
export function silu(out: Tensor, x: Tensor): void { todo('silu'); }
export function gelu(out: Tensor, x: Tensor): void { todo('gelu'); }
export function swiglu(out: Tensor, gate: Tensor, up: Tensor): void { todo('swiglu'); }
export function swigluOai(out: Tensor, gate: Tensor, up: Tensor, alpha: number, limit: number): void { todo('swigluOai'); }
export function add(out: Tensor, a: Tensor, b: Tensor): void { todo('add'); }
export function mul(out: Tensor, a: Tensor, b: Tensor): void { todo('mul'); }
export function scale(out: Tensor, a: Tensor, s: number): void { todo('scale'); }
export function topK(indices: Tensor, values: Tensor, x: Tensor, k: number): void { todo('topK'); }
