// Bad tokenizer metadata and bad ids give TokenizerErrors that name the file and the key (or the
// id), never a crash, a hang or a silently wrong vocabulary. Synthetic vocabularies only.
import { describe, expect, it } from 'vitest';
import { SwitchyardError } from '../../src/core/errors.js';
import { GGUFMetadata, type GGUFKV, GGUFValueType, kv } from '../../src/formats/gguf/index.js';
import { Tokenizer, TokenizerError, tokenizerFromGGUF } from '../../src/tokenizer/index.js';
import { cleanUpSpaces } from '../../src/tokenizer/tokenizer.js';

const HEX = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

/** A small SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, a few pieces. */
function spm(): GGUFKV[] {
  const pieces = ['▁', 'a', 'b', '▁a', 'ab', '▁ab', '▁b'];
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => HEX(b)), ...pieces];
  const scores = tokens.map((_, i) => (i < 259 ? 0 : -(i - 259)));
  const types = tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1));
  return [
    kv.string('general.name', 'synthetic'),
    kv.string('tokenizer.ggml.model', 'llama'),
    kv.strings('tokenizer.ggml.tokens', tokens),
    kv.f32s('tokenizer.ggml.scores', scores),
    kv.i32s('tokenizer.ggml.token_type', types),
    kv.u32('tokenizer.ggml.bos_token_id', 1),
    kv.u32('tokenizer.ggml.eos_token_id', 2),
  ];
}

/** A small byte-level BPE vocabulary: the 256 byte characters plus two merges and <|endoftext|>. */
function bpe(): GGUFKV[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  const bytes = Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : 256 + extra++));
  const tokens = [...bytes, 'he', 'Ġhe', '<|endoftext|>'];
  return [
    kv.string('tokenizer.ggml.model', 'gpt2'),
    kv.string('tokenizer.ggml.pre', 'gpt-2'),
    kv.strings('tokenizer.ggml.tokens', tokens),
    kv.i32s('tokenizer.ggml.token_type', tokens.map((t) => (t === '<|endoftext|>' ? 3 : 1))),
    kv.strings('tokenizer.ggml.merges', ['h e', 'Ġ he']),
    kv.u32('tokenizer.ggml.eos_token_id', 258),
  ];
}

const load = (entries: GGUFKV[]) => tokenizerFromGGUF(new GGUFMetadata(entries, 'bad.gguf'));
const replace = (entries: GGUFKV[], key: string, entry: GGUFKV | undefined) =>
  entries.flatMap((e) => (e.key === key ? (entry ? [entry] : []) : [e])).concat(entry && !entries.some((e) => e.key === key) ? [entry] : []);

describe('the synthetic vocabularies work', () => {
  it('SentencePiece: merges by score, bytes for unknown characters, BOS', () => {
    const t = load(spm());
    expect(t.encode('ab b', { addSpecial: false })).toEqual([264, 265]); // ▁ab ▁b
    expect(t.encode('é', { addSpecial: false })).toEqual([259, 3 + 0xc3, 3 + 0xa9]); // ▁ then the UTF-8 bytes
    expect(t.encode('a')).toEqual([1, 262]);
    expect(t.decode([1, 262, 265])).toBe(' a b'); // llama.cpp keeps the space after a leading BOS
    expect(t.decode([262, 265])).toBe('a b');
  });
  it('byte-level BPE', () => {
    const t = load(bpe());
    expect(t.encode('he he')).toEqual([256, 257]);
    expect(t.decode([256, 257])).toBe('he he');
  });
});

describe('bad metadata is a TokenizerError naming the key', () => {
  const cases: [string, () => GGUFKV[], RegExp][] = [
    ['no tokenizer', () => replace(spm(), 'tokenizer.ggml.model', undefined), /bad\.gguf.*'tokenizer\.ggml\.model' is missing/],
    ['unknown model', () => replace(spm(), 'tokenizer.ggml.model', kv.string('tokenizer.ggml.model', 't5')), /'tokenizer\.ggml\.model' is 't5'.*'llama' and 'gpt2'/],
    ['model not a string', () => replace(spm(), 'tokenizer.ggml.model', kv.u32('tokenizer.ggml.model', 1)), /'tokenizer\.ggml\.model' must be a string/],
    ['no tokens', () => replace(spm(), 'tokenizer.ggml.tokens', undefined), /'tokenizer\.ggml\.tokens' is missing/],
    ['tokens not strings', () => replace(spm(), 'tokenizer.ggml.tokens', kv.i32s('tokenizer.ggml.tokens', [1, 2])), /'tokenizer\.ggml\.tokens' must be an array of strings/],
    ['empty vocabulary', () => replace(spm(), 'tokenizer.ggml.tokens', kv.strings('tokenizer.ggml.tokens', [])), /'tokenizer\.ggml\.tokens' is empty/],
    ['too few scores', () => replace(spm(), 'tokenizer.ggml.scores', kv.f32s('tokenizer.ggml.scores', [0, 0])), /'tokenizer\.ggml\.scores' has 2 entries but 'tokenizer\.ggml\.tokens' has 266/],
    ['too many types', () => replace(spm(), 'tokenizer.ggml.token_type', kv.i32s('tokenizer.ggml.token_type', new Array(300).fill(1))), /'tokenizer\.ggml\.token_type' has 300 entries/],
    ['scores as integers', () => replace(spm(), 'tokenizer.ggml.scores', kv.i32s('tokenizer.ggml.scores', new Array(266).fill(0))), /'tokenizer\.ggml\.scores' must be an array of float32/],
    ['types as strings', () => replace(spm(), 'tokenizer.ggml.token_type', kv.strings('tokenizer.ggml.token_type', new Array(266).fill('1'))), /'tokenizer\.ggml\.token_type' must be an array of 32-bit integers/],
    ['duplicate token', () => [kv.string('tokenizer.ggml.model', 'llama'), kv.strings('tokenizer.ggml.tokens', ['<unk>', '<s>', '<s>'])], /has the token "<s>" twice \(ids 1 and 2\)/],
    ['bos id a string', () => replace(spm(), 'tokenizer.ggml.bos_token_id', kv.string('tokenizer.ggml.bos_token_id', '1')), /'tokenizer\.ggml\.bos_token_id' must be an integer/],
    ['add_bos not a bool', () => [...spm(), kv.u32('tokenizer.ggml.add_bos_token', 1)], /'tokenizer\.ggml\.add_bos_token' must be a bool/],
    ['chat template not a string', () => [...spm(), kv.strings('tokenizer.chat_template', ['x'])], /'tokenizer\.chat_template' must be a string/],
    ['no merges', () => replace(bpe(), 'tokenizer.ggml.merges', undefined), /'tokenizer\.ggml\.merges' is missing/],
    ['merge without a space', () => replace(bpe(), 'tokenizer.ggml.merges', kv.strings('tokenizer.ggml.merges', ['he'])), /merges' entry 0 \("he"\) is not "left right"/],
    ['merge of an unknown token', () => replace(bpe(), 'tokenizer.ggml.merges', kv.strings('tokenizer.ggml.merges', ['h e', 'Ġ xyz'])), /merges' entry 1 .* not in the vocabulary \("xyz"\)/],
    ['unknown pre-tokenizer', () => replace(bpe(), 'tokenizer.ggml.pre', kv.string('tokenizer.ggml.pre', 'gpt-5')), /'tokenizer\.ggml\.pre' is 'gpt-5'.*Known: default, /],
    ['adds a BOS it does not have', () => [...replace(bpe(), 'tokenizer.ggml.pre', kv.string('tokenizer.ggml.pre', 'glm4')), kv.bool('tokenizer.ggml.add_bos_token', true)], /adds a BOS token.*has none/],
  ];
  it.each(cases)('%s', (_, entries, message) => {
    expect(() => load(entries())).toThrowError(TokenizerError);
    expect(() => load(entries())).toThrowError(message);
    try {
      load(entries());
    } catch (e) {
      expect((e as TokenizerError).code).toBe('E_TOKENIZER');
    }
  });

  it('a special id outside the vocabulary is ignored with a warning, as llama.cpp does', () => {
    const t = load(replace(spm(), 'tokenizer.ggml.eos_token_id', kv.u32('tokenizer.ggml.eos_token_id', 99999)));
    expect(t.eos).toBe(2); // the SentencePiece default
    expect(t.warnings.join()).toMatch(/eos_token_id' is 99999, outside the vocabulary/);
  });

  it('an empty token is renamed as llama.cpp does, with a warning', () => {
    const entries = spm();
    const tokens = (entries[2].value as { items: string[] }).items.slice();
    tokens[265] = '';
    const t = load(replace(entries, 'tokenizer.ggml.tokens', kv.strings('tokenizer.ggml.tokens', tokens)));
    expect(t.tokenText(265)).toBe('[EMPTY_265]');
    expect(t.warnings.join()).toMatch(/token 265 is empty/);
  });

  it('a byte with no byte token becomes <unk> (llama.cpp would abort)', () => {
    const t = load([
      kv.string('tokenizer.ggml.model', 'llama'),
      kv.strings('tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', '▁', 'a']),
      kv.i32s('tokenizer.ggml.token_type', [2, 3, 3, 1, 1]),
    ]);
    expect(t.encode('a', { addSpecial: false })).toEqual([3, 4]);
    expect(t.encode('é', { addSpecial: false })).toEqual([3, 0, 0]);
  });
});

describe('bad ids and odd text', () => {
  const t = load(spm());
  it.each([-1, 266, 1.5, Number.NaN, 2 ** 40])('decode(%s) is a TokenizerError naming the id and the vocabulary size', (id) => {
    expect(() => t.decode([1, id])).toThrowError(TokenizerError);
    expect(() => t.decode([id])).toThrowError(/token id .* is out of range: the vocabulary of bad\.gguf has 266 tokens \(0\.\.265\)/);
    expect(() => t.tokenToPiece(id)).toThrowError(TokenizerError);
    expect(() => t.createStreamingDecoder().push(id)).toThrowError(TokenizerError);
  });
  it('a lone surrogate is encoded as U+FFFD (what TextEncoder does)', () => {
    expect(t.encode('a\uD800b', { addSpecial: false })).toEqual(t.encode('a\uFFFDb', { addSpecial: false }));
    expect(t.encode('\uDC00', { addSpecial: false })).toEqual(t.encode('\uFFFD', { addSpecial: false }));
  });
  it('byte tokens that do not form a character decode to U+FFFD', () => {
    expect(t.decode([3 + 0xc3])).toBe('\uFFFD');
    expect(t.decode([3 + 0xc3, 3 + 0xa9])).toBe('é');
    const stream = t.createStreamingDecoder();
    expect(stream.push(3 + 0xc3)).toBe('');
    expect(stream.flush()).toBe('\uFFFD');
  });
});

describe('detokenizer clean-up (llama.cpp detokenize clean_spaces, worked out from its three passes)', () => {
  const clean = (text: string) => new TextDecoder().decode(cleanUpSpaces(new TextEncoder().encode(text)));
  it.each([
    ['a , b . c ! d ? e', 'a, b. c! d? e'],
    ['x \' y', "x'y"], // " ' " loses both spaces
    ["he 's I 'm we 're they 've", "he's I'm we're they've"],
    ["I 'll it 't we 'd", "I 'll it 't we 'd"], // llama.cpp leaves these alone
    [' ,', ','], // the first character can go too
    ['', ''],
  ])('%j -> %j', (input, expected) => {
    expect(clean(input)).toBe(expected);
  });
  it('applies to BPE vocabularies whose pre-tokenizer keeps clean_spaces (gpt-2), not SentencePiece', () => {
    const gpt2 = load(bpe());
    const comma = gpt2.encode(' ,', { addSpecial: false });
    expect(gpt2.decode([256, ...comma])).toBe('he,');
    const sentencePiece = load(spm());
    expect(sentencePiece.decode(sentencePiece.encode('a , b', { addSpecial: false }))).toBe('a , b');
  });
});

describe('fuzz: mutated metadata never crashes', () => {
  it('2,000 mutations of the synthetic vocabularies give a tokenizer or a SwitchyardError', () => {
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const values: GGUFKV['value'][] = [
      'x',
      0,
      -1,
      4294967295,
      true,
      { itemType: GGUFValueType.STRING, items: [] },
      { itemType: GGUFValueType.STRING, items: ['a', 'a b', ''] },
      { itemType: GGUFValueType.INT32, items: Int32Array.of(1, 2, 3) },
      { itemType: GGUFValueType.FLOAT32, items: Float32Array.of(Number.NaN) },
    ];
    const types: GGUFKV['type'][] = [GGUFValueType.STRING, GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.UINT32, GGUFValueType.BOOL, GGUFValueType.ARRAY, GGUFValueType.ARRAY, GGUFValueType.ARRAY, GGUFValueType.ARRAY];
    let built = 0;
    for (let i = 0; i < 2000; i++) {
      const entries = (i % 2 ? bpe() : spm()).slice();
      const k = random(entries.length);
      const v = random(values.length);
      const action = random(3);
      if (action === 0) entries.splice(k, 1);
      else if (action === 1) entries[k] = { key: entries[k].key, type: types[v], value: values[v] };
      else {
        const e = entries[k];
        if (e.type === GGUFValueType.ARRAY) {
          const a = e.value as { itemType: GGUFValueType; items: string[] | Int32Array };
          entries[k] = { ...e, value: { itemType: a.itemType, items: a.items.slice(0, random(a.items.length + 1)) as string[] } };
        }
      }
      try {
        const t = load(entries);
        expect(t).toBeInstanceOf(Tokenizer);
        t.decode(t.encode('Hello he he é!'));
        built++;
      } catch (e) {
        if (!(e instanceof SwitchyardError)) throw e;
      }
    }
    expect(built).toBeGreaterThan(100); // some mutations are harmless
  });
});
