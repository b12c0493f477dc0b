// Byte-level BPE training (src/tokenizer/bpe-train.ts): merges in frequency order with the
// documented tie-break on a hand-checkable corpus, determinism, the vocabulary-size check, and
// the round trip trained vocabulary -> GGUF file -> our runtime tokenizer (the path models use),
// which must give exactly the trainer's own ids on held-out text and decode back to it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGUFFile } from '../../src/formats/gguf/index.js';
import {
  BpeEncoder,
  BYTE_TO_CHAR,
  END_OF_TEXT,
  type TrainedBpe,
  trainBPE,
  writeTokenizerGGUF,
} from '../../src/tokenizer/bpe-train.js';
import { type Tokenizer, TokenizerError, tokenizerFromGGUF } from '../../src/tokenizer/index.js';
import { loadCorpus } from '../../src/train/corpus.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-bpe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runtimeTokenizer(trained: TrainedBpe, name: string): Promise<Tokenizer> {
  const path = join(dir, `${name}.gguf`);
  await writeTokenizerGGUF(path, trained);
  const file = await GGUFFile.open(path);
  await file.close();
  return tokenizerFromGGUF(file.metadata);
}

describe('trainBPE on a hand-checkable corpus', () => {
  // "aaabdaaabac" is one pre-token. Pair counts: a a 4, a b 2, the rest 1.
  // 1. "a a" (4) -> aa: the word is aa a b d aa a b a c.
  // 2. "aa a" and "a b" both 2: the smaller left id wins ('a' = 97 < aa = 256) -> ab.
  // 3. "aa ab" (2) -> aaab; every pair left is seen once (< minFrequency 2): stop.
  it('merges the most frequent pair first, ties to the smallest ids', () => {
    const t = trainBPE(['aaabdaaabac'], { vocabSize: 1000 });
    expect(t.merges).toEqual(['a a', 'a b', 'aa ab']);
    expect(t.tokens.slice(256)).toEqual(['aa', 'ab', 'aaab', END_OF_TEXT]);
    expect(t.endOfText).toBe(259);
    expect(new BpeEncoder(t).encode('aaabdaaabac')).toEqual([258, 100, 258, 97, 99]);
  });

  it('stops at vocabSize (bytes + merges + <|endoftext|>)', () => {
    const t = trainBPE(['aaabdaaabac'], { vocabSize: 258 });
    expect(t.merges).toEqual(['a a']);
    expect(t.tokens.length).toBe(258);
  });

  it('counts words across texts with their frequencies, spaces in byte-level form', () => {
    // Pre-tokens: "low" x1, " low" x3, " lower" x2, " newest" x1. " l"/"lo"/"ow"... 'Ġ' = space.
    const t = trainBPE(['low low low', ' low lower lower newest'], { vocabSize: 260 });
    expect(t.merges).toEqual(['l o', 'lo w', 'Ġ low']);
    expect(t.tokens.slice(256, 259)).toEqual(['lo', 'low', 'Ġlow']);
  });

  it('rejects vocabulary sizes below 256 bytes + <|endoftext|>', () => {
    expect(() => trainBPE(['abc'], { vocabSize: 256 })).toThrow(TokenizerError);
    expect(() => trainBPE(['abc'], { vocabSize: 256 })).toThrow(/vocabSize 256 .*257/);
    expect(() => trainBPE(['abc'], { vocabSize: 300.5 })).toThrow(TokenizerError);
  });
});

describe('a merge whose text already exists adds no token', () => {
  // "ab c" and "a bc" both make "abc"; the runtime must apply ranks as the trainer's encoder does.
  const t: TrainedBpe = {
    tokens: [...BYTE_TO_CHAR, 'ab', 'bc', 'abc', END_OF_TEXT],
    merges: ['b c', 'a b', 'a bc', 'ab c'],
    endOfText: 259,
  };
  it('encodes like the runtime tokenizer', async () => {
    const runtime = await runtimeTokenizer(t, 'duplicate');
    const encoder = new BpeEncoder(t);
    for (const text of ['abc', 'abcabc', 'xabcy abc bcab', 'aabbcc']) {
      expect(runtime.encode(text, { addSpecial: false })).toEqual(encoder.encode(text));
    }
    expect(encoder.encode('abc')).toEqual([258]);
  });
});

describe('trained on the corpus: GGUF round trip through the runtime tokenizer', () => {
  const corpus = loadCorpus();
  // Moby-Dick's training chapters (1.1 M characters) keep this test fast; the full corpus trains the same way.
  const moby = corpus.train.filter((d) => d.id.startsWith('moby-dick/'));
  let trained: TrainedBpe;
  let runtime: Tokenizer;
  beforeAll(async () => {
    const progress: [number, number][] = [];
    trained = trainBPE(
      moby.map((d) => d.text),
      { vocabSize: 1024, progressEvery: 256, onProgress: (merged, total) => progress.push([merged, total]) },
    );
    expect(progress[0]).toEqual([0, 767]);
    expect(progress.at(-1)).toEqual([767, 767]);
    expect(progress.length).toBeGreaterThan(3);
    runtime = await runtimeTokenizer(trained, 'moby');
  });

  it('has the requested size and <|endoftext|> as bos = eos, no BOS added', () => {
    expect(trained.tokens.length).toBe(1024);
    expect(new Set(trained.tokens).size).toBe(1024);
    expect(runtime.vocabSize).toBe(1024);
    expect(runtime.bos).toBe(1023);
    expect(runtime.eos).toBe(1023);
    expect(runtime.addBos).toBe(false);
    expect(runtime.isEndOfGeneration(1023)).toBe(true);
    expect(runtime.tokenText(1023)).toBe(END_OF_TEXT);
  });

  it('is deterministic', () => {
    const again = trainBPE(
      moby.map((d) => d.text),
      { vocabSize: 1024 },
    );
    expect(again).toEqual(trained);
  });

  it('encodes held-out text to the trainer ids and decodes it back exactly', () => {
    const encoder = new BpeEncoder(trained);
    const texts = [
      ...corpus.heldOut.mobyDick.map((d) => d.text),
      ...corpus.heldOut.sotu.slice(0, 3).map((d) => d.text),
      'Ünïcödé — “quotes” ’tis\tTabs\n\n  spaces   end \u0085 \ufeff 日本語 <|endoftext|> 🐳 e\u0301 \'s \'LL 123456',
    ];
    for (const text of texts) {
      const ids = encoder.encode(text);
      expect(runtime.encode(text, { addSpecial: false })).toEqual(ids);
      expect(encoder.decode(ids)).toBe(text);
      // The streaming decoder renders pieces as they are; decode() also applies llama.cpp's
      // gpt-2 clean-up of " ," " ." " 's", so it is only exact for text without them.
      const stream = runtime.createStreamingDecoder();
      expect(ids.map((id) => stream.push(id)).join('') + stream.flush()).toBe(text);
    }
  });

  it('BpeEncoder.fromVocabulary encodes as the loaded tokenizer does, and refuses other vocabularies', () => {
    const text = corpus.heldOut.mobyDick[0].text;
    expect(BpeEncoder.fromVocabulary(runtime.vocabulary).encode(text)).toEqual(runtime.encode(text, { addSpecial: false }));
    expect(() => BpeEncoder.fromVocabulary({ ...runtime.vocabulary, pre: 'llama-bpe' })).toThrow(/not gpt2/);
    const types = Int32Array.from(runtime.vocabulary.types);
    types[300] = 4; // USER_DEFINED
    expect(() => BpeEncoder.fromVocabulary({ ...runtime.vocabulary, types })).toThrow(/special tokens/);
  });
});
