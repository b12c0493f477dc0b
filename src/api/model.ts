/**
 * The public model API: `loadModel(path)` -> a model that tokenizes, generates (streamed, with
 * samplers and stop criteria), chats through its template, returns logits and computes
 * perplexity. A thin layer over src/models/model.ts (weights, KV cache, forward pass) and
 * src/tokenizer; the decode loop is src/api/generate.ts, perplexity src/api/perplexity.ts.
 * Shaped like node-llama-cpp's user-facing API (loadModel -> generate / chat).
 *
 *   const model = await loadModel('olmoe.gguf');
 *   for await (const e of model.generate('Once upon a time', { maxTokens: 64, seed: 1 })) {
 *     if (e.type === 'token') process.stdout.write(e.text);
 *   }
 *   await model.close();
 */
import { SwitchyardError } from '../core/errors.js';
import { type ExpertProfile, makeProfile } from '../experts/profile.js';
import { contrastLogits } from '../generate/contrast.js';
import type { KVCache } from '../generate/kv-cache.js';
import { Model } from '../models/model.js';
import { checkRoutingControls, type RoutingControls } from '../router/adaptive.js';
import { expertLoad } from '../router/analysis.js';
import { type RoutingTrace, TraceRecorder } from '../router/trace.js';
import { type ChatMessage, type ChatTemplate, chatTemplateFor } from '../tokenizer/chat-template.js';
import { type Tokenizer, tokenizerFromGGUF } from '../tokenizer/tokenizer.js';
import { summarizeGGUF } from '../weights/summary.js';
import { chatPromptText } from './chat.js';
import { BatchScheduler, type BatchStats } from './batch.js';
import { type Evaluator, generateTokens } from './generate.js';
import { perplexityOfTokens } from './perplexity.js';
import type {
  ExpertCacheStats,
  GenerateEvent,
  GenerateOptions,
  LoadedModel,
  LayerRouting,
  LoadModelOptions,
  MemoryReport,
  ModelInfo,
  PerplexityOptions,
  PerplexityResult,
  ProfileOptions,
  TraceOptions,
} from './types.js';

export type * from './types.js';

/** Loads a GGUF model: weights into device memory, its tokenizer, a KV cache of `contextLength` positions. */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const model = await Model.load(path, {
    contextLength: options.contextLength,
    kernels: options.kernels,
    threads: options.threads,
    dequantize: options.dequantize,
    kvCacheType: options.kvCacheType,
    onProgress: options.onProgress,
    sequences: options.sequences,
    ...(options.expertMemory !== undefined ? { expertMemory: options.expertMemory } : {}),
    ...(options.expertCache ? { expertCache: options.expertCache } : {}),
  });
  try {
    return new GGUFModel(model, tokenizerFromGGUF(model.file.metadata), new BatchScheduler(model, options.batchTokens));
  } catch (e) {
    await model.close();
    throw e;
  }
}

/**
 * peaks[e] = max(peaks[e], largest |output| of expert e alone on the tokens that selected it),
 * for a layer's routing ids [T, K]: each selected expert runs alone through `expertOutputs`.
 */
function mergeExpertPeaks(
  peaks: number[] | Float32Array,
  ids: Int32Array,
  T: number,
  D: number,
  expertOutputs: (ids: Int32Array) => Float32Array,
): void {
  const K = ids.length / T;
  for (let k = 0; k < K; k++) {
    const column = Int32Array.from({ length: T }, (_, t) => ids[t * K + k] as number);
    const out = expertOutputs(column);
    for (let t = 0; t < T; t++) {
      const e = column[t] as number;
      if (e < 0) continue;
      let peak = peaks[e] as number;
      for (let d = t * D; d < (t + 1) * D; d++) peak = Math.max(peak, Math.abs(out[d] as number));
      peaks[e] = peak;
    }
  }
}

/** A generation's place in the model: its KV cache, and the weak one of self-contrast (made on first use). */
interface Sequence {
  readonly cache: KVCache;
  weak?: KVCache;
  busy: boolean;
}

class GGUFModel implements LoadedModel {
  readonly info: ModelInfo;
  /** What uses the model alone (logits, perplexity, traces, profiles), if anything. */
  private busy: string | undefined;
  private isClosed = false;
  private template: ChatTemplate | undefined;
  private readonly sequences: Sequence[];

  constructor(
    private readonly model: Model,
    readonly tokenizer: Tokenizer,
    private readonly scheduler: BatchScheduler,
  ) {
    this.sequences = model.caches.map((cache) => ({ cache, busy: false }));
    const c = model.config;
    const summary = summarizeGGUF(model.file);
    this.info = {
      path: model.path,
      architecture: c.architecture,
      name: summary.name,
      contextLength: model.cache.size,
      trainedContextLength: c.contextLength,
      vocabSize: c.vocabSize,
      layers: c.blockCount,
      experts: c.moe
        ? {
            count: c.moe.expertCount,
            used: c.moe.expertUsedCount,
            layers: Array.from({ length: c.blockCount }, (_, il) => il).filter((il) => model.weights.has(`blk.${il}.ffn_gate_inp.weight`)),
          }
        : undefined,
      parameters: { ...summary.parameters },
      kernels: model.device.backend.name,
      threads: model.device.backend.threads,
      kvCacheType: model.cache.type,
      sequences: model.caches.length,
    };
    const plan = model.expertPlan;
    const off = model.offload;
    if (plan && model.expertLayout) {
      this.info.expertMemory = {
        resident: plan.resident,
        budgetBytes: plan.budgetBytes,
        slots: plan.slots,
        share: plan.share,
        expertBytes: model.expertLayout.expertBytes,
        slotBytes: model.expertLayout.slotBytes,
        reason: plan.reason,
        ...(off ? { policy: off.cache.options.policy, allocation: off.cache.options.allocation, prefetch: off.lookahead ?? false } : {}),
      };
    }
  }

  /**
   * The Evaluator of one generation on `seq`: its steps go through the batch scheduler with the
   * request's routing controls; with `contrast`, each step also runs the weak routing in the
   * sequence's second KV cache (in the same batch turn) and the logits are combined. Every
   * step returns its last token's logits (all the decode loop asks for).
   */
  private evaluator(seq: Sequence, options: Pick<GenerateOptions, 'routing' | 'contrast' | 'trace'>): Evaluator {
    const { routing, contrast, trace } = options;
    const moe = this.model.config.moe;
    if (routing) checkRoutingControls(routing, moe?.expertCount ?? 1);
    let weak: { cache: KVCache; routing: RoutingControls } | undefined;
    if (contrast) {
      if (!moe) throw new SwitchyardError('E_UNSUPPORTED', `contrast: ${this.info.path} has no routed experts`);
      const rank = contrast.weakRank ?? Math.min(moe.expertUsedCount + 1, moe.expertCount);
      checkRoutingControls({ onlyRank: rank }, moe.expertCount);
      seq.weak ??= this.model.newKVCache();
      weak = { cache: seq.weak, routing: { onlyRank: rank } };
    }
    const scheduler = this.scheduler;
    const isClosed = () => this.isClosed;
    let last: LayerRouting[] | undefined;
    return {
      vocabSize: this.vocabSize,
      contextLength: this.contextLength,
      get closed() {
        return isClosed();
      },
      eval: async (tokens, pos) => {
        const strong = scheduler.step(seq.cache, tokens, pos, { ...(routing ? { routing } : {}), trace: !!trace });
        // Both steps are awaited together, so that neither can fail unobserved.
        const [s, w] = await Promise.all([strong, weak && scheduler.step(weak.cache, tokens, pos, { routing: weak.routing })]);
        last = s.routing;
        return w && contrast ? contrastLogits(s.logits, w.logits, contrast) : s.logits;
      },
      expertStats: () => this.expertStats(),
      lastRouting: () => last,
    };
  }

  traceRouting(text: string | readonly string[], options: TraceOptions = {}): Promise<RoutingTrace> {
    return this.recordRouting('traceRouting', text, options);
  }

  /** The routing of texts evaluated in chunks of ctx tokens (traces and expert profiles); `what` names the caller in errors. */
  private async recordRouting(what: string, text: string | readonly string[], options: TraceOptions): Promise<RoutingTrace> {
    const c = this.model.config;
    const moe = c.moe;
    if (!moe) throw new SwitchyardError('E_UNSUPPORTED', `${what}: ${this.info.path} has no routed experts`);
    if (options.routing) checkRoutingControls(options.routing, moe.expertCount);
    const ctx = Math.min(options.ctx ?? 512, this.model.cache.size);
    // Each text is its own sequence (a set of prompts), cut into chunks of ctx tokens.
    const chunks = (typeof text === 'string' ? [text] : text).flatMap((t) => {
      const ids = this.tokenize(t);
      return Array.from({ length: Math.ceil(ids.length / ctx) }, (_, i) => ids.slice(i * ctx, (i + 1) * ctx));
    });
    const total = chunks.reduce((n, c) => n + c.length, 0);
    if (total === 0) throw new SwitchyardError('E_INVALID_ARGUMENT', `${what}: the text is empty`);
    const layers = this.info.experts?.layers ?? [];
    const widest = options.routing ? Math.max(moe.expertUsedCount, options.routing.topK ?? 0, ...Object.values(options.routing.topKPerLayer ?? {}), options.routing.topP?.maxK ?? (options.routing.topP ? moe.expertCount : 0)) : moe.expertUsedCount;
    const recorder = new TraceRecorder({ model: this.info.path, architecture: c.architecture, layers, experts: moe.expertCount, used: widest });
    const D = c.embeddingLength;
    const release = this.acquire(what);
    this.model.onRouting = (layer, r, expertOutputs, logits) => {
      recorder.record(layer, r.ids, r.weights, logits);
      if (!options.peaks) return;
      const peaks = new Float32Array(moe.expertCount);
      mergeExpertPeaks(peaks, r.ids, logits.length / moe.expertCount, D, expertOutputs);
      recorder.recordPeaks(layer, peaks);
    };
    try {
      let done = 0;
      for (const chunk of chunks) {
        recorder.beginStep(chunk, chunk.map((id) => this.tokenizer.tokenToPiece(id)));
        this.model.eval(chunk, 0, { last: true, ...(options.routing ? { routing: options.routing } : {}) });
        options.onProgress?.((done += chunk.length), total);
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.model.onRouting = undefined;
      release();
    }
    return recorder.finish();
  }

  async profileExperts(text: string, options: ProfileOptions = {}): Promise<ExpertProfile> {
    const trace = await this.recordRouting('profileExperts', text, {
      peaks: true,
      ...(options.ctx !== undefined ? { ctx: options.ctx } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    // Per MoE layer: how many tokens selected each expert, and each expert's peak output.
    const { layers, experts: E, used: K } = trace;
    const counts = new Map(expertLoad(trace).map((l) => [l.layer, l.counts]));
    const peaks = new Map(layers.map((l, li) => [l, Array.from((trace.peaks as Float32Array).subarray(li * E, (li + 1) * E))]));
    return makeProfile(this.info.path, trace.tokens.length, counts, peaks, options.top ?? layers.length * K);
  }

  memory(): MemoryReport {
    return this.model.memory();
  }

  expertStats(): ExpertCacheStats | undefined {
    return this.model.offload?.cache.stats();
  }

  resetExpertStats(): void {
    this.model.offload?.cache.resetStats();
  }

  // What the Evaluators of generation and perplexity report.
  private get vocabSize(): number {
    return this.model.config.vocabSize;
  }
  private get contextLength(): number {
    return this.model.cache.size;
  }

  batchStats(): BatchStats {
    return { ...this.scheduler.stats };
  }

  tokenize(text: string, options: { addSpecial?: boolean; parseSpecial?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, options);
  }

  detokenize(ids: readonly number[]): string {
    return this.tokenizer.decode(ids);
  }

  async *generate(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<GenerateEvent> {
    const seq = this.acquireSequence();
    try {
      const tokens = typeof prompt === 'string' ? this.tokenize(prompt, { addSpecial: true, parseSpecial: true }) : prompt;
      yield* generateTokens(this.evaluator(seq, options), this.tokenizer, tokens, options);
    } finally {
      seq.busy = false;
    }
  }

  async *chat(messages: ChatMessage[], options: GenerateOptions = {}): AsyncGenerator<GenerateEvent> {
    this.template ??= chatTemplateFor(this.tokenizer, this.info.path);
    const text = chatPromptText(this.template, messages, this.tokenizer);
    yield* this.generate(this.tokenize(text, { addSpecial: true, parseSpecial: true }), options);
  }

  logits(tokens: readonly number[], options: { routing?: RoutingControls } = {}): Float32Array {
    const release = this.acquire('logits');
    try {
      if (options.routing) checkRoutingControls(options.routing, this.model.config.moe?.expertCount ?? 1);
      return this.model.eval(tokens, 0, options.routing ? { routing: options.routing } : {});
    } finally {
      release();
    }
  }

  async perplexity(text: string, options: PerplexityOptions): Promise<PerplexityResult> {
    const release = this.acquire('perplexity');
    try {
      if (this.tokenizer.addEos) {
        // GGML_ASSERT(!llama_vocab_get_add_eos(vocab)) in llama-perplexity
        throw new SwitchyardError('E_UNSUPPORTED', `perplexity: ${this.info.path} appends EOS to every text; llama-perplexity refuses such vocabularies`);
      }
      const tokens = this.tokenize(text, { addSpecial: true, parseSpecial: false });
      const routing = options.routing;
      if (routing) checkRoutingControls(routing, this.model.config.moe?.expertCount ?? 1);
      const isClosed = () => this.isClosed;
      const scorer = {
        vocabSize: this.vocabSize,
        contextLength: this.contextLength,
        get closed() {
          return isClosed();
        },
        eval: (t: readonly number[], pos: number, o: { last?: boolean } = {}) => this.model.eval(t, pos, { ...o, ...(routing ? { routing } : {}) }),
      };
      return await perplexityOfTokens(scorer, tokens, this.tokenizer.addBos ? this.tokenizer.bos : null, options);
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.scheduler.close(new SwitchyardError('E_CLOSED', `the model ${this.info.path} was closed`));
    await this.model.close();
  }

  /** logits, perplexity, traces and profiles use the model alone (its first KV cache, the routing observer). */
  private acquire(what: string): () => void {
    if (this.isClosed) throw new SwitchyardError('E_CLOSED', `${what}: the model ${this.info.path} is closed`);
    const generating = this.sequences.filter((q) => q.busy).length;
    if (this.busy || generating > 0) {
      throw new SwitchyardError(
        'E_BUSY',
        `${what}: the model is running ${this.busy ?? `${generating} generation${generating > 1 ? 's' : ''}`}; ` +
          `${what} needs it alone (finish or return() the other iterators first)`,
      );
    }
    this.busy = what;
    return () => {
      this.busy = undefined;
    };
  }

  /** A free sequence for a generation (LoadModelOptions.sequences run at once). */
  private acquireSequence(): Sequence {
    if (this.isClosed) throw new SwitchyardError('E_CLOSED', `generate: the model ${this.info.path} is closed`);
    const free = this.busy ? undefined : this.sequences.find((q) => !q.busy);
    if (!free) {
      const n = this.sequences.length;
      throw new SwitchyardError(
        'E_BUSY',
        this.busy
          ? `generate: the model is running ${this.busy}, which needs it alone`
          : `generate: all ${n} sequence${n > 1 ? 's are' : ' is'} generating (finish or return() another iterator first, or load the model with more sequences)`,
      );
    }
    free.busy = true;
    return free;
  }
}
