/**
 * olmoe: OLMoE (OLMoE-1B-7B), GGUF architecture `olmoe`.
 * Reference: llama.cpp src/models/olmoe.cpp; Muennighoff et al., "OLMoE: Open Mixture-of-Experts
 * Language Models" (2024).
 *
 *   h = embed(tokens)
 *   for each block:  q, k = rmsnorm(Wq x), rmsnorm(Wk x)             attn_q_norm / attn_k_norm [H·Dk]: over
 *                    h = h + Wo attn(rope(q), rope(k), Wv x)         the whole projection, then split into
 *                                                                    heads; RoPE NEOX
 *                    h = h + Σ_k p_k · expert_k(rmsnorm(h))          softmax -> top-k, not renormalised
 *   logits = output(rmsnorm(h))                                      separate output matrix
 */
import type { Tensor } from '../core/tensor.js';
import { attention, embed, moeFFN, outputLogits, prefetchExperts, residual, rmsNorm, type Step } from './nn/layers.js';

export function forward(s: Step, tokens: readonly number[]): Tensor {
  const c = s.config;
  const h = embed(s, tokens); // [T, D]
  for (let il = 0; il < c.blockCount; il++) {
    prefetchExperts(s, il, h); // read ahead the experts its routers predict (expert cache only)
    const p = `blk.${il}.`;
    // "Qcur = build_norm(Qcur, model.layers[il].attn_q_norm, ...)" on [H·Dk, T], before ggml_reshape_3d.
    residual(s, h, attention(s, il, rmsNorm(s, h, `${p}attn_norm`), { qkNorm: 'full' }));
    // build_moe_ffn(..., LLM_FFN_SILU, false /* norm_w */, ..., GATING_FUNC_TYPE_SOFTMAX)
    residual(s, h, moeFFN(s, rmsNorm(s, h, `${p}ffn_norm`), il));
  }
  return outputLogits(s, h); // [T, V]
}
