/**
 * gpt-oss: OpenAI's open-weight MoE (gpt-oss-20b / -120b), GGUF architecture `gpt-oss`.
 * Reference: llama.cpp src/models/openai-moe.cpp (llama_model_openai_moe), build_moe_ffn in
 * src/llama-graph.cpp; OpenAI, "gpt-oss-120b & gpt-oss-20b Model Card" (2025).
 *
 *   h = embed(tokens)
 *   for each block:  h = h + Wo attn(rmsnorm(h)) + bo        q/k/v/o biases, RoPE NEOX + YaRN,
 *                                                            sliding window on even layers,
 *                                                            one learned sink logit per head
 *                    x = rmsnorm(h, post_attention_norm)      the FFN input norm
 *                    h = h + Σ_k softmax(top-k(W_r x + b_r))_k · expert_k(x)
 *                        expert(x) = W_down a + b_down,  g = W_gate x + b_gate,  u = W_up x + b_up,
 *                        a = min(g, 7) · σ(1.702 · min(g, 7)) · (clamp(u, -7, 7) + 1)
 *   logits = output(rmsnorm(h))                               separate output matrix
 *
 * YaRN: ropeParams gives the kernel extFactor 1 and attnFactor 1 (llama-context.cpp sets
 * yarn_attn_factor = get_mscale(32) / (1 + 0.1 ln 32) = 1 for a model without a log multiplier),
 * and the kernel applies rope_yarn's own `mscale *= 1.0f + 0.1f * logf(1.0f / freq_scale)`, so
 * cos and sin are scaled by 1 + 0.1 ln 32 for both Q and K, as in llama.cpp.
 */
import type { Tensor } from '../core/tensor.js';
import type { ExpertActivation } from '../kernels/backend.js';
import { attention, embed, moeFFN, outputLogits, prefetchExperts, residual, rmsNorm, type Step } from './nn/layers.js';

/**
 * The clamped SwiGLU of every expert. llama-graph.cpp build_moe_ffn, LLM_FFN_SWIGLU_OAI_MOE:
 *   "constexpr float alpha = 1.702f; constexpr float limit = 7.0f;" (no GGUF key holds them).
 */
const SWIGLU_OAI: ExpertActivation = { kind: 'swiglu_oai', alpha: 1.702, limit: 7 };

export function forward(s: Step, tokens: readonly number[]): Tensor {
  const c = s.config;
  const h = embed(s, tokens); // [T, D]
  for (let il = 0; il < c.blockCount; il++) {
    prefetchExperts(s, il, h, 'post_attention_norm'); // read ahead the experts its routers predict (expert cache only)
    const p = `blk.${il}.`;
    // build_attn(..., attn_sinks, ..., 1.0f/sqrtf(float(n_rot)), il): the default 1/sqrt(Dk) (n_rot = Dk).
    const sinks = s.weights.get(`${p}attn_sinks.weight`, [c.attention.headCount[il] as number]); // [H]
    const sliding = c.attention.slidingLayers[il] as boolean; // even layers (swa period 2)
    residual(s, h, attention(s, il, rmsNorm(s, h, `${p}attn_norm`), { sliding, sinks }));
    const x = rmsNorm(s, h, `${p}post_attention_norm`); // [T, D]
    residual(s, h, moeFFN(s, x, il, SWIGLU_OAI)); // router bias: ffn_gate_inp.bias; gating 'softmax-weight'
  }
  return outputLogits(s, h); // [T, V]
}
