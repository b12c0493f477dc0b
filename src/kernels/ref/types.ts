/**
 * Reference (plain TypeScript) twins of the per-type C functions in
 * src/kernels/wasm/c/{float,quants32,kquants}.c: dequantization, activation
 * conversion and dot products. Integer-dot twins reproduce the C kernels bit for bit
 * (same integer sums, same float operations in the same order, via Math.fround).
 *
 * Buffers are byte views over a heap (`Uint8Array` at offset 0 of the memory) plus
 * element/byte offsets, so the twins read exactly the bytes the wasm kernels read.
 */
import { GGMLType } from '../../core/dtypes.js';
import { UnsupportedTypeError } from '../../core/errors.js';
import { FLOAT_KERNELS, quantizeBF16, quantizeF16, quantizeF32 } from './float.js';
import { KQUANT_KERNELS, quantizeQ8K } from './kquants.js';
import { QUANT32_KERNELS, quantizeQ8_0, quantizeQ8_1 } from './quants32.js';

export interface RefTypeKernels {
  /** Decode n elements (whole blocks) starting at byte `src` into dst[dstOff..]. */
  dequantize(mem: Uint8Array, src: number, dst: Float32Array, dstOff: number, n: number): void;
  /** Dot product of the n-element weight row at wMem[w..] with dot-format activations at xMem[xq..]. */
  vecDot(n: number, wMem: Uint8Array, w: number, xMem: Uint8Array, xq: number): number;
}

/** Convert n floats x[xOff..] into a dot format at byte `dst` of mem. */
export type RefQuantizer = (x: Float32Array, xOff: number, mem: Uint8Array, dst: number, n: number) => void;

const kernels = new Map<number, RefTypeKernels>([
  ...Object.entries(FLOAT_KERNELS),
  ...Object.entries(QUANT32_KERNELS),
  ...Object.entries(KQUANT_KERNELS),
].map(([k, v]) => [Number(k), v]));

export function refTypeKernels(type: number): RefTypeKernels {
  const k = kernels.get(type);
  if (!k) throw new UnsupportedTypeError(`no reference kernels for GGML type ${type}`);
  return k;
}

export function refQuantizer(dotType: number): RefQuantizer {
  switch (dotType) {
    case GGMLType.F32:
      return quantizeF32;
    case GGMLType.F16:
      return quantizeF16;
    case GGMLType.BF16:
      return quantizeBF16;
    case GGMLType.Q8_0:
      return quantizeQ8_0;
    case GGMLType.Q8_1:
      return quantizeQ8_1;
    case GGMLType.Q8_K:
      return quantizeQ8K;
    default:
      throw new UnsupportedTypeError(`no activation format for GGML type ${dotType}`);
  }
}
