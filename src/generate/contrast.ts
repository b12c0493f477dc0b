/**
 * Self-contrast decoding for MoE models: the next-token scores contrast the model's normal
 * ("strong") routing with a weaker routing of the same model (e.g. only one lower-ranked expert), so
 * what the unchosen experts get wrong is pushed down. Reference: Shi et al. 2024, "Unchosen
 * Experts Can Contribute Too: Unleashing MoE Models' Power by Self-Contrast" (SCMoE, NeurIPS
 * 2024, arXiv 2405.14507), official code github.com/DavidFanzz/SCMoE, decodingmethod/moe_utils.py.
 *
 * Parameters, with the reference's defaults (generate.py: --cd_alpha 0.1, --cd_beta 0.5):
 *   beta  >= 0 : contrast strength; 0 gives the strong logits back (masked); the README
 *                calls it "the parameter β in SCMoE" and sets it per run (--cd_beta).
 *   alpha in [0, 1] : plausibility cut, relative to the strong distribution's top probability;
 *                0 keeps every token, 1 keeps only the strong argmax (and its ties).
 * The caller picks the weak routing and runs the model twice; the README's example on Mixtral is
 * top-2 strong and, weak, the single expert ranked third (--student_routed_tok 2, from 0).
 * The reference divides both rows by temperatures (--cd_tt, --cd_st, default 1): pass scaled rows
 * for other values. It also bans EOS unless early stopping; that is a generation choice, not here.
 */
import { InvalidArgumentError } from '../core/errors.js';

export interface ContrastOptions {
  /** Contrast strength β >= 0 (reference default 0.5). */
  readonly beta: number;
  /** Plausibility threshold α in [0, 1] (reference default 0.1). */
  readonly alpha: number;
}

export const CONTRAST_DEFAULTS: ContrastOptions = { beta: 0.5, alpha: 0.1 };

/**
 * One row [V] of self-contrast scores from the strong and weak logits [V]; implausible tokens are
 * -Infinity. Feed the result to a sampler or argmax like ordinary logits.
 */
export function contrastLogits(strong: Float32Array, weak: Float32Array, o: ContrastOptions): Float32Array {
  const V = strong.length;
  if (V === 0 || weak.length !== V) {
    throw new InvalidArgumentError(`contrastLogits: strong has ${V} logits and weak ${weak.length}; they must be the same non-empty vocabulary`);
  }
  const { beta, alpha } = o;
  if (!(Number.isFinite(beta) && beta >= 0)) throw new InvalidArgumentError(`contrastLogits: beta must be a finite number >= 0 (got ${beta})`);
  if (!(alpha >= 0 && alpha <= 1)) throw new InvalidArgumentError(`contrastLogits: alpha must be in [0, 1] (got ${alpha})`);
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) max = Math.max(max, strong[v] as number);
  // moe_utils.py, scmoe():
  //   cutoff = torch.log(torch.tensor(alpha)) + next_token_scores.max(dim=-1, keepdim=True).values
  //   diffs = (1 + beta) * next_token_scores - beta * next_token_logits_student
  //   cdlogits = diffs.masked_fill(next_token_scores < cutoff, -float("inf"))
  // z_s(x) >= log α + max z_s  <=>  p_s(x) >= α · max p_s (the softmax normaliser cancels). Written
  // on log-probabilities instead, the contrast differs by one constant per row, so the softmax
  // and the argmax are the same.
  const cutoff = Math.log(alpha) + max;
  const out = new Float32Array(V);
  for (let v = 0; v < V; v++) {
    const s = strong[v] as number;
    // beta = 0 skips the weak term, so a -Infinity weak logit cannot turn into 0 * -Infinity = NaN.
    out[v] = s < cutoff ? Number.NEGATIVE_INFINITY : beta === 0 ? s : (1 + beta) * s - beta * (weak[v] as number);
  }
  return out;
}
