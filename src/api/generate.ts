/**
 * The decode loop: the prompt in one batch, then one token at a time through the KV cache,
 * each sampled (src/generate/sampler.ts), decoded to text without splitting a character (the
 * tokenizer's streaming decoder) and checked against the stop tokens and stop strings
 * (src/generate/stop.ts). Reference: llama.cpp tools/completion/completion.cpp (the prompt's
 * tokens are accepted into the sampler's penalty window before generation starts).
 *
 * Between tokens the loop yields to the event loop, so an AbortSignal fired by a timer or a
 * signal handler is seen before the next step. An incomplete character at the very end of a
 * generation (a cut by maxTokens inside a multi-byte character) is not output.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { InvalidArgumentError } from '../core/errors.js';
import { ContextLengthError } from '../generate/kv-cache.js';
import { Sampler } from '../generate/sampler.js';
import { StopStrings, stopTokenSet, type TokenText } from '../generate/stop.js';
import type { StreamingDecoder } from '../tokenizer/tokenizer.js';
import { type ExpertCacheStats, statsSince } from '../experts/stats.js';
import type { GenerateEvent, GenerateOptions, GenerateStats, LayerRouting } from './types.js';

/** What generation and perplexity need of a model. */
export interface Evaluator {
  readonly vocabSize: number;
  /** Positions the KV cache holds. */
  readonly contextLength: number;
  /**
   * Logits [T, V] of tokens at positions [pos, pos + T) (only the last row with `last`); a
   * promise when the step runs in a batch with other sequences' (src/api/batch.ts).
   */
  eval(tokens: readonly number[], pos: number, options?: { last?: boolean }): Float32Array | Promise<Float32Array>;
  /** True once the model is closed: nothing may be evaluated any more. */
  readonly closed: boolean;
  /** Expert cache counters so far (models with offloaded experts). */
  expertStats?(): ExpertCacheStats | undefined;
  /** With tracing on: the routing of the last row of the last eval, per MoE layer. */
  lastRouting?(): LayerRouting[] | undefined;
}

/** What generation needs of a tokenizer (Tokenizer has it). */
export interface GenerationTokenizer {
  createStreamingDecoder(): StreamingDecoder;
  endOfGenerationIds(): number[];
  isEndOfGeneration(id: number): boolean;
}

/** log softmax(logits)[token], and the topN most likely tokens with theirs (float64, ties: lower id). */
export function logProbabilities(logits: Float32Array, token: number, topN: number): { logprob: number; topLogprobs: { token: number; logprob: number }[] } {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const top: number[] = [];
  if (topN > 0) {
    // A partial selection: keep the best topN ids seen so far, sorted.
    for (let v = 0; v < logits.length; v++) {
      const x = logits[v] as number;
      if (top.length === topN && x <= (logits[top[topN - 1] as number] as number)) continue;
      let at = top.length;
      while (at > 0 && (logits[top[at - 1] as number] as number) < x) at--;
      top.splice(at, 0, v);
      if (top.length > topN) top.pop();
    }
  }
  return {
    logprob: (logits[token] as number) - lse,
    topLogprobs: top.map((v) => ({ token: v, logprob: (logits[v] as number) - lse })),
  };
}

export async function* generateTokens(
  model: Evaluator,
  tokenizer: GenerationTokenizer,
  prompt: readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<GenerateEvent> {
  const maxTokens = options.maxTokens ?? Number.POSITIVE_INFINITY;
  if (maxTokens !== Number.POSITIVE_INFINITY && !(Number.isInteger(maxTokens) && maxTokens >= 0)) {
    throw new InvalidArgumentError(`maxTokens must be a whole number >= 0, got ${maxTokens}`);
  }
  if (prompt.length === 0) {
    throw new InvalidArgumentError('the prompt is empty (and the vocabulary adds no BOS token): give at least one token');
  }
  if (prompt.length > model.contextLength) {
    throw new ContextLengthError(
      `the prompt has ${prompt.length} tokens and the context holds ${model.contextLength}: ` +
        'shorten the prompt or load the model with a larger contextLength',
    );
  }
  const sampler = new Sampler(model.vocabSize, options); // validates the sampling options
  const stops = new StopStrings(options.stop ?? []);
  const stopTokens = stopTokenSet(options.stopTokens, tokenizer.endOfGenerationIds());
  const decoder = tokenizer.createStreamingDecoder();
  const signal = options.signal;
  const stopped = () => signal?.aborted === true || model.closed;

  const stats: GenerateStats = {
    promptTokens: prompt.length,
    generatedTokens: 0,
    promptSeconds: 0,
    decodeSeconds: 0,
    promptTokensPerSecond: 0,
    decodeTokensPerSecond: 0,
    stopReason: 'length',
    peakMemoryBytes: 0,
  };
  const expertsBefore = model.expertStats?.();
  const done = (): GenerateEvent => {
    const expertsNow = model.expertStats?.();
    if (expertsNow && expertsBefore) stats.experts = statsSince(expertsNow, expertsBefore);
    stats.promptTokensPerSecond = stats.promptSeconds > 0 ? stats.promptTokens / stats.promptSeconds : 0;
    const later = stats.generatedTokens - 1;
    stats.decodeTokensPerSecond = later > 0 && stats.decodeSeconds > 0 ? later / stats.decodeSeconds : 0;
    stats.peakMemoryBytes = process.resourceUsage().maxRSS * 1024;
    return { type: 'done', stats };
  };
  // With options.trace / logprobs, each token carries the routing of the step whose logits it was
  // sampled from and its log-probabilities (released in sampling order, so a FIFO keeps them
  // paired with their tokens through stop-string holdback).
  const topN = options.logprobs;
  if (topN !== undefined && !(Number.isInteger(topN) && topN >= 0 && topN <= 20)) {
    throw new InvalidArgumentError(`logprobs must be a whole number from 0 to 20 (alternatives per token), got ${topN}`);
  }
  const extras: Pick<Extract<GenerateEvent, { type: 'token' }>, 'routing' | 'logprob' | 'topLogprobs'>[] = [];
  const tokenEvent = (t: TokenText): GenerateEvent => ({ type: 'token', token: t.token, text: t.text, ...(extras.shift() ?? {}) });

  if (stopped()) {
    stats.stopReason = 'aborted';
    yield done();
    return;
  }

  // A model closed while a step waits for its batch ends the generation ('aborted'), as between steps.
  const step = async (tokens: readonly number[], at: number): Promise<Float32Array | undefined> => {
    try {
      return await model.eval(tokens, at, { last: true }); // [V]
    } catch (e) {
      if (stopped()) return undefined;
      throw e;
    }
  };

  for (const t of prompt) sampler.accept(t);
  let start = performance.now();
  let logits = await step(prompt, 0);
  if (!logits) {
    stats.stopReason = 'aborted';
    yield done();
    return;
  }
  let pos = prompt.length;
  let timing: 'promptSeconds' | 'decodeSeconds' = 'promptSeconds';
  let stringStop = false;
  for (;;) {
    if (stats.generatedTokens >= maxTokens) {
      stats[timing] += (performance.now() - start) / 1000; // maxTokens 0: the prompt only
      break;
    }
    const raw = topN !== undefined ? logits.slice() : undefined; // the model's distribution, before sampling
    const token = sampler.sample(logits);
    sampler.accept(token);
    const routing = options.trace ? model.lastRouting?.() : undefined;
    extras.push({ ...(routing ? { routing } : {}), ...(raw && topN !== undefined ? logProbabilities(raw, token, topN) : {}) });
    stats.generatedTokens++;
    stats[timing] += (performance.now() - start) / 1000;
    if (stopTokens.has(token)) {
      stats.stopReason = tokenizer.isEndOfGeneration(token) ? 'end-of-generation' : 'stop';
      break;
    }
    const held = stops.push(token, decoder.push(token));
    for (const t of held.release) yield tokenEvent(t);
    if (held.stop !== undefined) {
      stats.stopReason = 'stop';
      stringStop = true;
      break;
    }
    if (stats.generatedTokens >= maxTokens || pos >= model.contextLength) break; // 'length'
    await nextTurn();
    if (stopped()) {
      stats.stopReason = 'aborted';
      break;
    }
    start = performance.now();
    timing = 'decodeSeconds';
    logits = await step([token], pos);
    if (!logits) {
      stats.stopReason = 'aborted';
      break;
    }
    pos++;
  }
  if (!stringStop) for (const t of stops.finish()) yield tokenEvent(t);
  yield done();
}
