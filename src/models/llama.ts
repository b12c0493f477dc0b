/**
 * llama: dense Llama and Mixtral-style MoE (experts stored under the `llama` architecture).
 * Reference: llama.cpp src/models/llama.cpp (build_llama), Mixtral (Jiang et al. 2024).
 *
 *   h = embed(tokens)
 *   for each block:  h = h + attn(rmsnorm(h))                       RoPE NORM, grouped-query
 *                    h = h + ffn(rmsnorm(h))                         SwiGLU, or for MoE blocks:
 *                        Σ_k softmax-top-k(router(x))_k · expert_k(x), weights renormalised
 *   logits = output(rmsnorm(h))                                      output = token_embd when tied
 */
import type { Tensor } from '../core/tensor.js';
import { isMoELayer } from './config.js';
import { attention, embed, moeFFN, outputLogits, prefetchExperts, residual, rmsNorm, type Step, swigluFFN } from './nn/layers.js';

export function forward(s: Step, tokens: readonly number[]): Tensor {
  const c = s.config;
  const freqFactors = s.weights.optional('rope_freqs.weight'); // llama 3 rope scaling
  const h = embed(s, tokens); // [T, D]
  for (let il = 0; il < c.blockCount; il++) {
    prefetchExperts(s, il, h); // read ahead the experts its routers predict (expert cache only)
    residual(s, h, attention(s, il, rmsNorm(s, h, `blk.${il}.attn_norm`), { freqFactors }));
    const x = rmsNorm(s, h, `blk.${il}.ffn_norm`);
    residual(s, h, isMoELayer(c, il) ? moeFFN(s, x, il) : swigluFFN(s, x, il));
  }
  return outputLogits(s, h); // [T, V]
}
