/**
 * Reference twins of src/kernels/wasm/c/float.c: F32, F16 and BF16 weights.
 * F16/BF16 dot products take activations rounded to F16/BF16 (kept as float32), as
 * ggml does; products are accumulated in float32 (sequentially here; the SIMD kernels
 * use 16 partial sums, so results agree to rounding, not bit for bit).
 */
import { GGMLType } from '../../core/dtypes.js';
import { bf16ToF32, f16ToF32, roundToBF16, roundToF16 } from '../../core/fp16.js';
import type { RefTypeKernels } from './types.js';

const fr = Math.fround;

function view(mem: Uint8Array): DataView {
  return new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
}

function floatKernels(read: (dv: DataView, byte: number) => number, bytes: number): RefTypeKernels {
  return {
    dequantize(mem, src, dst, dstOff, n) {
      const dv = view(mem);
      for (let i = 0; i < n; i++) dst[dstOff + i] = read(dv, src + i * bytes);
    },
    vecDot(n, wMem, w, xMem, xq) {
      const wv = view(wMem);
      const xv = view(xMem);
      let sum = 0;
      for (let i = 0; i < n; i++) sum = fr(sum + fr(read(wv, w + i * bytes) * xv.getFloat32(xq + 4 * i, true)));
      return sum;
    },
  };
}

export const FLOAT_KERNELS: Record<number, RefTypeKernels> = {
  [GGMLType.F32]: floatKernels((dv, b) => dv.getFloat32(b, true), 4),
  [GGMLType.F16]: floatKernels((dv, b) => f16ToF32(dv.getUint16(b, true)), 2),
  [GGMLType.BF16]: floatKernels((dv, b) => bf16ToF32(dv.getUint16(b, true)), 2),
};

function floatQuantizer(round: (v: number) => number) {
  return (x: Float32Array, xOff: number, mem: Uint8Array, dst: number, n: number): void => {
    const dv = view(mem);
    for (let i = 0; i < n; i++) dv.setFloat32(dst + 4 * i, round(x[xOff + i]), true);
  };
}

export const quantizeF32 = floatQuantizer((v) => v);
export const quantizeF16 = floatQuantizer(roundToF16);
export const quantizeBF16 = floatQuantizer(roundToBF16);
