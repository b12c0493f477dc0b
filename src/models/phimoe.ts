/**
 * phimoe: Phi-3.5-MoE, GGUF architecture `phimoe`; llama.cpp runs it with the phi3 graph.
 * Reference: llama.cpp src/models/phi3.cpp (llama_model_phi3::graph, which phimoe.cpp reuses),
 * llama_model::get_rope_factors (src/llama-model.cpp); Microsoft, "Phi-3 Technical Report" (2024).
 *
 *   h = embed(tokens)
 *   for each block:  h = h + Wo attn(rmsnorm(h) + b) + bo       q/k/v/o biases, RoPE NEOX with the
 *                                                               LongRoPE factors, cos/sin × attn_factor
 *                    h = h + Σ_k w_k · expert_k(rmsnorm(h) + b)  softmax -> top-2 -> renormalised
 *   logits = output(rmsnorm(h) + b) + b_out                     separate output matrix with a bias
 *
 * The norms are RMSNorm plus a bias (build_norm(..., attn_norm_b, LLM_NORM_RMS)), not LayerNorm.
 * phi3.cpp scales Q before the product ("Qcur = ggml_scale(ctx0, Qcur, 1.0f / sqrtf(float(n_embd_head)))",
 * then build_attn(..., 1.0f, il)); the attention kernel's scale of q·k is the same product up to
 * float32 rounding. `attention.sliding_window` is ignored, as llama.cpp's phi3 loader disables
 * Phi SWA; `rope.scaling.attn_factor` reaches the kernel through ropeParams.
 */
import type { Tensor } from '../core/tensor.js';
import { attention, embed, moeFFN, outputLogits, prefetchExperts, residual, rmsNorm, type Step } from './nn/layers.js';

/**
 * The LongRoPE frequency divisors [Dk / 2] (llama_model::get_rope_factors): `rope_freqs` when
 * present, else `rope_factors_long` when the context exceeds the original context length,
 * else `rope_factors_short`. llama.cpp pads n_ctx to a multiple of 256 first
 * ("cparams.n_ctx = GGML_PAD(cparams.n_ctx, 256)"), so the choice is made on the padded size.
 */
function ropeFactors(s: Step): Tensor | undefined {
  const freqs = s.weights.optional('rope_freqs.weight');
  if (freqs) return freqs;
  const nCtx = Math.ceil(s.cache.size / 256) * 256;
  const long = nCtx > s.config.rope.originalContextLength;
  return s.weights.optional(long ? 'rope_factors_long.weight' : 'rope_factors_short.weight');
}

export function forward(s: Step, tokens: readonly number[]): Tensor {
  const c = s.config;
  const freqFactors = ropeFactors(s);
  const h = embed(s, tokens); // [T, D]
  for (let il = 0; il < c.blockCount; il++) {
    prefetchExperts(s, il, h); // read ahead the experts its routers predict (expert cache only)
    const p = `blk.${il}.`;
    residual(s, h, attention(s, il, rmsNorm(s, h, `${p}attn_norm`), { freqFactors }));
    // build_moe_ffn(..., LLM_FFN_SILU, true /* norm_w */, ..., GATING_FUNC_TYPE_SOFTMAX)
    residual(s, h, moeFFN(s, rmsNorm(s, h, `${p}ffn_norm`), il));
  }
  return outputLogits(s, h); // [T, V]: output_norm + its bias, output.weight + output.bias
}
