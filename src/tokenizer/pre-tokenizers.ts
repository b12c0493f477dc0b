/**
 * BPE pre-tokenizers: the regexes llama.cpp splits text with before byte-level BPE, chosen by
 * `tokenizer.ggml.pre`. A data table: pre-tokenizer name -> llama.cpp pre-type -> regexes.
 *
 * Reference: llama.cpp src/llama-vocab.cpp at d32676d77 — the `llm_tokenizer_bpe` constructor
 * (`regex_exprs` per LLAMA_VOCAB_PRE_TYPE_*; `line` below is the line of `regex_exprs = {`) and
 * the name -> pre-type chain in `llama_vocab::impl::load` (lines 2130-2370, with the flags each
 * branch sets). The regex strings are copied verbatim from the C source (C and TypeScript string
 * escapes coincide here), and test/unit/tokenizer-pretokenizers.test.ts checks them against
 * test/fixtures/tokenizer/llama-cpp-pre-tokenizers.json, extracted from that file by
 * scripts/make-tokenizer-llama-cpp-table.py.
 *
 * Semantics (llama.cpp unicode_regex_split): the regexes apply in order; each one splits every
 * piece left by the previous ones into its matches and the text between them, all kept (Hugging
 * Face's Split pre-tokenizer with behavior "Isolated"). llama.cpp runs the GPT-2, llama3 and
 * qwen2 patterns with hand-written splitters and the others with std::regex over a copy of the
 * text where every non-ASCII code point is collapsed to one byte per Unicode category; both
 * give the same splits as a Unicode regex engine where `\s` is the White_Space property (not
 * JavaScript's `\s`, which adds U+FEFF and misses U+0085), which is how the engine
 * (@huggingface/tokenizers' Oniguruma-to-JavaScript translation) runs them.
 *
 * Not supported (a typed error): pre-types that llama.cpp implements with custom code or
 * without byte-level encoding (kimi-k2, afmoe, tiny_aya, cohere2moe, superbpe, gemma4,
 * granite-embed-multi-311m, sarvam-moe, whitespace).
 */
import { TokenizerError } from './types.js';

// Regexes shared by several pre-types (verbatim llama.cpp literals).
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DEEPSEEK3 = [
  "\\p{N}{1,3}",
  "[一-龥぀-ゟ゠-ヿ]+",
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
];
const GPT4O =
  "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const BLOOM = " ?[^(\\s|.,!?…。，、।۔،)]+";

/** One llama.cpp pre-type: its regexes, applied in order. */
export interface PreTokenizerType {
  /** LLAMA_VOCAB_PRE_TYPE_<type>. */
  readonly type: string;
  readonly regexes: readonly string[];
  /** Line of `regex_exprs = {` in src/llama-vocab.cpp (d32676d77). */
  readonly line: number;
  /**
   * The regexes as Hugging Face tokenizer.json files write them, where llama.cpp adapted them
   * beyond the `(?i:'s|...)` rewrite (llama.cpp's comments quote them); used to recognise a
   * tokenizer.json's pre-tokenizer.
   */
  readonly huggingFaceRegexes?: readonly string[];
}

const t = (type: string, line: number, regexes: readonly string[], huggingFaceRegexes?: readonly string[]) => ({
  type,
  line,
  regexes,
  huggingFaceRegexes,
});

const PRE_TYPES: readonly PreTokenizerType[] = [
  t("DEFAULT", 547, ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"]),
  t("LLAMA3", 284, [LLAMA3]),
  t("DBRX", 303, [LLAMA3]),
  t("SMAUG", 303, [LLAMA3]),
  t("CHATGLM4", 397, [LLAMA3]),
  // U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126 and U+212A are written as escapes: editors normalise them (NFC).
  t("DEEPSEEK_LLM", 309, [
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
  ]),
  t("DEEPSEEK3_LLM", 321, DEEPSEEK3),
  t("HUNYUAN_DENSE", 321, DEEPSEEK3),
  t("JOYAI_LLM", 321, DEEPSEEK3),
  t("DEEPSEEK_CODER", 334, ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"]),
  t("FALCON", 343, ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"]),
  ...["STARCODER", "REFACT", "COMMAND_R", "SMOLLM", "CODESHELL", "EXAONE", "MINERVA", "MELLUM2"].map((type) =>
    t(type, 357, ["\\p{N}", GPT2]),
  ),
  ...["GPT2", "MPT", "OLMO", "JAIS", "TRILLION", "GRANITE_DOCLING"].map((type) => t(type, 368, [GPT2])),
  ...["STABLELM2", "QWEN2", "HUNYUAN", "SOLAR_OPEN"].map((type) => t(type, 376, [QWEN2])),
  t("GROK_2", 482, [QWEN2]),
  t("QWEN35", 383, [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]),
  ...["PORO", "BLOOM", "GPT3_FINNISH"].map((type) => t(type, 392, [BLOOM])),
  t("VIKING", 402, [BLOOM, "\\p{N}"]),
  t(
    "TEKKEN",
    410,
    [
      "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ],
    [
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ],
  ),
  ...["GPT4O", "MINIMAX_M2"].map((type) =>
    t(
      type,
      430,
      [GPT4O],
      [
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      ],
    ),
  ),
  t("SEED_CODER", 475, [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]),
  t("CHAMELEON", 419, [
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  ]),
  t("JAIS2", 293, [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
  ]),
  t("YOUTU", 328, [
    "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]),
  t("LAGUNA", 500, [
    "[^\\n]+|[\\n]+",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]),
  t("EXAONE_MOE", 506, [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
  ]),
  t("BAILINGMOE", 467, [
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
  ]),
  t("GRANITE_EMB_MULTI", 441, [
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]),
  t("MINICPM5", 531, [
    "\\p{N}{1,3}",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]),
];

/** How llama.cpp configures the vocabulary for one `tokenizer.ggml.pre` name. */
export interface PreTokenizerName {
  readonly name: string;
  readonly type: string;
  /** Line of the `pre_type = ...` assignment in llama_vocab::impl::load. */
  readonly line: number;
  /** Whole pre-tokens found in the vocabulary skip merging. */
  readonly ignoreMerges: boolean;
  /** Detokenizer clean-up of spaces before punctuation (llama.cpp's default for BPE is true). */
  readonly cleanSpaces: boolean;
  /** add_bos default true (the file's `add_bos_token` still overrides it). */
  readonly addBos: boolean;
  /** The vocabulary has no BOS token (chatglm). */
  readonly noBos: boolean;
}

type Flag = 'ignoreMerges' | 'noCleanSpaces' | 'addBos' | 'noBos';
const n = (type: string, line: number, names: string[], ...flags: Flag[]) =>
  names.map(
    (name): PreTokenizerName => ({
      name,
      type,
      line,
      ignoreMerges: flags.includes('ignoreMerges'),
      cleanSpaces: !flags.includes('noCleanSpaces'),
      addBos: flags.includes('addBos'),
      noBos: flags.includes('noBos'),
    }),
  );

// biome-ignore format: one llama.cpp branch per line
const PRE_NAMES: readonly PreTokenizerName[] = [
  ...n("DEFAULT", 2130, ["default"]),
  ...n("MINICPM5", 2132, ["minicpm5"], "ignoreMerges"),
  ...n("LLAMA3", 2144, ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"], "ignoreMerges", "addBos"),
  ...n("DEEPSEEK_LLM", 2149, ["deepseek-llm"], "noCleanSpaces"),
  ...n("DEEPSEEK_CODER", 2153, ["deepseek-coder"], "noCleanSpaces"),
  ...n("DEEPSEEK3_LLM", 2157, ["deepseek-v3"], "noCleanSpaces"),
  ...n("FALCON", 2166, ["falcon"]),
  ...n("MPT", 2169, ["mpt"]),
  ...n("STARCODER", 2172, ["starcoder"]),
  ...n("GPT2", 2184, ["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert"]),
  ...n("GPT2", 2202, ["jina-v1-en", "jina-v2-code", "roberta-bpe"]),
  ...n("REFACT", 2210, ["refact"]),
  ...n("COMMAND_R", 2213, ["command-r"], "noCleanSpaces"),
  ...n("QWEN2", 2220, ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"], "noCleanSpaces"),
  ...n("QWEN35", 2224, ["qwen35"], "noCleanSpaces"),
  ...n("STABLELM2", 2228, ["stablelm2"]),
  ...n("OLMO", 2231, ["olmo"]),
  ...n("DBRX", 2234, ["dbrx"]),
  ...n("SMAUG", 2237, ["smaug-bpe"]),
  ...n("PORO", 2240, ["poro-chat"], "noCleanSpaces"),
  ...n("CHATGLM4", 2245, ["glm4", "chatglm-bpe"], "noBos"),
  ...n("VIKING", 2249, ["viking"], "noCleanSpaces"),
  ...n("JAIS", 2253, ["jais"]),
  ...n("TEKKEN", 2256, ["tekken"], "noCleanSpaces", "ignoreMerges", "addBos"),
  ...n("SMOLLM", 2262, ["smollm"], "noCleanSpaces"),
  ...n("CODESHELL", 2266, ["codeshell"]),
  ...n("BLOOM", 2269, ["bloom"]),
  ...n("GPT3_FINNISH", 2272, ["gpt3-finnish"]),
  ...n("EXAONE", 2275, ["exaone"]),
  ...n("GPT2", 2278, ["exaone4"]),
  ...n("MINERVA", 2289, ["minerva-7b"]),
  ...n("QWEN2", 2292, ["megrez"]),
  ...n("GPT4O", 2298, ["gpt-4o", "llama4", "kanana2", "talkie"], "noCleanSpaces"),
  ...n("TRILLION", 2316, ["trillion"], "noCleanSpaces"),
  ...n("GRANITE_DOCLING", 2320, ["granite-docling"], "noCleanSpaces"),
  ...n("SEED_CODER", 2330, ["seed-coder"], "noCleanSpaces"),
  ...n("HUNYUAN", 2334, ["hunyuan"], "noCleanSpaces"),
  ...n("HUNYUAN_DENSE", 2338, ["hunyuan-dense"], "noCleanSpaces"),
  ...n("JOYAI_LLM", 2342, ["joyai-llm"], "noCleanSpaces"),
  ...n("GROK_2", 2350, ["grok-2"], "noCleanSpaces"),
  ...n("MINIMAX_M2", 2362, ["minimax-m2"], "noCleanSpaces"),
  ...n("SOLAR_OPEN", 2366, ["solar-open"], "noCleanSpaces"),
  ...n("MELLUM2", 2370, ["mellum2"]),
  ...n("YOUTU", 2161, ["youtu"], "noCleanSpaces", "ignoreMerges"),
  ...n("JAIS2", 2187, ["jais-2"]),
  ...n("EXAONE_MOE", 2281, ["exaone-moe"]),
  ...n("CHAMELEON", 2284, ["chameleon"], "addBos", "noCleanSpaces"),
  ...n("GRANITE_EMB_MULTI", 2302, ["granite-embed-multi-97m"], "noCleanSpaces", "ignoreMerges"),
  ...n("BAILINGMOE", 2326, ["bailingmoe", "bailingmoe2", "llada-moe"], "noCleanSpaces"),
  ...n("LAGUNA", 2358, ["laguna"], "noCleanSpaces"),
];

const TYPES_BY_NAME = new Map(PRE_TYPES.map((p) => [p.type, p]));
const NAMES = new Map(PRE_NAMES.map((p) => [p.name, p]));

/** Every `tokenizer.ggml.pre` name Switchyard accepts. */
export function knownPreTokenizerNames(): string[] {
  return [...NAMES.keys()];
}

/** Every pre-type in the table. */
export function preTokenizerTypes(): readonly PreTokenizerType[] {
  return PRE_TYPES;
}

/**
 * The pre-tokenizer for a `tokenizer.ggml.pre` name ('' or absent means 'default', as in
 * llama.cpp). Unknown names are a TokenizerError listing the known ones.
 */
export function preTokenizerFor(name: string, source: string): { name: PreTokenizerName; type: PreTokenizerType } {
  const entry = NAMES.get(name === '' ? 'default' : name);
  if (!entry) {
    throw new TokenizerError(
      `${source}: metadata key 'tokenizer.ggml.pre' is '${name}', a pre-tokenizer Switchyard does not know. ` +
        `Known: ${knownPreTokenizerNames().join(', ')}.`,
    );
  }
  const type = TYPES_BY_NAME.get(entry.type);
  if (!type) throw new Error(`pre-tokenizer table: no regexes for type ${entry.type}`); // a bug in the table
  return { name: entry, type };
}

// The name a converter writes for each pre-type recognised from a tokenizer.json (the first
// llama.cpp name of the type; pre-types with the same regexes are told apart by their flags
// only, so the more common name wins).
const PREFERRED: readonly string[] = [
  'default', 'llama-bpe', 'deepseek-llm', 'deepseek-coder', 'deepseek-v3', 'falcon', 'starcoder', 'gpt-2',
  'qwen2', 'qwen35', 'poro-chat', 'viking', 'tekken', 'gpt-4o', 'seed-coder', 'minicpm5',
];

/** Rewrites applied to both sides before comparing regexes (llama.cpp's own adaptations). */
function canonicalRegex(regex: string): string {
  return (
    regex
      // (?i:...) contractions: llama.cpp spells the case-insensitive group out
      .replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])")
      // GPT-2's trailing |\s+ never matches where \s+(?!\S) did not (see the header)
      .replace(/\|\\s\+\(\?!\\S\)\|\\s\+$/, '|\\s+(?!\\S)')
  );
}

/**
 * The `tokenizer.ggml.pre` name whose regexes are `regexes` (as a tokenizer.json's Split
 * pre-tokenizers list them), or undefined. `ignoreMerges` (the BPE model's flag) prefers the
 * llama3 family where regexes are shared.
 */
export function preTokenizerNameForRegexes(regexes: readonly string[], ignoreMerges = false): string | undefined {
  const wanted = regexes.map(canonicalRegex).join('\u0000');
  const candidates = PRE_NAMES.filter((entry) => {
    const type = TYPES_BY_NAME.get(entry.type);
    if (!type) return false;
    const forms = [type.regexes, type.huggingFaceRegexes].filter((r): r is readonly string[] => r !== undefined);
    return forms.some((form) => form.map(canonicalRegex).join('\u0000') === wanted);
  });
  if (candidates.length === 0) return undefined;
  const withFlag = candidates.filter((c) => c.ignoreMerges === ignoreMerges);
  const pool = withFlag.length ? withFlag : candidates;
  const preferred = pool.find((c) => PREFERRED.includes(c.name));
  return (preferred ?? pool[0]).name;
}
