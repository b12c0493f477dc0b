/**
 * deepseek2: DeepSeek-V2, V2-Lite and V3 (and models converted to this architecture).
 * Reference: llama.cpp src/models/deepseek2.cpp (llama_model_deepseek2::graph, the MLA branch),
 * build_moe_ffn in src/llama-graph.cpp; DeepSeek-AI, "DeepSeek-V2" (2024) and "DeepSeek-V3
 * Technical Report" (2024).
 *
 *   h = embed(tokens)
 *   for each block:  h = h + mla(rmsnorm(h))                multi-head latent attention, nn/mla.ts
 *                    x = rmsnorm(h)
 *                    h = h + ffn(x)                          SwiGLU in the leading dense blocks, else:
 *                        Σ_k w_k · expert_k(x) + shared(x)   routed experts + the shared experts
 *                                                            (one SwiGLU of width F × shared, no gate)
 *   logits = output(rmsnorm(h))                              output = token_embd when tied
 *
 * Routing (route.ts from config.moe): V2 softmax over the experts -> top-k, weights not
 * renormalised; V3 sigmoid, selection scores + exp_probs_b, the best expert groups kept, top-k,
 * weights = the unbiased probabilities, renormalised; both × expert_weights_scale.
 */
import type { Tensor } from '../core/tensor.js';
import { isMoELayer } from './config.js';
import { mlaAttention } from './nn/mla.js';
import { embed, moeFFN, outputLogits, prefetchExperts, residual, rmsNorm, type Step, swigluFFN } from './nn/layers.js';

/** The MoE block's FFN: routed experts plus the shared ones (llama.cpp: "cur = ggml_add(ctx0, moe_out, ffn_shexp)"). */
function expertsFFN(s: Step, x: Tensor, il: number): Tensor {
  const routed = moeFFN(s, x, il); // [T, D]
  s.backend.add(routed, routed, swigluFFN(s, x, il, '_shexp'));
  return routed;
}

export function forward(s: Step, tokens: readonly number[]): Tensor {
  const c = s.config;
  const h = embed(s, tokens); // [T, D]
  for (let il = 0; il < c.blockCount; il++) {
    prefetchExperts(s, il, h); // read ahead the experts its routers predict (expert cache only)
    residual(s, h, mlaAttention(s, il, rmsNorm(s, h, `blk.${il}.attn_norm`)));
    const x = rmsNorm(s, h, `blk.${il}.ffn_norm`); // [T, D]
    residual(s, h, isMoELayer(c, il) ? expertsFFN(s, x, il) : swigluFFN(s, x, il));
  }
  return outputLogits(s, h); // [T, V]
}
