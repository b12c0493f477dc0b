/**
 * Argument checks shared by every backend, so that each kernel's contract is enforced
 * once and in the same words: InvalidArgumentError names the kernel, the argument and
 * what was expected.
 */
import { GGMLType, dtypeInfo } from '../core/dtypes.js';
import { InvalidArgumentError, UnsupportedTypeError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';

export function fail(kernel: string, msg: string): never {
  throw new InvalidArgumentError(`${kernel}: ${msg}`);
}

export function expectType(kernel: string, name: string, t: Tensor, ...types: number[]): void {
  if (!types.includes(t.type)) {
    fail(kernel, `${name} must be ${types.map((x) => dtypeInfo(x).name).join(' or ')}, got ${t.info.name}`);
  }
}

export function expectF32(kernel: string, ...named: [string, Tensor][]): void {
  for (const [name, t] of named) expectType(kernel, name, t, GGMLType.F32);
}

/** `shape` entries of -1 match anything. */
export function expectShape(kernel: string, name: string, t: Tensor, shape: readonly number[]): void {
  const ok = t.shape.length === shape.length && shape.every((d, i) => d < 0 || d === t.shape[i]);
  if (!ok) fail(kernel, `${name} has shape [${t.shape.join(', ')}], expected [${shape.map((d) => (d < 0 ? '*' : d)).join(', ')}]`);
}

export function expectNumel(kernel: string, name: string, t: Tensor, n: number): void {
  if (t.numel !== n) fail(kernel, `${name} has ${t.numel} elements, expected ${n}`);
}

export function expectSameHeap(kernel: string, ...ts: (Tensor | null | undefined)[]): void {
  const heap = ts.find((t) => t)?.heap;
  for (const t of ts) if (t && t.heap !== heap) fail(kernel, `all tensors must live in one heap (${t} is in ${t.heap.name})`);
}

export function expectKernelType(kernel: string, name: string, t: Tensor): void {
  if (!t.info.kernels) throw new UnsupportedTypeError(`${kernel}: ${name} has type ${t.info.name}, which the kernels do not implement`);
}

/** Checks for out [T, R] = x [T, C] · W [R, C]ᵀ. Returns [T, R, C]. */
export function checkMatmul(out: Tensor, w: Tensor, x: Tensor): [number, number, number] {
  const k = 'matmul';
  expectKernelType(k, 'W', w);
  expectF32(k, ['out', out], ['x', x]);
  if (w.shape.length !== 2) fail(k, `W must be 2-D [rows, cols], got [${w.shape.join(', ')}]`);
  const [R, C] = w.shape;
  if (x.cols !== C) fail(k, `x rows have ${x.cols} elements but W rows have ${C}`);
  const T = x.rows;
  if (out.numel !== T * R) fail(k, `out has ${out.numel} elements, expected ${T} × ${R}`);
  expectSameHeap(k, out, w, x);
  return [T, R, C];
}

/** Checks for dequantize: out F32 with src's element count and row length. */
export function checkDequantize(out: Tensor, src: Tensor): void {
  expectKernelType('dequantize', 'src', src);
  expectF32('dequantize', ['out', out]);
  expectNumel('dequantize', 'out', out, src.numel);
  expectSameHeap('dequantize', out, src);
}
