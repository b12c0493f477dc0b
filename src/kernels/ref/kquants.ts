/**
 * Reference twins of src/kernels/wasm/c/kquants.c: the 256-element super-block types
 * Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0 and TQ2_0 (exact dequantization and dot
 * products with Q8_K activations), and the Q8_K activation quantizer.
 *
 * References (llama.cpp d32676d77): ggml/src/ggml-common.h (block_* layouts),
 * ggml/src/ggml-quants.c (dequantize_row_*, quantize_row_q8_K_ref, which x86's
 * quantize_row_q8_K calls), ggml/src/ggml-cpu/quants.c (ggml_vec_dot_*_q8_K_generic).
 *
 * Every weight block is first decoded into integers: a signed code q_i per element, a
 * scale (and for Q2_K/Q4_K/Q5_K a min) per sub-block, and the fp16 factors d (and dmin).
 * Dequantization and the dot product are then written once for all types:
 *   y_i = (d * scale_s) * q_i - (dmin * min_s)        (Q2_K, Q4_K, Q5_K)
 *   y_i = (d * scale_s) * q_i                         (the others; TQ*: one sub-block, scale 1)
 * Dot product, per super-block (the contract the C kernel keeps bit for bit):
 *   isum  = Σ_s scale_s · Σ_{i in s} q8_i · q_i       (exact integers)
 *   summs = Σ_s min_s · (the Q8_K bsums of s)         (exact integers)
 *   dx = y.d * d, dm = y.d * dmin                     (float32)
 *   sumf = sumf + ((dx * f32(isum)) - (dm * f32(summs)))   with mins
 *   sumf = sumf + (dx * f32(isum))                          without
 * with Math.fround at every float32 step, sumf starting at 0.
 */
import { GGMLType } from '../../core/dtypes.js';
import { f16ToF32 } from '../../core/fp16.js';
import type { RefQuantizer, RefTypeKernels } from './types.js';

const fr = Math.fround;
const QK_K = 256;
const Q8K_BYTES = 292; // float d, int8 qs[256], int16 bsums[16]

function view(mem: Uint8Array): DataView {
  return new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
}

/** One decoded super-block (reused: the twins are single-threaded). */
interface Block {
  d: number;
  dmin: number;
  readonly scale: Int32Array; // per sub-block
  readonly min: Int32Array; // per sub-block (types with mins)
  readonly q: Int32Array; // signed code per element
}

interface BlockType {
  bytes: number;
  /** Elements per sub-block. */
  sub: number;
  mins: boolean;
  decode(dv: DataView, mem: Uint8Array, o: number, blk: Block): void;
}

const fp16 = (dv: DataView, o: number): number => f16ToF32(dv.getUint16(o, true));

// Q2_K, 84 bytes: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
// Element i (h = i/128, g = (i%128)/32, l = i%32): code (qs[32h + l] >> 2g) & 3.
const Q2_K: BlockType = {
  bytes: 84,
  sub: 16,
  mins: true,
  decode(dv, mem, o, blk) {
    blk.d = fp16(dv, o + 80);
    blk.dmin = fp16(dv, o + 82);
    for (let s = 0; s < 16; s++) {
      blk.scale[s] = mem[o + s] & 15;
      blk.min[s] = mem[o + s] >> 4;
    }
    for (let i = 0; i < QK_K; i++) {
      const h = i >> 7, g = (i >> 5) & 3, l = i & 31;
      blk.q[i] = (mem[o + 16 + 32 * h + l] >> (2 * g)) & 3;
    }
  },
};

// Q3_K, 110 bytes: hmask[32], qs[64] (low 2 bits, as Q2_K), scales[12] (16 x 6 bits), d.
// q = low2 - (hmask bit 4h + g of byte l set ? 0 : 4); scale = 6-bit code - 32.
const Q3_K: BlockType = {
  bytes: 110,
  sub: 16,
  mins: false,
  decode(dv, mem, o, blk) {
    blk.d = fp16(dv, o + 108);
    const sc = o + 96;
    for (let s = 0; s < 16; s++) {
      const low4 = s < 8 ? mem[sc + s] & 15 : mem[sc + s - 8] >> 4;
      const high2 = (mem[sc + 8 + (s % 4)] >> (2 * (s >> 2))) & 3;
      blk.scale[s] = (low4 | (high2 << 4)) - 32;
    }
    for (let i = 0; i < QK_K; i++) {
      const h = i >> 7, g = (i >> 5) & 3, l = i & 31;
      const low2 = (mem[o + 32 + 32 * h + l] >> (2 * g)) & 3;
      const hbit = (mem[o + l] >> (4 * h + g)) & 1;
      blk.q[i] = low2 - (hbit ? 0 : 4);
    }
  },
};

// Q4_K/Q5_K 6-bit scale and min of sub-block j (ggml get_scale_min_k4).
function scaleMinK4(mem: Uint8Array, sm: number, j: number, blk: Block): void {
  if (j < 4) {
    blk.scale[j] = mem[sm + j] & 63;
    blk.min[j] = mem[sm + j + 4] & 63;
  } else {
    blk.scale[j] = (mem[sm + j + 4] & 15) | ((mem[sm + j - 4] >> 6) << 4);
    blk.min[j] = (mem[sm + j + 4] >> 4) | ((mem[sm + j] >> 6) << 4);
  }
}

// Q4_K (qh = -1) and Q5_K: d, dmin, 12 scale bytes, [qh[32]], qs[128]. Sub-block j uses
// qs[32 * (j >> 1) ..], low nibbles for even j, high for odd; Q5_K's fifth bit of
// element 32j + l is bit j of qh[l].
function decodeK4(dv: DataView, mem: Uint8Array, o: number, blk: Block, qh: number, qs: number): void {
  blk.d = fp16(dv, o);
  blk.dmin = fp16(dv, o + 2);
  for (let j = 0; j < 8; j++) {
    scaleMinK4(mem, o + 4, j, blk);
    for (let l = 0; l < 32; l++) {
      let code = (mem[qs + 32 * (j >> 1) + l] >> (4 * (j & 1))) & 15;
      if (qh >= 0) code += ((mem[qh + l] >> j) & 1) << 4;
      blk.q[32 * j + l] = code;
    }
  }
}

const Q4_K: BlockType = {
  bytes: 144,
  sub: 32,
  mins: true,
  decode: (dv, mem, o, blk) => decodeK4(dv, mem, o, blk, -1, o + 16),
};

const Q5_K: BlockType = {
  bytes: 176,
  sub: 32,
  mins: true,
  decode: (dv, mem, o, blk) => decodeK4(dv, mem, o, blk, o + 16, o + 48),
};

// Q6_K, 210 bytes: ql[128], qh[64], int8 scales[16], d.
// q = (low4 | high2 << 4) - 32, low4 in ql[64h + 32(g & 1) + l] (high nibble for g >= 2),
// high2 = (qh[32h + l] >> 2g) & 3.
const Q6_K: BlockType = {
  bytes: 210,
  sub: 16,
  mins: false,
  decode(dv, mem, o, blk) {
    blk.d = fp16(dv, o + 208);
    for (let s = 0; s < 16; s++) blk.scale[s] = dv.getInt8(o + 192 + s);
    for (let i = 0; i < QK_K; i++) {
      const h = i >> 7, g = (i >> 5) & 3, l = i & 31;
      const low4 = (mem[o + 64 * h + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 15;
      const high2 = (mem[o + 128 + 32 * h + l] >> (2 * g)) & 3;
      blk.q[i] = (low4 | (high2 << 4)) - 32;
    }
  },
};

const IQ4NL_VALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

// IQ4_XS, 136 bytes: d, scales_h (u16), scales_l[4], qs[128]. Sub-block j: scale
// ls - 32 with ls = (scales_l nibble j) | (2 bits j of scales_h) << 4; its 16 bytes
// qs[16j ..] hold 32 codes in Q4_0 nibble order; q = IQ4_NL table value of the code.
const IQ4_XS: BlockType = {
  bytes: 136,
  sub: 32,
  mins: false,
  decode(dv, mem, o, blk) {
    blk.d = fp16(dv, o);
    const sh = dv.getUint16(o + 2, true);
    for (let j = 0; j < 8; j++) {
      const ls = ((mem[o + 4 + (j >> 1)] >> (4 * (j & 1))) & 15) | (((sh >> (2 * j)) & 3) << 4);
      blk.scale[j] = ls - 32;
      for (let k = 0; k < 16; k++) {
        const byte = mem[o + 8 + 16 * j + k];
        blk.q[32 * j + k] = IQ4NL_VALUES[byte & 15];
        blk.q[32 * j + 16 + k] = IQ4NL_VALUES[byte >> 4];
      }
    }
  },
};

// TQ1_0 digit k of a byte: ggml `uint8_t q = x * pow3[k]; xi = ((uint16_t) q * 3) >> 8;`
function tq1Digit(byte: number, k: number): number {
  const q = (byte * 3 ** k) & 255;
  return (q * 3) >> 8;
}

// TQ1_0, 54 bytes: qs[48] (5 base-3 digits a byte), qh[4] (4 digits), d. q = digit - 1.
// qs[m] digit k -> element 32k + m (m < 32); qs[32 + m] digit k -> 160 + 16k + m (m < 16);
// qh[m] digit k -> 240 + 4k + m.
const TQ1_0: BlockType = {
  bytes: 54,
  sub: QK_K,
  mins: false,
  decode(dv, mem, o, blk) {
    blk.d = fp16(dv, o + 52);
    blk.scale[0] = 1;
    for (let k = 0; k < 5; k++) {
      for (let m = 0; m < 32; m++) blk.q[32 * k + m] = tq1Digit(mem[o + m], k) - 1;
      for (let m = 0; m < 16; m++) blk.q[160 + 16 * k + m] = tq1Digit(mem[o + 32 + m], k) - 1;
    }
    for (let k = 0; k < 4; k++) {
      for (let m = 0; m < 4; m++) blk.q[240 + 4 * k + m] = tq1Digit(mem[o + 48 + m], k) - 1;
    }
  },
};

// TQ2_0, 66 bytes: qs[64], d. Element i (c = i/128, r = i%128): q = ((qs[32c + r%32] >> 2(r/32)) & 3) - 1.
const TQ2_0: BlockType = {
  bytes: 66,
  sub: QK_K,
  mins: false,
  decode(dv, mem, o, blk) {
    blk.d = fp16(dv, o + 64);
    blk.scale[0] = 1;
    for (let i = 0; i < QK_K; i++) {
      const c = i >> 7, r = i & 127;
      blk.q[i] = ((mem[o + 32 * c + (r & 31)] >> (2 * (r >> 5))) & 3) - 1;
    }
  },
};

const blk: Block = { d: 0, dmin: 0, scale: new Int32Array(16), min: new Int32Array(16), q: new Int32Array(QK_K) };

function kernels(t: BlockType): RefTypeKernels {
  const nsub = QK_K / t.sub;
  return {
    dequantize(mem, src, dst, dstOff, n) {
      const dv = view(mem);
      for (let b = 0; b < n / QK_K; b++) {
        t.decode(dv, mem, src + b * t.bytes, blk);
        for (let s = 0; s < nsub; s++) {
          const dl = fr(blk.d * blk.scale[s]);
          const ml = t.mins ? fr(blk.dmin * blk.min[s]) : 0;
          for (let k = s * t.sub; k < (s + 1) * t.sub; k++) {
            const p = fr(dl * blk.q[k]);
            dst[dstOff + b * QK_K + k] = t.mins ? fr(p - ml) : p;
          }
        }
      }
    },
    vecDot(n, wMem, w, xMem, xq) {
      const wv = view(wMem);
      const xv = view(xMem);
      let sumf = 0;
      for (let b = 0; b < n / QK_K; b++) {
        t.decode(wv, wMem, w + b * t.bytes, blk);
        const y = xq + b * Q8K_BYTES;
        let isum = 0;
        let summs = 0;
        for (let s = 0; s < nsub; s++) {
          let dot = 0;
          for (let k = s * t.sub; k < (s + 1) * t.sub; k++) dot += xv.getInt8(y + 4 + k) * blk.q[k];
          isum += blk.scale[s] * dot;
          if (t.mins) {
            // The bsums (16 activations each) that cover sub-block s.
            let bsum = 0;
            for (let j = (s * t.sub) / 16; j < ((s + 1) * t.sub) / 16; j++) bsum += xv.getInt16(y + 260 + 2 * j, true);
            summs += blk.min[s] * bsum;
          }
        }
        const yd = xv.getFloat32(y, true);
        const dx = fr(yd * blk.d);
        if (t.mins) {
          const dm = fr(yd * blk.dmin);
          sumf = fr(sumf + fr(fr(dx * fr(isum)) - fr(dm * fr(summs))));
        } else {
          sumf = fr(sumf + fr(dx * fr(isum)));
        }
      }
      return sumf;
    },
  };
}

export const KQUANT_KERNELS: Record<number, RefTypeKernels> = {
  [GGMLType.Q2_K]: kernels(Q2_K),
  [GGMLType.Q3_K]: kernels(Q3_K),
  [GGMLType.Q4_K]: kernels(Q4_K),
  [GGMLType.Q5_K]: kernels(Q5_K),
  [GGMLType.Q6_K]: kernels(Q6_K),
  [GGMLType.IQ4_XS]: kernels(IQ4_XS),
  [GGMLType.TQ1_0]: kernels(TQ1_0),
  [GGMLType.TQ2_0]: kernels(TQ2_0),
};

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

// ggml nearest_int: `float val = fval + 12582912.f; ... return (i & 0x007fffff) - 0x00400000;`
function nearestInt(fval: number): number {
  f32[0] = fval + 12582912; // the float32 addition (one rounding, exact for float32 inputs)
  return (u32[0] & 0x007fffff) - 0x00400000;
}

/**
 * Q8_K activations, as ggml's x86 CPU backend makes them (quantize_row_q8_K_ref):
 * max = the first element of largest |x|; iscale = -127/max; q = min(127, nearest_int(iscale * x))
 * stored as int8; bsums[j] = Σ q[16j .. 16j+15]; d = 1/iscale. An all-zero block gets
 * d = 0 and zero codes and bsums.
 */
export const quantizeQ8K: RefQuantizer = (x, xOff, mem, dst, n) => {
  const dv = view(mem);
  for (let b = 0; b < n / QK_K; b++) {
    const o = dst + b * Q8K_BYTES;
    const xb = xOff + b * QK_K;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK_K; j++) {
      const ax = Math.abs(x[xb + j]);
      if (ax > amax) {
        amax = ax;
        max = x[xb + j];
      }
    }
    if (amax === 0) {
      dv.setFloat32(o, 0, true);
      mem.fill(0, o + 4, o + Q8K_BYTES);
      continue;
    }
    const iscale = fr(-127 / max);
    for (let j = 0; j < QK_K; j++) {
      // A wrapping store to int8, as C's `y[i].qs[j] = MIN(127, v)`.
      dv.setInt8(o + 4 + j, Math.min(127, nearestInt(fr(iscale * x[xb + j]))) << 24 >> 24);
    }
    for (let j = 0; j < 16; j++) {
      let sum = 0;
      for (let k = 0; k < 16; k++) sum += dv.getInt8(o + 4 + 16 * j + k);
      dv.setInt16(o + 260 + 2 * j, sum, true);
    }
    dv.setFloat32(o, fr(1 / iscale), true);
  }
};
