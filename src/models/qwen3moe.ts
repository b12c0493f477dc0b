/**
 * qwen3moe: Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B), GGUF architecture `qwen3moe`.
 * Reference: llama.cpp src/models/qwen3moe.cpp; Qwen team, "Qwen3 Technical Report" (2025).
 *
 *   h = embed(tokens)
 *   for each block:  q, k = rmsnorm(Wq x), rmsnorm(Wk x) per head     attn_q_norm / attn_k_norm [Dk],
 *                    h = h + Wo attn(rope(q), rope(k), Wv x)           before RoPE NEOX; H·Dk may differ from D
 *                    h = h + Σ_k w_k · expert_k(rmsnorm(h))           softmax -> top-k -> renormalised
 *   logits = output(rmsnorm(h))                                       output = token_embd when tied
 */
import type { Tensor } from '../core/tensor.js';
import { attention, embed, moeFFN, outputLogits, prefetchExperts, residual, rmsNorm, type Step } from './nn/layers.js';

export function forward(s: Step, tokens: readonly number[]): Tensor {
  const c = s.config;
  const h = embed(s, tokens); // [T, D]
  for (let il = 0; il < c.blockCount; il++) {
    prefetchExperts(s, il, h); // read ahead the experts its routers predict (expert cache only)
    const p = `blk.${il}.`;
    // "Qcur = build_norm(Qcur, model.layers[il].attn_q_norm, NULL, LLM_NORM_RMS, il)" on [Dk, H, T]: per head.
    residual(s, h, attention(s, il, rmsNorm(s, h, `${p}attn_norm`), { qkNorm: 'head' }));
    // build_moe_ffn(..., LLM_FFN_SILU, true /* norm_w */, ..., GATING_FUNC_TYPE_SOFTMAX): config.moe says so.
    residual(s, h, moeFFN(s, rmsNorm(s, h, `${p}ffn_norm`), il));
  }
  return outputLogits(s, h); // [T, V]
}
