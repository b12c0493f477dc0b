/**
 * Reference twin of src/kernels/wasm/c/moe.c: one layer's routed experts, written plainly,
 * token by token and slot by slot:
 *   out[t] = Σ_k weights[t, k] · (down_e · act(gate_e · x[t] + bg, up_e · x[t] + bu) + bd),
 *   e = ids[t, k] (negative: slot skipped), the k terms added in order k = 0, 1, … in float32.
 * Reference: llama.cpp build_moe_ffn (mul_mat_id, add_id biases, the activation, ggml_mul
 * by the routing weights, the K expert outputs summed in order).
 *
 * Every product is a matmul-style dot: the activations (x, then each h row) are converted
 * to the weight type's dot format with the reference quantizers, then one vecDot per
 * output, exactly as the C kernel does; so for integer-dot weight types (Q8_0, Q4_K, …)
 * the result is bit-identical to the wasm kernel. F32/F16 products are summed in another
 * order by the SIMD kernels: agreement to rounding there.
 *
 * Activations (twins of moe.c `activate`; the element functions are ./math.ts's, the twins
 * of sy_math.h, so each equals the element-wise op of the backend bit for bit):
 *   silu        swiglu(g, u) = silu(g) · u, silu(x) = x / (1 + exp(−x))   (ggml_vec_swiglu_f32)
 *   gelu        gelu(g) · u, the tanh approximation as x / (1 + exp(−2u))   (ggml_gelu_f32; ggml's
 *               CPU backend may use an F16 lookup table instead, which this does not copy)
 *   swiglu_oai  x = min(g, limit), y = clamp(u, −limit, limit), x / (1 + exp(α·(−x))) · (y + 1)
 * Arguments are checked by checkExpertGroup (src/kernels/check.ts), shared with the wasm wrapper.
 */
import { dotRowBytes, dtypeInfo } from '../../core/dtypes.js';
import type { ExpertActivation, ExpertGroupArgs, ExpertWeights } from '../backend.js';
import { checkExpertGroup } from '../check.js';
import { geluF, swigluF, swigluOaiF } from './math.js';
import { quantizeActivations } from './matmul.js';
import { refQuantizer, refTypeKernels } from './types.js';

const fr = Math.fround;

/** The gated activation of one element, with sy_math.h's element functions (twin of moe.c `activate`). */
export function activate(a: ExpertActivation, g: number, u: number): number {
  switch (a.kind) {
    case 'silu':
      return swigluF(g, u);
    case 'gelu':
      return fr(geluF(g) * u);
    case 'swiglu_oai':
      return swigluOaiF(g, u, a.alpha, a.limit);
  }
}

export function expertGroup(args: ExpertGroupArgs): void {
  const { T, D, F, K, gateType, upType, ids } = checkExpertGroup(args);
  const { out, x, experts, activation } = args;
  const mem = new Uint8Array(out.heap.memory.buffer);
  const xa = x.f32();
  const w = args.weights.f32();
  const o = out.f32();
  // x in the gate's and the up matrix's dot formats, once for all experts.
  const xg = T && gateType >= 0 ? quantizeActivations(gateType, xa, T, D) : undefined;
  const xu = T && upType >= 0 ? quantizeActivations(upType, xa, T, D) : undefined;
  const h = new Float32Array(F);
  const acc = new Float32Array(D);

  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let k = 0; k < K; k++) {
      const id = ids[t * K + k];
      if (id < 0) continue;
      const e = experts[id] as ExpertWeights;
      const gk = refTypeKernels(e.gate.type);
      const uk = refTypeKernels(e.up.type);
      const dk = refTypeKernels(e.down.type);
      const gb = e.gateBias?.f32();
      const ub = e.upBias?.f32();
      const db = e.downBias?.f32();
      // h = act(gate · x + bg, up · x + bu), one dot per row
      for (let f = 0; f < F; f++) {
        let g = gk.vecDot(D, mem, e.gate.offset + f * e.gate.rowBytes, xg!.q, t * xg!.stride);
        let u = uk.vecDot(D, mem, e.up.offset + f * e.up.rowBytes, xu!.q, t * xu!.stride);
        if (gb) g = fr(g + gb[f]);
        if (ub) u = fr(u + ub[f]);
        h[f] = activate(activation, g, u);
      }
      // h in the down matrix's dot format, then one dot per output; weighted, summed in k order
      const hq = new Uint8Array(dotRowBytes(e.down.type, F));
      refQuantizer(dtypeInfo(e.down.type).dotType as number)(h, 0, hq, 0, F);
      const wt = w[t * K + k];
      for (let d = 0; d < D; d++) {
        let v = dk.vecDot(F, mem, e.down.offset + d * e.down.rowBytes, hq, 0);
        if (db) v = fr(v + db[d]);
        acc[d] = fr(acc[d] + fr(wt * v));
      }
    }
    o.set(acc, t * D);
  }
}
