/**
 * Reference twin of src/kernels/wasm/c/attention.c: attention of queries against a KV
 * cache (grouped-query, causal, sliding window, sinks, soft-capping; K/V in F32 or F16),
 * written plainly, one (token, head) at a time.
 *
 * Numerics as ggml's non-flash path (llama.cpp build_attn_mha; ggml-cpu ops.cpp
 * ggml_compute_forward_soft_max_f32): float32 scores, softmax with the maximum (sinks
 * included) subtracted, float32 exp, the sum of the exponentials in float64, probabilities
 * = e * (float)(1 / sum), then Σ p·v in float32. An F16 K rounds q to F16 first, an F16 V
 * rounds the probabilities to F16 first (ggml's mul_mat converts its activations to the
 * F16 weights' vec_dot type). Every float32 step goes through Math.fround.
 *
 * exp and tanh are the shared twins of sy_math.h (./math.ts), bit for bit; the C kernel's
 * dot products and V sums are blocked for SIMD, so outputs agree to rounding, not bits.
 * Arguments are checked by checkAttention (src/kernels/check.ts), shared with the wasm wrapper.
 */
import { GGMLType } from '../../core/dtypes.js';
import { f16ToF32, roundToF16 } from '../../core/fp16.js';
import type { Tensor } from '../../core/tensor.js';
import type { AttentionParams } from '../backend.js';
import { checkAttention } from '../check.js';
import { expf, tanhf } from './math.js';

const fr = Math.fround;

/** Element reader of an F32 or F16 tensor (float32 values). */
function reader(t: Tensor): (i: number) => number {
  if (t.type === GGMLType.F16) {
    const u = t.u16();
    return (i) => f16ToF32(u[i]);
  }
  const f = t.f32();
  return (i) => f[i];
}

export function attention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
  const { T, H, Hkv, Dk, Dv, qPos0, window, softcap } = checkAttention(out, q, k, v, p);
  const scale = fr(p.scale);
  const cap = fr(softcap);
  // Soft-capping as ggml's flash path: s = softcap · tanh(qk · (scale / softcap)).
  const sc = cap !== 0 ? fr(scale / cap) : scale;
  const qa = q.f32();
  const o = out.f32();
  const kAt = reader(k);
  const vAt = reader(v);
  const sinks = p.sinks?.f32();
  const roundQ = k.type === GGMLType.F16 ? roundToF16 : (x: number) => x;
  const roundP = v.type === GGMLType.F16 ? roundToF16 : (x: number) => x;
  const group = H / Hkv;
  const qv = new Float32Array(Dk);

  for (let t = 0; t < T; t++) {
    const pos = qPos0 + t;
    const j0 = window > 0 ? Math.max(0, pos - window + 1) : 0; // a key j is visible when pos − j < window
    const n = pos - j0 + 1;
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < Dk; i++) qv[i] = roundQ(qa[(t * H + h) * Dk + i]);

      const scores = new Float32Array(n);
      let max = sinks ? sinks[h] : Number.NEGATIVE_INFINITY;
      for (let j = 0; j < n; j++) {
        const kOff = ((j0 + j) * Hkv + g) * Dk;
        let dot = 0;
        for (let i = 0; i < Dk; i++) dot = fr(dot + fr(qv[i] * kAt(kOff + i)));
        let s = fr(dot * sc);
        if (cap !== 0) s = fr(cap * tanhf(s));
        scores[j] = s;
        if (s > max) max = s;
      }

      let sum = 0; // float64, as ggml_vec_soft_max_f32
      for (let j = 0; j < n; j++) {
        scores[j] = expf(fr(scores[j] - max));
        sum += scores[j];
      }
      if (sinks) sum += expf(fr(sinks[h] - max));
      const inv = fr(1 / sum);
      for (let j = 0; j < n; j++) scores[j] = roundP(fr(scores[j] * inv));

      const oOff = (t * H + h) * Dv;
      for (let d = 0; d < Dv; d++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc = fr(acc + fr(scores[j] * vAt(((j0 + j) * Hkv + g) * Dv + d)));
        o[oOff + d] = acc;
      }
    }
  }
}
