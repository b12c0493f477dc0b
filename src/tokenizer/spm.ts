/**
 * SentencePiece BPE as llama.cpp runs it for `tokenizer.ggml.model = llama`: start from the
 * text's characters, repeatedly merge the adjacent pair whose concatenation is the vocabulary
 * piece with the highest score (ties: the leftmost pair), then emit each piece's id, or its
 * UTF-8 bytes as <0xXX> byte tokens when the piece is not in the vocabulary.
 *
 * Reference: llama.cpp src/llama-vocab.cpp, llm_tokenizer_spm_session (d32676d77). One change
 * for speed, exact by construction: the text is merged in independent segments (see encode),
 * with a cache of recent segments; test/unit/tokenizer-api.test.ts checks it against a plain
 * whole-text port.
 *
 * Why our own code rather than @huggingface/tokenizers: the library's BPE model ranks merges
 * by their position in a merge list, a strict order, while llama.cpp ranks candidate pairs by
 * piece score and breaks equal scores by position. Merges derived from the scores (as
 * transformers' SentencePieceExtractor does) reproduce llama-spm and phi-3 exactly on every
 * test vector, the Moby-Dick excerpt and 20,000 random whitespace-heavy strings, but equal
 * scores are common (llama's 16 whitespace pieces share -1e9; files converted from a
 * tokenizer.json alone have every score at -1000) and there the two orders differ: with equal
 * scores, 38% of 20,000 random strings tokenized differently (measured when this file was
 * written, issue 3). Deriving the merge list also costs 80-380 ms per load; this needs none.
 */
import { TokenizerError } from './types.js';

interface Symbol {
  text: string;
  prev: number;
  next: number;
}

/** A candidate merge of symbols[left] and symbols[right] into `text` (a vocabulary piece). */
interface Bigram {
  left: number;
  right: number;
  score: number;
  text: string;
}

/** Binary max-heap ordered by score, then leftmost. */
class BigramQueue {
  private readonly heap: Bigram[] = [];
  get size(): number {
    return this.heap.length;
  }
  private static before(a: Bigram, b: Bigram): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  push(b: Bigram): void {
    const h = this.heap;
    h.push(b);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!BigramQueue.before(b, h[parent])) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = b;
  }
  pop(): Bigram {
    const h = this.heap;
    const top = h[0];
    const last = h.pop() as Bigram;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = l < h.length && BigramQueue.before(h[l], last) ? l : -1;
        if (r < h.length && BigramQueue.before(h[r], best < 0 ? last : h[best])) best = r;
        if (best < 0) break;
        h[i] = h[best];
        i = best;
      }
      h[i] = last;
    }
    return top;
  }
}

const HEX = '0123456789ABCDEF';
const utf8 = new TextEncoder();

/** Segments encoded recently, with their ids (prose repeats its words). */
const CACHE_LIMIT = 50_000;

export class SentencePieceModel {
  private readonly byteTokens: Int32Array;
  /** Every pair of adjacent characters inside some piece: merging can only cross these. */
  private readonly joinable = new Set<string>();
  private readonly cache = new Map<string, readonly number[]>();

  constructor(
    /** Piece text -> id for the whole vocabulary. */
    private readonly ids: ReadonlyMap<string, number>,
    private readonly scores: Float32Array,
    /** Used for a byte that has no <0xXX> token (llama.cpp would abort). */
    private readonly unknownId: number | null,
    private readonly source: string,
  ) {
    // llama.cpp byte_to_token: "<0xXX>", else the byte as a one-character piece.
    this.byteTokens = new Int32Array(256).fill(-1);
    for (let b = 0; b < 256; b++) {
      const id = ids.get(`<0x${HEX[b >> 4]}${HEX[b & 15]}>`) ?? (b < 128 ? ids.get(String.fromCharCode(b)) : undefined);
      if (id !== undefined) this.byteTokens[b] = id;
    }
    for (const piece of ids.keys()) {
      const chars = Array.from(piece);
      for (let i = 1; i < chars.length; i++) this.joinable.add(chars[i - 1] + chars[i]);
    }
  }

  /**
   * Token ids of `text`, which must already have spaces escaped to U+2581.
   *
   * The text is cut between adjacent characters that no piece contains together: no merge can
   * ever cross such a cut (a merged piece would contain that pair), so each segment merges
   * independently and the result equals merging the whole text at once, as llama.cpp does.
   * Segments (mostly words) are cached.
   */
  encode(text: string, output: number[]): void {
    const chars = Array.from(text);
    let start = 0;
    for (let i = 1; i <= chars.length; i++) {
      if (i < chars.length && this.joinable.has(chars[i - 1] + chars[i])) continue;
      const segment = chars.slice(start, i).join('');
      let ids = this.cache.get(segment);
      if (!ids) {
        const fresh: number[] = [];
        this.merge(segment, fresh);
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(segment, fresh);
        ids = fresh;
      }
      for (const id of ids) output.push(id);
      start = i;
    }
  }

  /** llm_tokenizer_spm_session::tokenize on one segment. */
  private merge(text: string, output: number[]): void {
    const symbols: Symbol[] = [];
    for (const ch of text) symbols.push({ text: ch, prev: symbols.length - 1, next: symbols.length + 1 });
    if (symbols.length === 0) return;
    symbols[symbols.length - 1].next = -1;

    const queue = new BigramQueue();
    const tryAdd = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const merged = symbols[left].text + symbols[right].text;
      const id = this.ids.get(merged);
      if (id !== undefined) queue.push({ left, right, score: this.scores[id], text: merged });
    };
    for (let i = 1; i < symbols.length; i++) tryAdd(i - 1, i);

    while (queue.size > 0) {
      const bigram = queue.pop();
      const left = symbols[bigram.left];
      const right = symbols[bigram.right];
      // Stale: one side was merged into something else since this pair was queued.
      if (left.text === '' || right.text === '' || left.text.length + right.text.length !== bigram.text.length) continue;
      left.text = bigram.text;
      right.text = '';
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = bigram.left;
      tryAdd(left.prev, bigram.left);
      tryAdd(bigram.left, left.next);
    }

    for (let i = 0; i !== -1; i = symbols[i].next) {
      const piece = symbols[i].text;
      const id = this.ids.get(piece);
      if (id !== undefined) {
        output.push(id);
        continue;
      }
      // Only single characters can be missing (every merge is a piece): spell them in bytes.
      for (const byte of utf8.encode(piece)) {
        const byteId = this.byteTokens[byte];
        if (byteId >= 0) output.push(byteId);
        else if (this.unknownId !== null) output.push(this.unknownId);
        else {
          throw new TokenizerError(
            `${this.source}: cannot encode ${JSON.stringify(piece)}: the vocabulary has no byte token <0x${HEX[byte >> 4]}${HEX[byte & 15]}> and no unknown token`,
          );
        }
      }
    }
  }
}
