/**
 * Reference twins of src/kernels/wasm/c/float.c: F32, F16 and BF16 weights.
 * F16/BF16 dot products take activations rounded to F16/BF16 (kept as float32), as
 * ggml does; products are accumulated in float32 (sequentially here; the SIMD kernels
 * use 16 partial sums, so results agree to rounding, not bit for bit).
 * Also `convert` (float32 rows to F32 / F16 / BF16, how the KV cache is written), which the
 * C kernel op_convert reproduces bit for bit. Reference: ggml-cpu ops.cpp (set_rows).
 */
import { GGMLType } from '../../core/dtypes.js';
import { bf16ToF32, f16ToF32, f32BitsToBF16, f32BitsToF16, roundToBF16, roundToF16 } from '../../core/fp16.js';
import type { Tensor } from '../../core/tensor.js';
import { checkConvert } from '../check.js';
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

// ---- convert: float32 rows -> F32 / F16 / BF16 (the twin of op_convert) --------------



/**
 * out = x in out's type, element by element: F32 copies the bits, F16 and BF16 round to
 * nearest even (ggml's set_rows / cpy into an F16 or BF16 tensor: ggml_cpu_fp32_to_fp16,
 * ggml_cpu_fp32_to_bf16). Reads x as bits so that NaN payloads and signs survive.
 */
export function convert(out: Tensor, x: Tensor): void {
  const n = checkConvert(out, x);
  const buf = x.heap.memory.buffer;
  const xs = new Uint32Array(buf, x.offset, n);
  if (out.type === GGMLType.F32) {
    new Uint32Array(buf, out.offset, n).set(xs);
    return;
  }
  const y = new Uint16Array(buf, out.offset, n);
  const round = out.type === GGMLType.F16 ? f32BitsToF16 : f32BitsToBF16;
  for (let i = 0; i < n; i++) y[i] = round(xs[i] as number);
}
