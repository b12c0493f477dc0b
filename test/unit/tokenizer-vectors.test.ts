// llama.cpp's tokenizer test vectors (../shared/golden/tokenizers, from llama.cpp
// tests/test-tokenizer-0 at d32676d77; the expected ids were made with the original Hugging Face
// tokenizers): every vector of the nine `llama` and `gpt2` vocabularies must tokenize exactly,
// with add_special = false and parse_special = false as the test does. Also: decode(encode(x))
// round trips, the golden models' prompt tokens and the perplexity excerpt tokens.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGUFFile } from '../../src/formats/gguf/index.js';
import { type Tokenizer, tokenizerFromGGUF } from '../../src/tokenizer/index.js';
import { GOLDEN_MODELS, goldenPath, skipGolden } from '../helpers/golden.js';

const VOCABS = ['llama-spm', 'phi-3', 'gpt-2', 'mpt', 'deepseek-llm', 'deepseek-coder', 'falcon', 'starcoder', 'refact'] as const;
const SKIP = skipGolden('tokenizer vectors');

function vectors(vocab: string): { text: string; ids: number[] }[] {
  const inputs = readFileSync(goldenPath('tokenizers', `ggml-vocab-${vocab}.gguf.inp`), 'utf8').split('\n__ggml_vocab_test__\n');
  inputs.pop(); // the file ends with the separator
  const outputs = readFileSync(goldenPath('tokenizers', `ggml-vocab-${vocab}.gguf.out`), 'utf8').split('\n');
  return inputs.map((text, i) => ({ text, ids: outputs[i].split(/\s+/).filter(Boolean).map(Number) }));
}

// Loading a vocabulary takes 0.1-1 s: once per file.
const tokenizers = new Map<string, Tokenizer>();
async function load(vocab: string): Promise<Tokenizer> {
  let t = tokenizers.get(vocab);
  if (!t) {
    const file = await GGUFFile.open(goldenPath('tokenizers', `ggml-vocab-${vocab}.gguf`));
    try {
      t = tokenizerFromGGUF(file.metadata);
    } finally {
      await file.close();
    }
    tokenizers.set(vocab, t);
  }
  return t;
}

// Where llama.cpp's own detokenizer does not give the input back: vocabularies with
// clean_spaces (gpt-2, mpt, falcon, starcoder, refact) drop the space in " ?" (vector 32) and
// in " ?", " 's", " ' " ... (vector 45). Each is checked against the clean-up llama.cpp applies.
const CLEAN_SPACES = new Set(['gpt-2', 'mpt', 'falcon', 'starcoder', 'refact']);
const NOT_ROUND_TRIPPING = [32, 45];

describe.skipIf(SKIP)('tokenizer test vectors', () => {
  const passed: Record<string, string> = {};
  afterAll(() => {
    console.log(`tokenizer vectors passed: ${Object.entries(passed).map(([v, n]) => `${v} ${n}`).join(', ')}`);
  });

  describe.each(VOCABS)('%s', (vocab) => {
    let tokenizer: Tokenizer;
    const cases = SKIP ? [] : vectors(vocab);
    beforeAll(async () => {
      tokenizer = await load(vocab);
    });

    it('has 46 vectors', () => {
      expect(cases.length).toBe(46);
    });

    it('encodes every vector exactly (add_special = false, parse_special = false)', () => {
      const failures: string[] = [];
      for (const [i, { text, ids }] of cases.entries()) {
        const got = tokenizer.encode(text, { addSpecial: false, parseSpecial: false });
        if (got.join(' ') !== ids.join(' ')) failures.push(`#${i} ${JSON.stringify(text)}: got ${got.join(' ')}, expected ${ids.join(' ')}`);
      }
      passed[vocab] = `${cases.length - failures.length}/${cases.length}`;
      expect(failures).toEqual([]);
    });

    it('decode(encode(x)) gives x back, except where llama.cpp cleans up spaces', () => {
      for (const [i, { text }] of cases.entries()) {
        const ids = tokenizer.encode(text, { addSpecial: false });
        const back = tokenizer.decode(ids);
        if (CLEAN_SPACES.has(vocab) && NOT_ROUND_TRIPPING.includes(i)) {
          expect(back).not.toBe(text);
          // the clean-up only removes spaces
          expect(back.replaceAll(' ', '')).toBe(text.replaceAll(' ', ''));
          expect(back).toContain('😁?');
        } else {
          expect(back, `#${i}`).toBe(text);
        }
      }
    });

    it('streams the same text token by token', () => {
      const text = cases[45].text;
      const ids = tokenizer.encode(text, { addSpecial: false });
      const stream = tokenizer.createStreamingDecoder();
      let out = '';
      for (const id of ids) {
        const piece = stream.push(id);
        expect(piece).not.toContain('\uFFFD'); // never half a character
        out += piece;
      }
      out += stream.flush();
      // no leading-space removal and no clean-up while streaming
      const expected = tokenizer.model === 'llama' ? ` ${text}` : text;
      expect(out).toBe(expected);
    });
  });
});

describe.skipIf(SKIP)('golden model inputs', () => {
  it.each(GOLDEN_MODELS)('%s: the prompt tokens (add_special = true)', async (model) => {
    const reference = JSON.parse(readFileSync(goldenPath(model, `${model}-F32.json`), 'utf8'));
    const tokenizer = await load(reference.vocab);
    expect(tokenizer.encode(reference.prompt_text)).toEqual(reference.prompt_tokens);
  });

  it.each(['llama-spm', 'phi-3', 'deepseek-coder'])('%s: the perplexity excerpt as llama-perplexity tokenizes it', async (vocab) => {
    // llama-perplexity drops one trailing newline, then tokenizes with add_special = true
    const text = readFileSync(goldenPath('moby_dick_excerpt.txt'), 'utf8').replace(/\n$/, '');
    const expected = readFileSync(goldenPath('excerpt_tokens', `${vocab}.txt`), 'utf8').trim().split(/\s+/).map(Number);
    const tokenizer = await load(vocab);
    const ids = tokenizer.encode(text);
    expect(ids.length).toBe(expected.length);
    expect(ids).toEqual(expected);
    // llama.cpp keeps the SentencePiece space after a leading BOS; skipSpecial drops the BOS
    const decoded = tokenizer.decode(ids);
    expect(decoded).toBe(tokenizer.model === 'llama' ? ` ${text}` : text);
  });
});
