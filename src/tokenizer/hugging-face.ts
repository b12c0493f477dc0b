/**
 * Hugging Face tokenizer files <-> GGUF `tokenizer.*` metadata, and tokenizers built from
 * tokenizer.json (by converting it to the GGUF vocabulary and tokenizing as llama.cpp would on
 * the converted model, so a checkpoint and its conversion tokenize identically).
 *
 * Reference: llama.cpp conversion/base.py (`get_vocab_base`, `_set_vocab_gpt2`,
 * `_create_vocab_sentencepiece`, `_set_vocab_llama_hf`), gguf-py/gguf/vocab.py (SpecialVocab:
 * special ids, add_bos/add_eos, merges, chat template), transformers'
 * convert_slow_tokenizer.py (LlamaConverter, SentencePieceExtractor: merges from piece scores)
 * for the files we write.
 *
 * Where we differ from convert_hf_to_gguf.py, on purpose (GGUF -> HF -> GGUF gives back the
 * same entries, tested on llama-spm, phi-3 and deepseek-coder):
 *   - added-token types come from the `special` flag alone (CONTROL or USER_DEFINED); the
 *     converter also makes tokens that look special (`<|...|>`, `<pad>`...) CONTROL. llama.cpp
 *     re-derives EOG/FIM control tokens from their text when it loads a model anyway;
 *   - SentencePiece piece types are kept as tokenizer.model states them (the converter turns
 *     USER_DEFINED pieces into NORMAL), and no `▁` -> space rewrite is applied to added tokens;
 *   - without tokenizer.model, a llama-type tokenizer.json gets scores from its merge ranks
 *     (score = -rank of the first merge producing the piece) instead of the converter's -1000
 *     placeholders, which make SentencePiece merging ignore the merge order;
 *   - a special token named in tokenizer_config.json but absent from `added_tokens` is looked
 *     up in the model vocabulary (the converter would need config.json's *_token_id).
 * The pre-tokenizer name is recognised from the Split regexes (pre-tokenizers.ts), not from
 * convert_hf_to_gguf_update.py's hashes of known models.
 */
import { GGUFMetadata, type GGUFKV, kv } from '../formats/gguf/index.js';
import { byteLevelBpeModel, byteLevelPreTokenizer, type JsonObject, splitMerge } from './bpe.js';
import { preTokenizerFor, preTokenizerNameForRegexes } from './pre-tokenizers.js';
import { readSentencePieceModel, type SentencePieceModelProto, writeSentencePieceModel } from './sentencepiece-model.js';
import { type Tokenizer, tokenizerFromGGUF } from './tokenizer.js';
import { TokenizerError, TokenType, type Vocabulary } from './types.js';
import { readVocabulary } from './vocabulary.js';

/** The files of a Hugging Face tokenizer. */
export interface HuggingFaceTokenizerFiles {
  /** tokenizer.json */
  readonly tokenizerJson: JsonObject;
  /** tokenizer_config.json */
  readonly tokenizerConfig: JsonObject;
  /** tokenizer.model, for SentencePiece (`llama`) vocabularies: it carries the piece scores and types. */
  readonly sentencePieceModel?: Uint8Array;
}

export interface FromHuggingFaceOptions {
  /** tokenizer.model, if the checkpoint has one (SentencePiece pieces, scores and types). */
  readonly sentencePieceModel?: Uint8Array;
  /** config.json: `*_token_id` for special tokens tokenizer_config.json does not name, `vocab_size` to pad to. */
  readonly modelConfig?: JsonObject;
  /** Force `tokenizer.ggml.pre` instead of recognising it from the pre-tokenizer regexes. */
  readonly pre?: string;
  /** Name used in error messages. */
  readonly source?: string;
}

const SPECIAL_TYPES = ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask'] as const;
const SPECIAL_KEYS: Record<(typeof SPECIAL_TYPES)[number], string> = {
  bos: 'tokenizer.ggml.bos_token_id',
  eos: 'tokenizer.ggml.eos_token_id',
  unk: 'tokenizer.ggml.unknown_token_id',
  sep: 'tokenizer.ggml.seperator_token_id',
  pad: 'tokenizer.ggml.padding_token_id',
  cls: 'tokenizer.ggml.cls_token_id',
  mask: 'tokenizer.ggml.mask_token_id',
};
const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---- GGUF -> Hugging Face ------------------------------------------------------------------

/**
 * SentencePiece merges as transformers' SentencePieceExtractor derives them: every split of a
 * piece into two vocabulary pieces, ordered by the piece's score (highest first), then by
 * piece id, then by the ids of the two halves.
 */
export function mergesFromScores(vocab: Vocabulary): [string, string][] {
  const ids = new Map(vocab.tokens.map((t, i) => [t, i]));
  const merges: { left: string; right: string; score: number; id: number; l: number; r: number }[] = [];
  vocab.tokens.forEach((piece, id) => {
    if (vocab.types[id] !== TokenType.NORMAL) return;
    const chars = Array.from(piece);
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      const l = ids.get(left);
      const r = ids.get(right);
      if (l !== undefined && r !== undefined) merges.push({ left, right, score: vocab.scores[id], id, l, r });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.l - b.l || a.r - b.r);
  return merges.map((m) => [m.left, m.right]);
}

function addedToken(id: number, content: string, special: boolean): JsonObject {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special };
}

function templateProcessing(vocab: Vocabulary): JsonObject {
  const single: JsonObject[] = [];
  const specials: JsonObject = {};
  const { bos, eos } = vocab.specialIds;
  const special = (id: number) => {
    const token = vocab.tokens[id];
    specials[token] = { id: token, ids: [id], tokens: [token] };
    return { SpecialToken: { id: token, type_id: 0 } };
  };
  if (vocab.addBos && bos !== null) single.push(special(bos));
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  if (vocab.addEos && eos !== null) single.push(special(eos));
  const pair = [...single, ...single.map((item) => ('Sequence' in item ? { Sequence: { id: 'B', type_id: 1 } } : item))];
  return { type: 'TemplateProcessing', single, pair, special_tokens: specials };
}

/**
 * Hugging Face tokenizer files for the vocabulary in `metadata` (used to export GGUF models as
 * checkpoints). ggufTokenizerMetadataFromHuggingFace of the result gives the same `tokenizer.*`
 * entries back.
 */
export function huggingFaceTokenizerFromGGUF(metadata: GGUFMetadata): HuggingFaceTokenizerFiles {
  const vocab = readVocabulary(metadata);
  const isAdded = (type: number) => type === TokenType.CONTROL || type === TokenType.USER_DEFINED || type === TokenType.UNKNOWN;
  const addedTokens: JsonObject[] = [];
  vocab.tokens.forEach((text, id) => {
    if (isAdded(vocab.types[id])) addedTokens.push(addedToken(id, text, vocab.types[id] !== TokenType.USER_DEFINED));
  });

  const config: JsonObject = {};
  if (metadata.has('tokenizer.ggml.add_bos_token')) config.add_bos_token = vocab.addBos;
  if (metadata.has('tokenizer.ggml.add_eos_token')) config.add_eos_token = vocab.addEos;
  for (const type of SPECIAL_TYPES) {
    if (!metadata.has(SPECIAL_KEYS[type])) continue;
    const id = vocab.specialIds[type];
    if (id !== null) config[`${type}_token`] = vocab.tokens[id];
  }
  config.clean_up_tokenization_spaces = vocab.cleanSpaces;
  if (vocab.chatTemplate !== undefined) config.chat_template = vocab.chatTemplate;

  if (vocab.model === 'llama') {
    const tokenIds: Record<string, number> = Object.create(null);
    vocab.tokens.forEach((text, id) => {
      tokenIds[text] = id;
    });
    const unk = vocab.specialIds.unk;
    const tokenizerJson: JsonObject = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokens,
      normalizer: {
        type: 'Sequence',
        normalizers: [
          ...(vocab.addSpacePrefix ? [{ type: 'Prepend', prepend: '\u2581' }] : []),
          { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
        ],
      },
      pre_tokenizer: null,
      post_processor: templateProcessing(vocab),
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          ...(vocab.addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
        ],
      },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: unk !== null ? vocab.tokens[unk] : null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: true,
        ignore_merges: false,
        vocab: tokenIds,
        merges: mergesFromScores(vocab),
      },
    };
    const sentencePiece: SentencePieceModelProto = {
      pieces: vocab.tokens.map((piece, id) => ({ piece, score: vocab.scores[id], type: vocab.types[id] || TokenType.NORMAL })),
      modelType: 2, // BPE
      byteFallback: vocab.types.includes(TokenType.BYTE),
      unkId: vocab.specialIds.unk ?? -1,
      bosId: vocab.specialIds.bos ?? -1,
      eosId: vocab.specialIds.eos ?? -1,
      padId: vocab.specialIds.pad ?? -1,
      addDummyPrefix: vocab.addSpacePrefix,
      removeExtraWhitespaces: false,
      escapeWhitespaces: true,
    };
    return {
      tokenizerJson,
      tokenizerConfig: { ...config, legacy: true, tokenizer_class: 'LlamaTokenizer' },
      sentencePieceModel: writeSentencePieceModel(sentencePiece),
    };
  }

  // gpt2: byte-level BPE. Unused `[PAD<id>]` fillers are left out (the converter recreates them).
  const model = byteLevelBpeModel(vocab);
  const tokenIds = model.vocab as Record<string, number>;
  vocab.tokens.forEach((text, id) => {
    if (vocab.types[id] === TokenType.UNUSED && text === `[PAD${id}]`) delete tokenIds[text];
  });
  const preType = preTokenizerFor(vocab.pre, vocab.source).type;
  const addedDecoder: JsonObject = {};
  for (const t of addedTokens) {
    const { id, ...rest } = t;
    addedDecoder[String(id)] = rest;
  }
  return {
    tokenizerJson: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokens,
      normalizer: null,
      pre_tokenizer: byteLevelPreTokenizer(preType),
      post_processor: templateProcessing(vocab),
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model,
    },
    tokenizerConfig: { ...config, added_tokens_decoder: addedDecoder, tokenizer_class: 'PreTrainedTokenizerFast' },
  };
}

// ---- Hugging Face -> GGUF ------------------------------------------------------------------

/** The regexes a tokenizer.json pre-tokenizer splits with, in order (llama.cpp's form of them). */
function preTokenizerRegexes(preTokenizer: unknown, source: string): string[] {
  const GPT2_HF = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
  const unsupported = (what: string): never => {
    throw new TokenizerError(`${source}: pre_tokenizer ${what} has no llama.cpp equivalent; pass options.pre to name the pre-tokenizer`);
  };
  const walk = (p: unknown): string[] => {
    if (!isObject(p)) return unsupported(JSON.stringify(p));
    switch (p.type) {
      case 'Sequence':
        return (Array.isArray(p.pretokenizers) ? p.pretokenizers : []).flatMap(walk);
      case 'Split': {
        const pattern = isObject(p.pattern) ? p.pattern : {};
        if (typeof pattern.Regex !== 'string' || p.behavior !== 'Isolated' || p.invert === true) {
          return unsupported(`Split ${JSON.stringify(p)}`);
        }
        return [pattern.Regex];
      }
      case 'ByteLevel':
        return p.use_regex === false ? [] : [GPT2_HF];
      case 'Digits':
        return p.individual_digits === true ? ['\\p{N}'] : unsupported('Digits without individual_digits');
      default:
        return unsupported(String(p.type));
    }
  };
  return walk(preTokenizer);
}

function specialContent(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (isObject(entry) && typeof entry.content === 'string') return entry.content;
  return undefined;
}

/**
 * The `tokenizer.*` GGUF entries convert_hf_to_gguf.py writes for a Hugging Face tokenizer
 * (see the header for where we differ), in its order: model, pre, tokens, scores, token_type,
 * merges, special ids, add_bos/add_eos, chat template.
 */
export function ggufTokenizerMetadataFromHuggingFace(tokenizerJson: unknown, tokenizerConfig: unknown = {}, options: FromHuggingFaceOptions = {}): GGUFKV[] {
  const source = options.source ?? 'tokenizer.json';
  if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
    throw new TokenizerError(`${source}: not a tokenizer.json (no "model" object)`);
  }
  const config = isObject(tokenizerConfig) ? tokenizerConfig : {};
  const modelConfig = options.modelConfig ?? {};
  const model = tokenizerJson.model;
  if (model.type !== 'BPE' || !isObject(model.vocab) || !Array.isArray(model.merges)) {
    throw new TokenizerError(`${source}: model type ${JSON.stringify(model.type)} is not supported; Switchyard converts BPE tokenizers (SentencePiece-style with byte_fallback, or byte-level)`);
  }
  const added = (Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : []).filter(isObject);
  const isSentencePiece = model.byte_fallback === true;

  // Tokens by id: vocabulary, then added tokens; holes become [PAD<id>] (UNUSED).
  const byId = new Map<number, string>();
  for (const [text, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new TokenizerError(`${source}: model.vocab[${JSON.stringify(text)}] is ${JSON.stringify(id)}, not a token id`);
    byId.set(id as number, text);
  }
  const addedSpecial = new Map<number, boolean>();
  for (const token of added) {
    if (!Number.isInteger(token.id) || typeof token.content !== 'string') throw new TokenizerError(`${source}: added_tokens entry ${JSON.stringify(token)} needs an integer id and a string content`);
    byId.set(token.id as number, token.content);
    addedSpecial.set(token.id as number, token.special === true);
  }
  let maxId = -1;
  for (const id of byId.keys()) maxId = Math.max(maxId, id); // no spread: vocabularies reach 256k ids
  const vocabSize = Math.max(maxId + 1, typeof modelConfig.vocab_size === 'number' ? modelConfig.vocab_size : 0);
  if (maxId < 0) throw new TokenizerError(`${source}: the tokenizer has no tokens (model.vocab and added_tokens are empty)`);
  if (!Number.isSafeInteger(vocabSize) || vocabSize > 16_777_216) throw new TokenizerError(`${source}: vocabulary size ${vocabSize} is not plausible`);

  let tokens: string[] = [];
  let types: number[] = [];
  let scores: number[] | undefined;
  let sp: SentencePieceModelProto | undefined;
  if (isSentencePiece && options.sentencePieceModel) {
    sp = readSentencePieceModel(options.sentencePieceModel, 'tokenizer.model');
    const n = Math.max(sp.pieces.length, typeof modelConfig.vocab_size === 'number' ? modelConfig.vocab_size : 0);
    tokens = Array.from({ length: n }, (_, i) => `[PAD${i}]`);
    scores = new Array(n).fill(-10000);
    types = new Array(n).fill(TokenType.UNUSED);
    sp.pieces.forEach((p, i) => {
      tokens[i] = p.piece;
      scores![i] = p.score;
      types[i] = p.type;
    });
    // tokenizer_config.json added_tokens_decoder overrides (as the converter applies them).
    const decoderEntries = isObject(config.added_tokens_decoder) ? Object.entries(config.added_tokens_decoder) : [];
    for (const [key, data] of decoderEntries) {
      const id = Number(key);
      if (!isObject(data) || typeof data.content !== 'string' || !Number.isInteger(id) || id < 0 || id >= n) continue;
      tokens[id] = data.content;
      types[id] = data.special === true ? TokenType.CONTROL : TokenType.USER_DEFINED;
      scores[id] = -1000;
    }
  } else {
    for (let id = 0; id < vocabSize; id++) {
      const text = byId.get(id);
      if (text === undefined) {
        tokens.push(`[PAD${id}]`);
        types.push(TokenType.UNUSED);
      } else {
        tokens.push(text);
        const special = addedSpecial.get(id);
        types.push(
          special === true ? TokenType.CONTROL : special === false ? TokenType.USER_DEFINED : isSentencePiece && BYTE_TOKEN.test(text) ? TokenType.BYTE : TokenType.NORMAL,
        );
      }
    }
    if (isSentencePiece) scores = scoresFromMerges(tokens, model.merges, source);
  }

  const entries: GGUFKV[] = [kv.string('tokenizer.ggml.model', isSentencePiece ? 'llama' : 'gpt2')];
  if (isSentencePiece) {
    entries.push(kv.string('tokenizer.ggml.pre', 'default'));
  } else {
    const regexes = preTokenizerRegexes(tokenizerJson.pre_tokenizer, source);
    const pre = options.pre ?? preTokenizerNameForRegexes(regexes, model.ignore_merges === true);
    if (pre === undefined) {
      throw new TokenizerError(
        `${source}: the pre-tokenizer regexes ${JSON.stringify(regexes)} match none llama.cpp knows; pass options.pre to name the pre-tokenizer`,
      );
    }
    preTokenizerFor(pre, source); // a typed error for an unknown forced name
    entries.push(kv.string('tokenizer.ggml.pre', pre));
  }
  entries.push(kv.strings('tokenizer.ggml.tokens', tokens));
  if (scores) entries.push(kv.f32s('tokenizer.ggml.scores', scores));
  entries.push(kv.i32s('tokenizer.ggml.token_type', types));
  if (!isSentencePiece) {
    entries.push(
      kv.strings(
        'tokenizer.ggml.merges',
        (model.merges as unknown[]).map((m, i) => {
          if (typeof m === 'string') return m;
          if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
            // gguf-py: spaces inside a pair are written as U+0120 so the pair stays splittable
            return m.map((part: string) => part.replaceAll(' ', '\u0120')).join(' ');
          }
          throw new TokenizerError(`${source}: model.merges entry ${i} is ${JSON.stringify(m)}, not "left right" or [left, right]`);
        }),
      ),
    );
  }

  // Special ids: tokenizer_config.json names (looked up in added_tokens, then the vocabulary), then config.json ids.
  const ids = new Map<string, number>();
  const lookup = (content: string) => added.find((t) => t.content === content)?.id ?? (model.vocab as Record<string, unknown>)[content];
  for (const type of SPECIAL_TYPES) {
    const content = specialContent(config[`${type}_token`]);
    const id = content === undefined ? undefined : lookup(content);
    if (Number.isInteger(id) && (id as number) < tokens.length) ids.set(type, id as number);
  }
  for (const type of SPECIAL_TYPES) {
    const id = modelConfig[`${type}_token_id`];
    if (!ids.has(type) && Number.isInteger(id) && (id as number) >= 0 && (id as number) < tokens.length) ids.set(type, id as number);
  }
  for (const [type, id] of ids) entries.push(kv.u32(SPECIAL_KEYS[type as (typeof SPECIAL_TYPES)[number]], id));

  // add_bos / add_eos: tokenizer_config.json, else the post-processor template.
  const template = isObject(tokenizerJson.post_processor) && tokenizerJson.post_processor.type === 'TemplateProcessing' ? tokenizerJson.post_processor : undefined;
  const single = template && Array.isArray(template.single) ? template.single.filter(isObject) : [];
  const specialAt = (i: number) => {
    const item = single[i]?.SpecialToken;
    return single.length > 1 && isObject(item) ? item.id : undefined;
  };
  const firstSpecial = specialAt(0);
  const lastSpecial = specialAt(single.length - 1);
  const addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : firstSpecial !== undefined ? firstSpecial === specialContent(config.bos_token) : undefined;
  const addEos = typeof config.add_eos_token === 'boolean' ? config.add_eos_token : lastSpecial !== undefined ? lastSpecial === specialContent(config.eos_token) : undefined;
  if (addBos !== undefined) entries.push(kv.bool('tokenizer.ggml.add_bos_token', addBos));
  if (addEos !== undefined) entries.push(kv.bool('tokenizer.ggml.add_eos_token', addEos));
  if (isSentencePiece && !(sp ? sp.addDummyPrefix : hasPrependSpace(tokenizerJson.normalizer, tokenizerJson.pre_tokenizer))) {
    entries.push(kv.bool('tokenizer.ggml.add_space_prefix', false));
  }

  const chat = config.chat_template;
  if (typeof chat === 'string') {
    entries.push(kv.string('tokenizer.chat_template', chat));
  } else if (Array.isArray(chat)) {
    // gguf-py add_chat_template: named templates as tokenizer.chat_template.<name>, 'default' as the main one
    const names: string[] = [];
    let main: string | undefined;
    for (const choice of chat.filter(isObject)) {
      const name = String(choice.name ?? '').replace(/[^A-Za-z0-9]/g, '_');
      if (!name || typeof choice.template !== 'string') continue;
      if (name === 'default') main = choice.template;
      else {
        names.push(name);
        entries.push(kv.string(`tokenizer.chat_template.${name}`, choice.template));
      }
    }
    if (names.length) entries.push(kv.strings('tokenizer.chat_templates', names));
    if (main !== undefined) entries.push(kv.string('tokenizer.chat_template', main));
  }
  return entries;
}

/** Whether a llama-style tokenizer.json prepends "▁" to the text (Prepend normalizer or Metaspace). */
function hasPrependSpace(normalizer: unknown, preTokenizer: unknown): boolean {
  const any = (node: unknown, test: (o: JsonObject) => boolean): boolean => {
    if (!isObject(node)) return false;
    if (test(node)) return true;
    const children = [node.normalizers, node.pretokenizers].find(Array.isArray) as unknown[] | undefined;
    return children ? children.some((c) => any(c, test)) : false;
  };
  return (
    any(normalizer, (o) => o.type === 'Prepend' && o.prepend === '\u2581') ||
    any(preTokenizer, (o) => o.type === 'Metaspace' && o.prepend_scheme !== 'never' && o.add_prefix_space !== false)
  );
}

/** SentencePiece scores recovered from a merge list: -rank of the first merge producing each piece. */
function scoresFromMerges(tokens: readonly string[], merges: unknown[], source: string): number[] {
  const rank = new Map<string, number>();
  merges.forEach((m, i) => {
    const [left, right] = typeof m === 'string' ? splitMerge(m) : Array.isArray(m) ? (m as [string, string]) : ['', ''];
    if (typeof left !== 'string' || typeof right !== 'string') throw new TokenizerError(`${source}: model.merges entry ${i} is not a pair of strings`);
    const piece = left + right;
    if (!rank.has(piece)) rank.set(piece, i);
  });
  // Pieces no merge produces are never formed by the BPE model: give them the lowest score.
  return tokens.map((t) => (rank.has(t) ? -(rank.get(t) as number) : Array.from(t).length > 1 ? -1e9 : 0));
}

/** A tokenizer for Hugging Face tokenizer files (converted to the GGUF vocabulary first). */
export function tokenizerFromHuggingFace(tokenizerJson: unknown, tokenizerConfig?: unknown, options: FromHuggingFaceOptions = {}): Tokenizer {
  const entries = ggufTokenizerMetadataFromHuggingFace(tokenizerJson, tokenizerConfig, options);
  return tokenizerFromGGUF(new GGUFMetadata(entries, options.source ?? 'tokenizer.json'));
}
