/**
 * Continuous batching of concurrent generations. Each sequence submits its next step (one decode
 * token, or its prompt) and gets a promise of the logits of its last token; the steps submitted
 * during one turn of the event loop run together in one Model.evalBatch, so projections, norms
 * and experts run once over all their rows: sequences that pick the same expert share its
 * dispatch and, with an expert cache, its read. Attention stays per sequence, in its own KV cache.
 *
 * A batch holds at most `batchTokens` rows: decode steps go first, then prompts in arrival order
 * fill what is left; a longer prompt goes on in the next batches (rows are independent and the KV
 * cache is written before it is read, so a prompt cut in chunks gives the same logits). Steps with
 * different routing controls run as separate batches (the controls apply to the whole step).
 * Results are bit-identical to evaluating each sequence alone (test/api/batch.test.ts).
 * Reference: llama.cpp tools/server/server.cpp, update_slots() (one llama_batch per iteration:
 * every generating slot's token, then prompt tokens up to n_batch).
 */
import { SwitchyardError } from '../core/errors.js';
import type { KVCache } from '../generate/kv-cache.js';
import type { Model } from '../models/model.js';
import type { RoutingObserver } from '../models/nn/layers.js';
import type { RoutingControls } from '../router/adaptive.js';
import type { LayerRouting } from './types.js';

/** Rows in one batch at most (llama.cpp's default n_batch is 2048; 512 keeps activations small). */
export const DEFAULT_BATCH_TOKENS = 512;

export interface StepResult {
  /** Logits [V] of the step's last token. */
  logits: Float32Array;
  /** With `trace`: the routing of the last token, per MoE layer, best first. */
  routing?: LayerRouting[];
}

export interface StepOptions {
  routing?: RoutingControls;
  trace?: boolean;
}

/** Figures since load: batches run, sequence steps in them, and rows (tokens). */
export interface BatchStats {
  batches: number;
  steps: number;
  tokens: number;
}

interface Pending {
  readonly cache: KVCache;
  readonly tokens: readonly number[];
  readonly pos: number;
  /** Tokens of this step already evaluated (a prompt that spans batches). */
  done: number;
  readonly routing: RoutingControls | undefined;
  readonly key: string;
  readonly trace: boolean;
  resolve(r: StepResult): void;
  reject(e: unknown): void;
}

/** A slice of one pending step in this batch. */
interface Part {
  readonly p: Pending;
  readonly count: number;
}

export class BatchScheduler {
  private pending: Pending[] = [];
  private scheduled = false;
  private closedWith: Error | undefined;
  readonly stats: BatchStats = { batches: 0, steps: 0, tokens: 0 };

  constructor(
    private readonly model: Model,
    readonly batchTokens = DEFAULT_BATCH_TOKENS,
  ) {
    if (!(Number.isInteger(batchTokens) && batchTokens >= 1)) {
      throw new SwitchyardError('E_INVALID_ARGUMENT', `batchTokens must be a whole number >= 1, got ${batchTokens}`);
    }
  }

  /**
   * Evaluates `tokens` at positions [pos, pos + n) of `cache` in a coming batch. Throws at once
   * when they do not fit the cache; a failing batch rejects the steps in it.
   */
  step(cache: KVCache, tokens: readonly number[], pos: number, options: StepOptions = {}): Promise<StepResult> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (tokens.length === 0) return Promise.reject(new SwitchyardError('E_INVALID_ARGUMENT', 'a step has no tokens'));
    if (this.pending.some((p) => p.cache === cache)) {
      return Promise.reject(new SwitchyardError('E_INVALID_ARGUMENT', 'a sequence submitted a step while its previous one is pending'));
    }
    cache.reserve(pos, tokens.length);
    return new Promise((resolve, reject) => {
      const routing = options.routing;
      this.pending.push({ cache, tokens, pos, done: 0, routing, key: routing ? JSON.stringify(routing) : '', trace: !!options.trace, resolve, reject });
      this.schedule();
    });
  }

  /** Refuses every pending and later step with `reason` (the model is closing). */
  close(reason: Error): void {
    this.closedWith = reason;
    for (const p of this.pending.splice(0)) p.reject(reason);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // After this turn's callbacks: every sequence resumed in this turn has submitted by then.
    setImmediate(() => {
      this.scheduled = false;
      this.runBatch();
      if (this.pending.length > 0) this.schedule();
    });
  }

  /** Takes up to batchTokens rows (decode steps first) and runs them, one evalBatch per routing. */
  private runBatch(): void {
    if (this.closedWith) return;
    const order = [...this.pending].sort((a, b) => rank(a) - rank(b)); // stable: arrival order within each kind
    let budget = this.batchTokens;
    const groups = new Map<string, Part[]>();
    for (const p of order) {
      const count = Math.min(p.tokens.length - p.done, budget);
      if (count === 0) break;
      budget -= count;
      const group = groups.get(p.key) ?? [];
      group.push({ p, count });
      groups.set(p.key, group);
    }
    for (const parts of groups.values()) this.runGroup(parts);
  }

  private runGroup(parts: Part[]): void {
    const model = this.model;
    const E = model.config.moe?.expertCount ?? 1;
    // Steps that end in this batch and asked for a trace get their last row's routing.
    const traced = parts.map((x) => x.p.trace && x.p.done + x.count === x.p.tokens.length);
    const routings: LayerRouting[][] = parts.map(() => []);
    const observer = (rows: { i: number; row: number }[]): RoutingObserver | undefined => {
      const wanted = rows.filter((m) => traced[m.i]);
      if (wanted.length === 0) return undefined;
      return (layer, r, _outputs, routerLogits) => {
        const K = r.ids.length / (routerLogits.length / E);
        for (const m of wanted) (routings[m.i] as LayerRouting[]).push(rowRouting(layer, r.ids, r.weights, K, m.row));
      };
    };
    const routing = parts[0]?.p.routing;
    const options = routing ? { routing } : {};
    let logits: Float32Array[];
    try {
      const segments = parts.map(({ p, count }) => ({ tokens: p.tokens.slice(p.done, p.done + count), pos: p.pos + p.done, cache: p.cache }));
      if (parts.length > 1 && model.canBatch) {
        let end = 0;
        model.onRouting = observer(segments.map((s, i) => ({ i, row: (end += s.tokens.length) - 1 })));
        logits = model.evalBatch(segments, options);
      } else {
        logits = segments.map((s, i) => {
          model.onRouting = observer([{ i, row: s.tokens.length - 1 }]);
          return model.eval(s.tokens, s.pos, { last: true, cache: s.cache, ...options });
        });
      }
    } catch (e) {
      for (const { p } of parts) this.drop(p).reject(e);
      return;
    } finally {
      model.onRouting = undefined;
    }
    this.stats.batches++;
    parts.forEach((x, i) => {
      this.stats.steps++;
      this.stats.tokens += x.count;
      x.p.done += x.count;
      if (x.p.done < x.p.tokens.length) return; // more of this prompt in the next batch
      this.drop(x.p).resolve({ logits: logits[i] as Float32Array, ...(traced[i] ? { routing: routings[i] } : {}) });
    });
  }

  private drop(p: Pending): Pending {
    const i = this.pending.indexOf(p);
    if (i >= 0) this.pending.splice(i, 1);
    return p;
  }
}

/** Decode steps (one token left) before prompts. */
function rank(p: Pending): number {
  return p.tokens.length - p.done === 1 ? 0 : 1;
}

/** Row `row`'s routing at one MoE layer from the router's ids and weights [T, K]: best first, unused (-1) left out. */
function rowRouting(layer: number, ids: Int32Array, weights: Float32Array, K: number, row: number): LayerRouting {
  const out: LayerRouting = { layer, ids: [], weights: [] };
  for (let k = 0; k < K; k++) {
    const e = ids[row * K + k] as number;
    if (e < 0) continue;
    out.ids.push(e);
    out.weights.push(weights[row * K + k] as number);
  }
  return out;
}
