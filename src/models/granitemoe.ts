/**
 * granitemoe: IBM Granite MoE (granite-3.x-{1b-a400m,3b-a800m}), GGUF architecture `granitemoe`.
 * Reference: llama.cpp src/models/granite.cpp (llama_model_granite::graph, which granite-moe.cpp
 * reuses) and the embedding scale in llm_graph_context::build_inp_embd (src/llama-graph.cpp);
 * IBM, "Granite 3.0 Language Models" (2024).
 *
 *   h = embed(tokens) · embeddingScale                              (12 in the golden model)
 *   for each block:  h = h + residualScale · Wo attn(rmsnorm(h))    RoPE NORM, q·k × attention.scale
 *                    x = rmsnorm(h)
 *                    h = h + residualScale · (Σ_k w_k · expert_k(x)  softmax -> top-k -> renormalised
 *                                             + sharedExpert(x))     (Granite MoE Shared only)
 *   logits = output(rmsnorm(h)) / logitScale                        output = token_embd when tied
 */
import type { Tensor } from '../core/tensor.js';
import { attention, embed, moeFFN, outputLogits, prefetchExperts, residual, rmsNorm, type Step, swigluFFN } from './nn/layers.js';

export function forward(s: Step, tokens: readonly number[]): Tensor {
  const c = s.config;
  const m = c.moe;
  const freqFactors = s.weights.optional('rope_freqs.weight'); // llama_model::get_rope_factors
  const h = embed(s, tokens); // [T, D]
  // build_inp_embd: "cur = ggml_scale(ctx0, cur, hparams.f_embedding_scale)" when it is not 0.
  if (c.embeddingScale !== 1) s.backend.scale(h, h, c.embeddingScale);
  for (let il = 0; il < c.blockCount; il++) {
    prefetchExperts(s, il, h); // read ahead the experts its routers predict (expert cache only)
    const p = `blk.${il}.`;
    // kq_scale = f_attention_scale, or 1/sqrt(Dk) when 0: attention() reads config.attention.scale.
    residual(s, h, attention(s, il, rmsNorm(s, h, `${p}attn_norm`), { freqFactors }), c.residualScale);
    const x = rmsNorm(s, h, `${p}ffn_norm`); // [T, D]
    // build_moe_ffn(..., LLM_FFN_SILU, true /* norm_w */, ..., GATING_FUNC_TYPE_SOFTMAX)
    const ffn = moeFFN(s, x, il); // [T, D]
    // "For Granite MoE Shared": an ungated shared expert when expert_shared_feed_forward_length > 0.
    if (m && m.sharedExpertCount > 0) s.backend.add(ffn, ffn, swigluFFN(s, x, il, '_shexp'));
    residual(s, h, ffn, c.residualScale);
  }
  const logits = outputLogits(s, h); // [T, V]
  // "cur = ggml_scale(ctx0, cur, 1.0f / hparams.f_logit_scale)"
  s.backend.scale(logits, logits, 1 / c.logitScale);
  return logits;
}
