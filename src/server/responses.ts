/**
 * Response bodies in OpenAI's shapes: chat completions (`chat.completion`, streamed as
 * `chat.completion.chunk`) and text completions (`text_completion`, streamed in the same shape).
 * Reference: the OpenAI API reference (Chat Completions, Completions) and openai-node 6.x's types.
 */
import { randomBytes } from 'node:crypto';
import type { GenerateStats } from '../api/types.js';

export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** 'length' when the token limit (or the context) ended generation, else 'stop'. */
export function finishReason(stats: GenerateStats): FinishReason {
  return stats.stopReason === 'length' ? 'length' : 'stop';
}

export function usageOf(stats: GenerateStats): Usage {
  return { prompt_tokens: stats.promptTokens, completion_tokens: stats.generatedTokens, total_tokens: stats.promptTokens + stats.generatedTokens };
}

/** What every body of one response shares. */
export interface ResponseHead {
  id: string;
  created: number;
  model: string;
}

export function responseHead(kind: 'chat' | 'completion', model: string): ResponseHead {
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
  return { id, created: Math.floor(Date.now() / 1000), model };
}

/** The fields every body starts with, in OpenAI's order. */
function top(head: ResponseHead, object: string) {
  return { id: head.id, object, created: head.created, model: head.model };
}

/** One token's entry in OpenAI's chat `logprobs.content`. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export function chatCompletion(head: ResponseHead, text: string, stats: GenerateStats, logprobs?: TokenLogprob[]) {
  return {
    ...top(head, 'chat.completion'),
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text, refusal: null },
        logprobs: logprobs ? { content: logprobs, refusal: null } : null,
        finish_reason: finishReason(stats),
      },
    ],
    usage: usageOf(stats),
  };
}

/** A streamed chat chunk: a delta (the first carries the role), or the finish reason with an empty delta. */
export function chatChunk(
  head: ResponseHead,
  delta: { role?: 'assistant'; content?: string },
  finish: FinishReason | null,
  withUsage: boolean,
  logprobs?: TokenLogprob[],
) {
  return {
    ...top(head, 'chat.completion.chunk'),
    choices: [{ index: 0, delta, logprobs: logprobs ? { content: logprobs, refusal: null } : null, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  };
}

/**
 * The legacy completions' `logprobs`: per token its text, log-probability, the most likely
 * alternatives with the sampled token (up to logprobs + 1 entries, by token text) and where its
 * text starts in the completion (`offsets`, in UTF-16 code units, as JavaScript counts).
 */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export function completionLogprobs(entries: TokenLogprob[], offsets: number[]): CompletionLogprobs {
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => {
      const top: Record<string, number> = {};
      for (const t of e.top_logprobs) if (!(t.token in top)) top[t.token] = t.logprob;
      if (!(e.token in top)) top[e.token] = e.logprob;
      return top;
    }),
    text_offset: offsets,
  };
}

export function textCompletion(head: ResponseHead, text: string, stats: GenerateStats, logprobs?: CompletionLogprobs) {
  return {
    ...top(head, 'text_completion'),
    choices: [{ index: 0, text, logprobs: logprobs ?? null, finish_reason: finishReason(stats) }],
    usage: usageOf(stats),
  };
}

export function textChunk(head: ResponseHead, text: string, finish: FinishReason | null, withUsage: boolean, logprobs?: CompletionLogprobs) {
  return {
    ...top(head, 'text_completion'),
    choices: [{ index: 0, text, logprobs: logprobs ?? null, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  };
}

/** The last chunk when stream_options.include_usage is set: no choices, the request's usage. */
export function usageChunk(head: ResponseHead, kind: 'chat' | 'completion', stats: GenerateStats) {
  return { ...top(head, kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'), choices: [], usage: usageOf(stats) };
}
