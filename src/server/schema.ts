/**
 * The request bodies of /v1/chat/completions and /v1/completions (OpenAI's fields, checked with
 * zod) and their mapping to the library's GenerateOptions. Every fault is an ApiError (400) that
 * names the field as OpenAI does (`messages[1].content`, `switchyard.routing.ban[0]`).
 *
 * OpenAI's defaults where they differ from the library's: temperature 1 and top_p 1 are passed
 * explicitly, and top-k and min-p (which OpenAI does not have) are off. Values we do not implement
 * (n > 1, completions' logprobs, tools, a response format other than text...) are refused, never ignored.
 * Fields OpenAI does not define are ignored, as llama-server and vLLM do, so that clients that
 * send extra fields keep working. The `switchyard` extension carries routing controls and
 * self-contrast decoding; steering comes inline (ban / force / scale): no field names a file.
 */
import { z } from 'zod';
import type { GenerateOptions, RoutingControls } from '../api/types.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import { checkRoutingControls } from '../router/adaptive.js';
import { InvalidArgumentError } from '../core/errors.js';
import { ApiError } from './errors.js';

const expertRef = { layer: z.number().int().min(0), expert: z.number().int().min(0) };

const routingSchema = z.strictObject({
  topK: z.number().int().optional(),
  topKPerLayer: z.record(z.string().regex(/^\d+$/, { error: 'keys must be block indices' }), z.number().int()).optional(),
  topP: z.strictObject({ p: z.number(), minK: z.number().int().optional(), maxK: z.number().int().optional() }).optional(),
  skipRatio: z.number().optional(),
  ban: z.array(z.strictObject(expertRef)).optional(),
  force: z.array(z.strictObject(expertRef)).optional(),
  scale: z.array(z.strictObject({ ...expertRef, factor: z.number().min(0) })).optional(),
  onlyRank: z.number().int().optional(),
});

const extensionSchema = z.strictObject({
  routing: routingSchema.optional(),
  /** Stream each token's routing (experts and weights per MoE layer) in its chunk's `switchyard` field. */
  trace: z.boolean().optional(),
  contrast: z
    .strictObject({
      beta: z.number().min(0),
      alpha: z.number().min(0).max(1),
      weakRank: z.number().int().min(1).optional(),
    })
    .optional(),
});

const stopSchema = z.union([z.string(), z.array(z.string())], { error: 'must be a string or an array of strings' });

/** Fields both endpoints take. */
const common = {
  model: z.string().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  stop: stopSchema.nullish(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
  n: z.number().int().min(1).nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  switchyard: extensionSchema.nullish(),
};

const textPart = z.strictObject({
  type: z.literal('text', { error: 'only text parts are supported' }),
  text: z.string(),
});

const messageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], { error: 'must be one of system, developer, user, assistant' }),
  content: z.union([z.string(), z.array(textPart)], { error: 'must be a string or an array of text parts' }),
  name: z.string().optional(),
});

const chatSchema = z.object({
  ...common,
  messages: z.array(messageSchema).min(1, { error: 'must hold at least one message' }),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: z.unknown().optional(),
  functions: z.array(z.unknown()).nullish(),
  function_call: z.unknown().optional(),
  response_format: z.object({ type: z.string() }).nullish(),
  modalities: z.array(z.string()).nullish(),
  audio: z.unknown().optional(),
  prediction: z.unknown().optional(),
});

const completionSchema = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()), z.array(z.number().int().min(0))], {
    error: 'must be a string, an array of strings or an array of token ids',
  }),
  logprobs: z.number().int().min(0).nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  best_of: z.number().int().min(1).nullish(),
});

/** What a generation request asks for, ready for the library. */
export interface GenerationRequest {
  /** The `model` the client named (echoed back), or undefined. */
  model: string | undefined;
  stream: boolean;
  includeUsage: boolean;
  options: GenerateOptions;
}

export interface ChatRequest extends GenerationRequest {
  messages: ChatMessage[];
}

export interface CompletionRequest extends GenerationRequest {
  prompt: string | number[];
}

/** What the mapping needs of the model. */
export interface ModelShape {
  /** Routed experts per MoE layer (1 for dense models, as the library checks routing). */
  experts: number;
  vocabSize: number;
}

export function parseChatRequest(body: unknown, model: ModelShape): ChatRequest {
  const r = parse(chatSchema, body);
  const unsupported: [boolean, string, string][] = [
    [(r.top_logprobs ?? 0) > 20, 'top_logprobs', 'top_logprobs must be from 0 to 20'],
    [(r.top_logprobs ?? 0) > 0 && r.logprobs !== true, 'top_logprobs', 'top_logprobs needs logprobs: true'],
    [!!r.tools?.length, 'tools', 'tools are not supported'],
    [r.tool_choice !== undefined && r.tool_choice !== null && r.tool_choice !== 'none', 'tool_choice', 'tool_choice is not supported (no tools)'],
    [!!r.functions?.length, 'functions', 'functions are not supported'],
    [r.function_call !== undefined && r.function_call !== null && r.function_call !== 'none', 'function_call', 'function_call is not supported (no functions)'],
    [!!r.response_format && r.response_format.type !== 'text', 'response_format', `response_format ${r.response_format?.type} is not supported: only "text"`],
    [!!r.modalities && r.modalities.some((m) => m !== 'text'), 'modalities', 'only the "text" modality is supported'],
    [r.audio !== undefined && r.audio !== null, 'audio', 'audio output is not supported'],
    [r.prediction !== undefined && r.prediction !== null, 'prediction', 'predicted outputs are not supported'],
  ];
  refuse(unsupported);
  if (r.max_tokens != null && r.max_completion_tokens != null && r.max_tokens !== r.max_completion_tokens) {
    throw new ApiError(400, 'max_tokens and max_completion_tokens differ: give one of them', 'max_completion_tokens');
  }
  const messages: ChatMessage[] = r.messages.map((m) => ({
    // OpenAI's 'developer' messages are the newer name of system messages.
    role: m.role === 'developer' ? 'system' : m.role,
    content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('\n'),
  }));
  const req = { ...request(r, r.max_completion_tokens ?? r.max_tokens, model), messages };
  // Chat logprobs: each token's log-probability and its top_logprobs most likely alternatives.
  if (r.logprobs === true) req.options.logprobs = r.top_logprobs ?? 0;
  return req;
}

export function parseCompletionRequest(body: unknown, model: ModelShape): CompletionRequest {
  const r = parse(completionSchema, body);
  refuse([
    [r.logprobs != null && r.logprobs > 20, 'logprobs', 'logprobs must be from 0 to 20'],
    [r.echo === true, 'echo', 'echo is not supported'],
    [r.suffix != null && r.suffix !== '', 'suffix', 'suffix (insertion) is not supported'],
    [(r.best_of ?? 1) > 1, 'best_of', 'best_of > 1 is not supported: one completion per request'],
    [Array.isArray(r.prompt) && typeof r.prompt[0] === 'string' && r.prompt.length !== 1, 'prompt', 'one prompt per request: an array of strings must hold exactly one'],
  ]);
  let prompt: string | number[];
  if (typeof r.prompt === 'string') prompt = r.prompt;
  else if (typeof r.prompt[0] === 'string') prompt = r.prompt[0];
  else {
    prompt = r.prompt as number[];
    if (prompt.length === 0) throw new ApiError(400, 'prompt: an array of token ids must not be empty', 'prompt');
    const bad = prompt.findIndex((t) => t >= model.vocabSize);
    if (bad >= 0) throw new ApiError(400, `prompt[${bad}]: token id ${prompt[bad]} is outside the vocabulary (0..${model.vocabSize - 1})`, `prompt[${bad}]`);
  }
  const req = { ...request(r, r.max_tokens, model), prompt };
  // Legacy logprobs: each token's log-probability and the `logprobs` most likely alternatives.
  if (r.logprobs != null) req.options.logprobs = r.logprobs;
  return req;
}

type CommonFields = z.infer<z.ZodObject<typeof common>>;

/** The fields both endpoints share -> GenerateOptions (and the checks they need). */
function request(r: CommonFields, maxTokens: number | null | undefined, model: ModelShape): GenerationRequest {
  refuse([
    [(r.n ?? 1) > 1, 'n', 'n > 1 is not supported: one choice per request'],
    [!!r.logit_bias && Object.keys(r.logit_bias).length > 0, 'logit_bias', 'logit_bias is not supported yet'],
  ]);
  const stop = r.stop == null ? undefined : typeof r.stop === 'string' ? [r.stop] : r.stop;
  const options: GenerateOptions = {
    temperature: r.temperature ?? 1,
    topP: r.top_p ?? 1,
    topK: 0,
    minP: 0,
    ...(maxTokens != null ? { maxTokens } : {}),
    ...(stop?.length ? { stop } : {}),
    ...(r.seed != null ? { seed: r.seed } : {}),
    ...(r.presence_penalty != null ? { presencePenalty: r.presence_penalty } : {}),
    ...(r.frequency_penalty != null ? { frequencyPenalty: r.frequency_penalty } : {}),
  };
  const ext = r.switchyard;
  if (ext?.routing) {
    const routing = ext.routing as RoutingControls;
    try {
      checkRoutingControls(routing, model.experts);
    } catch (e) {
      if (!(e instanceof InvalidArgumentError)) throw e;
      const field = /^routing\.(\S+)/.exec(e.message)?.[1];
      throw new ApiError(400, `switchyard.${e.message}`, field ? `switchyard.routing.${field}` : 'switchyard.routing');
    }
    options.routing = routing;
  }
  if (ext?.trace) options.trace = true;
  if (ext?.contrast) {
    const { weakRank } = ext.contrast;
    if (weakRank !== undefined && weakRank > model.experts) {
      throw new ApiError(400, `switchyard.contrast.weakRank must be from 1 to ${model.experts}, got ${weakRank}`, 'switchyard.contrast.weakRank');
    }
    options.contrast = ext.contrast;
  }
  return {
    model: r.model ?? undefined,
    stream: r.stream === true,
    includeUsage: r.stream === true && r.stream_options?.include_usage === true,
    options,
  };
}

function refuse(checks: [bad: boolean, param: string, message: string][]): void {
  for (const [bad, param, message] of checks) if (bad) throw new ApiError(400, message, param);
}

/** Parses with zod; the first issue becomes a 400 naming its field. */
function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'the request body must be a JSON object');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  let path = issue.path;
  if (issue.code === 'unrecognized_keys') path = [...path, issue.keys[0] as string];
  const param = fieldName(path);
  let message = issue.message;
  if (valueAt(body, issue.path) === undefined) message = 'is required';
  else if (issue.code === 'unrecognized_keys') message = 'is not a recognized field';
  throw new ApiError(400, `${param}: ${message}`, param);
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let v = body;
  for (const p of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/** ['messages', 0, 'content'] -> 'messages[0].content'. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out || '(body)';
}
