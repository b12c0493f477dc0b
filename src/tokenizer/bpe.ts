/**
 * Byte-level BPE (`tokenizer.ggml.model = gpt2`) run by @huggingface/tokenizers, fed by our
 * converter from a GGUF vocabulary: the pre-tokenizer regexes of `tokenizer.ggml.pre` become a
 * Sequence of Split pre-tokenizers (behavior "Isolated", llama.cpp's unicode_regex_split),
 * then ByteLevel maps each UTF-8 byte to GPT-2's printable character, and the BPE model merges
 * by rank (list order, ties leftmost) as llama.cpp's llm_tokenizer_bpe_session does.
 *
 * Reference: llama.cpp src/llama-vocab.cpp (llm_tokenizer_bpe, llm_tokenizer_bpe_session),
 * src/unicode.cpp (unicode_regex_split, byte encoding); the tokenizer.json format of Hugging
 * Face tokenizers (what convert_hf_to_gguf.py reads).
 */
import { Tokenizer as HuggingFaceTokenizer } from '@huggingface/tokenizers';
import type { PreTokenizerType } from './pre-tokenizers.js';
import type { Vocabulary } from './types.js';

/** A JSON value of a tokenizer.json (kept loose: the library validates the shape). */
export type JsonObject = Record<string, unknown>;

/** "left right" (a GGUF merge) -> [left, right], split where llama.cpp splits it. */
export function splitMerge(merge: string): [string, string] {
  const space = merge.indexOf(' ', 1);
  return [merge.slice(0, space), merge.slice(space + 1)];
}

/** The tokenizer.json `pre_tokenizer` for a llama.cpp pre-type. */
export function byteLevelPreTokenizer(preType: PreTokenizerType): JsonObject {
  return {
    type: 'Sequence',
    pretokenizers: [
      ...preType.regexes.map((regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false })),
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}

/**
 * The pre-tokens llama.cpp cuts `text` into for a pre-type (before byte-level encoding), run
 * by the same Split pre-tokenizers the encoder uses. For tests and tools.
 */
export function preTokenizer(preType: PreTokenizerType): (text: string) => string[] {
  const splits = (byteLevelPreTokenizer(preType).pretokenizers as JsonObject[]).filter((p) => p.type === 'Split');
  // (The library's pre-tokenizer classes have no types under NodeNext resolution; a Tokenizer exposes one.)
  const { pre_tokenizer } = new HuggingFaceTokenizer(
    {
      model: { type: 'BPE', vocab: {}, merges: [] },
      normalizer: null,
      pre_tokenizer: { type: 'Sequence', pretokenizers: splits },
      post_processor: null,
      decoder: null,
      added_tokens: [],
    },
    {},
  );
  return (text) => (text === '' || !pre_tokenizer ? [] : pre_tokenizer.pre_tokenize_text(text));
}

/** The tokenizer.json `model` for a byte-level BPE vocabulary (every token in `vocab`). */
export function byteLevelBpeModel(vocab: Vocabulary): JsonObject {
  const tokenIds: Record<string, number> = Object.create(null); // token texts such as "__proto__" stay plain keys
  vocab.tokens.forEach((text, id) => {
    tokenIds[text] = id;
  });
  // llama.cpp keeps the first rank of a repeated merge (unordered_map::emplace); the library
  // would keep the last, so repeats are dropped here (the relative order is unchanged).
  const seen = new Set<string>();
  const merges: [string, string][] = [];
  for (const merge of vocab.merges) {
    if (seen.has(merge)) continue;
    seen.add(merge);
    merges.push(splitMerge(merge));
  }
  return {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: vocab.ignoreMerges,
    vocab: tokenIds,
    merges,
  };
}

/** Encodes text fragments (special tokens already split off) with the library's BPE. */
export class ByteLevelBpe {
  private readonly engine: HuggingFaceTokenizer;

  constructor(vocab: Vocabulary, preType: PreTokenizerType) {
    // No added tokens, normalizer or post-processor: special tokens are matched by our
    // Tokenizer first (llama.cpp's tokenizer_st_partition), BOS/EOS are added there too.
    this.engine = new HuggingFaceTokenizer(
      {
        model: byteLevelBpeModel(vocab),
        normalizer: null,
        pre_tokenizer: byteLevelPreTokenizer(preType),
        post_processor: null,
        decoder: null,
        added_tokens: [],
      },
      {},
    );
  }

  encode(text: string, output: number[]): void {
    for (const id of this.engine.encode(text, { add_special_tokens: false }).ids) output.push(id);
  }
}
