/**
 * Perplexity exactly as llama.cpp's llama-perplexity computes it (tools/perplexity/perplexity.cpp,
 * function `perplexity`, at d32676d77), so that the numbers can be compared with its output:
 *
 *   1. The whole text is tokenized once with add_special = true, parse_special = false: BOS first
 *      when the vocabulary adds one. (llama-perplexity -f also drops one trailing "\n" of the file
 *      before that; that is the caller's job, e.g. the CLI's, not this function's.)
 *   2. n_chunk = floor(n_tokens / ctx) (at most `chunks`, llama-perplexity --chunks); the tail is
 *      ignored. At least 2·ctx tokens are needed.
 *   3. Chunk c is tokens[c·ctx .. c·ctx + ctx - 1], run as a fresh sequence at positions 0..ctx-1
 *      in batches of `batch` tokens; its first token is replaced by BOS when the vocabulary adds BOS
 *      ("add BOS token for the first batch of each chunk").
 *   4. Only the second half is scored: for positions j = first .. ctx - 2 (first = floor(ctx/2)),
 *      nll_j = -(l[t] - max(l) - log Σ_v exp(l[v] - max(l))) with t = tokens[c·ctx + j + 1], the
 *      exponentials in float32 and the sum and log in double (`log_softmax`).
 *   5. After each chunk the running value exp(Σ nll / count) over every token scored so far is
 *      reported (the "[c+1]value" list); the last one is the final perplexity, and
 *      stderr = final · sqrt((mean(nll²) − mean(nll)²) / (count − 1)).
 * A `batch` larger than ctx makes llama-perplexity pack several chunks into one batch: the same
 * numbers, so here it simply means one evaluation per chunk.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { InvalidArgumentError, SwitchyardError } from '../core/errors.js';
import { ContextLengthError } from '../generate/kv-cache.js';
import type { Evaluator } from './generate.js';
import type { PerplexityOptions, PerplexityResult } from './types.js';

const f = Math.fround;

/** `tokens` as tokenized in step 1; `bos` is the BOS id when the vocabulary adds BOS, else null. */
export async function perplexityOfTokens(
  model: Omit<Evaluator, 'eval'> & { eval(tokens: readonly number[], pos: number, options?: { last?: boolean }): Float32Array },
  tokens: readonly number[],
  bos: number | null,
  options: PerplexityOptions,
): Promise<PerplexityResult> {
  const ctx = options.ctx;
  const batch = Math.min(options.batch ?? ctx, ctx);
  if (!Number.isInteger(ctx) || ctx < 3) throw new InvalidArgumentError(`perplexity: ctx must be a whole number >= 3, got ${ctx}`);
  if (!Number.isInteger(batch) || batch < 1) {
    throw new InvalidArgumentError(`perplexity: batch must be a whole number >= 1, got ${options.batch}`);
  }
  if (options.chunks !== undefined && !(Number.isInteger(options.chunks) && options.chunks >= 1)) {
    throw new InvalidArgumentError(`perplexity: chunks must be a whole number >= 1, got ${options.chunks}`);
  }
  if (ctx > model.contextLength) {
    throw new ContextLengthError(
      `perplexity: chunks of ${ctx} tokens need a context of ${ctx}, the model was loaded with ${model.contextLength}: ` +
        'load it with a larger contextLength or use a smaller ctx',
    );
  }
  if (tokens.length < 2 * ctx) {
    throw new SwitchyardError(
      'E_TEXT_TOO_SHORT',
      `perplexity: the text has ${tokens.length} tokens; a context of ${ctx} needs at least ${2 * ctx} (as llama-perplexity)`,
    );
  }

  const V = model.vocabSize;
  const first = Math.floor(ctx / 2);
  const nChunk = Math.min(Math.floor(tokens.length / ctx), options.chunks ?? Number.POSITIVE_INFINITY);
  const chunks: number[] = [];
  let nll = 0;
  let nll2 = 0;
  let count = 0;
  for (let c = 0; c < nChunk; c++) {
    if (model.closed) throw new SwitchyardError('E_CLOSED', 'perplexity: the model was closed');
    const start = c * ctx;
    const chunk = tokens.slice(start, start + ctx);
    if (bos !== null) chunk[0] = bos;
    for (const [b, end] of evaluations(ctx, batch, first)) {
      if (end <= first) {
        model.eval(chunk.slice(b, end), b, { last: true }); // nothing to score: fills the cache
        continue;
      }
      const logits = model.eval(chunk.slice(b, end), b); // [end - b, V]
      for (let j = b; j < Math.min(end, ctx - 1); j++) {
        const v = -logSoftmax(logits.subarray((j - b) * V, (j - b + 1) * V), tokens[start + j + 1] as number);
        nll += v;
        nll2 += v * v;
        count++;
      }
    }
    const running = Math.exp(nll / count);
    chunks.push(running);
    options.onChunk?.(c, running);
    await nextTurn();
  }
  const mean = nll / count;
  const final = Math.exp(mean);
  const variance = nll2 / count - mean * mean;
  return { tokens: tokens.length, chunks, final, finalStderr: variance > 0 ? final * Math.sqrt(variance / (count - 1)) : 0 };
}

/**
 * The evaluations of one chunk, [start, end) positions: batches of `batch` tokens, the one that
 * holds position `first` cut there, so that the output projection runs for scored rows only
 * (llama-perplexity, likewise, asks for logits only where `pos >= first`). The same numbers as
 * one batch: rows do not interact except through the KV cache.
 */
function evaluations(ctx: number, batch: number, first: number): [number, number][] {
  const out: [number, number][] = [];
  for (let b = 0; b < ctx; b += batch) {
    const end = Math.min(b + batch, ctx);
    if (b < first && end > first) out.push([b, first], [first, end]);
    else out.push([b, end]);
  }
  return out;
}

/** log softmax(row)[t], as llama-perplexity's log_softmax: float exponentials, double sum and log. */
function logSoftmax(row: Float32Array, t: number): number {
  let max = row[0] as number;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > max) max = row[i] as number;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += f(Math.exp(f((row[i] as number) - max)));
  return f((row[t] as number) - max) - Math.log(sum);
}
