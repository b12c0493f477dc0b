/**
 * Tensors: a typed, shaped view over bytes in a heap. Shapes are listed outermost first
 * (row-major, like numpy), so the last dimension is contiguous: a weight matrix is
 * [rows, cols] = [out, in], i.e. GGUF's ne reversed. Quantized types pack whole blocks
 * along the last dimension.
 *
 * A Tensor owns nothing: it points at an Allocation (or part of one). Views over the
 * memory are made on every access because WebAssembly.Memory.grow detaches old ones.
 */
import { type DTypeInfo, GGMLType, dtypeInfo, rowBytes } from './dtypes.js';
import { InvalidArgumentError } from './errors.js';
import type { Allocation, Arena, Heap } from './heap.js';

export class Tensor {
  readonly info: DTypeInfo;

  constructor(
    readonly heap: Heap,
    readonly offset: number,
    readonly type: number,
    readonly shape: readonly number[],
    readonly allocation?: Allocation,
  ) {
    this.info = dtypeInfo(type);
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new InvalidArgumentError(`bad tensor shape [${shape.join(', ')}]`);
    }
    rowBytes(type, this.cols); // checks whole blocks
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** The contiguous (last) dimension. */
  get cols(): number {
    return this.shape.length ? this.shape[this.shape.length - 1] : 1;
  }

  /** Product of all dimensions but the last. */
  get rows(): number {
    return this.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  }

  get rowBytes(): number {
    return rowBytes(this.type, this.cols);
  }

  get byteLength(): number {
    return this.rows * this.rowBytes;
  }

  get bytes(): Uint8Array {
    return new Uint8Array(this.heap.memory.buffer, this.offset, this.byteLength);
  }

  f32(): Float32Array {
    this.expect(GGMLType.F32);
    return new Float32Array(this.heap.memory.buffer, this.offset, this.numel);
  }

  i32(): Int32Array {
    this.expect(GGMLType.I32);
    return new Int32Array(this.heap.memory.buffer, this.offset, this.numel);
  }

  u16(): Uint16Array {
    if (this.type !== GGMLType.F16 && this.type !== GGMLType.BF16) this.expect(GGMLType.F16);
    return new Uint16Array(this.heap.memory.buffer, this.offset, this.numel);
  }

  /** Rows [start, start + count) of the outermost dimension, as a tensor over the same bytes. */
  slice(start: number, count: number): Tensor {
    const outer = this.shape[0];
    if (start < 0 || count < 0 || start + count > outer) {
      throw new InvalidArgumentError(`slice [${start}, ${start + count}) is outside dimension 0 of size ${outer}`);
    }
    const stride = this.byteLength / outer;
    return new Tensor(this.heap, this.offset + start * stride, this.type, [count, ...this.shape.slice(1)]);
  }

  /** The same bytes with another shape of the same element count (last dimension may change). */
  reshape(shape: readonly number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== this.numel) {
      throw new InvalidArgumentError(`cannot reshape [${this.shape.join(', ')}] to [${shape.join(', ')}]`);
    }
    return new Tensor(this.heap, this.offset, this.type, shape);
  }

  /** Copy raw bytes (already in this tensor's type) into the tensor. */
  setBytes(src: Uint8Array): this {
    if (src.byteLength !== this.byteLength) {
      throw new InvalidArgumentError(`expected ${this.byteLength} bytes for [${this.shape.join(', ')}] ${this.info.name}, got ${src.byteLength}`);
    }
    this.bytes.set(src);
    return this;
  }

  toString(): string {
    return `Tensor<${this.info.name}>[${this.shape.join(', ')}]@${this.heap.name}+${this.offset}`;
  }

  private expect(type: number): void {
    if (this.type !== type) {
      throw new InvalidArgumentError(`${this} is ${this.info.name}, expected ${dtypeInfo(type).name}`);
    }
  }
}

/** Allocate a tensor in an arena. */
export function allocTensor(arena: Arena, type: number, shape: readonly number[], purpose = 'tensor'): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const cols = shape.length ? shape[shape.length - 1] : 1;
  const bytes = n === 0 ? 0 : (n / cols) * rowBytes(type, cols);
  const a = arena.alloc(bytes, purpose);
  return new Tensor(arena.heap, a.offset, type, shape, a);
}

/** Allocate an F32 tensor and fill it. */
export function f32Tensor(arena: Arena, shape: readonly number[], data?: ArrayLike<number>): Tensor {
  const t = allocTensor(arena, GGMLType.F32, shape);
  if (data) {
    if (data.length !== t.numel) throw new InvalidArgumentError(`expected ${t.numel} values, got ${data.length}`);
    t.f32().set(data);
  }
  return t;
}

/** Allocate an I32 tensor and fill it. */
export function i32Tensor(arena: Arena, shape: readonly number[], data?: ArrayLike<number>): Tensor {
  const t = allocTensor(arena, GGMLType.I32, shape);
  if (data) {
    if (data.length !== t.numel) throw new InvalidArgumentError(`expected ${t.numel} values, got ${data.length}`);
    t.i32().set(data);
  }
  return t;
}
