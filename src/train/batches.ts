/**
 * Token batches for language-model training: documents -> one token stream -> windows of
 * seqLen inputs whose targets are the same tokens shifted by one (next-token prediction, as in
 * karpathy/llm.c's DataLoader and nanoGPT's get_batch).
 *
 * Stream: every document is preceded by `<|endoftext|>` and the stream ends with one, so each
 * document starts after an `<|endoftext|>` (what generation from BOS = EOS sees) and ends by
 * predicting it.
 *
 * Training windows (BatchSampler): each epoch cuts the stream into non-overlapping windows at a
 * random phase (offset in [0, seqLen)) and visits them in a random order, both drawn from
 * Rng(seed, epoch); so the whole state is { seed, epoch, position } and a resumed run draws
 * exactly the batches the uninterrupted run would have. A batch that runs past the end of an
 * epoch continues with the next epoch.
 *
 * Held-out windows (heldOutWindows): non-overlapping windows from the start of the stream, in
 * order, covering every target once; padding targets are -1 (ignored by the cross-entropy
 * kernel).
 */
import { InvalidArgumentError } from '../core/errors.js';
import { Rng } from './rng.js';

/** What tokenizeDocuments needs: our runtime Tokenizer and the trainer's BpeEncoder both fit. */
export interface DocumentTokenizer {
  encode(text: string, options?: { addSpecial?: boolean }): number[];
  /** The `<|endoftext|>` id (BOS = EOS for trained vocabularies). */
  readonly eos: number | null;
}

/** The token stream of `docs`: `<|endoftext|>` d0 `<|endoftext|>` d1 ... `<|endoftext|>`. */
export function tokenizeDocuments(tok: DocumentTokenizer, docs: readonly { readonly text: string }[]): Int32Array {
  const eos = tok.eos;
  if (eos === null) throw new InvalidArgumentError('tokenizeDocuments: the tokenizer has no end-of-text (EOS) token to separate documents');
  const parts: number[][] = [];
  let total = 1;
  for (const doc of docs) {
    const ids = tok.encode(doc.text, { addSpecial: false });
    parts.push(ids);
    total += ids.length + 1;
  }
  const stream = new Int32Array(total);
  let at = 0;
  for (const ids of parts) {
    stream[at++] = eos;
    stream.set(ids, at);
    at += ids.length;
  }
  stream[at] = eos;
  return stream;
}

export interface BatchShape {
  /** T: tokens per window. */
  readonly seqLen: number;
  /** B: windows per batch. */
  readonly batchSize: number;
}

/** B windows of T tokens, row-major: inputs[b * T + t], targets = inputs shifted by one. */
export interface TokenBatch {
  readonly inputs: Int32Array; // [B*T]
  readonly targets: Int32Array; // [B*T]
}

/** The sampler's whole state (JSON-friendly). */
export interface BatchSamplerState {
  readonly seed: number;
  readonly epoch: number;
  /** Windows of this epoch already handed out. */
  readonly position: number;
}

function checkShape({ seqLen, batchSize }: BatchShape, what: string): void {
  if (!Number.isInteger(seqLen) || seqLen < 1 || !Number.isInteger(batchSize) || batchSize < 1) {
    throw new InvalidArgumentError(`${what}: seqLen and batchSize must be positive integers, got ${seqLen} and ${batchSize}`);
  }
}

function isSamplerState(x: unknown): x is BatchSamplerState {
  const s = x as Partial<BatchSamplerState> | null;
  return typeof s === 'object' && s !== null && [s.seed, s.epoch, s.position].every((v) => Number.isInteger(v) && (v as number) >= 0);
}

/** Shuffled training windows with an exact-resume state. */
export class BatchSampler {
  private seed: number;
  private epoch = 0;
  private position = 0;
  private offset = 0;
  private order: Int32Array = new Int32Array(0);

  /** `rng` gives the seed (one draw) unless a number seed is passed. */
  constructor(
    private readonly tokens: Int32Array,
    readonly shape: BatchShape,
    rng: Rng | number,
  ) {
    checkShape(shape, 'BatchSampler');
    if (tokens.length < 2 * shape.seqLen) {
      throw new InvalidArgumentError(
        `BatchSampler: ${tokens.length} tokens are too few for windows of seqLen ${shape.seqLen} (at least ${2 * shape.seqLen} needed)`,
      );
    }
    this.seed = typeof rng === 'number' ? rng >>> 0 : rng.nextU32();
    this.startEpoch(0);
  }

  /** Windows in the current epoch. */
  get windowsPerEpoch(): number {
    return this.order.length;
  }

  /** The next B windows. */
  next(): TokenBatch {
    const { seqLen: T, batchSize: B } = this.shape;
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      if (this.position >= this.order.length) this.startEpoch(this.epoch + 1);
      const start = this.offset + this.order[this.position++] * T;
      inputs.set(this.tokens.subarray(start, start + T), b * T);
      targets.set(this.tokens.subarray(start + 1, start + T + 1), b * T);
    }
    return { inputs, targets };
  }

  state(): BatchSamplerState {
    return { seed: this.seed, epoch: this.epoch, position: this.position };
  }

  /** Continues from a saved state() (of a sampler over the same tokens and shape), e.g. read back from a checkpoint's JSON. */
  restore(state: unknown): void {
    if (!isSamplerState(state)) {
      throw new InvalidArgumentError(`BatchSampler.restore: ${JSON.stringify(state)} is not a sampler state { seed, epoch, position } of non-negative integers`);
    }
    const { seed, epoch, position } = state;
    this.seed = seed >>> 0;
    this.startEpoch(epoch);
    if (position > this.order.length) {
      throw new InvalidArgumentError(
        `BatchSampler.restore: position ${position} is past the ${this.order.length} windows of epoch ${epoch} (different tokens or seqLen?)`,
      );
    }
    this.position = position;
  }

  /** Phase and window order of an epoch, from Rng(seed, epoch) alone. */
  private startEpoch(epoch: number): void {
    const T = this.shape.seqLen;
    const rng = new Rng((this.seed ^ Math.imul(epoch + 1, 0x9e3779b9)) >>> 0);
    this.epoch = epoch;
    this.position = 0;
    this.offset = rng.int(T);
    const count = Math.floor((this.tokens.length - 1 - this.offset) / T);
    const order = new Int32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    for (let i = count - 1; i > 0; i--) {
      const j = rng.int(i + 1); // Fisher-Yates
      const x = order[i];
      order[i] = order[j];
      order[j] = x;
    }
    this.order = order;
  }
}

/** A held-out batch: `rows` real windows (the rest padding), `count` targets that are not -1. */
export interface EvalBatch extends TokenBatch {
  readonly rows: number;
  readonly count: number;
}

/**
 * Held-out batches: windows at 0, T, 2T, ... in order, each predicting tokens[start + 1 ..
 * start + T]; together they predict every token of the stream after the first exactly once.
 * The last window and the last batch are padded (input 0, target -1). `maxTokens` limits the
 * evaluation to the first ceil(maxTokens / T) windows (the same ones every time).
 */
export function* heldOutWindows(
  tokens: Int32Array,
  seqLen: number,
  batchSize: number,
  maxTokens = Number.POSITIVE_INFINITY,
): Generator<EvalBatch> {
  checkShape({ seqLen, batchSize }, 'heldOutWindows');
  const T = seqLen;
  const B = batchSize;
  const windows = Math.min(heldOutWindowCount(tokens, T), Math.ceil(maxTokens / T));
  for (let first = 0; first < windows; first += B) {
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(-1);
    const rows = Math.min(B, windows - first);
    let count = 0;
    for (let b = 0; b < rows; b++) {
      const start = (first + b) * T;
      const n = Math.min(T, tokens.length - 1 - start);
      inputs.set(tokens.subarray(start, start + n), b * T);
      targets.set(tokens.subarray(start + 1, start + 1 + n), b * T);
      count += n;
    }
    yield { inputs, targets, rows, count };
  }
}

/** Number of held-out windows of a stream (what heldOutWindows visits without a limit). */
export function heldOutWindowCount(tokens: Int32Array, seqLen: number): number {
  return Math.ceil((tokens.length - 1) / seqLen);
}
