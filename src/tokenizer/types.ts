/**
 * Tokenizer vocabulary shapes, token types and the error class. The vocabulary is kept in
 * GGUF's shape (parallel arrays indexed by token id, as the `tokenizer.ggml.*` keys store it)
 * whether it came from a GGUF file or from a Hugging Face tokenizer.json.
 * Reference: gguf-py/gguf/constants.py (Keys.Tokenizer, TokenType) and llama.cpp
 * include/llama.h (llama_token_attr).
 */
import { SwitchyardError } from '../core/errors.js';

/** A missing or ill-typed tokenizer key, an unknown model or pre-tokenizer, a bad token id. */
export class TokenizerError extends SwitchyardError {
  constructor(message: string) {
    super('E_TOKENIZER', message);
  }
}

/** `tokenizer.ggml.token_type` values (gguf-py TokenType). */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/**
 * Token attributes as llama.cpp derives them at load time (llama_token_attr): the file's token
 * type plus the flags llama.cpp adds by token text (EOG/FIM tokens become CONTROL, "unused"
 * CONTROL tokens become UNUSED, phi-3 special tokens strip spaces on their right...).
 */
export const TokenAttr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  NORMALIZED: 1 << 6,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
  SINGLE_WORD: 1 << 9,
} as const;

/** The tokenizer algorithms (`tokenizer.ggml.model`) Switchyard implements. */
export type TokenizerModelName = 'llama' | 'gpt2';

/**
 * A vocabulary as the `tokenizer.*` GGUF keys describe it, validated (array lengths agree,
 * special ids in range) with llama.cpp's defaults applied where a key is absent.
 */
export interface Vocabulary {
  /** Where it came from, for error messages (a file name). */
  readonly source: string;
  /** `general.name`: llama.cpp keys a few per-model token attributes on it (phi-3). */
  readonly modelName: string;
  readonly model: TokenizerModelName;
  /** `tokenizer.ggml.pre` as stored ('' when absent: llama.cpp then uses 'default'). */
  readonly pre: string;
  readonly tokens: readonly string[];
  /** SentencePiece piece scores (`llama` only; all 0 when the file has none). */
  readonly scores: Float32Array;
  /** GGUF token types (NORMAL where the file has no `token_type`). */
  readonly types: Int32Array;
  /** BPE merges, "left right" (`gpt2` only). */
  readonly merges: readonly string[];
  readonly specialIds: SpecialTokenIds;
  /** llama.cpp's `add_bos`/`add_eos`: the file's flags, else the per-model default. */
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** SentencePiece: prepend a space to the text (and after special tokens). */
  readonly addSpacePrefix: boolean;
  /** BPE: look a whole pre-token up in the vocabulary before merging (llama3 family). */
  readonly ignoreMerges: boolean;
  /** Detokenizer clean-up of " ," " ." " 's" etc. (llama.cpp clean_spaces). */
  readonly cleanSpaces: boolean;
  readonly chatTemplate: string | undefined;
}

/** Special token ids (`tokenizer.ggml.*_token_id`), null where the vocabulary has none. */
export interface SpecialTokenIds {
  readonly bos: number | null;
  readonly eos: number | null;
  readonly eot: number | null;
  readonly eom: number | null;
  readonly unk: number | null;
  readonly sep: number | null;
  readonly pad: number | null;
  readonly mask: number | null;
  readonly cls: number | null;
  readonly fimPre: number | null;
  readonly fimSuf: number | null;
  readonly fimMid: number | null;
  readonly fimPad: number | null;
  readonly fimRep: number | null;
  readonly fimSep: number | null;
}

export interface EncodeOptions {
  /** Add BOS/EOS as the vocabulary says (`add_bos_token`/`add_eos_token`). Default true. */
  readonly addSpecial?: boolean;
  /**
   * Turn the text of control tokens (`<s>`, `<|im_end|>`...) into those tokens. Default false:
   * such text is tokenized as plain text. User-defined tokens are always matched, as in
   * llama.cpp and Hugging Face tokenizers.
   */
  readonly parseSpecial?: boolean;
}

export interface DecodeOptions {
  /**
   * Leave out control tokens (BOS, EOS, `<|im_end|>`...). Default true, like llama.cpp's
   * `llama_detokenize(..., unparse_special = false)`; false renders their text.
   */
  readonly skipSpecial?: boolean;
}
