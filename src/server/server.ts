/**
 * The OpenAI-compatible HTTP server: a thin adapter (node:http, no framework) over one
 * LoadedModel. Endpoints:
 *   GET  /health                 {"status":"ok"}
 *   GET  /metrics                Prometheus text (src/server/metrics.ts)
 *   GET  /v1/models[/<id>]       the one model, in OpenAI's list / model shape
 *   POST /v1/chat/completions    model.chat(), streamed as server-sent events or not
 *   POST /v1/completions         model.generate()
 * Request bodies are checked and mapped in src/server/schema.ts, responses shaped in
 * src/server/responses.ts, errors in src/server/errors.ts. The model runs as many generations at
 * once as it has sequences (`switchyard serve --parallel`), their decode steps batched together
 * (src/api/batch.ts); further requests wait in a bounded FIFO queue (src/server/queue.ts; full:
 * 429 with Retry-After). A client that goes away aborts its generation through the AbortSignal,
 * which the decode loop checks between tokens, freeing its sequence, or leaves the queue.
 *
 * Security by default: CORS headers only when `cors` is set; with `apiKey`, every /v1 request needs
 * `Authorization: Bearer <key>`; no request field names a file; the caller chooses the address.
 * References: llama.cpp tools/server (the same surface), the OpenAI API reference.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import type { GenerateEvent, GenerateStats, LayerRouting, LoadedModel } from '../api/types.js';
import type { TokenLogprob } from './responses.js';
import { expertCacheRates } from '../experts/stats.js';
import { PAGE_HTML } from '../web/page.js';
import { ApiError, apiErrorOf } from './errors.js';
import { ServerMetrics } from './metrics.js';
import { ModelQueue, QueueFullError } from './queue.js';
import {
  chatChunk,
  chatCompletion,
  completionLogprobs,
  finishReason,
  type ResponseHead,
  responseHead,
  textChunk,
  textCompletion,
  usageChunk,
} from './responses.js';
import { type ChatRequest, type CompletionRequest, type ModelShape, parseChatRequest, parseCompletionRequest } from './schema.js';

export interface ServerOptions {
  /** When set, every /v1 request needs `Authorization: Bearer <key>` (401 otherwise). */
  readonly apiKey?: string;
  /** Send CORS headers (any origin) and answer preflight requests. Default off. */
  readonly cors?: boolean;
  /** Requests waiting for the model at most (default 16); beyond: 429 with Retry-After. */
  readonly maxQueue?: number;
  /** Largest request body (default 1 MiB); beyond: 413. */
  readonly maxBodyBytes?: number;
  /** The id /v1/models lists (default: the model's file name without .gguf). */
  readonly modelId?: string;
}

export interface SwitchyardServer {
  /** Starts listening (port 0: any free port); resolves with the address bound. */
  listen(port: number, host?: string): Promise<{ port: number; host: string }>;
  /** Stops: refuses waiting requests, aborts running generations, closes connections. The model stays open. */
  close(): Promise<void>;
  readonly metrics: ServerMetrics;
}

export function createServer(model: LoadedModel, options: ServerOptions = {}): SwitchyardServer {
  return new OpenAIServer(model, options);
}

type Kind = 'chat' | 'completion';
type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

const DEFAULT_MAX_BODY = 1024 * 1024;
/** A body this many times over the limit is not drained any further: the connection is cut. */
const DRAIN_FACTOR = 16;
/** How long close() lets answers in progress finish before it cuts the connections. */
const CLOSE_GRACE_MS = 2000;

class OpenAIServer implements SwitchyardServer {
  readonly metrics: ServerMetrics;
  private readonly http: Server;
  private readonly queue: ModelQueue;
  private readonly modelId: string;
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly shape: ModelShape;
  private readonly keyDigest: Buffer | undefined;
  /** Generations in progress (running or waiting): aborted by close(). */
  private readonly active = new Set<AbortController>();
  /** Responses not yet closed (each settles on its response's 'close'). */
  private readonly responses = new Set<Promise<void>>();
  private readonly routes: Record<string, Record<string, Handler>>;

  constructor(
    private readonly model: LoadedModel,
    private readonly options: ServerOptions,
  ) {
    const maxQueue = options.maxQueue ?? 16;
    if (!(Number.isInteger(maxQueue) && maxQueue >= 0)) throw new RangeError(`maxQueue must be a whole number >= 0, got ${maxQueue}`);
    this.queue = new ModelQueue(maxQueue, model.info.sequences);
    this.modelId = options.modelId ?? basename(model.info.path).replace(/\.gguf$/i, '');
    this.shape = { experts: model.info.experts?.count ?? 1, vocabSize: model.info.vocabSize };
    this.keyDigest = options.apiKey !== undefined ? digest(options.apiKey) : undefined;
    this.metrics = new ServerMetrics(
      () => ({ waiting: this.queue.waiting, running: this.queue.running }),
      () => model.expertStats(),
      () => model.batchStats(),
    );
    this.routes = {
      '/': { GET: (_req, res) => send(res, 200, 'text/html; charset=utf-8', PAGE_HTML) },
      '/switchyard/info': { GET: (_req, res) => sendJson(res, 200, this.info()) },
      '/health': { GET: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
      '/metrics': {
        GET: (_req, res) => send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', this.metrics.render()),
      },
      '/v1/models': { GET: (_req, res) => sendJson(res, 200, { object: 'list', data: [this.modelCard()] }) },
      '/v1/chat/completions': { POST: (req, res) => this.generation('chat', req, res) },
      '/v1/completions': { POST: (req, res) => this.generation('completion', req, res) },
    };
    this.http = createHttpServer((req, res) => {
      const closed = new Promise<void>((resolve) => res.once('close', resolve));
      this.responses.add(closed);
      closed.then(() => this.responses.delete(closed));
      this.handle(req, res).catch((e) => this.fail(res, e));
    });
  }

  listen(port: number, host = '127.0.0.1'): Promise<{ port: number; host: string }> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        const a = this.http.address() as AddressInfo;
        resolve({ port: a.port, host: a.address });
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    // Waiting requests are answered 503; running generations stop at their next token.
    this.queue.cancelAll(new ApiError(503, 'the server is closing', null, 'server_closing', 'server_error'));
    for (const controller of this.active) controller.abort(new Error('the server is closing'));
    // Let those answers go out (a request still sending its body is cut after a while).
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLOSE_GRACE_MS);
    });
    await Promise.race([Promise.allSettled([...this.responses]), wait]);
    clearTimeout(timer);
    this.http.closeAllConnections();
    await closed;
  }

  /** What the page needs to draw its grid: the MoE layers, experts per layer and per token. */
  private info() {
    const i = this.model.info;
    const moe = i.experts;
    const e = i.expertMemory;
    return {
      model: this.modelId,
      architecture: i.architecture,
      layers: moe?.layers ?? [],
      experts: moe?.count ?? 0,
      used: moe?.used ?? 0,
      expertCache: e && !e.resident ? `${(100 * e.share).toFixed(0)}% of experts (${e.slots} slots)` : null,
    };
  }

  private modelCard() {
    return { id: this.modelId, object: 'model', created: this.created, owned_by: 'switchyard' };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req.url);
    const method = req.method ?? 'GET';
    let endpoint = path in this.routes ? path : 'other';
    let routes = this.routes[path];
    if (path.startsWith('/v1/models/')) {
      endpoint = '/v1/models/{id}';
      routes = { GET: (_req, r) => this.retrieveModel(r, decodeURIComponent(path.slice('/v1/models/'.length))) };
    }
    res.once('close', () => this.metrics.countRequest(endpoint, res.statusCode));
    if (this.options.cors) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      if (method === 'OPTIONS' && routes) {
        res.writeHead(204).end();
        return;
      }
    }
    if (path === '/v1' || path.startsWith('/v1/')) this.authorize(req);
    if (!routes) throw new ApiError(404, `Invalid URL (${method} ${path})`, null, 'not_found');
    const handler = routes[method];
    if (!handler) {
      res.setHeader('Allow', Object.keys(routes).join(', '));
      throw new ApiError(405, `${method} is not allowed on ${path}: use ${Object.keys(routes).join(' or ')}`, null, 'method_not_allowed');
    }
    await handler(req, res);
  }

  private retrieveModel(res: ServerResponse, id: string): void {
    if (id !== this.modelId) throw new ApiError(404, `The model '${id}' does not exist: this server serves '${this.modelId}'`, 'model', 'model_not_found');
    sendJson(res, 200, this.modelCard());
  }

  private authorize(req: IncomingMessage): void {
    if (!this.keyDigest) return;
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match) throw new ApiError(401, 'Missing API key: send Authorization: Bearer <key>', null, 'invalid_api_key');
    if (!timingSafeEqual(digest(match[1] as string), this.keyDigest)) {
      throw new ApiError(401, 'Incorrect API key provided', null, 'invalid_api_key');
    }
  }

  /** A chat or completion request: parse, wait for the model, generate, answer. */
  private async generation(kind: Kind, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJson(await readBody(req, this.options.maxBodyBytes ?? DEFAULT_MAX_BODY));
    const request = kind === 'chat' ? parseChatRequest(body, this.shape) : parseCompletionRequest(body, this.shape);
    const controller = new AbortController();
    const onClose = () => {
      if (!res.writableEnded) controller.abort(new Error('the client disconnected'));
    };
    res.on('close', onClose);
    this.active.add(controller);
    try {
      await this.run(kind, request, res, controller.signal);
    } finally {
      this.active.delete(controller);
      res.off('close', onClose);
    }
  }

  private async run(kind: Kind, request: ChatRequest | CompletionRequest, res: ServerResponse, signal: AbortSignal): Promise<void> {
    let release: () => void;
    try {
      release = await this.queue.acquire(signal);
    } catch (e) {
      if (e instanceof QueueFullError) {
        res.setHeader('Retry-After', '1');
        throw new ApiError(429, e.message, null, 'rate_limit_exceeded', 'requests');
      }
      if (e instanceof ApiError) throw e; // the server is closing
      if (signal.aborted) return; // the client left while waiting
      throw e;
    }
    const options = { ...request.options, signal };
    const events =
      kind === 'chat' ? this.model.chat((request as ChatRequest).messages, options) : this.model.generate((request as CompletionRequest).prompt, options);
    const it = events[Symbol.asyncIterator]();
    try {
      // The first event comes after the prompt is evaluated: a prompt that does not fit the
      // context, or options the library refuses, fail here, before any response is sent.
      let first: IteratorResult<GenerateEvent>;
      try {
        first = await it.next();
      } catch (e) {
        throw apiErrorOf(e, kind === 'chat' ? 'messages' : 'prompt');
      }
      const head = responseHead(kind, request.model ?? this.modelId);
      if (request.stream) await this.stream(kind, request, res, head, first, it);
      else {
        let text = '';
        const logprobs: TokenLogprob[] = [];
        const offsets: number[] = [];
        const trace: { token: string; routing: LayerRouting[] }[] = [];
        const stats = await drain(first, it, (e) => {
          if (e.logprob !== undefined) {
            logprobs.push(this.logprobOf(e));
            offsets.push(text.length);
          }
          text += e.text;
          if (e.routing) trace.push({ token: this.model.tokenizer.tokenToPiece(e.token), routing: e.routing });
        });
        this.metrics.countTokens(stats.promptTokens, stats.generatedTokens);
        if (stats.stopReason === 'aborted') return;
        const wanted = request.options.logprobs !== undefined;
        const body =
          kind === 'chat'
            ? chatCompletion(head, text, stats, wanted ? logprobs : undefined)
            : textCompletion(head, text, stats, wanted ? completionLogprobs(logprobs, offsets) : undefined);
        // With "switchyard": {"trace": true}: every generated token's routing, in order.
        sendJson(res, 200, request.options.trace ? { ...body, switchyard: { trace, ...this.cacheOf() } } : body);
      }
    } finally {
      await it.return?.(undefined);
      release();
    }
  }

  private async stream(
    kind: Kind,
    request: ChatRequest | CompletionRequest,
    res: ServerResponse,
    head: ResponseHead,
    first: IteratorResult<GenerateEvent>,
    it: AsyncIterator<GenerateEvent>,
  ): Promise<void> {
    const usage = request.includeUsage;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    const event = (data: unknown) => {
      if (!res.destroyed) res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    if (kind === 'chat') event(chatChunk(head, { role: 'assistant', content: '' }, null, usage));
    let stats: GenerateStats;
    try {
      // Tokens with no text yet (an incomplete character) pass their log-probabilities to the next chunk.
      let pending: TokenLogprob[] = [];
      let offsets: number[] = [];
      let sent = 0;
      const wanted = request.options.logprobs !== undefined;
      stats = await drain(first, it, (e) => {
        if (e.logprob !== undefined) {
          pending.push(this.logprobOf(e));
          offsets.push(sent);
        }
        if (e.text === '') return;
        sent += e.text.length;
        const lp = wanted ? pending : undefined;
        const chunk =
          kind === 'chat'
            ? chatChunk(head, { content: e.text }, null, usage, lp)
            : textChunk(head, e.text, null, usage, lp && completionLogprobs(lp, offsets));
        pending = [];
        offsets = [];
        event(e.routing ? { ...chunk, switchyard: this.traceOf(e.routing) } : chunk);
      });
    } catch (e) {
      // Headers are sent: the error goes in the stream (OpenAI clients raise it), then it ends.
      event(apiErrorOf(e, kind === 'chat' ? 'messages' : 'prompt').body());
      res.end();
      return;
    }
    this.metrics.countTokens(stats.promptTokens, stats.generatedTokens);
    if (stats.stopReason === 'aborted') {
      res.end();
      return;
    }
    const finish = finishReason(stats);
    event(kind === 'chat' ? chatChunk(head, {}, finish, usage) : textChunk(head, '', finish, usage));
    if (usage) event(usageChunk(head, kind, stats));
    if (!res.destroyed) res.end('data: [DONE]\n\n');
  }

  /** A token's OpenAI logprob entry: its text, UTF-8 bytes, and the alternatives'. */
  private logprobOf(e: TokenEvent): TokenLogprob {
    const tok = this.model.tokenizer;
    const entry = (id: number, logprob: number) => ({ token: tok.tokenToPiece(id), logprob, bytes: [...tok.tokenBytes(id)] });
    return { ...entry(e.token, e.logprob as number), top_logprobs: (e.topLogprobs ?? []).map((t) => entry(t.token, t.logprob)) };
  }

  /** A streamed token's extension: its routing, and the expert cache's hit rate so far. */
  private traceOf(routing: LayerRouting[]) {
    return { routing, ...this.cacheOf() };
  }

  private cacheOf() {
    const st = this.model.expertStats();
    return st ? { cache: { hitRate: expertCacheRates(st).hitRate } } : {};
  }

  /** Answers an error: its OpenAI shape when nothing is sent yet, else the connection just ends. */
  private fail(res: ServerResponse, e: unknown): void {
    const error = apiErrorOf(e, 'messages');
    if (error.status === 500) process.emitWarning(`switchyard serve: ${error.message}`);
    if (res.headersSent) {
      res.end();
      return;
    }
    if (res.destroyed) return;
    sendJson(res, error.status, error.body());
  }
}

/** The text of every token event from `first` on, through `onText`; the done event's stats. */
type TokenEvent = Extract<GenerateEvent, { type: 'token' }>;

/** Calls onToken for every token event (text may be '' while a character is incomplete). */
async function drain(first: IteratorResult<GenerateEvent>, it: AsyncIterator<GenerateEvent>, onToken: (e: TokenEvent) => void): Promise<GenerateStats> {
  for (let r = first; !r.done; r = await it.next()) {
    const e = r.value;
    if (e.type === 'done') return e.stats;
    onToken(e);
  }
  throw new Error('generation ended without a done event');
}

function pathOf(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return '/';
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', JSON.stringify(body));
}

/**
 * The request body, at most `limit` bytes (else 413). An oversized body is read to its end and
 * dropped, so that the client receives the 413 rather than a reset connection, unless it goes on
 * far beyond the limit.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => new ApiError(413, `the request body is larger than ${limit} bytes`, null, 'request_too_large');
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > limit * DRAIN_FACTOR) {
        reject(tooLarge());
        req.destroy();
      }
    });
    req.on('end', () => (size > limit ? reject(tooLarge()) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
    req.on('close', () => reject(new ApiError(400, 'the request body ended early')));
  });
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw new ApiError(400, 'the request body is empty: send a JSON object');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, null, 'invalid_json');
  }
}
