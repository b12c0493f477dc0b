/**
 * Byte-level BPE training (GPT-2 style), its own encoder, and the GGUF `tokenizer.*` metadata
 * that makes our runtime tokenizer and llama.cpp's tokenize the same way.
 *
 * Reference: Sennrich et al., "Neural Machine Translation of Rare Words with Subword Units"
 * (2016) for the merge loop; Radford et al., GPT-2 (2019) and openai/gpt-2 encoder.py for the
 * byte-to-unicode mapping and the pre-tokenizer regex; Hugging Face tokenizers' BpeTrainer for
 * the incremental pair counts with a lazily updated max-heap; llama.cpp
 * llm_tokenizer_bpe_session for the encoding rule (lowest merge rank first, leftmost on ties).
 *
 * Training: the text is cut into pre-tokens by the `gpt-2` pre-tokenizer exactly as the runtime
 * cuts it (src/tokenizer/bpe.ts, the same Split pre-tokenizer), each distinct pre-token is
 * counted once with its frequency, and starts as one symbol per UTF-8 byte. Each step merges the
 * most frequent adjacent pair (ties: smallest left id, then smallest right id) everywhere, and
 * only the words containing that pair are rescanned. The vocabulary is the 256 bytes (id = byte
 * value), the merged tokens in merge order, then `<|endoftext|>` (bos = eos, CONTROL). A merge
 * whose text already exists as a token (e.g. "ab"+"c" after "a"+"bc") is kept as a merge but
 * adds no token, as in Hugging Face's trainer: GGUF token texts must be unique.
 */
import { type GGUFKV, kv, writeGGUF } from '../formats/gguf/index.js';
import { preTokenizer, splitMerge } from './bpe.js';
import { preTokenizerFor } from './pre-tokenizers.js';
import { TokenizerError, TokenType, type Vocabulary } from './types.js';

/** The special token that separates documents; also BOS and EOS. */
export const END_OF_TEXT = '<|endoftext|>';
/** The `tokenizer.ggml.pre` the trainer and the runtime share. */
export const BPE_TRAIN_PRE = 'gpt-2';
/** Pair keys pack (left, right) in one number: ids stay below this. */
const MAX_VOCAB = 1 << 21;

export interface BpeTrainOptions {
  /** Tokens in the vocabulary, including the 256 byte tokens and `<|endoftext|>` (at least 257). */
  readonly vocabSize: number;
  /** Pairs seen fewer times than this are never merged (default 2); training may then stop short of vocabSize. */
  readonly minFrequency?: number;
  /**
   * Called with (tokens merged so far, tokens wanted = vocabSize - 257) once the words are counted
   * (0), every `progressEvery` merges (default 256) and at the end.
   */
  readonly onProgress?: (merges: number, total: number) => void;
  readonly progressEvery?: number;
}

/** A trained byte-level BPE vocabulary. */
export interface TrainedBpe {
  /** Token texts in id order, in GPT-2's byte-level form (a space is 'Ġ'). */
  readonly tokens: readonly string[];
  /** GGUF merges "left right", in rank order. */
  readonly merges: readonly string[];
  /** Id of `<|endoftext|>` (the last token of a vocabulary trained here). */
  readonly endOfText: number;
}

/** GPT-2's byte -> printable character table (openai/gpt-2 encoder.py bytes_to_unicode). */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) table.push(String.fromCharCode(printable(b) ? b : 256 + extra++));
  return table;
})();

const utf8 = new TextEncoder();

/** The `gpt-2` pre-tokenizer the runtime uses (one shared instance). */
let gpt2Split: ((text: string) => string[]) | undefined;
function preTokens(text: string): string[] {
  gpt2Split ??= preTokenizer(preTokenizerFor(BPE_TRAIN_PRE, 'bpe-train').type);
  return gpt2Split(text);
}

/** Max-heap of (count, pair key): highest count first, then the smallest key (left id, then right id). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }
  /** Removes the top; returns [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop() as number;
    const lastKey = this.keys.pop() as number;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.counts.length && this.above(l, best)) best = l;
        if (r < this.counts.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/**
 * Trains a byte-level BPE vocabulary of `options.vocabSize` tokens on `texts` (each text is
 * pre-tokenized on its own, so nothing merges across document boundaries).
 */
export function trainBPE(texts: Iterable<string>, options: BpeTrainOptions): TrainedBpe {
  const { vocabSize } = options;
  const minFrequency = options.minFrequency ?? 2;
  const progressEvery = options.progressEvery ?? 256;
  if (!Number.isInteger(vocabSize) || vocabSize < 257 || vocabSize > MAX_VOCAB) {
    throw new TokenizerError(
      `BPE training: vocabSize ${vocabSize} is out of range: it must be an integer from 257 (256 byte tokens + ${END_OF_TEXT}) to ${MAX_VOCAB}`,
    );
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new TokenizerError(`BPE training: minFrequency ${minFrequency} must be a positive integer`);
  }

  // 1. Distinct pre-tokens and their frequencies.
  const wordFreq = new Map<string, number>();
  for (const text of texts) {
    for (const piece of preTokens(text)) {
      wordFreq.set(piece, (wordFreq.get(piece) ?? 0) + 1);
    }
  }
  const words: Int32Array[] = []; // symbols of each word, ids
  const freqs: number[] = [];
  for (const [piece, freq] of wordFreq) {
    words.push(Int32Array.from(utf8.encode(piece)));
    freqs.push(freq);
  }

  const tokens: string[] = [...BYTE_TO_CHAR];
  const idOf = new Map<string, number>(tokens.map((t, id) => [t, id]));
  const merges: string[] = [];
  const report = () => options.onProgress?.(tokens.length - 256, vocabSize - 257);

  // 2. Initial pair counts and, per pair, the words that contain it.
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const addWord = (key: number, w: number) => {
    const list = pairWords.get(key);
    if (!list) pairWords.set(key, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  };
  for (let w = 0; w < words.length; w++) {
    const s = words[w];
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i] * MAX_VOCAB + s[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + freqs[w]);
      addWord(key, w);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);
  report();

  // 3. Merge loop. Heap entries go stale as counts change: an entry whose count is above the
  // pair's current count is re-pushed with the current one; one below it is dropped (a fresher
  // entry exists, pushed when the count grew).
  while (tokens.length + 1 < vocabSize && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (count !== current) {
      if (current > count) continue;
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (count < minFrequency) break;
    const left = Math.floor(key / MAX_VOCAB);
    const right = key % MAX_VOCAB;
    const text = tokens[left] + tokens[right];
    let merged = idOf.get(text);
    if (merged === undefined) {
      merged = tokens.length;
      tokens.push(text);
      idOf.set(text, merged);
    }
    merges.push(`${tokens[left]} ${tokens[right]}`);

    const grown = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      const s = words[w];
      // Merge every non-overlapping occurrence, left to right.
      const out: number[] = [];
      let found = false;
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === left && s[i + 1] === right) {
          out.push(merged);
          i++;
          found = true;
        } else {
          out.push(s[i]);
        }
      }
      if (!found) continue; // a stale entry of the word list
      const next = Int32Array.from(out);
      // Pair count deltas of this word (old pairs out, new pairs in).
      const delta = new Map<number, number>();
      for (let i = 0; i + 1 < s.length; i++) {
        const k = s[i] * MAX_VOCAB + s[i + 1];
        delta.set(k, (delta.get(k) ?? 0) - 1);
      }
      for (let i = 0; i + 1 < next.length; i++) {
        const k = next[i] * MAX_VOCAB + next[i + 1];
        delta.set(k, (delta.get(k) ?? 0) + 1);
      }
      for (const [k, d] of delta) {
        if (d === 0) continue;
        pairCount.set(k, (pairCount.get(k) ?? 0) + d * freqs[w]);
        if (d > 0) {
          addWord(k, w);
          grown.add(k);
        }
      }
      words[w] = next;
    }
    pairCount.delete(key);
    pairWords.delete(key);
    for (const k of grown) heap.push(pairCount.get(k) as number, k);
    if (merges.length % progressEvery === 0) report();
  }

  report();
  tokens.push(END_OF_TEXT);
  return { tokens, merges, endOfText: tokens.length - 1 };
}

/**
 * The GGUF `tokenizer.*` metadata of a trained vocabulary, as the GGUF writer takes it:
 * model gpt2, pre gpt-2, tokens, token types (NORMAL; `<|endoftext|>` CONTROL), merges,
 * bos = eos = `<|endoftext|>`, and no BOS added when encoding.
 */
export function bpeTokenizerMetadata(trained: TrainedBpe): GGUFKV[] {
  const types = new Int32Array(trained.tokens.length).fill(TokenType.NORMAL);
  types[trained.endOfText] = TokenType.CONTROL;
  return [
    kv.string('tokenizer.ggml.model', 'gpt2'),
    kv.string('tokenizer.ggml.pre', BPE_TRAIN_PRE),
    kv.strings('tokenizer.ggml.tokens', [...trained.tokens]),
    kv.i32s('tokenizer.ggml.token_type', types),
    kv.strings('tokenizer.ggml.merges', [...trained.merges]),
    kv.u32('tokenizer.ggml.bos_token_id', trained.endOfText),
    kv.u32('tokenizer.ggml.eos_token_id', trained.endOfText),
    kv.bool('tokenizer.ggml.add_bos_token', false),
    kv.bool('tokenizer.ggml.add_eos_token', false),
  ];
}

/**
 * Writes a vocabulary-only GGUF (no tensors), like llama.cpp's models/ggml-vocab-*.gguf: the
 * tokenizer metadata under `general.architecture = gpt2` with placeholder gpt2 hyperparameters,
 * which llama.cpp's loader requires even with vocab_only (llama-tokenize reads it).
 */
export async function writeTokenizerGGUF(path: string, trained: TrainedBpe, name = 'switchyard-bpe'): Promise<void> {
  await writeGGUF(path, {
    metadata: [
      kv.string('general.architecture', 'gpt2'),
      kv.string('general.name', name),
      kv.u32('gpt2.block_count', 1),
      kv.u32('gpt2.context_length', 1024),
      kv.u32('gpt2.embedding_length', 64),
      kv.u32('gpt2.feed_forward_length', 256),
      kv.u32('gpt2.attention.head_count', 1),
      kv.f32('gpt2.attention.layer_norm_epsilon', 1e-5),
      ...bpeTokenizerMetadata(trained),
    ],
    tensors: [],
  });
}

/**
 * The trainer's own encoder for a trained vocabulary: the same pre-tokenizer, then within each
 * pre-token the merge of lowest rank is applied first (leftmost on ties), as llama.cpp does.
 * Special-token text in the input is plain text (llama.cpp's parse_special = false).
 */
export class BpeEncoder {
  readonly endOfText: number;
  private readonly rank = new Map<number, number>(); // pair key -> rank
  private readonly result = new Map<number, number>(); // pair key -> merged id
  private readonly cache = new Map<string, number[]>();
  private readonly tokens: readonly string[];
  private readonly byteIds = new Int32Array(256); // byte -> its single-byte token

  constructor(trained: TrainedBpe) {
    this.tokens = trained.tokens;
    this.endOfText = trained.endOfText;
    const idOf = new Map(trained.tokens.map((t, id) => [t, id]));
    BYTE_TO_CHAR.forEach((ch, b) => {
      const id = idOf.get(ch);
      if (id === undefined) throw new TokenizerError(`byte-level BPE: the vocabulary has no token for byte ${b} ('${ch}')`);
      this.byteIds[b] = id;
    });
    trained.merges.forEach((merge, rank) => {
      const [l, r] = splitMerge(merge);
      const left = idOf.get(l);
      const right = idOf.get(r);
      const merged = idOf.get(l + r);
      if (left === undefined || right === undefined || merged === undefined) {
        throw new TokenizerError(`BPE merge ${rank} '${merge}': a side or its result is not in the vocabulary`);
      }
      const key = left * MAX_VOCAB + right;
      if (!this.rank.has(key)) {
        this.rank.set(key, rank); // a repeated merge keeps its first rank (llama.cpp)
        this.result.set(key, merged);
      }
    });
  }

  /**
   * The encoder of a loaded vocabulary (Tokenizer.vocabulary), for tokenizing a corpus fast
   * (about 10x the runtime tokenizer, same ids): only byte-level `gpt-2` vocabularies whose
   * tokens are all NORMAL except the EOS, so that no special-token matching is skipped.
   */
  static fromVocabulary(vocabulary: Vocabulary): BpeEncoder {
    const { source, model, pre, ignoreMerges, specialIds, types, tokens, merges } = vocabulary;
    const eos = specialIds.eos;
    const why =
      model !== 'gpt2' || pre !== BPE_TRAIN_PRE || ignoreMerges
        ? `it is tokenizer.ggml.model '${model}', pre '${pre}'${ignoreMerges ? ' with ignore_merges' : ''}, not gpt2 / ${BPE_TRAIN_PRE}`
        : eos === null
          ? 'it has no EOS token'
          : types.some((t, id) => id !== eos && t !== TokenType.NORMAL)
            ? 'it has special tokens besides the EOS'
            : undefined;
    if (why !== undefined || eos === null) throw new TokenizerError(`${source}: BpeEncoder cannot encode this vocabulary: ${why}`);
    return new BpeEncoder({ tokens, merges, endOfText: eos });
  }

  get vocabSize(): number {
    return this.tokens.length;
  }
  /** Same as endOfText: the vocabulary's EOS (and BOS). */
  get eos(): number {
    return this.endOfText;
  }

  /** Token ids of `text` (no BOS/EOS added). */
  encode(text: string): number[] {
    const out: number[] = [];
    if (text === '') return out;
    for (const piece of preTokens(text)) {
      let ids = this.cache.get(piece);
      if (!ids) {
        ids = this.encodeWord(piece);
        if (this.cache.size < 1 << 20) this.cache.set(piece, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  private encodeWord(piece: string): number[] {
    const s = Array.from(utf8.encode(piece), (b) => this.byteIds[b]);
    for (;;) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < s.length; i++) {
        const r = this.rank.get(s[i] * MAX_VOCAB + s[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) return s;
      s.splice(best, 2, this.result.get(s[best] * MAX_VOCAB + s[best + 1]) as number);
    }
  }

  /** The text of `ids` (exact inverse of encode; `<|endoftext|>` renders as nothing). */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) {
        throw new TokenizerError(`token id ${id} is out of range 0..${this.tokens.length - 1}`);
      }
      if (id === this.endOfText) continue;
      for (const ch of this.tokens[id]) bytes.push(CHAR_TO_BYTE.get(ch) as number);
    }
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(Uint8Array.from(bytes));
  }
}

const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((ch, b) => [ch, b]));
