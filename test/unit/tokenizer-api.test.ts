// The Tokenizer API on real vocabularies: special-token parsing (parse_special), BOS/EOS,
// end-of-generation sets, the per-model attributes llama.cpp applies (phi-3 RSTRIP), decoding
// options and the streaming decoder. Expected values follow llama.cpp src/llama-vocab.cpp at
// d32676d77 (tokenize, tokenizer_st_partition, detokenize, and the EOG/EOT/FIM detection in load).
import { describe, expect, it } from 'vitest';
import { GGUFFile } from '../../src/formats/gguf/index.js';
import { type Tokenizer, tokenizerFromGGUF } from '../../src/tokenizer/index.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

const SKIP = skipGolden('tokenizer API on golden vocabularies');
const cache = new Map<string, Tokenizer>();
async function load(vocab: string): Promise<Tokenizer> {
  let t = cache.get(vocab);
  if (!t) {
    const file = await GGUFFile.open(goldenPath('tokenizers', `ggml-vocab-${vocab}.gguf`));
    await file.close();
    t = tokenizerFromGGUF(file.metadata);
    cache.set(vocab, t);
  }
  return t;
}

describe.skipIf(SKIP)('special tokens', () => {
  it('parseSpecial turns control-token text into the token; otherwise it is plain text', async () => {
    const t = await load('llama-spm');
    // BOS added, "<s>" parsed, "hi" after a special token gets the SentencePiece space (▁hi = 7251)
    expect(t.encode('<s>hi</s>', { parseSpecial: true })).toEqual([1, 1, 7251, 2]);
    const plain = t.encode('<s>hi</s>', { parseSpecial: false });
    expect(plain[0]).toBe(1);
    expect(plain.slice(1)).not.toContain(1);
    expect(plain.slice(1)).not.toContain(2);
    expect(t.decode(plain)).toBe(' <s>hi</s>');
  });

  it('user-defined tokens are always matched (deepseek-coder "õ", mpt space runs)', async () => {
    const coder = await load('deepseek-coder');
    const o = coder.tokenText(32000); // "õ", USER_DEFINED
    expect(coder.encode(`a${o}b`, { addSpecial: false })).toContain(32000);
    const mpt = await load('mpt');
    const spaces = ' '.repeat(24);
    expect(mpt.tokenText(50254)).toBe(spaces);
    expect(mpt.encode(`x${spaces}y`, { addSpecial: false })).toContain(50254);
  });

  it('phi-3: special tokens strip the whitespace on their right (llama.cpp RSTRIP for "phi3" models)', async () => {
    const t = await load('phi-3');
    const a = t.encode('a', { addSpecial: false }); // ▁a
    const b = t.encode('b', { addSpecial: false }); // ▁b
    expect(t.encode('<|user|>\n  b', { addSpecial: false, parseSpecial: true })).toEqual([32010, ...b]);
    // </s> is user-defined in this file but llama.cpp makes it an end-of-generation control token,
    // so it is only parsed with parseSpecial
    expect(t.encode('a</s>  b', { addSpecial: false, parseSpecial: true })).toEqual([...a, 2, ...b]);
    expect(t.encode('a</s>  b', { addSpecial: false })).not.toContain(2);
  });

  it('BOS and EOS follow add_bos_token / add_eos_token', async () => {
    const spm = await load('llama-spm');
    expect(spm.encode('')).toEqual([1]);
    expect(spm.encode('', { addSpecial: false })).toEqual([]);
    const gpt2 = await load('gpt-2'); // no add_bos_token key: llama.cpp's BPE default is false
    expect(gpt2.addBos).toBe(false);
    expect(gpt2.encode('Hello')).toEqual(gpt2.encode('Hello', { addSpecial: false }));
    const coder = await load('deepseek-coder');
    expect(coder.encode('Hello')[0]).toBe(32013);
  });
});

describe.skipIf(SKIP)('end of generation', () => {
  it.each([
    ['llama-spm', { bos: 1, eos: 2, eot: null }, [2]],
    ['phi-3', { bos: 1, eos: 32000, eot: 32007 }, [2, 32000, 32007]],
    ['deepseek-coder', { bos: 32013, eos: 32014, eot: 32014 }, [32014]],
    ['gpt-2', { bos: 50256, eos: 50256, eot: 50256 }, [50256]],
    ['starcoder', { bos: 0, eos: 0, eot: 0 }, [0, 4]], // <fim_pad> ends generation too
  ] as const)('%s', async (vocab, ids, eog) => {
    const t = await load(vocab);
    expect({ bos: t.bos, eos: t.eos, eot: t.eot }).toEqual(ids);
    expect(t.endOfGenerationIds()).toEqual(eog);
    for (const id of eog) expect(t.isEndOfGeneration(id)).toBe(true);
    expect(t.isEndOfGeneration(t.encode('Hello', { addSpecial: false })[0])).toBe(false);
  });

  it('deepseek-coder FIM tokens are found by their text', async () => {
    const t = await load('deepseek-coder');
    expect([t.specialIds.fimPre, t.specialIds.fimSuf, t.specialIds.fimMid]).toEqual([32016, 32015, 32017]);
  });
});

describe.skipIf(SKIP)('decoding', () => {
  it('skipSpecial (default) drops control tokens; false renders them', async () => {
    const t = await load('llama-spm');
    const ids = t.encode('hi'); // [BOS, ▁hi]
    expect(t.decode([...ids, 2])).toBe(' hi'); // llama.cpp keeps the space after a leading BOS
    expect(t.decode([...ids, 2], { skipSpecial: false })).toBe('<s> hi</s>');
    expect(t.decode(ids.slice(1))).toBe('hi');
    expect(t.isControl(1)).toBe(true);
    expect(t.tokenToPiece(1)).toBe('<s>');
    expect(t.tokenToPiece(7251)).toBe(' hi');
    expect(Array.from(t.tokenBytes(1, false))).toEqual([]);
  });

  it('the streaming decoder holds back byte tokens until the character is complete', async () => {
    const t = await load('llama-spm');
    const ids = t.encode('🦙!', { addSpecial: false }); // ▁ + four byte tokens + !
    expect(ids).toEqual([29871, 243, 162, 169, 156, 29991]);
    const stream = t.createStreamingDecoder();
    expect(ids.map((id) => stream.push(id))).toEqual([' ', '', '', '', '🦙', '!']);
    expect(stream.flush()).toBe('');
  });

  it('byte-level BPE pieces are the original bytes', async () => {
    const t = await load('gpt-2');
    const ids = t.encode(' 🦙', { addSpecial: false });
    const bytes = ids.flatMap((id) => Array.from(t.tokenBytes(id)));
    expect(bytes).toEqual(Array.from(new TextEncoder().encode(' 🦙')));
    expect(t.decode(ids)).toBe(' 🦙');
  });

  it('exposes vocabulary size and chat template', async () => {
    expect((await load('phi-3')).vocabSize).toBe(32064);
    expect((await load('phi-3')).chatTemplate).toMatch(/<\|user\|>/);
    expect((await load('llama-spm')).chatTemplate).toBeUndefined();
  });
});

/** llm_tokenizer_spm_session as written: whole text, quadratic queue. The twin of src/tokenizer/spm.ts. */
function referenceSentencePiece(tokens: readonly string[], scores: ArrayLike<number>, text: string): number[] {
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const chars = Array.from(text);
  const sym = chars.map((c, i) => ({ text: c, prev: i - 1, next: i + 1 < chars.length ? i + 1 : -1 }));
  const queue: { l: number; r: number; score: number; text: string }[] = [];
  const tryAdd = (l: number, r: number) => {
    if (l < 0 || r < 0) return;
    const id = ids.get(sym[l].text + sym[r].text);
    if (id !== undefined) queue.push({ l, r, score: scores[id], text: sym[l].text + sym[r].text });
  };
  for (let i = 1; i < sym.length; i++) tryAdd(i - 1, i);
  while (queue.length) {
    let best = 0;
    for (let i = 1; i < queue.length; i++) {
      const a = queue[i];
      const b = queue[best];
      if (a.score > b.score || (a.score === b.score && a.l < b.l)) best = i;
    }
    const { l, r, text: merged } = queue.splice(best, 1)[0];
    if (!sym[l].text || !sym[r].text || sym[l].text + sym[r].text !== merged) continue;
    sym[l].text = merged;
    sym[r].text = '';
    sym[l].next = sym[r].next;
    if (sym[r].next >= 0) sym[sym[r].next].prev = l;
    tryAdd(sym[l].prev, l);
    tryAdd(l, sym[l].next);
  }
  const out: number[] = [];
  for (let i = 0; i !== -1 && sym.length; i = sym[i].next) {
    const id = ids.get(sym[i].text);
    if (id !== undefined) out.push(id);
    else for (const b of new TextEncoder().encode(sym[i].text)) out.push(ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`) as number);
  }
  return out;
}

describe.skipIf(SKIP)('SentencePiece segmentation is exact', () => {
  it('llama-spm: 300 random strings tokenize as the whole-text reference port does', async () => {
    const t = await load('llama-spm');
    const tokens = Array.from({ length: t.vocabSize }, (_, i) => t.tokenText(i));
    const scores = t.vocabulary.scores;
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const alphabet = [' ', '  ', '\n', '\t', 'a', 'the', '1', '.', '▁', 'é', '🦙', 'ing', "'s"];
    for (let k = 0; k < 300; k++) {
      let s = '';
      for (let j = 1 + random(12); j > 0; j--) s += random(3) ? alphabet[random(alphabet.length)] : tokens[3 + random(tokens.length - 3)].replaceAll('▁', ' ');
      expect(t.encode(s, { addSpecial: false }), JSON.stringify(s)).toEqual(referenceSentencePiece(tokens, scores, ` ${s}`.replaceAll(' ', '▁')));
    }
  });
});
