/**
 * The public model API's types, in one file: what `loadModel` takes and returns, what
 * generation streams, and the statistics it ends with. The CLI and the server are thin shells
 * over these. Implementation: src/api/model.ts.
 */
import type { ExpertProfile } from '../experts/profile.js';
import type { BatchStats } from './batch.js';
import type { RoutingControls } from '../router/adaptive.js';
import type { RoutingTrace } from '../router/trace.js';
import type { ExpertCacheStats } from '../experts/stats.js';
import type { KVCacheType } from '../generate/kv-cache.js';
import type { ExpertCacheSettings } from '../models/model.js';
import type { KernelBackendName } from '../kernels/backend.js';
import type { KernelChoice } from '../kernels/device.js';
import type { LoadProgress } from '../models/weights.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export type { BatchStats, ExpertCacheSettings, ExpertCacheStats, ExpertProfile, KVCacheType, LoadProgress, RoutingControls, RoutingTrace };

export interface LoadModelOptions {
  /** Positions the KV cache holds: the longest prompt + generation (default: the model's, at most 4096). */
  contextLength?: number;
  /** Kernel build (default: SWITCHYARD_KERNELS, else the best this machine runs). */
  kernels?: KernelChoice;
  /** Threads (default: SWITCHYARD_THREADS, else every core). */
  threads?: number;
  /** Dequantize every weight to F32 and compute in float32 (the reference path; slower, more memory). */
  dequantize?: boolean;
  /** KV cache element type: 'f16' (default, as llama.cpp) or 'f32' (exact; what the goldens use). */
  kvCacheType?: KVCacheType;
  /**
   * Memory for routed experts (the rest of the model is always resident): bytes, a size such as
   * '4GiB' or '512MiB', a share of the expert bytes such as '25%', or 'all'. Experts beyond it
   * stay in the file and are read into a cache as tokens need them; results are the same.
   * Default: 'all' when the whole model fits in 80% of available memory, else half of what is
   * left after the other weights.
   */
  expertMemory?: number | string;
  /** Policy, slot allocation, prefetching, pinning and cache-aware routing of the expert cache. */
  expertCache?: ExpertCacheSettings;
  /**
   * Generations that may run at once (default 1), each with its own KV cache of contextLength
   * positions (allocated at load). Their steps run in shared batches (src/api/batch.ts): tokens
   * that pick the same experts share the work and the reads. Results are the same as alone.
   */
  sequences?: number;
  /** Tokens one batch holds at most (default 512): decode steps first, then prompts in chunks. */
  batchTokens?: number;
  onProgress?: (p: LoadProgress) => void;
}

export interface ProfileOptions {
  /** Tokens per evaluation (default 512, at most the loaded context). */
  ctx?: number;
  /** Experts listed to pin (default: K per MoE layer). */
  top?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Where a loaded model's memory goes (bytes over every wasm memory). */
export interface MemoryReport {
  /** Resident weights: everything but the offloaded routed experts. */
  weights: number;
  /** Expert cache slots (0 when every expert is resident). */
  expertCache: number;
  kvCache: number;
  /** The most a step's activations and kernel scratch have taken so far (freed between steps). */
  activations: number;
  /** wasm memories in use (each at most 4 GiB). */
  heaps: number;
}

export interface ModelInfo {
  path: string;
  /** GGUF `general.architecture`. */
  architecture: string;
  /** GGUF `general.name`. */
  name?: string;
  /** Positions the loaded model's KV cache holds (LoadModelOptions.contextLength). */
  contextLength: number;
  /** The context length the model was trained for (`<arch>.context_length`). */
  trainedContextLength: number;
  vocabSize: number;
  layers: number;
  /** Routed experts per MoE layer, how many each token uses, and which blocks have them (absent for dense models). */
  experts?: { count: number; used: number; layers: number[] };
  parameters: {
    total: number;
    /** Dense parameters plus the used share (K of E) of the expert parameters. */
    activePerToken: number;
    /** Parameters in routed expert tensors. */
    experts: number;
  };
  /** The kernel build and thread count the model runs with. */
  kernels: KernelBackendName;
  threads: number;
  kvCacheType: KVCacheType;
  /** Generations that may run at once (LoadModelOptions.sequences). */
  sequences: number;
  /** How routed experts are held (absent for dense models). */
  expertMemory?: {
    /** Every expert loaded at start: no cache. */
    resident: boolean;
    /** Bytes of expert cache slots; slots (experts the cache holds at once) and their share of all experts. */
    budgetBytes: number;
    slots: number;
    share: number;
    /** Bytes of all routed experts in the file, and of one cache slot. */
    expertBytes: number;
    slotBytes: number;
    /** Why this budget ('requested', or the default's reasoning). */
    reason: string;
    policy?: string;
    allocation?: string;
    /** Layers the prefetcher looks ahead; false = no prefetch. */
    prefetch?: number | false;
  };
}

export interface GenerateOptions {
  /** Tokens to generate at most (default: until an end-of-generation token or the context is full). */
  maxTokens?: number;
  /** 0 = greedy (argmax, lowest id on ties). Default 0.8. The sampler options and their defaults
   *  are llama.cpp's: see src/generate/sampler.ts for the order they apply in. */
  temperature?: number;
  /** Default 40; <= 0 disables. */
  topK?: number;
  /** Default 0.95; 1 disables. */
  topP?: number;
  /** Default 0.05; 0 disables. */
  minP?: number;
  /** Default 1 (off). */
  repeatPenalty?: number;
  /** Tokens (prompt included) the penalties look at; -1 = all. Default 64. */
  repeatLastN?: number;
  /** Default 0. */
  frequencyPenalty?: number;
  /** Default 0. */
  presencePenalty?: number;
  /** Makes sampling reproducible (default: a random seed). */
  seed?: number;
  /** Strings that end generation; they and what follows are not output. */
  stop?: string[];
  /** Token ids that end generation (not output); default: the vocabulary's end-of-generation tokens. */
  stopTokens?: number[];
  /** Aborts between tokens: generation ends with stopReason 'aborted' (no exception). */
  signal?: AbortSignal;
  /** Routing controls for this request: top-k / top-p / skipping, banned, forced and scaled experts. */
  routing?: RoutingControls;
  /**
   * Self-contrast decoding (SCMoE): each token's logits combine the normal routing's with those of
   * a weak routing (only the expert of rank `weakRank`; default K + 1, the best unchosen expert,
   * as the reference's Mixtral example), in a second KV cache. See
   * src/generate/contrast.ts for the formula and the meaning of beta and alpha.
   */
  contrast?: { beta: number; alpha: number; weakRank?: number };
  /** Each token event carries the routing (experts and weights per MoE layer) of the step that produced it. */
  trace?: boolean;
  /** Each token event carries its log-probability and this many most likely alternatives (0-20). */
  logprobs?: number;
}

/**
 * Generation streams 'token' events, then one 'done'. Each token event carries the text that
 * token adds (possibly '' while a character or a possible stop string is incomplete); the texts
 * concatenated are the output. Stop tokens and stop strings are not output.
 */
export type GenerateEvent =
  | {
      type: 'token';
      token: number;
      text: string;
      /** With GenerateOptions.trace. */
      routing?: LayerRouting[];
      /** With GenerateOptions.logprobs: ln p(token) under the model (before sampling filters), and the most likely alternatives. */
      logprob?: number;
      topLogprobs?: { token: number; logprob: number }[];
    }
  | { type: 'done'; stats: GenerateStats };

/** One MoE layer's routing of one step (the experts that produced a token), best first. */
export interface LayerRouting {
  layer: number;
  ids: number[];
  weights: number[];
}

export interface GenerateStats {
  promptTokens: number;
  /** Tokens sampled, including a stop token and tokens inside a stop string. */
  generatedTokens: number;
  /** Evaluating the prompt and sampling the first token. */
  promptSeconds: number;
  /** Evaluating and sampling every later token (time spent by the caller between events excluded). */
  decodeSeconds: number;
  promptTokensPerSecond: number;
  /** (generatedTokens - 1) / decodeSeconds: each later token costs one decode step. */
  decodeTokensPerSecond: number;
  /** 'length': maxTokens reached or the context full; 'stop': a stop string or a stop token that is
   *  not end-of-generation; 'end-of-generation': an end-of-generation token; 'aborted': the signal. */
  stopReason: 'length' | 'stop' | 'end-of-generation' | 'aborted';
  /** Peak resident memory of the process so far (process.resourceUsage().maxRSS). */
  peakMemoryBytes: number;
  /** Expert cache activity during this generation (models with offloaded experts; with several sequences, theirs too). */
  experts?: ExpertCacheStats;
}

export interface PerplexityOptions {
  /** Tokens per chunk (llama-perplexity -c). At most the loaded context length. */
  ctx: number;
  /** Tokens per evaluation (llama-perplexity -b); default ctx. Values above ctx act as ctx. */
  batch?: number;
  /** Chunks to evaluate at most (llama-perplexity --chunks); default all. */
  chunks?: number;
  /** Called after each chunk with its index (0-based, chunks[i]) and the running perplexity. */
  onChunk?: (i: number, running: number) => void;
  /** Routing controls (as GenerateOptions.routing). */
  routing?: RoutingControls;
}

export interface TraceOptions {
  /** Tokens per evaluation (default 512, at most the loaded context); each chunk is a fresh sequence. */
  ctx?: number;
  /** Routing controls while tracing. */
  routing?: RoutingControls;
  /** Also record each expert's peak output (runs every selected expert alone: K times the expert work). */
  peaks?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface PerplexityResult {
  /** Tokens of the text (BOS included). */
  tokens: number;
  /** The running perplexity after each chunk (llama-perplexity's "[i]value" list). */
  chunks: number[];
  final: number;
  /** llama-perplexity's "+/-": final × sqrt((mean(nll²) − mean(nll)²) / (count − 1)). */
  finalStderr: number;
}

/**
 * A model ready to run. Up to LoadModelOptions.sequences generations run at once (their steps
 * batched together); `logits`, `perplexity`, `traceRouting` and `profileExperts` use the model
 * alone. A call beyond that throws E_BUSY. Every call starts a fresh sequence at position 0.
 */
export interface LoadedModel {
  readonly info: ModelInfo;
  readonly tokenizer: Tokenizer;
  /** Token ids of `text`: addSpecial (default true) adds BOS/EOS as the vocabulary asks;
   *  parseSpecial (default false) turns special-token text such as "<|im_end|>" into the token. */
  tokenize(text: string, options?: { addSpecial?: boolean; parseSpecial?: boolean }): number[];
  /** Text of token ids (control tokens and a leading BOS are left out). */
  detokenize(ids: readonly number[]): string;
  /** Streams a continuation of `prompt` (text is tokenized with BOS and special tokens parsed, as llama-cli does). */
  generate(prompt: string | readonly number[], options?: GenerateOptions): AsyncIterable<GenerateEvent>;
  /** Renders `messages` with the model's chat template (ChatML when it has none) and generates the reply. */
  chat(messages: ChatMessage[], options?: GenerateOptions): AsyncIterable<GenerateEvent>;
  /** Logits [T, V] of every position of `tokens`, run as a fresh sequence from position 0. */
  logits(tokens: readonly number[], options?: { routing?: RoutingControls }): Float32Array;
  /** Perplexity exactly as llama.cpp's llama-perplexity computes it (see src/api/perplexity.ts). */
  perplexity(text: string, options: PerplexityOptions): Promise<PerplexityResult>;
  /**
   * How often each routed expert is selected on `text` (evaluated in chunks of `ctx` tokens), and
   * the most used ones to pin in an expert cache (LoadModelOptions.expertCache.pin).
   */
  profileExperts(text: string, options?: ProfileOptions): Promise<ExpertProfile>;
  /**
   * The routing of every token of `text` at every MoE layer (src/router/trace.ts): ids, weights,
   * top router logits, entropy. An array of texts (a prompt set) traces each as its own sequence.
   */
  traceRouting(text: string | readonly string[], options?: TraceOptions): Promise<RoutingTrace>;
  /** Where the model's memory goes now. */
  memory(): MemoryReport;
  /** Batches run since load: how many, the sequence steps and tokens in them (steps / batches = mean batch). */
  batchStats(): BatchStats;
  /** Expert cache counters since load or the last reset (undefined when every expert is resident). */
  expertStats(): ExpertCacheStats | undefined;
  resetExpertStats(): void;
  /** Frees the model. A generation suspended between events ends ('aborted') when resumed. */
  close(): Promise<void>;
}
