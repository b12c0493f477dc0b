/**
 * The server through the official `openai` client (6.x) on loopback, with the embedded model:
 * chat and completions, streamed and not, give the text the library's own greedy generation gives
 * with the same options; usage figures, include_usage, stop strings, max_tokens -> 'length',
 * models.list, and the `switchyard` extension's routing controls.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import { loadModel } from '../../src/api/model.js';
import type { GenerateOptions, GenerateStats, LoadedModel } from '../../src/api/types.js';
import { createServer, type SwitchyardServer } from '../../src/server/server.js';

const file = findDefaultModel();
let model: LoadedModel;
let server: SwitchyardServer;
let client: OpenAI;

/** The options an OpenAI request with temperature 0 maps to. */
const GREEDY: GenerateOptions = { temperature: 0, topP: 1, topK: 0, minP: 0 };

async function library(events: AsyncIterable<{ type: string; text?: string; stats?: GenerateStats }>) {
  let text = '';
  let stats: GenerateStats | undefined;
  for await (const e of events) {
    if (e.type === 'token') text += e.text;
    else stats = e.stats;
  }
  return { text, stats: stats as GenerateStats };
}

/** Both a ChatMessage[] and OpenAI's message params. */
const MESSAGES: { role: 'system' | 'user'; content: string }[] = [
  { role: 'system', content: 'You are a sailor.' },
  { role: 'user', content: 'Tell me about the whale.' },
];

describe.skipIf(!file)('the server with the openai client', () => {
  beforeAll(async () => {
    model = await loadModel(file as string, { threads: 2, contextLength: 256 });
    server = createServer(model, { apiKey: 'sk-test' });
    const { port } = await server.listen(0, '127.0.0.1');
    client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-test', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await model?.close();
  });

  it('lists the model', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['switchyard-tiny-moe']);
    expect(page.data[0]?.object).toBe('model');
    const one = await client.models.retrieve('switchyard-tiny-moe');
    expect(one.id).toBe('switchyard-tiny-moe');
  });

  it('chat, not streamed: the library greedy text, usage and finish_reason', async () => {
    const want = await library(model.chat(MESSAGES, { ...GREEDY, maxTokens: 24 }));
    const r = await client.chat.completions.create({ model: 'anything', messages: MESSAGES, temperature: 0, max_tokens: 24 });
    expect(r.object).toBe('chat.completion');
    expect(r.id).toMatch(/^chatcmpl-/);
    expect(r.model).toBe('anything');
    expect(typeof r.created).toBe('number');
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]?.message.role).toBe('assistant');
    expect(r.choices[0]?.message.content).toBe(want.text);
    expect(r.choices[0]?.finish_reason).toBe(want.stats.stopReason === 'length' ? 'length' : 'stop');
    expect(r.usage).toEqual({
      prompt_tokens: want.stats.promptTokens,
      completion_tokens: want.stats.generatedTokens,
      total_tokens: want.stats.promptTokens + want.stats.generatedTokens,
    });
  });

  it('chat, streamed with include_usage: the same text, then a usage chunk', async () => {
    const want = await library(model.chat(MESSAGES, { ...GREEDY, maxTokens: 20 }));
    const stream = await client.chat.completions.create({
      model: 'm',
      messages: MESSAGES,
      temperature: 0,
      max_completion_tokens: 20,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(want.text);
    const finishes = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter((f) => f !== null);
    expect(finishes).toEqual(['length']);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual({ prompt_tokens: want.stats.promptTokens, completion_tokens: 20, total_tokens: want.stats.promptTokens + 20 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('chat, streamed without include_usage: no usage chunk', async () => {
    const stream = await client.chat.completions.create({ model: 'm', messages: MESSAGES, temperature: 0, max_tokens: 5, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.usage === undefined && c.choices.length === 1)).toBe(true);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('length');
  });

  it('completions, streamed and not: the library greedy text', async () => {
    const prompt = 'Call me Ishmael. Some years ago';
    const want = await library(model.generate(prompt, { ...GREEDY, maxTokens: 16 }));
    const r = await client.completions.create({ model: 'm', prompt, temperature: 0, max_tokens: 16 });
    expect(r.object).toBe('text_completion');
    expect(r.id).toMatch(/^cmpl-/);
    expect(r.choices[0]?.text).toBe(want.text);
    expect(r.choices[0]?.finish_reason).toBe('length');
    expect(r.usage).toEqual({ prompt_tokens: want.stats.promptTokens, completion_tokens: 16, total_tokens: want.stats.promptTokens + 16 });

    const stream = await client.completions.create({ model: 'm', prompt, temperature: 0, max_tokens: 16, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(want.text);
    expect(finish).toBe('length');
    expect(usage?.completion_tokens).toBe(16);
  });

  it('stop strings end the text before them with finish_reason stop', async () => {
    const full = await library(model.chat(MESSAGES, { ...GREEDY, maxTokens: 40 }));
    // A stop string taken from the middle of the greedy answer.
    const words = full.text.split(/\s+/).filter((w) => w.length >= 3);
    const stop = words[Math.floor(words.length / 2)] as string;
    expect(stop).toBeDefined();
    const want = full.text.slice(0, full.text.indexOf(stop));
    const r = await client.chat.completions.create({ model: 'm', messages: MESSAGES, temperature: 0, max_tokens: 40, stop: [stop, 'zzzzz'] });
    expect(r.choices[0]?.message.content).toBe(want);
    expect(r.choices[0]?.finish_reason).toBe('stop');
    const one = await client.chat.completions.create({ model: 'm', messages: MESSAGES, temperature: 0, max_tokens: 40, stop });
    expect(one.choices[0]?.message.content).toBe(want);
  });

  it('sampling with a seed is reproducible and matches the library with OpenAI defaults', async () => {
    const want = await library(model.chat(MESSAGES, { temperature: 0.9, topP: 0.9, topK: 0, minP: 0, seed: 7, maxTokens: 16 }));
    const r = await client.chat.completions.create({ model: 'm', messages: MESSAGES, temperature: 0.9, top_p: 0.9, seed: 7, max_tokens: 16 });
    expect(r.choices[0]?.message.content).toBe(want.text);
  });

  it('accepts routing controls in the switchyard extension (a ban) and applies them', async () => {
    const routing = { ban: [{ layer: 0, expert: 0 }, { layer: 1, expert: 3 }], topK: 1 };
    const want = await library(model.chat(MESSAGES, { ...GREEDY, maxTokens: 16, routing }));
    const plain = await library(model.chat(MESSAGES, { ...GREEDY, maxTokens: 16 }));
    const r = await client.chat.completions.create({
      model: 'm',
      messages: MESSAGES,
      temperature: 0,
      max_tokens: 16,
      // @ts-expect-error the extension is not in OpenAI's types; the client sends it as is
      switchyard: { routing },
    });
    expect(r.choices[0]?.message.content).toBe(want.text);
    expect(want.text).not.toBe(plain.text);
  });

  it('refuses a bad routing control through the client as a 400 naming the field', async () => {
    const error = await client.chat.completions
      .create({
        model: 'm',
        messages: MESSAGES,
        // @ts-expect-error the extension
        switchyard: { routing: { topK: 99 } },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('switchyard.routing.topK');
  });
  it('logprobs: each token\'s log-probability and its most likely alternatives, streamed and not', async () => {
    const req = { model: 'm', messages: MESSAGES, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 } as const;
    const r = await client.chat.completions.create(req);
    const content = r.choices[0]?.logprobs?.content ?? [];
    expect(content.length).toBe(r.usage?.completion_tokens);
    for (const t of content) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.top_logprobs).toHaveLength(3);
      const lps = t.top_logprobs.map((a) => a.logprob);
      expect([...lps].sort((a, b) => b - a)).toEqual(lps);
      // greedy: the chosen token is the most likely one
      expect(t.top_logprobs[0]?.token).toBe(t.token);
      expect(t.top_logprobs[0]?.logprob).toBe(t.logprob);
      expect(Buffer.from(t.bytes ?? []).toString('utf8')).toBe(t.token);
    }
    expect(content.map((t) => t.token).join('')).toBe(r.choices[0]?.message.content);
    const streamed = [];
    for await (const c of await client.chat.completions.create({ ...req, stream: true })) streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
    expect(streamed).toEqual(content);
  });

  it('completions logprobs: tokens, their log-probabilities (as log-softmax of the model\'s logits), alternatives and offsets', async () => {
    const prompt = 'The whale';
    const req = { model: 'm', prompt, max_tokens: 8, temperature: 0, logprobs: 3 } as const;
    const r = await client.completions.create(req);
    const lp = r.choices[0]?.logprobs;
    if (!lp) throw new Error('no logprobs');
    const text = r.choices[0]?.text ?? '';
    const n = r.usage?.completion_tokens ?? 0;
    expect(lp.tokens?.length).toBe(n);
    expect(lp.tokens?.join('')).toBe(text);
    // Offsets: where each token's text starts in the completion.
    let at = 0;
    lp.tokens?.forEach((t, i) => {
      expect(lp.text_offset?.[i]).toBe(at);
      at += t.length;
    });
    // The reference: log-softmax of the model's logits over prompt + completion, position by position.
    const ids: number[] = [];
    for await (const e of model.generate(prompt, { ...GREEDY, maxTokens: 8 })) if (e.type === 'token') ids.push(e.token);
    const promptIds = model.tokenize(prompt, { addSpecial: true, parseSpecial: true });
    const logits = model.logits([...promptIds, ...ids]);
    const V = model.info.vocabSize;
    ids.forEach((id, i) => {
      const row = logits.subarray((promptIds.length - 1 + i) * V, (promptIds.length + i) * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      expect(lp.token_logprobs?.[i]).toBeCloseTo((row[id] as number) - lse, 4);
      const top = lp.top_logprobs?.[i] ?? {};
      // greedy: the token is the most likely; up to logprobs + 1 alternatives, best first
      const values = Object.values(top);
      expect(values.length).toBeGreaterThanOrEqual(1);
      expect(values.length).toBeLessThanOrEqual(4);
      expect(Math.max(...values)).toBe(lp.token_logprobs?.[i]);
      expect(top[lp.tokens?.[i] as string]).toBe(lp.token_logprobs?.[i]);
    });
    // Streamed: the same entries, spread over the chunks.
    const streamed = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as unknown[], text_offset: [] as number[] };
    let base = 0;
    for await (const c of await client.completions.create({ ...req, stream: true })) {
      const x = c.choices[0]?.logprobs;
      if (x) {
        streamed.tokens.push(...(x.tokens ?? []));
        streamed.token_logprobs.push(...(x.token_logprobs ?? []));
        streamed.top_logprobs.push(...(x.top_logprobs ?? []));
        streamed.text_offset.push(...(x.text_offset ?? []));
      }
      base += c.choices[0]?.text.length ?? 0;
    }
    expect(base).toBe(text.length);
    expect(streamed).toEqual(lp);
    // Without logprobs, none.
    expect((await client.completions.create({ ...req, logprobs: null })).choices[0]?.logprobs).toBeNull();
  });
});
