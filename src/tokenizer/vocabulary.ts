/**
 * Read a tokenizer vocabulary from GGUF `tokenizer.*` metadata, validated, with llama.cpp's
 * defaults; and derive the per-token attributes and end-of-generation set llama.cpp computes
 * when it loads a vocabulary.
 *
 * Reference: llama.cpp src/llama-vocab.cpp, `llama_vocab::impl::load` (d32676d77): the
 * per-model defaults (special ids, add_bos/add_eos, add_space_prefix), the special-token keys,
 * the text-based detection of EOT/EOM/FIM tokens, "unused" tokens, the EOG list and the per-model
 * token attributes (phi-3 RSTRIP). Keys: gguf-py/gguf/constants.py (Keys.Tokenizer).
 *
 * Stricter than llama.cpp where a file is damaged rather than unusual: array lengths must agree
 * (llama.cpp only refuses too few scores/types), duplicate token strings are an error (llama.cpp
 * asserts), and every merge must be "left right" with both sides in the vocabulary.
 */
import type { GGUFArray, GGUFMetadata } from '../formats/gguf/index.js';
import { GGUF_INTEGER_TYPES, GGUFValueType } from '../formats/gguf/index.js';
import { preTokenizerFor } from './pre-tokenizers.js';
import { type SpecialTokenIds, TokenAttr, TokenizerError, type TokenizerModelName, TokenType, type Vocabulary } from './types.js';

const MODELS: readonly TokenizerModelName[] = ['llama', 'gpt2'];

/** The special-token keys llama.cpp reads, in its order (deprecated FIM keys last). */
export const SPECIAL_TOKEN_KEYS: readonly [keyof SpecialTokenIds, string][] = [
  ['bos', 'tokenizer.ggml.bos_token_id'],
  ['eos', 'tokenizer.ggml.eos_token_id'],
  ['eot', 'tokenizer.ggml.eot_token_id'],
  ['eom', 'tokenizer.ggml.eom_token_id'],
  ['unk', 'tokenizer.ggml.unknown_token_id'],
  ['sep', 'tokenizer.ggml.seperator_token_id'], // sic: the GGUF key is misspelt
  ['pad', 'tokenizer.ggml.padding_token_id'],
  ['cls', 'tokenizer.ggml.cls_token_id'],
  ['mask', 'tokenizer.ggml.mask_token_id'],
  ['fimPre', 'tokenizer.ggml.fim_pre_token_id'],
  ['fimSuf', 'tokenizer.ggml.fim_suf_token_id'],
  ['fimMid', 'tokenizer.ggml.fim_mid_token_id'],
  ['fimPad', 'tokenizer.ggml.fim_pad_token_id'],
  ['fimRep', 'tokenizer.ggml.fim_rep_token_id'],
  ['fimSep', 'tokenizer.ggml.fim_sep_token_id'],
  ['fimPre', 'tokenizer.ggml.prefix_token_id'],
  ['fimSuf', 'tokenizer.ggml.suffix_token_id'],
  ['fimMid', 'tokenizer.ggml.middle_token_id'],
];


/** Typed reads of tokenizer keys; every failure is a TokenizerError naming file and key. */
class KeyReader {
  constructor(private readonly metadata: GGUFMetadata) {}
  private fail(key: string, what: string): never {
    throw new TokenizerError(`${this.metadata.file}: metadata key '${key}' ${what}`);
  }
  has(key: string): boolean {
    return this.metadata.has(key);
  }
  string(key: string): string | undefined {
    const kv = this.metadata.entry(key);
    if (!kv) return undefined;
    if (kv.type !== GGUFValueType.STRING) this.fail(key, 'must be a string');
    return kv.value as string;
  }
  bool(key: string): boolean | undefined {
    const kv = this.metadata.entry(key);
    if (!kv) return undefined;
    if (kv.type !== GGUFValueType.BOOL) this.fail(key, 'must be a bool');
    return kv.value as boolean;
  }
  integer(key: string): number | undefined {
    const kv = this.metadata.entry(key);
    if (!kv) return undefined;
    if (!GGUF_INTEGER_TYPES.has(kv.type)) this.fail(key, 'must be an integer');
    return Number(kv.value as number | bigint);
  }
  array(key: string, ok: (itemType: number) => boolean, what: string): GGUFArray | undefined {
    const kv = this.metadata.entry(key);
    if (!kv) return undefined;
    if (kv.type !== GGUFValueType.ARRAY || !ok((kv.value as GGUFArray).itemType)) this.fail(key, `must be ${what}`);
    return kv.value as GGUFArray;
  }
  strings(key: string): string[] | undefined {
    return this.array(key, (t) => t === GGUFValueType.STRING, 'an array of strings')?.items as string[] | undefined;
  }
  lengthMismatch(key: string, got: number, want: number): never {
    this.fail(key, `has ${got} entries but 'tokenizer.ggml.tokens' has ${want}; the arrays describe the same tokens and must have one entry per token`);
  }
}

/**
 * The vocabulary described by `metadata`. Throws TokenizerError for missing or ill-typed
 * keys, unsupported models or pre-tokenizers, inconsistent arrays and bad merges.
 * `warnings` collects what llama.cpp would only log (a special id out of range, empty tokens).
 */
export function readVocabulary(metadata: GGUFMetadata, warnings: string[] = []): Vocabulary {
  const source = metadata.file;
  const keys = new KeyReader(metadata);
  const modelName = keys.string('tokenizer.ggml.model');
  if (modelName === undefined) {
    throw new TokenizerError(`${source}: metadata key 'tokenizer.ggml.model' is missing: the file has no tokenizer`);
  }
  if (!MODELS.includes(modelName as TokenizerModelName)) {
    throw new TokenizerError(
      `${source}: metadata key 'tokenizer.ggml.model' is '${modelName}'; Switchyard implements ${MODELS.map((m) => `'${m}'`).join(' and ')}`,
    );
  }
  const model = modelName as TokenizerModelName;
  const pre = keys.string('tokenizer.ggml.pre') ?? '';

  const tokens = keys.strings('tokenizer.ggml.tokens');
  if (!tokens) throw new TokenizerError(`${source}: metadata key 'tokenizer.ggml.tokens' is missing`);
  if (tokens.length === 0) throw new TokenizerError(`${source}: metadata key 'tokenizer.ggml.tokens' is empty`);
  const n = tokens.length;

  const scoreArray = keys.array('tokenizer.ggml.scores', (t) => t === GGUFValueType.FLOAT32, 'an array of float32');
  if (scoreArray && scoreArray.items.length !== n) keys.lengthMismatch('tokenizer.ggml.scores', scoreArray.items.length, n);
  const scores = scoreArray ? Float32Array.from(scoreArray.items as Float32Array) : new Float32Array(n);

  const typeArray = keys.array('tokenizer.ggml.token_type', (t) => GGUF_INTEGER_TYPES.has(t) && t !== GGUFValueType.UINT64 && t !== GGUFValueType.INT64, 'an array of 32-bit integers');
  if (typeArray && typeArray.items.length !== n) keys.lengthMismatch('tokenizer.ggml.token_type', typeArray.items.length, n);
  const types = typeArray ? Int32Array.from(typeArray.items as ArrayLike<number>) : new Int32Array(n).fill(TokenType.NORMAL);

  // Token strings: llama.cpp renames empty ones and requires them to be unique.
  const text = tokens.slice();
  const seen = new Map<string, number>();
  for (let id = 0; id < n; id++) {
    if (text[id] === '') {
      text[id] = `[EMPTY_${id}]`;
      warnings.push(`${source}: token ${id} is empty; named '${text[id]}' as llama.cpp does`);
    }
    const previous = seen.get(text[id]);
    if (previous !== undefined) {
      throw new TokenizerError(
        `${source}: metadata key 'tokenizer.ggml.tokens' has the token ${JSON.stringify(text[id])} twice (ids ${previous} and ${id}); token strings must be unique`,
      );
    }
    seen.set(text[id], id);
  }

  let merges: string[] = [];
  if (model === 'gpt2') {
    const m = keys.strings('tokenizer.ggml.merges');
    if (!m) throw new TokenizerError(`${source}: metadata key 'tokenizer.ggml.merges' is missing; a 'gpt2' (BPE) tokenizer needs its merges`);
    m.forEach((merge, i) => {
      const space = merge.indexOf(' ', 1); // llama.cpp: word.find(' ', 1)
      const left = merge.slice(0, space);
      const right = merge.slice(space + 1);
      if (space < 0 || !seen.has(left) || !seen.has(right)) {
        throw new TokenizerError(
          `${source}: metadata key 'tokenizer.ggml.merges' entry ${i} (${JSON.stringify(merge)}) ` +
            (space < 0 ? 'is not "left right"' : `refers to a token not in the vocabulary (${JSON.stringify(seen.has(left) ? right : left)})`),
        );
      }
    });
    merges = m;
  }

  // Per-model defaults (llama_vocab::impl::load), then the pre-tokenizer's flags.
  const preInfo = model === 'gpt2' ? preTokenizerFor(pre, source).name : undefined;
  if (model === 'gpt2' && pre === '') {
    warnings.push(`${source}: no 'tokenizer.ggml.pre'; using the 'default' pre-tokenizer as llama.cpp does (tokenization may differ from the original model's)`);
  }
  const defaults: Record<string, number | null> =
    model === 'llama' ? { bos: 1, eos: 2, unk: 0 } : { bos: preInfo?.noBos ? null : 11, eos: 11 };
  const ids: Record<string, number | null> = {};
  for (const [name, key] of SPECIAL_TOKEN_KEYS) {
    if (!(name in ids)) {
      const d = defaults[name] ?? null;
      ids[name] = d !== null && d < n ? d : null; // a default past the vocabulary is disabled
    }
    const value = keys.integer(key);
    if (value === undefined) continue;
    if (value < 0 || value >= n) {
      warnings.push(`${source}: metadata key '${key}' is ${value}, outside the vocabulary (${n} tokens); ignored as llama.cpp does`);
      continue;
    }
    ids[name] = value;
  }
  const specialIds = Object.fromEntries(SPECIAL_TOKEN_KEYS.map(([name]) => [name, ids[name] ?? null])) as unknown as SpecialTokenIds;

  const addBos = keys.bool('tokenizer.ggml.add_bos_token') ?? (model === 'llama' ? true : (preInfo?.addBos ?? false));
  const addEos = keys.bool('tokenizer.ggml.add_eos_token') ?? false;
  const addSpacePrefix = keys.bool('tokenizer.ggml.add_space_prefix') ?? model === 'llama';
  if (addBos && specialIds.bos === null) {
    throw new TokenizerError(`${source}: the vocabulary adds a BOS token ('tokenizer.ggml.add_bos_token') but has none ('tokenizer.ggml.bos_token_id')`);
  }
  if (addEos && specialIds.eos === null) {
    throw new TokenizerError(`${source}: the vocabulary adds an EOS token ('tokenizer.ggml.add_eos_token') but has none ('tokenizer.ggml.eos_token_id')`);
  }

  return {
    source,
    modelName: keys.string('general.name') ?? '',
    model,
    pre,
    tokens: text,
    scores,
    types,
    merges,
    specialIds,
    addBos,
    addEos,
    addSpacePrefix,
    ignoreMerges: preInfo?.ignoreMerges ?? false,
    cleanSpaces: preInfo?.cleanSpaces ?? false,
    chatTemplate: keys.string('tokenizer.chat_template'),
  };
}

/** What llama.cpp derives from a vocabulary at load time. */
export interface TokenAttributes {
  /** TokenAttr bits per token. */
  readonly attrs: Uint16Array;
  /** Special ids after llama.cpp's text-based detection of EOT, EOM and FIM tokens. */
  readonly specialIds: SpecialTokenIds;
  /** End-of-generation tokens. */
  readonly endOfGeneration: ReadonlySet<number>;
  /** Tokens matched in text before tokenizing (control, user-defined, unknown), longest first. */
  readonly specialTokens: readonly number[];
}

const TYPE_ATTR: Record<number, number> = {
  [TokenType.UNKNOWN]: TokenAttr.UNKNOWN,
  [TokenType.UNUSED]: TokenAttr.UNUSED,
  [TokenType.NORMAL]: TokenAttr.NORMAL,
  [TokenType.CONTROL]: TokenAttr.CONTROL,
  [TokenType.USER_DEFINED]: TokenAttr.USER_DEFINED,
  [TokenType.BYTE]: TokenAttr.BYTE,
};

// Token texts llama.cpp recognises (llama_vocab::impl::load, "auto-detect special tokens by text").
const EOT_TEXTS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>'];
const EOM_TEXTS = ['<|eom_id|>'];
const FIM_TEXTS: [keyof SpecialTokenIds, string[]][] = [
  ['fimPre', ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>']],
  ['fimSuf', ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>']],
  ['fimMid', ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>']],
  ['fimPad', ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]']],
  ['fimRep', ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>']],
  ['fimSep', ['<|file_sep|>']],
];
const EOG_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>',
  '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
];
const ALWAYS_RENDERED = ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>']; // gpt-oss

/** llama.cpp's load-time token attributes, EOG set and special-token list for `vocab`. */
export function tokenAttributes(vocab: Vocabulary): TokenAttributes {
  const n = vocab.tokens.length;
  const attrs = new Uint16Array(n);
  for (let id = 0; id < n; id++) attrs[id] = TYPE_ATTR[vocab.types[id]] ?? TokenAttr.UNDEFINED;
  const idOf = new Map(vocab.tokens.map((text, id) => [text, id]));
  const ids: Record<string, number | null> = { ...vocab.specialIds };
  const makeControl = (id: number) => {
    attrs[id] |= TokenAttr.CONTROL;
  };

  // llama.cpp walks an unordered_map here, so with several candidates the pick is unspecified;
  // we take the first text of the list that the vocabulary has.
  const detect = (name: keyof SpecialTokenIds, texts: string[]) => {
    if (ids[name] !== null) return;
    for (const text of texts) {
      const id = idOf.get(text);
      if (id !== undefined) {
        ids[name] = id;
        makeControl(id);
        return;
      }
    }
  };
  detect('eot', EOT_TEXTS);
  detect('eom', EOM_TEXTS);
  for (const [name, texts] of FIM_TEXTS) detect(name, texts);

  for (let id = 0; id < n; id++) {
    if (attrs[id] & TokenAttr.CONTROL && vocab.tokens[id].includes('unused')) attrs[id] |= TokenAttr.UNUSED;
  }

  const eog = new Set<number>();
  for (const name of ['fimPad', 'fimRep', 'fimSep'] as const) if (ids[name] !== null) eog.add(ids[name] as number);
  for (const text of EOG_TEXTS) {
    const id = idOf.get(text);
    if (id !== undefined) {
      eog.add(id);
      makeControl(id);
    }
  }
  for (const text of ALWAYS_RENDERED) {
    const id = idOf.get(text);
    if (id !== undefined) attrs[id] = TokenAttr.USER_DEFINED;
  }
  for (const name of ['eos', 'eot', 'eom'] as const) if (ids[name] !== null) eog.add(ids[name] as number);

  // o200k_harmony / solar-open: <|end|> ends a message, not the generation.
  const eogText = new Set([...eog].map((id) => vocab.tokens[id]));
  if (((eogText.has('<|return|>') && eogText.has('<|call|>')) || (eogText.has('<|calls|>') && eogText.has('<|flush|>'))) && eogText.has('<|end|>')) {
    const end = idOf.get('<|end|>') as number;
    eog.delete(end);
    attrs[end] = TokenAttr.USER_DEFINED;
  }
  // gemma4 / paddleocr: </s> is not an end of generation there.
  if (eogText.has('<|tool_response>') && eogText.has('</s>')) {
    const s = idOf.get('</s>') as number;
    eog.delete(s);
    attrs[s] = TokenAttr.NORMAL;
  }

  const specialMask = TokenAttr.CONTROL | TokenAttr.USER_DEFINED | TokenAttr.UNKNOWN;
  const specialTokens: number[] = [];
  for (let id = 0; id < n; id++) if (attrs[id] & specialMask) specialTokens.push(id);
  // Longest first (llama.cpp uses an unstable sort; ties cannot both match at one position).
  specialTokens.sort((a, b) => vocab.tokens[b].length - vocab.tokens[a].length || a - b);

  // Per-model attributes keyed on general.name (llama.cpp "Handle per token attributes").
  const name = vocab.modelName.toLowerCase();
  if (name.includes('phi-3') || name.includes('phi3')) {
    for (const id of specialTokens) attrs[id] |= TokenAttr.RSTRIP;
    const set = (text: string, on: boolean) => {
      const id = idOf.get(text);
      if (id !== undefined) attrs[id] = on ? attrs[id] | TokenAttr.RSTRIP : attrs[id] & ~TokenAttr.RSTRIP;
    };
    set('</s>', true);
    for (const text of ['<unk>', '<s>', '<|endoftext|>']) set(text, false);
  }

  return {
    attrs,
    specialIds: ids as unknown as SpecialTokenIds,
    endOfGeneration: eog,
    specialTokens,
  };
}
