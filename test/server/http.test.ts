/**
 * The server's HTTP surface with raw fetch, on the embedded model: every refused request is a 4xx
 * in OpenAI's error shape naming the field; the API key; the queue (429 with Retry-After when
 * full); a client that disconnects frees the model; /metrics in Prometheus text; 404 / 405; CORS
 * only when asked for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import { loadModel } from '../../src/api/model.js';
import type { LoadedModel } from '../../src/api/types.js';
import { createServer, type ServerOptions, type SwitchyardServer } from '../../src/server/server.js';

const file = findDefaultModel();
let model: LoadedModel;
const servers: SwitchyardServer[] = [];

async function start(options: ServerOptions = {}): Promise<{ server: SwitchyardServer; url: string }> {
  const server = createServer(model, options);
  servers.push(server);
  const { port, host } = await server.listen(0, '127.0.0.1');
  expect(host).toBe('127.0.0.1');
  return { server, url: `http://127.0.0.1:${port}` };
}

function post(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

/** A 4xx in OpenAI's error shape; returns the error object. */
async function expectError(r: Response, status: number, param?: string | null, message?: RegExp) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/application\/json/);
  const body = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof body.error.message).toBe('string');
  if (status < 500 && status !== 429) expect(body.error.type).toBe('invalid_request_error');
  if (param !== undefined) expect(body.error.param).toBe(param);
  if (message) expect(body.error.message).toMatch(message);
  return body.error;
}

const chat = (extra: Record<string, unknown> = {}) => ({ model: 'm', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, temperature: 0, ...extra });

/** Reads an SSE response until its first data event. */
async function firstEvent(r: Response): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  const reader = (r.body as ReadableStream<Uint8Array>).getReader();
  let text = '';
  while (!text.includes('\n\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  expect(text).toMatch(/^data: \{/);
  return reader;
}

/** Waits (at most 5 s) until `ok` holds. */
async function until(ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 5000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Posts a short completion every 20 ms while the server answers 429 (at most 5 s); its last status. */
async function statusOnceFree(url: string, maxTokens: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const r = await post(`${url}/v1/completions`, { prompt: 'Hello', max_tokens: maxTokens });
    await r.body?.cancel();
    if (r.status !== 429 || Date.now() - started >= 5000) return r.status;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

describe.skipIf(!file)('the server over HTTP', () => {
  let url: string;
  beforeAll(async () => {
    model = await loadModel(file as string, { threads: 2, contextLength: 256, expertMemory: '50%' });
    ({ url } = await start({ maxBodyBytes: 4096 }));
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await model?.close();
  });

  it('GET /health, and a chat completion with raw fetch', async () => {
    const h = await fetch(`${url}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok' });
    const r = await post(`${url}/v1/chat/completions`, chat());
    expect(r.status).toBe(200);
    const body = (await r.json()) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    expect(body.choices[0]?.finish_reason).toBe('length');
    expect(body.usage.completion_tokens).toBe(4);
  });

  it('streams server-sent events ending with [DONE]', async () => {
    const r = await post(`${url}/v1/chat/completions`, chat({ stream: true }));
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await r.text();
    const events = text.split('\n\n').filter((e) => e !== '');
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('with "switchyard": {"trace": true}, streams each token\'s routing; /switchyard/info describes the grid', async () => {
    const info = (await (await fetch(`${url}/switchyard/info`)).json()) as { layers: number[]; experts: number; used: number };
    expect(info).toMatchObject({ layers: [0, 1, 2, 3], experts: 16, used: 2 });
    const r = await post(`${url}/v1/chat/completions`, chat({ stream: true, switchyard: { trace: true } }));
    const chunks = (await r.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => JSON.parse(e.slice(6)) as { choices: { delta: { content?: string } }[]; switchyard?: { routing: { layer: number; ids: number[] }[] } });
    const withText = chunks.filter((c) => c.choices[0]?.delta.content);
    expect(withText.length).toBeGreaterThan(0);
    for (const c of withText) {
      expect(c.switchyard?.routing.map((l) => l.layer)).toEqual([0, 1, 2, 3]);
      for (const l of c.switchyard?.routing ?? []) expect(l.ids).toHaveLength(2);
    }
    // Not streamed: the whole trace with the response, one entry per generated token.
    const whole = (await (await post(`${url}/v1/chat/completions`, chat({ switchyard: { trace: true } }))).json()) as {
      usage: { completion_tokens: number };
      switchyard: { trace: { token: string; routing: { layer: number; ids: number[] }[] }[] };
    };
    expect(whole.switchyard.trace.length).toBeGreaterThan(0);
    expect(whole.switchyard.trace.length).toBeLessThanOrEqual(whole.usage.completion_tokens);
    for (const t of whole.switchyard.trace) expect(t.routing.map((l) => l.ids.length)).toEqual([2, 2, 2, 2]);
    // Without trace, no extension field.
    const plain = await (await post(`${url}/v1/chat/completions`, chat({ stream: true }))).text();
    expect(plain).not.toMatch(/"switchyard"/);
  });

  it.each([
    ['malformed JSON', '{"messages": [', null, /not valid JSON/],
    ['an empty body', '', null, /empty/],
    ['a body that is not an object', '[1, 2]', null, /JSON object/],
    ['missing messages', { model: 'm' }, 'messages', /required/],
    ['no messages', { messages: [] }, 'messages', /at least one/],
    ['a wrong type', chat({ temperature: 'hot' }), 'temperature', /number/],
    ['temperature out of range', chat({ temperature: 3 }), 'temperature', undefined],
    ['a fractional max_tokens', chat({ max_tokens: 2.5 }), 'max_tokens', /int/],
    ['an unknown role', { messages: [{ role: 'wizard', content: 'hi' }] }, 'messages[0].role', /system, developer, user, assistant/],
    ['a missing content', { messages: [{ role: 'user' }] }, 'messages[0].content', undefined],
    ['an image part', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content', /text parts/],
    ['a stop of the wrong type', chat({ stop: 5 }), 'stop', /string/],
    ['n > 1', chat({ n: 2 }), 'n', /not supported/],
    ['top_logprobs without logprobs', chat({ top_logprobs: 2 }), 'top_logprobs', /needs logprobs: true/],
    ['too many top_logprobs', chat({ logprobs: true, top_logprobs: 21 }), 'top_logprobs', /from 0 to 20/],
    ['tools', chat({ tools: [{ type: 'function', function: { name: 'f' } }] }), 'tools', /not supported/],
    ['functions', chat({ functions: [{ name: 'f' }] }), 'functions', /not supported/],
    ['a JSON response format', chat({ response_format: { type: 'json_object' } }), 'response_format', /not supported/],
    ['logit_bias', chat({ logit_bias: { '5': 10 } }), 'logit_bias', /not supported/],
    ['a bad routing control', chat({ switchyard: { routing: { topK: 0 } } }), 'switchyard.routing.topK', /topK/],
    ['a ban of an expert that does not exist', chat({ switchyard: { routing: { ban: [{ layer: 0, expert: 99 }] } } }), 'switchyard.routing.ban[0]', /expert/],
    ['a steering profile path', chat({ switchyard: { routing: { profile: '/etc/passwd' } } }), 'switchyard.routing.profile', /not a recognized field/],
    ['an unknown extension field', chat({ switchyard: { file: 'x.gguf' } }), 'switchyard.file', /not a recognized field/],
    ['a bad contrast', chat({ switchyard: { contrast: { beta: 1, alpha: 2 } } }), 'switchyard.contrast.alpha', undefined],
  ])('refuses %s on /v1/chat/completions with a 400 naming the field', async (_what, body, param, message) => {
    await expectError(await post(`${url}/v1/chat/completions`, body), 400, param, message);
  });

  it.each([
    ['a missing prompt', { model: 'm' }, 'prompt', /required/],
    ['two prompts', { prompt: ['a', 'b'] }, 'prompt', /one prompt/],
    ['echo', { prompt: 'a', echo: true }, 'echo', /not supported/],
    ['logprobs', { prompt: 'a', logprobs: 21 }, 'logprobs', /from 0 to 20/],
    ['best_of', { prompt: 'a', best_of: 3 }, 'best_of', /not supported/],
    ['a token id outside the vocabulary', { prompt: [1, 2, 10_000_000] }, 'prompt[2]', /vocabulary/],
  ])('refuses %s on /v1/completions with a 400 naming the field', async (_what, body, param, message) => {
    await expectError(await post(`${url}/v1/completions`, body), 400, param, message);
  });

  it('refuses a prompt longer than the context with a 400 stating the numbers', async () => {
    const long = 'the whale and the ship '.repeat(100);
    const e = await expectError(await post(`${url}/v1/chat/completions`, chat({ messages: [{ role: 'user', content: long }] })), 400, 'messages');
    expect(e.code).toBe('context_length_exceeded');
    expect(e.message).toMatch(/\d+ tokens and the context holds 256/);
    const c = await expectError(await post(`${url}/v1/completions`, { prompt: long, stream: true }), 400, 'prompt');
    expect(c.code).toBe('context_length_exceeded');
    // The model is free afterwards.
    expect((await post(`${url}/v1/completions`, { prompt: 'Hello', max_tokens: 2 })).status).toBe(200);
  });

  it('refuses an oversized body with a 413', async () => {
    const e = await expectError(await post(`${url}/v1/chat/completions`, chat({ messages: [{ role: 'user', content: 'x'.repeat(10_000) }] })), 413);
    expect(e.message).toMatch(/4096 bytes/);
  });

  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    await expectError(await fetch(`${url}/v1/nothing`), 404, null, /Invalid URL/);
    await expectError(await fetch(`${url}/nothing`), 404);
    await expectError(await post(`${url}/`, {}), 405); // the page is GET only
    const get = await fetch(`${url}/v1/chat/completions`);
    await expectError(get, 405);
    expect(get.headers.get('allow')).toBe('POST');
    await expectError(await post(`${url}/v1/models`, {}), 405);
    await expectError(await fetch(`${url}/health`, { method: 'DELETE' }), 405);
    await expectError(await fetch(`${url}/v1/models/other-model`), 404, 'model');
  });

  it('sends no CORS headers by default, and does when enabled', async () => {
    const r = await fetch(`${url}/v1/models`, { headers: { Origin: 'http://evil.example' } });
    const names: string[] = [];
    r.headers.forEach((_value, name) => {
      names.push(name);
    });
    expect(names.filter((k) => k.startsWith('access-control-'))).toEqual([]);
    await expectError(await fetch(`${url}/v1/chat/completions`, { method: 'OPTIONS', headers: { Origin: 'http://a.example' } }), 405);
    const { url: corsUrl } = await start({ cors: true });
    const pre = await fetch(`${corsUrl}/v1/chat/completions`, { method: 'OPTIONS', headers: { Origin: 'http://a.example' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
  });

  it('requires the API key on /v1 when one is set', async () => {
    const { url: keyed } = await start({ apiKey: 'sk-right' });
    const missing = await expectError(await fetch(`${keyed}/v1/models`), 401, null);
    expect(missing.code).toBe('invalid_api_key');
    await expectError(await fetch(`${keyed}/v1/models`, { headers: { Authorization: 'Bearer sk-wrong' } }), 401);
    await expectError(await post(`${keyed}/v1/chat/completions`, chat(), { Authorization: 'Bearer sk-righ' }), 401);
    await expectError(await fetch(`${keyed}/v1/nothing`), 401);
    expect((await fetch(`${keyed}/v1/models`, { headers: { Authorization: 'Bearer sk-right' } })).status).toBe(200);
    expect((await post(`${keyed}/v1/chat/completions`, chat(), { Authorization: 'Bearer sk-right' })).status).toBe(200);
    expect((await fetch(`${keyed}/health`)).status).toBe(200);
  });

  it('answers 429 with Retry-After when the queue is full; an abort frees the model', async () => {
    const { url: q } = await start({ maxQueue: 0 });
    const long = new AbortController();
    const r = await post(`${q}/v1/completions`, { prompt: 'Call me Ishmael.', max_tokens: 500, temperature: 0, stream: true }, {}, long.signal);
    expect(r.status).toBe(200);
    const reader = await firstEvent(r);
    const busy = await post(`${q}/v1/completions`, { prompt: 'Hello', max_tokens: 2 });
    await expectError(busy, 429, null, /busy/);
    expect(busy.headers.get('retry-after')).toBe('1');
    long.abort();
    await reader.cancel().catch(() => {});
    // Within a token or so the model is free again.
    const started = Date.now();
    expect(await statusOnceFree(q, 2)).toBe(200);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a non-streaming client that disconnects stops its generation', async () => {
    const { server, url: q } = await start({ maxQueue: 0 });
    const before = server.metrics.generatedTokens;
    const gone = new AbortController();
    const r = post(`${q}/v1/completions`, { prompt: 'Call me Ishmael.', max_tokens: 500, temperature: 0 }, {}, gone.signal).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 300));
    gone.abort();
    expect(await r).toBeInstanceOf(Error);
    expect(await statusOnceFree(q, 1)).toBe(200);
    expect(server.metrics.generatedTokens - before).toBeLessThan(400);
  });

  it('takes content as text parts and developer messages as system ones', async () => {
    const parts = await post(`${url}/v1/chat/completions`, chat({ messages: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hello' }, { type: 'text', text: 'there' }] }] }));
    const plain = await post(`${url}/v1/chat/completions`, chat({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello\nthere' }] }));
    type Body = { choices: { message: { content: string } }[]; usage: unknown };
    const a = (await parts.json()) as Body;
    const b = (await plain.json()) as Body;
    expect(a.choices[0]?.message.content).toBe(b.choices[0]?.message.content);
    expect(a.usage).toEqual(b.usage);
  });

  it('queues requests in order; a client that leaves the queue or disconnects frees its place', async () => {
    const { server, url: q } = await start({ maxQueue: 2 });
    const generatedBefore = server.metrics.generatedTokens;
    const first = new AbortController();
    const r1 = await post(`${q}/v1/chat/completions`, chat({ max_tokens: 500, stream: true }), {}, first.signal);
    const reader = await firstEvent(r1);
    // Two wait; a third is refused.
    const leaver = new AbortController();
    const waiting = post(`${q}/v1/chat/completions`, chat({ max_tokens: 3 }), {}, leaver.signal).catch((e: unknown) => e);
    const second = post(`${q}/v1/completions`, { prompt: 'Hello', max_tokens: 3 });
    await until(async () => (await metric(q, 'switchyard_queue_depth')) === 2);
    await expectError(await post(`${q}/v1/completions`, { prompt: 'Hello' }), 429);
    leaver.abort();
    expect(await waiting).toBeInstanceOf(Error);
    await until(async () => (await metric(q, 'switchyard_queue_depth')) === 1);
    // The streaming client disconnects: its generation stops and the waiting request runs.
    first.abort();
    await reader.cancel().catch(() => {});
    const r2 = await second;
    expect(r2.status).toBe(200);
    expect(((await r2.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
    expect(server.metrics.generatedTokens - generatedBefore).toBeLessThan(400);
    expect(await metric(q, 'switchyard_queue_depth')).toBe(0);
  });

  it('serves /metrics in the Prometheus text format', async () => {
    await post(`${url}/v1/completions`, { prompt: 'Hello', max_tokens: 3 });
    const r = await fetch(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.trimEnd().split('\n');
    for (const l of lines) expect(l).toMatch(/^(# (HELP|TYPE) switchyard_\w+ .+|switchyard_\w+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? \d+(\.\d+)?)$/);
    for (const name of [
      'switchyard_requests_total',
      'switchyard_prompt_tokens_total',
      'switchyard_generated_tokens_total',
      'switchyard_queue_depth',
      'switchyard_expert_cache_hits_total',
      'switchyard_expert_cache_misses_total',
      'switchyard_expert_cache_bytes_read_total',
      'switchyard_batches_total',
      'switchyard_batch_steps_total',
    ]) {
      expect(lines).toContain(`# TYPE ${name} ${name === 'switchyard_queue_depth' ? 'gauge' : 'counter'}`);
      expect(lines.some((l) => l.startsWith(`# HELP ${name} `))).toBe(true);
    }
    expect(text).toMatch(/^switchyard_requests_total\{endpoint="\/v1\/completions",status="200"\} [1-9]\d*$/m);
    expect(text).toMatch(/^switchyard_requests_total\{endpoint="\/v1\/chat\/completions",status="400"\} [1-9]\d*$/m);
    expect(text).toMatch(/^switchyard_requests_total\{endpoint="other",status="404"\} [1-9]\d*$/m);
    expect(await metric(url, 'switchyard_generated_tokens_total')).toBeGreaterThan(0);
    expect(await metric(url, 'switchyard_prompt_tokens_total')).toBeGreaterThan(0);
    expect(await metric(url, 'switchyard_expert_cache_hits_total')).toBeGreaterThan(0);
    expect(await metric(url, 'switchyard_expert_cache_bytes_read_total')).toBeGreaterThan(0);
  });

  it('closes with a generation in flight without taking the model down', async () => {
    const { server, url: c } = await start();
    const r = await post(`${c}/v1/completions`, { prompt: 'Hello', max_tokens: 500, stream: true });
    await firstEvent(r);
    const waiting = post(`${c}/v1/completions`, { prompt: 'Hello', max_tokens: 2 });
    await until(async () => (await metric(c, 'switchyard_queue_depth')) === 1);
    const t = Date.now();
    await server.close();
    await expectError(await waiting, 503, null, /closing/);
    expect(Date.now() - t).toBeLessThan(2000);
    expect((await post(`${url}/v1/completions`, { prompt: 'Hello', max_tokens: 2 })).status).toBe(200);
  });
});

/** The text of a streamed chat completion. */
async function streamedText(url: string, body: Record<string, unknown>): Promise<string> {
  const r = await post(`${url}/v1/chat/completions`, { ...body, stream: true });
  expect(r.status).toBe(200);
  let text = '';
  for (const event of (await r.text()).split('\n\n')) {
    if (!event.startsWith('data: {')) continue;
    text += (JSON.parse(event.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '';
  }
  return text;
}

describe.skipIf(!file)('the server with several sequences (--parallel 3)', () => {
  let parallel: LoadedModel;
  let server: SwitchyardServer;
  let url: string;
  beforeAll(async () => {
    parallel = await loadModel(file as string, { threads: 2, contextLength: 256, sequences: 3, expertMemory: '50%' });
    server = createServer(parallel, { maxQueue: 4 });
    url = `http://127.0.0.1:${(await server.listen(0)).port}`;
  });
  afterAll(async () => {
    await server?.close();
    await parallel?.close();
  });

  it('concurrent requests each get the answer they get alone, their steps batched', async () => {
    const requests = [0, 1, 2, 3, 4].map((i) => chat({ messages: [{ role: 'user', content: `Tell me about part ${i}.` }], max_tokens: 12 + i, temperature: 0.9, seed: i }));
    const alone: string[] = [];
    for (const r of requests) alone.push(await streamedText(url, r));
    const batches = await metric(url, 'switchyard_batches_total');
    const steps = await metric(url, 'switchyard_batch_steps_total');
    expect(steps).toBe(batches); // one at a time: one step per batch
    // Five at once: three generate, two wait for a free sequence.
    expect(await Promise.all(requests.map((r) => streamedText(url, r)))).toEqual(alone);
    const moreBatches = (await metric(url, 'switchyard_batches_total')) - batches;
    const moreSteps = (await metric(url, 'switchyard_batch_steps_total')) - steps;
    expect(moreSteps / moreBatches).toBeGreaterThan(1.5);
    expect(await metric(url, 'switchyard_requests_running')).toBe(0);
  });

  it('a client that disconnects frees its sequence for a waiting request', async () => {
    const long = [0, 1, 2].map(() => new AbortController());
    const readers = [];
    for (const c of long) {
      const r = await post(`${url}/v1/completions`, { prompt: 'Call me Ishmael.', max_tokens: 200, temperature: 0, stream: true }, {}, c.signal);
      readers.push(await firstEvent(r));
    }
    await until(async () => (await metric(url, 'switchyard_requests_running')) === 3);
    const waiting = post(`${url}/v1/completions`, { prompt: 'Hello', max_tokens: 2 });
    await until(async () => (await metric(url, 'switchyard_queue_depth')) === 1);
    long[1]?.abort();
    await readers[1]?.cancel().catch(() => {});
    const started = Date.now();
    const r = await waiting;
    expect(r.status).toBe(200);
    expect(((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(2);
    expect(Date.now() - started).toBeLessThan(2000);
    for (const [i, c] of long.entries()) {
      c.abort();
      await readers[i]?.cancel().catch(() => {});
    }
    await until(async () => (await metric(url, 'switchyard_requests_running')) === 0);
  });
});
