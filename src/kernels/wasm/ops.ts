/**
 * Wasm wrappers of src/kernels/wasm/c/ops.c: embedding-row lookup, RMS and layer norm,
 * rotary embedding, softmax, activations, add / mul / scale and top-k; and of float.c's
 * op_convert (float32 -> F32 / F16 / BF16, the KV cache writes).
 *
 * Arguments are checked with the same functions as the reference twins (src/kernels/check.ts);
 * src/kernels/ref/ops.ts also derives rope's float32 constants, so both backends see identical inputs.
 * Slots are written in the order documented above each SY_KERNEL in ops.c.
 */
import type { Tensor } from '../../core/tensor.js';
import type { RopeParams } from '../backend.js';
import {
  checkBinary,
  checkConvert,
  checkGetRows,
  checkGlu,
  checkNorm,
  checkScale,
  checkSoftmax,
  checkSwigluOai,
  checkTopK,
  checkUnary,
} from '../check.js';
import { ropeConstants } from '../ref/ops.js';
import type { WasmContext } from './context.js';

/** Elements per thread below which waking another thread costs more than it saves. */
const MIN_PER_THREAD = 16 * 1024;

export function getRows(c: WasmContext, out: Tensor, table: Tensor, ids: Tensor): void {
  const [N, C] = checkGetRows(out, table, ids);
  if (N === 0 || C === 0) return;
  c.run('op_get_rows', [out.offset, table.offset, ids.offset, N, C, table.type], {}, c.threadsFor(N * C, MIN_PER_THREAD));
}

export function convert(c: WasmContext, out: Tensor, x: Tensor): void {
  const n = checkConvert(out, x);
  if (n === 0 || out.offset === x.offset) return; // (the one overlap allowed: F32 onto itself)
  c.run('op_convert', [out.offset, x.offset, n, out.type], {}, c.threadsFor(n, MIN_PER_THREAD));
}

export function rmsNorm(c: WasmContext, out: Tensor, x: Tensor, weight: Tensor | null, eps: number): void {
  const [R, C] = checkNorm('rmsNorm', out, x, weight, null, eps);
  if (R === 0 || C === 0) return;
  c.run('op_rms_norm', [out.offset, x.offset, weight ? weight.offset : 0, R, C], { 5: eps }, c.threadsFor(R * C, MIN_PER_THREAD));
}

export function layerNorm(c: WasmContext, out: Tensor, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): void {
  const [R, C] = checkNorm('layerNorm', out, x, weight, bias, eps);
  if (R === 0 || C === 0) return;
  const nth = c.threadsFor(R * C, MIN_PER_THREAD);
  c.run('op_layer_norm', [out.offset, x.offset, weight ? weight.offset : 0, bias ? bias.offset : 0, R, C], { 6: eps }, nth);
}

export function rope(c: WasmContext, out: Tensor, x: Tensor, positions: Tensor, p: RopeParams): void {
  const k = ropeConstants(out, x, positions, p);
  if (k.T === 0 || k.H === 0) return;
  const nth = c.threadsFor(k.T * k.H * k.Dh, MIN_PER_THREAD);
  // Each thread's cos/sin cache: nDims floats.
  const scratch = c.scratch(nth * k.nDims * 4);
  const ints = [out.offset, x.offset, positions.offset, p.freqFactors ? p.freqFactors.offset : 0, scratch];
  ints.push(k.T, k.H, k.Dh, k.nDims, k.mode);
  const floats = { 10: k.thetaScale, 11: k.freqScale, 12: k.extFactor, 13: k.mscale, 14: k.corrDims[0], 15: k.corrDims[1] };
  c.run('op_rope', ints, floats, nth);
}

export function softmax(c: WasmContext, out: Tensor, x: Tensor, scale = 1): void {
  const [R, C] = checkSoftmax(out, x, scale);
  if (R === 0 || C === 0) return;
  c.run('op_softmax', [out.offset, x.offset, R, C], { 4: scale }, c.threadsFor(R * C, MIN_PER_THREAD));
}

export function silu(c: WasmContext, out: Tensor, x: Tensor): void {
  const n = checkUnary('silu', out, x);
  if (n > 0) c.run('op_silu', [out.offset, x.offset, n], {}, c.threadsFor(n, MIN_PER_THREAD));
}

export function gelu(c: WasmContext, out: Tensor, x: Tensor): void {
  const n = checkUnary('gelu', out, x);
  if (n > 0) c.run('op_gelu', [out.offset, x.offset, n], {}, c.threadsFor(n, MIN_PER_THREAD));
}

export function swiglu(c: WasmContext, out: Tensor, gate: Tensor, up: Tensor): void {
  const n = checkGlu('swiglu', out, gate, up);
  if (n > 0) c.run('op_swiglu', [out.offset, gate.offset, up.offset, n], {}, c.threadsFor(n, MIN_PER_THREAD));
}

export function swigluOai(c: WasmContext, out: Tensor, gate: Tensor, up: Tensor, alpha: number, limit: number): void {
  const n = checkSwigluOai(out, gate, up, alpha, limit);
  if (n === 0) return;
  c.run('op_swiglu_oai', [out.offset, gate.offset, up.offset, n], { 4: alpha, 5: limit }, c.threadsFor(n, MIN_PER_THREAD));
}

export function add(c: WasmContext, out: Tensor, a: Tensor, b: Tensor): void {
  const [n, bc] = checkBinary('add', out, a, b);
  if (n > 0) c.run('op_add', [out.offset, a.offset, b.offset, n, bc], {}, c.threadsFor(n, MIN_PER_THREAD));
}

export function mul(c: WasmContext, out: Tensor, a: Tensor, b: Tensor): void {
  const [n, bc] = checkBinary('mul', out, a, b);
  if (n > 0) c.run('op_mul', [out.offset, a.offset, b.offset, n, bc], {}, c.threadsFor(n, MIN_PER_THREAD));
}

export function scale(c: WasmContext, out: Tensor, a: Tensor, s: number): void {
  const n = checkScale(out, a, s);
  if (n > 0) c.run('op_scale', [out.offset, a.offset, n], { 3: s }, c.threadsFor(n, MIN_PER_THREAD));
}

export function topK(c: WasmContext, indices: Tensor, values: Tensor, x: Tensor, k: number): void {
  const [R, C] = checkTopK(indices, values, x, k);
  if (R === 0 || k === 0) return;
  c.run('op_top_k', [indices.offset, values.offset, x.offset, R, C, k], {}, c.threadsFor(R * C, MIN_PER_THREAD));
}
