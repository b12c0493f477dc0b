/**
 * qwen2moe: Qwen1.5-MoE / Qwen2-MoE (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B), GGUF architecture `qwen2moe`.
 * Reference: llama.cpp src/models/qwen2moe.cpp; Qwen team, "Qwen1.5-MoE: Matching 7B Model
 * Performance with 1/3 Activated Parameters" (2024), "Qwen2 Technical Report" (2024).
 *
 *   h = embed(tokens)
 *   for each block:  h = h + Wo attn(rmsnorm(h))                  q/k/v biases, RoPE NEOX
 *                    x = rmsnorm(h)
 *                    h = h + Σ_k p_k · expert_k(x)                softmax -> top-k, not renormalised
 *                          + σ(w_g · x) · sharedExpert(x)         one wider SwiGLU, gated per token
 *   logits = output(rmsnorm(h))                                   separate output matrix
 */
import type { Tensor } from '../core/tensor.js';
import type { ExpertWeights } from '../kernels/backend.js';
import { route } from '../router/route.js';
import { attention, embed, linear, moeFFN, outputLogits, prefetchExperts, residual, rmsNorm, runExperts, type Step } from './nn/layers.js';

/**
 * The shared expert of block il on x [T, D] -> [T, D]: σ(w_g · x) · down(silu(gate x) ⊙ up x).
 * The gate is a router with one expert and sigmoid gating, so the shared expert runs as a
 * one-expert group whose routing weight is the gate: the kernel's weighted sum scales each
 * token's row (there is no per-row multiply op), as llama.cpp's ggml_mul(cur_ffn, cur_gate) does.
 */
function sharedExpert(s: Step, x: Tensor, il: number): Tensor {
  const p = `blk.${il}.`;
  const D = s.config.embeddingLength;
  const T = s.T;
  const z = linear(s, x, s.weights.get(`${p}ffn_gate_inp_shexp.weight`, [D]).reshape([1, D])); // [T, 1]
  // "ggml_tensor * cur_gate = ggml_div(ctx0, ggml_silu(ctx0, cur_gate_inp), cur_gate_inp);" i.e. sigmoid
  const gate = route(z.f32(), T, { experts: 1, used: 1, gating: 'sigmoid', normalize: false, scale: 1 });
  const shared: ExpertWeights = {
    gate: s.weights.get(`${p}ffn_gate_shexp.weight`), // [F_shexp, D]
    up: s.weights.get(`${p}ffn_up_shexp.weight`),
    down: s.weights.get(`${p}ffn_down_shexp.weight`), // [D, F_shexp]
  };
  return runExperts(s, x, [shared], gate);
}

export function forward(s: Step, tokens: readonly number[]): Tensor {
  const c = s.config;
  const h = embed(s, tokens); // [T, D]
  for (let il = 0; il < c.blockCount; il++) {
    prefetchExperts(s, il, h); // read ahead the experts its routers predict (expert cache only)
    const p = `blk.${il}.`;
    residual(s, h, attention(s, il, rmsNorm(s, h, `${p}attn_norm`)));
    const x = rmsNorm(s, h, `${p}ffn_norm`); // [T, D]
    // build_moe_ffn(..., LLM_FFN_SILU, false /* norm_w */, ..., GATING_FUNC_TYPE_SOFTMAX);
    // "moe_out = ggml_add(ctx0, moe_out, ffn_shexp_out)", then the residual.
    const moe = moeFFN(s, x, il); // [T, D]
    s.backend.add(moe, moe, sharedExpert(s, x, il));
    residual(s, h, moe);
  }
  return outputLogits(s, h); // [T, V]
}
