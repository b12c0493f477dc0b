// Hugging Face tokenizer files <-> GGUF tokenizer metadata (src/tokenizer/hugging-face.ts):
// GGUF -> HF -> GGUF gives the same `tokenizer.*` entries for the golden models' vocabularies;
// the exported tokenizer.json, run by @huggingface/tokenizers itself, reproduces llama.cpp's
// test vectors; tokenizers built from tokenizer.json tokenize like the GGUF they came from.
import { readFileSync } from 'node:fs';
import { Tokenizer as HuggingFaceTokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { GGUFFile, type GGUFKV, type GGUFMetadata } from '../../src/formats/gguf/index.js';
import {
  ggufTokenizerMetadataFromHuggingFace,
  huggingFaceTokenizerFromGGUF,
  type JsonObject,
  readSentencePieceModel,
  tokenizerFromHuggingFace,
  TokenizerError,
  writeSentencePieceModel,
} from '../../src/tokenizer/index.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

const SKIP = skipGolden('tokenizer Hugging Face round trips');

async function metadata(vocab: string): Promise<GGUFMetadata> {
  const file = await GGUFFile.open(goldenPath('tokenizers', `ggml-vocab-${vocab}.gguf`));
  await file.close();
  return file.metadata;
}

// Exporting a 32k SentencePiece vocabulary derives its merges (~0.5 s): once per vocabulary.
const exported = new Map<string, ReturnType<typeof throughDisk>>();
async function exportedFiles(vocab: string): Promise<ReturnType<typeof throughDisk>> {
  let files = exported.get(vocab);
  if (!files) {
    files = throughDisk(huggingFaceTokenizerFromGGUF(await metadata(vocab)));
    exported.set(vocab, files);
  }
  return files;
}

function vectors(vocab: string): { text: string; ids: number[] }[] {
  const inputs = readFileSync(goldenPath('tokenizers', `ggml-vocab-${vocab}.gguf.inp`), 'utf8').split('\n__ggml_vocab_test__\n');
  inputs.pop();
  const outputs = readFileSync(goldenPath('tokenizers', `ggml-vocab-${vocab}.gguf.out`), 'utf8').split('\n');
  return inputs.map((text, i) => ({ text, ids: outputs[i].split(/\s+/).filter(Boolean).map(Number) }));
}

/** A metadata value in comparable form (typed arrays as plain arrays, bigints as strings). */
const plain = (kv: GGUFKV) =>
  JSON.stringify({ type: kv.type, value: kv.value }, (_, x) => (typeof x === 'bigint' ? String(x) : ArrayBuffer.isView(x) ? Array.from(x as Uint8Array) : x));

/** As written to disk: JSON text and bytes. */
function throughDisk(files: { tokenizerJson: JsonObject; tokenizerConfig: JsonObject; sentencePieceModel?: Uint8Array }) {
  return {
    tokenizerJson: JSON.parse(JSON.stringify(files.tokenizerJson)),
    tokenizerConfig: JSON.parse(JSON.stringify(files.tokenizerConfig)),
    sentencePieceModel: files.sentencePieceModel ? Uint8Array.from(files.sentencePieceModel) : undefined,
  };
}

describe.skipIf(SKIP)('GGUF -> Hugging Face -> GGUF', () => {
  it.each(['llama-spm', 'phi-3', 'deepseek-coder'])('%s: the same tokenizer.* entries, in the same order', async (vocab) => {
    const original = await metadata(vocab);
    const files = await exportedFiles(vocab);
    expect(files.sentencePieceModel !== undefined).toBe(vocab !== 'deepseek-coder');
    const back = ggufTokenizerMetadataFromHuggingFace(files.tokenizerJson, files.tokenizerConfig, {
      sentencePieceModel: files.sentencePieceModel,
    });
    const expected = original.entries.filter((e) => e.key.startsWith('tokenizer.'));
    expect(back.map((e) => e.key)).toEqual(expected.map((e) => e.key));
    for (const [i, e] of expected.entries()) expect(plain(back[i]), e.key).toBe(plain(e));
  });

  it.each(['llama-spm', 'phi-3', 'deepseek-coder', 'gpt-2'])(
    '%s: a tokenizer built from the exported files passes every vector',
    async (vocab) => {
      const files = await exportedFiles(vocab);
      const tokenizer = tokenizerFromHuggingFace(files.tokenizerJson, files.tokenizerConfig, { sentencePieceModel: files.sentencePieceModel });
      for (const { text, ids } of vectors(vocab)) expect(tokenizer.encode(text, { addSpecial: false })).toEqual(ids);
    },
  );

  it('llama-spm without tokenizer.model: scores recovered from the merge ranks still pass every vector', async () => {
    const files = await exportedFiles('llama-spm');
    const entries = ggufTokenizerMetadataFromHuggingFace(files.tokenizerJson, files.tokenizerConfig);
    const tokenizer = tokenizerFromHuggingFace(files.tokenizerJson, files.tokenizerConfig);
    expect(entries.find((e) => e.key === 'tokenizer.ggml.model')?.value).toBe('llama');
    for (const { text, ids } of vectors('llama-spm')) expect(tokenizer.encode(text, { addSpecial: false })).toEqual(ids);
  });

  it.each(['llama-spm', 'deepseek-coder', 'gpt-2', 'deepseek-llm'])(
    '%s: the exported tokenizer.json run by @huggingface/tokenizers itself reproduces the vectors',
    async (vocab) => {
      const files = await exportedFiles(vocab);
      const hf = new HuggingFaceTokenizer(files.tokenizerJson, files.tokenizerConfig);
      const failures: number[] = [];
      for (const [i, { text, ids }] of vectors(vocab).entries()) {
        if (hf.encode(text, { add_special_tokens: false }).ids.join() !== ids.join()) failures.push(i);
      }
      expect(failures).toEqual([]);
    },
  );

  it('the exported tokenizer_config names the special tokens and flags', async () => {
    const files = await exportedFiles('phi-3');
    expect(files.tokenizerConfig).toMatchObject({ bos_token: '<s>', eos_token: '<|endoftext|>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false });
    expect(typeof files.tokenizerConfig.chat_template).toBe('string');
  });
});

describe('tokenizer.model (SentencePiece protobuf)', () => {
  const model = {
    pieces: [
      { piece: '<unk>', score: 0, type: 2 },
      { piece: '<s>', score: 0, type: 3 },
      { piece: '\ufeff', score: -1.5, type: 1 },
      { piece: '▁a', score: -1e9, type: 1 },
      { piece: '<0x0A>', score: 0, type: 6 },
    ],
    modelType: 2,
    byteFallback: true,
    unkId: 0,
    bosId: 1,
    eosId: -1,
    padId: -1,
    addDummyPrefix: false,
    removeExtraWhitespaces: false,
    escapeWhitespaces: true,
  };

  it('writes and reads back the same model (negative ids, a U+FEFF piece, float scores)', () => {
    expect(readSentencePieceModel(writeSentencePieceModel(model))).toEqual(model);
  });

  it('skips fields it does not know and applies protobuf defaults', () => {
    // field 99 (varint) before the pieces, a piece with only its text (type defaults to NORMAL)
    const bytes = Uint8Array.from([0x98, 0x06, 0x07, 0x0a, 0x03, 0x0a, 0x01, 0x78]);
    const read = readSentencePieceModel(bytes);
    expect(read.pieces).toEqual([{ piece: 'x', score: 0, type: 1 }]);
    expect(read.addDummyPrefix).toBe(true);
  });

  it('refuses truncated or empty input with a TokenizerError', () => {
    const bytes = writeSentencePieceModel(model);
    for (const cut of [1, 5, bytes.length - 3]) {
      expect(() => readSentencePieceModel(bytes.subarray(0, cut), 'tokenizer.model')).toThrowError(TokenizerError);
    }
    expect(() => readSentencePieceModel(new Uint8Array(0))).toThrowError(/no pieces/);
  });
});

describe('Hugging Face -> GGUF on hand-made tokenizer files', () => {
  // A tiny byte-level BPE in the shape GPT-2's tokenizer.json has (ByteLevel with its regex).
  const gpt2Like = {
    model: { type: 'BPE', vocab: { h: 0, e: 1, he: 2, 'Ġ': 3, 'Ġhe': 4, '<|endoftext|>': 5 }, merges: ['h e', 'Ġ he'] },
    added_tokens: [{ id: 5, content: '<|endoftext|>', special: true }],
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
    post_processor: null,
    normalizer: null,
    decoder: { type: 'ByteLevel' },
  };

  it('writes the keys convert_hf_to_gguf.py writes', () => {
    const entries = ggufTokenizerMetadataFromHuggingFace(gpt2Like, { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' }, { modelConfig: { vocab_size: 8 } });
    const byKey = Object.fromEntries(entries.map((e) => [e.key, e.value]));
    expect(entries.map((e) => e.key)).toEqual([
      'tokenizer.ggml.model',
      'tokenizer.ggml.pre',
      'tokenizer.ggml.tokens',
      'tokenizer.ggml.token_type',
      'tokenizer.ggml.merges',
      'tokenizer.ggml.bos_token_id',
      'tokenizer.ggml.eos_token_id',
    ]);
    expect(byKey['tokenizer.ggml.model']).toBe('gpt2');
    expect(byKey['tokenizer.ggml.pre']).toBe('gpt-2');
    // padded to config.json's vocab_size with unused [PAD<id>] tokens
    expect((byKey['tokenizer.ggml.tokens'] as { items: string[] }).items).toEqual(['h', 'e', 'he', 'Ġ', 'Ġhe', '<|endoftext|>', '[PAD6]', '[PAD7]']);
    expect(Array.from((byKey['tokenizer.ggml.token_type'] as { items: Int32Array }).items)).toEqual([1, 1, 1, 1, 1, 3, 5, 5]);
    expect((byKey['tokenizer.ggml.merges'] as { items: string[] }).items).toEqual(['h e', 'Ġ he']);
    expect(byKey['tokenizer.ggml.bos_token_id']).toBe(5);
    const tokenizer = tokenizerFromHuggingFace(gpt2Like, {});
    expect(tokenizer.encode('he he', { addSpecial: false })).toEqual([2, 4]);
    expect(tokenizer.decode([2, 4])).toBe('he he');
  });

  it('recognises llama3 (ignore_merges + the original (?i:) regex) and pair-form merges with spaces', () => {
    const json = {
      ...gpt2Like,
      model: { ...gpt2Like.model, ignore_merges: true, merges: [['h', 'e'], ['Ġ', 'he']] },
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          {
            type: 'Split',
            pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
            behavior: 'Isolated',
            invert: false,
          },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
    };
    const entries = ggufTokenizerMetadataFromHuggingFace(json, { add_bos_token: true, bos_token: { content: '<|endoftext|>' } });
    const byKey = Object.fromEntries(entries.map((e) => [e.key, e.value]));
    expect(byKey['tokenizer.ggml.pre']).toBe('llama-bpe');
    expect(byKey['tokenizer.ggml.add_bos_token']).toBe(true);
    expect((byKey['tokenizer.ggml.merges'] as { items: string[] }).items).toEqual(['h e', 'Ġ he']);
    const spaced = { ...json, model: { ...json.model, merges: [['a b', 'c']] } };
    const merges = Object.fromEntries(ggufTokenizerMetadataFromHuggingFace(spaced).map((e) => [e.key, e.value]))['tokenizer.ggml.merges'] as { items: string[] };
    expect(merges.items).toEqual(['aĠb c']); // gguf-py writes a space inside a pair as U+0120
  });

  it('refuses what it cannot convert, with TokenizerErrors naming the file', () => {
    expect(() => ggufTokenizerMetadataFromHuggingFace({}, {}, { source: 'x/tokenizer.json' })).toThrowError(/x\/tokenizer\.json.*model/);
    expect(() => ggufTokenizerMetadataFromHuggingFace({ model: { type: 'Unigram', vocab: [] } })).toThrowError(TokenizerError);
    const unknownSplit = { ...gpt2Like, pre_tokenizer: { type: 'Split', pattern: { Regex: '\\d+' }, behavior: 'Isolated', invert: false } };
    expect(() => ggufTokenizerMetadataFromHuggingFace(unknownSplit)).toThrowError(/match none llama\.cpp knows.*options\.pre/);
    expect(ggufTokenizerMetadataFromHuggingFace(unknownSplit, {}, { pre: 'qwen2' }).find((e) => e.key === 'tokenizer.ggml.pre')?.value).toBe('qwen2');
    expect(() => ggufTokenizerMetadataFromHuggingFace(unknownSplit, {}, { pre: 'nope' })).toThrowError(/Known:/);
    const removed = { ...gpt2Like, pre_tokenizer: { type: 'Split', pattern: { Regex: ' ' }, behavior: 'Removed' } };
    expect(() => ggufTokenizerMetadataFromHuggingFace(removed)).toThrowError(/no llama\.cpp equivalent/);
    const badMerge = { ...gpt2Like, model: { ...gpt2Like.model, merges: [42] } };
    expect(() => ggufTokenizerMetadataFromHuggingFace(badMerge)).toThrowError(/merges entry 0/);
    const badId = { ...gpt2Like, model: { ...gpt2Like.model, vocab: { a: -1 } } };
    expect(() => ggufTokenizerMetadataFromHuggingFace(badId)).toThrowError(/not a token id/);
    // a token id past any plausible vocabulary allocates nothing
    const huge = { ...gpt2Like, model: { ...gpt2Like.model, vocab: { a: 2 ** 40 } } };
    expect(() => ggufTokenizerMetadataFromHuggingFace(huge)).toThrowError(/not plausible/);
  });
});
