/**
 * The Tokenizer: text <-> token ids exactly as llama.cpp's llama_tokenize / llama_detokenize
 * do for the same vocabulary, plus a streaming decoder for generation.
 *
 * Reference: llama.cpp src/llama-vocab.cpp (d32676d77): `tokenize` (special-token partition,
 * BOS/EOS, SentencePiece space prefix), `tokenizer_st_partition`, `token_to_piece`,
 * `detokenize` (leading-space removal, clean_spaces passes).
 *
 * Encoding: the text is first cut at occurrences of special tokens (user-defined tokens always;
 * control and unknown tokens only with parseSpecial), longest token first; each remaining
 * fragment is tokenized by the model (our SentencePiece for `llama`, @huggingface/tokenizers'
 * BPE for `gpt2`). Input strings are well-formed UTF-16 in practice; a lone surrogate is
 * replaced by U+FFFD first (what TextEncoder does), so no input throws.
 *
 * Decoding works on bytes: each token's piece is its UTF-8 bytes (byte tokens are single bytes
 * that may be part of a character), the pieces are concatenated and decoded once, invalid UTF-8
 * becoming U+FFFD. The streaming decoder holds back an incomplete character until the next
 * token completes it.
 */
import type { GGUFMetadata } from '../formats/gguf/index.js';
import { ByteLevelBpe } from './bpe.js';
import { preTokenizerFor } from './pre-tokenizers.js';
import { SentencePieceModel } from './spm.js';
import type { DecodeOptions, EncodeOptions, SpecialTokenIds, TokenizerModelName, Vocabulary } from './types.js';
import { TokenAttr, TokenizerError } from './types.js';
import { readVocabulary, type TokenAttributes, tokenAttributes } from './vocabulary.js';

const utf8Encoder = new TextEncoder();
/** Invalid UTF-8 becomes U+FFFD; a leading U+FEFF is text, not a byte-order mark to drop. */
const utf8Decoder = () => new TextDecoder('utf-8', { ignoreBOM: true });
const SPACE = 0x20;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** C isspace() in the "C" locale: what llama.cpp strips next to LSTRIP/RSTRIP tokens. */
const C_SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

/** A piece of the text to tokenize, or a special token already recognised. */
type Fragment = string | number;

/** GPT-2's byte-to-character table, reversed: character -> byte (llama.cpp unicode_utf8_to_byte). */
const BYTE_OF_CHAR: ReadonlyMap<string, number> = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) map.set(String.fromCharCode(printable(b) ? b : 256 + extra++), b);
  return map;
})();

/** Incremental detokenizer: push ids as they are generated, get text that never splits a character. */
export interface StreamingDecoder {
  /** Text completed by this token ('' while a multi-byte character is still incomplete). */
  push(id: number): string;
  /** Whatever is still held back (an incomplete character becomes U+FFFD). */
  flush(): string;
}

export class Tokenizer {
  readonly model: TokenizerModelName;
  /** Special ids after llama.cpp's text-based detection (eot/eom/fim found by token text). */
  readonly specialIds: SpecialTokenIds;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** `tokenizer.chat_template`, if the model has one. */
  readonly chatTemplate: string | undefined;
  /** Things llama.cpp would only log while loading (ids out of range, empty tokens). */
  readonly warnings: readonly string[];

  private readonly tokens: readonly string[];
  private readonly attrs: Uint16Array;
  private readonly endOfGeneration: ReadonlySet<number>;
  private readonly specialTokens: readonly number[];
  private readonly addSpacePrefix: boolean;
  private readonly cleanSpaces: boolean;
  private readonly spm: SentencePieceModel | undefined;
  private readonly bpe: ByteLevelBpe | undefined;
  private readonly pieceCache: (Uint8Array | undefined)[];
  /** First UTF-16 unit of each special token -> whether any special token starts with it. */
  private readonly specialFirstUnits: Set<number>;

  constructor(
    readonly vocabulary: Vocabulary,
    warnings: readonly string[] = [],
  ) {
    const derived: TokenAttributes = tokenAttributes(vocabulary);
    this.model = vocabulary.model;
    this.specialIds = derived.specialIds;
    this.addBos = vocabulary.addBos;
    this.addEos = vocabulary.addEos;
    this.chatTemplate = vocabulary.chatTemplate;
    this.warnings = warnings;
    this.tokens = vocabulary.tokens;
    this.attrs = derived.attrs;
    this.endOfGeneration = derived.endOfGeneration;
    this.specialTokens = derived.specialTokens;
    this.addSpacePrefix = vocabulary.addSpacePrefix;
    this.cleanSpaces = vocabulary.cleanSpaces;
    this.pieceCache = new Array(vocabulary.tokens.length);
    this.specialFirstUnits = new Set(this.specialTokens.map((id) => this.tokens[id].charCodeAt(0)));
    if (vocabulary.model === 'llama') {
      const ids = new Map(vocabulary.tokens.map((text, id) => [text, id]));
      this.spm = new SentencePieceModel(ids, vocabulary.scores, this.specialIds.unk, vocabulary.source);
    } else {
      this.bpe = new ByteLevelBpe(vocabulary, preTokenizerFor(vocabulary.pre, vocabulary.source).type);
    }
  }

  get vocabSize(): number {
    return this.tokens.length;
  }
  get bos(): number | null {
    return this.specialIds.bos;
  }
  get eos(): number | null {
    return this.specialIds.eos;
  }
  get eot(): number | null {
    return this.specialIds.eot;
  }
  /** True for llama.cpp's end-of-generation tokens: eos, eot, eom and tokens such as <|im_end|>. */
  isEndOfGeneration(id: number): boolean {
    return this.endOfGeneration.has(id);
  }
  /** The end-of-generation token ids, ascending. */
  endOfGenerationIds(): number[] {
    return [...this.endOfGeneration].sort((a, b) => a - b);
  }
  /** True for control and unknown tokens (what decode leaves out by default). */
  isControl(id: number): boolean {
    this.check(id);
    return (this.attrs[id] & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) !== 0;
  }
  /** The token's vocabulary string as stored (byte-level or ▁-escaped form). */
  tokenText(id: number): string {
    this.check(id);
    return this.tokens[id];
  }

  /** Token ids of `text`. See EncodeOptions for addSpecial (default true) and parseSpecial (default false). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecial = options.addSpecial ?? true;
    const parseSpecial = options.parseSpecial ?? false;
    const fragments = text === '' ? [] : this.partition(text.replace(LONE_SURROGATE, '\uFFFD'), parseSpecial);
    const output: number[] = [];
    if (addSpecial && this.addBos) output.push(this.specialIds.bos as number); // checked when read
    if (this.spm) {
      let previousWasSpecial = true; // the text start counts as "after a special token"
      for (const fragment of fragments) {
        if (typeof fragment === 'number') {
          output.push(fragment);
          previousWasSpecial = true;
          continue;
        }
        const spaced = this.addSpacePrefix && previousWasSpecial ? ` ${fragment}` : fragment;
        this.spm.encode(spaced.replaceAll(' ', '\u2581'), output);
        previousWasSpecial = false;
      }
    } else {
      for (const fragment of fragments) {
        if (typeof fragment === 'number') output.push(fragment);
        else this.bpe?.encode(fragment, output);
      }
    }
    if (addSpecial && this.addEos) output.push(this.specialIds.eos as number);
    return output;
  }

  /**
   * Text of `ids`, as llama_detokenize(remove_special = skipSpecial, unparse_special =
   * !skipSpecial): with skipSpecial (default true) control tokens produce nothing and a leading
   * BOS / trailing EOS the vocabulary adds are dropped. SentencePiece drops the space the
   * encoder prefixed, except after a leading BOS (llama.cpp keeps it there), so
   * decode(encode(x, { addSpecial: false })) === x. BPE vocabularies with clean-up (gpt-2,
   * falcon, starcoder...) also remove the space before , . ? ! and in " 's", " 'm", " 're",
   * " 've" as llama.cpp does.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecial ?? true;
    for (const id of ids) this.check(id);
    let first = 0;
    let end = ids.length;
    let removeSpace = this.addSpacePrefix;
    if (skipSpecial && this.addBos && end > 0 && ids[0] === this.specialIds.bos) {
      removeSpace = false;
      first = 1;
    }
    if (skipSpecial && this.addEos && end > first && ids[end - 1] === this.specialIds.eos) end--;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = first; i < end; i++) {
      let piece = this.pieceBytes(ids[i], !skipSpecial);
      if (removeSpace && piece.length > 0 && piece[0] === SPACE) piece = piece.subarray(1);
      removeSpace = false; // only the first token, even when it renders nothing (llama.cpp)
      parts.push(piece);
      total += piece.length;
    }
    let bytes: Uint8Array = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    if (this.cleanSpaces) bytes = cleanUpSpaces(bytes);
    return utf8Decoder().decode(bytes);
  }

  /** The token's text as llama.cpp's token_to_piece(special = true) renders it (may be part of a character). */
  tokenToPiece(id: number): string {
    this.check(id);
    return utf8Decoder().decode(this.pieceBytes(id, true));
  }

  /** The token's UTF-8 bytes (llama.cpp token_to_piece; control tokens are empty unless `special`). */
  tokenBytes(id: number, special = true): Uint8Array {
    this.check(id);
    return this.pieceBytes(id, special).slice();
  }

  /**
   * A decoder for generated tokens: pieces are emitted as soon as they form whole characters,
   * with no leading-space removal and no clean-up (generation continues a text). Control tokens
   * produce nothing unless skipSpecial is false.
   */
  createStreamingDecoder(options: DecodeOptions = {}): StreamingDecoder {
    const skipSpecial = options.skipSpecial ?? true;
    let pending = new Uint8Array(0);
    const decoder = utf8Decoder();
    return {
      push: (id: number) => {
        this.check(id);
        const piece = this.pieceBytes(id, !skipSpecial);
        const bytes = new Uint8Array(pending.length + piece.length);
        bytes.set(pending);
        bytes.set(piece, pending.length);
        const cut = completeUtf8Prefix(bytes);
        pending = bytes.slice(cut);
        return decoder.decode(bytes.subarray(0, cut));
      },
      flush: () => {
        const text = decoder.decode(pending);
        pending = new Uint8Array(0);
        return text;
      },
    };
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) {
      throw new TokenizerError(`token id ${id} is out of range: the vocabulary of ${this.vocabulary.source} has ${this.tokens.length} tokens (0..${this.tokens.length - 1})`);
    }
  }

  /** llama.cpp token_to_piece(token, lstrip = 0, special) as bytes (cached for special = true). */
  private pieceBytes(id: number, special: boolean): Uint8Array {
    const attr = this.attrs[id];
    if (!special && attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) return EMPTY;
    let piece = this.pieceCache[id];
    if (piece === undefined) {
      piece = this.computePiece(id);
      this.pieceCache[id] = piece;
    }
    return piece;
  }

  private computePiece(id: number): Uint8Array {
    const attr = this.attrs[id];
    const text = this.tokens[id];
    if (attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN | TokenAttr.USER_DEFINED)) return utf8Encoder.encode(text);
    if (attr & TokenAttr.NORMAL) {
      if (this.model === 'llama') return utf8Encoder.encode(text.replaceAll('\u2581', ' '));
      return byteLevelDecode(text);
    }
    if (attr & TokenAttr.BYTE) return Uint8Array.of(Number.parseInt(text.slice(3, 5), 16));
    return EMPTY; // unused and undefined tokens render nothing
  }

  /**
   * llama.cpp tokenizer_st_partition: for each special token, longest first, cut every text
   * fragment at each occurrence, scanning left to right. LSTRIP/RSTRIP tokens also take the
   * whitespace on that side. Tokens absent from the whole text are skipped up front.
   */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    let fragments: Fragment[] = [text];
    const present = this.specialTokensIn(text);
    if (present.size === 0) return fragments;
    for (const id of this.specialTokens) {
      if (!present.has(id)) continue;
      const attr = this.attrs[id];
      if (!parseSpecial && attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) continue;
      const token = this.tokens[id];
      const next: Fragment[] = [];
      for (const fragment of fragments) {
        if (typeof fragment === 'number') {
          next.push(fragment);
          continue;
        }
        let start = 0;
        for (;;) {
          const at = fragment.indexOf(token, start);
          if (at < 0) break;
          let left = fragment.slice(start, at);
          if (attr & TokenAttr.LSTRIP) left = trimEndCSpace(left);
          if (left) next.push(left);
          next.push(id);
          start = at + token.length;
          if (attr & TokenAttr.RSTRIP) while (start < fragment.length && C_SPACE.has(fragment[start])) start++;
        }
        const rest = fragment.slice(start);
        if (rest) next.push(rest);
      }
      fragments = next;
    }
    return fragments;
  }

  /** Special tokens that occur somewhere in `text`. */
  private specialTokensIn(text: string): Set<number> {
    const present = new Set<number>();
    const firstUnits = new Set<number>();
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i);
      if (this.specialFirstUnits.has(unit)) firstUnits.add(unit);
    }
    if (firstUnits.size === 0) return present;
    for (const id of this.specialTokens) {
      const token = this.tokens[id];
      if (firstUnits.has(token.charCodeAt(0)) && text.includes(token)) present.add(id);
    }
    return present;
  }
}

const EMPTY = new Uint8Array(0);

function trimEndCSpace(s: string): string {
  let end = s.length;
  while (end > 0 && C_SPACE.has(s[end - 1])) end--;
  return s.slice(0, end);
}

/** GPT-2 byte-level token text -> bytes (llama.cpp llama_decode_text, including its marker for unmapped characters). */
function byteLevelDecode(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const ch of text) {
    const b = BYTE_OF_CHAR.get(ch);
    if (b !== undefined) {
      bytes.push(b);
    } else {
      const hex = Array.from(utf8Encoder.encode(ch), (x) => x.toString(16).padStart(2, '0')).join('');
      bytes.push(...utf8Encoder.encode(`[UNK_BYTE_0x${hex}${text}]`));
    }
  }
  return Uint8Array.from(bytes);
}

/** Length of the longest prefix of `bytes` that does not end inside a UTF-8 character. */
function completeUtf8Prefix(bytes: Uint8Array): number {
  // Look back at most 3 bytes for the start of the last character.
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back && b >= 0xc0 && b < 0xf8 ? bytes.length - back : bytes.length;
  }
  return bytes.length; // only continuation bytes: invalid, let the decoder replace them
}

/**
 * llama.cpp detokenize clean_spaces, ported pass for pass (in place, as the C code reads the
 * array it rewrites): " ?" " !" " ." " ," lose the space; " ' " loses both spaces; " 's" " 'm"
 * " 're" " 've" lose the space.
 */
export function cleanUpSpaces(input: Uint8Array): Uint8Array {
  const text = input.slice();
  const c = (ch: string) => ch.charCodeAt(0);
  const [space, quote, nul] = [SPACE, c("'"), 0];
  // Pass 1: characters ?!.,
  const total1 = text.length;
  let total = total1 ? 1 : 0;
  for (let i = 1; i < total1; i++) {
    const x = text[i];
    if (text[i - 1] === space && (x === c('?') || x === c('!') || x === c('.') || x === c(','))) total--;
    text[total++] = x;
  }
  // Pass 2: a single apostrophe between spaces
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; i++) {
    const x = text[i];
    if (x === quote && i + 1 < total2 && text[i - 1] === space && text[i + 1] === space) {
      total--; // the space before
      text[++i] = nul; // the space after
    }
    text[total++] = x;
  }
  // Pass 3: apostrophe contractions
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; i++) {
    const x = text[i];
    if (text[i - 1] === space && x === quote && i + 1 < total3) {
      const x1 = text[i + 1];
      if (x1 === c('s') || x1 === c('m')) total--;
      else if (x1 !== c('t') && x1 !== c('d') && i + 2 < total3) {
        const x2 = text[i + 2];
        if ((x1 === c('r') && x2 === c('e')) || (x1 === c('v') && x2 === c('e'))) total--;
      }
    }
    text[total++] = x;
  }
  return text.slice(0, total);
}

/** A tokenizer for the `tokenizer.*` metadata of a GGUF file. */
export function tokenizerFromGGUF(metadata: GGUFMetadata): Tokenizer {
  const warnings: string[] = [];
  const vocabulary = readVocabulary(metadata, warnings);
  return new Tokenizer(vocabulary, warnings);
}
