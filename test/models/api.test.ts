// The public model API (src/api): the decode loop on a scripted fake model (stop tokens, stop
// strings, abort, context limits), then loadModel on the golden llama_dense and mixtral Q4_K_M
// files with an F32 KV cache, as the references were made: greedy generation equals llama.cpp's
// greedy_tokens (prompt in one batch, then one token at a time), text = detokenize(tokens),
// chat through the template, logits, abort, context overflow, one sequence at a time.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, SwitchyardError } from '../../src/core/errors.js';
import { chatPromptText } from '../../src/api/chat.js';
import { type Evaluator, generateTokens } from '../../src/api/generate.js';
import { type GenerateEvent, type GenerateStats, type LoadedModel, loadModel } from '../../src/api/model.js';
import { ContextLengthError } from '../../src/generate/kv-cache.js';
import { argmax } from '../../src/generate/sampler.js';
import { ChatTemplate, CHATML_TEMPLATE } from '../../src/tokenizer/chat-template.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

async function collect(events: AsyncIterable<GenerateEvent>) {
  const tokens: number[] = [];
  let text = '';
  let stats: GenerateStats | undefined;
  for await (const e of events) {
    if (e.type === 'token') {
      tokens.push(e.token);
      text += e.text;
    } else stats = e.stats;
  }
  return { tokens, text, stats: stats as GenerateStats };
}

// --- the decode loop on a fake model --------------------------------------------------------

const PIECES = ['<eos>', 'a', 'b', 'c', '\n', 'User', ':', ' ', 'x'];
const EOS = 0;
const tokenizer = {
  createStreamingDecoder: () => ({ push: (id: number) => (id === EOS ? '' : (PIECES[id] as string)), flush: () => '' }),
  endOfGenerationIds: () => [EOS],
  isEndOfGeneration: (id: number) => id === EOS,
};

/** Greedy on this model continues with script[p] after the token at position p. */
class FakeModel implements Evaluator {
  readonly vocabSize = PIECES.length;
  closed = false;
  evals: number[][] = [];
  onEval?: (pos: number) => void;
  constructor(
    private readonly script: number[],
    readonly contextLength = 64,
  ) {}
  eval(tokens: readonly number[], pos: number, options: { last?: boolean } = {}): Float32Array {
    if (pos + tokens.length > this.contextLength) throw new ContextLengthError('fake context full');
    this.evals.push([...tokens]);
    this.onEval?.(pos);
    const rows = options.last ? [pos + tokens.length - 1] : tokens.map((_, i) => pos + i);
    const out = new Float32Array(rows.length * this.vocabSize);
    rows.forEach((p, r) => {
      out[r * this.vocabSize + ((this.script[p] ?? 1) as number)] = 10;
    });
    return out;
  }
}
const GREEDY = { temperature: 0 };
const prompt = [1, 2, 3]; // "abc"

describe('decode loop (fake model)', () => {
  it('prompt in one batch, then one token per step; greedy follows the model', async () => {
    const m = new FakeModel([0, 0, 1, 2, 3, 8, 8]);
    const r = await collect(generateTokens(m, tokenizer, prompt, { ...GREEDY, maxTokens: 4 }));
    expect(r.tokens).toEqual([1, 2, 3, 8]);
    expect(r.text).toBe('abcx');
    expect(m.evals).toEqual([[1, 2, 3], [1], [2], [3]]); // the last token is never evaluated
    expect(r.stats).toMatchObject({ promptTokens: 3, generatedTokens: 4, stopReason: 'length' });
    expect(r.stats.peakMemoryBytes).toBeGreaterThan(0);
  });

  it('an end-of-generation token ends it and is not output; other stop tokens give "stop"', async () => {
    const eog = await collect(generateTokens(new FakeModel([0, 0, 1, 2, EOS, 3]), tokenizer, prompt, GREEDY));
    expect(eog.tokens).toEqual([1, 2]);
    expect(eog.stats).toMatchObject({ generatedTokens: 3, stopReason: 'end-of-generation' });
    const custom = await collect(generateTokens(new FakeModel([0, 0, 1, 2, EOS, 3]), tokenizer, prompt, { ...GREEDY, stopTokens: [2] }));
    expect(custom.tokens).toEqual([1]);
    expect(custom.stats.stopReason).toBe('stop');
  });

  it('a stop string ends it; it and anything after it are not output', async () => {
    const m = new FakeModel([0, 0, 1, 4, 5, 6, 1, 1]); // "a\nUser:a..."
    const r = await collect(generateTokens(m, tokenizer, prompt, { ...GREEDY, stop: ['\nUser:'] }));
    expect(r.text).toBe('a');
    expect(r.tokens).toEqual([1]);
    expect(r.stats).toMatchObject({ generatedTokens: 4, stopReason: 'stop' });
    const partial = await collect(generateTokens(new FakeModel([0, 0, 1, 4, 5, 7]), tokenizer, prompt, { ...GREEDY, stop: ['\nUser:'], maxTokens: 4 }));
    expect(partial.text).toBe('a\nUser '); // held back, then released: the stop string never completed
    expect(partial.tokens).toEqual([1, 4, 5, 7]);
  });

  it('an already-aborted signal yields only "done"', async () => {
    const m = new FakeModel([0, 0, 1, 1]);
    const events: GenerateEvent[] = [];
    for await (const e of generateTokens(m, tokenizer, prompt, { signal: AbortSignal.abort() })) events.push(e);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'done', stats: { stopReason: 'aborted', generatedTokens: 0 } });
    expect(m.evals).toEqual([]);
  });

  it('abort between tokens: from the consumer, or from a callback that runs meanwhile (no exception)', async () => {
    const ac = new AbortController();
    const tokens: number[] = [];
    let reason: string | undefined;
    for await (const e of generateTokens(new FakeModel([0, 0, 1, 2, 3, 1, 2, 3]), tokenizer, prompt, { ...GREEDY, signal: ac.signal })) {
      if (e.type === 'token') {
        tokens.push(e.token);
        if (tokens.length === 2) ac.abort();
      } else reason = e.stats.stopReason;
    }
    expect(tokens).toEqual([1, 2]);
    expect(reason).toBe('aborted');

    const later = new AbortController();
    const m = new FakeModel(Array(64).fill(1));
    m.onEval = (pos) => {
      if (pos === 10) setImmediate(() => later.abort()); // fires while the loop waits between tokens
    };
    const r = await collect(generateTokens(m, tokenizer, prompt, { ...GREEDY, signal: later.signal }));
    expect(r.stats.stopReason).toBe('aborted');
    expect(r.tokens).toHaveLength(9); // the token that position 10's logits gave is the last
  });

  it('a prompt longer than the context is a ContextLengthError; a full context ends with "length"', async () => {
    const tooLong = generateTokens(new FakeModel([], 2), tokenizer, prompt, GREEDY);
    await expect(collect(tooLong)).rejects.toThrow(ContextLengthError);
    await expect(collect(generateTokens(new FakeModel([]), tokenizer, [], GREEDY))).rejects.toThrow(InvalidArgumentError);
    const m = new FakeModel(Array(8).fill(1), 5);
    const r = await collect(generateTokens(m, tokenizer, prompt, GREEDY));
    expect(r.tokens).toHaveLength(3); // positions 3 and 4 are evaluated, the third token has no room
    expect(r.stats.stopReason).toBe('length');
  });

  it('maxTokens 0 evaluates the prompt only; a closed model stops with "aborted"', async () => {
    const m = new FakeModel([0, 0, 1]);
    const r = await collect(generateTokens(m, tokenizer, prompt, { maxTokens: 0 }));
    expect(r.tokens).toEqual([]);
    expect(m.evals).toEqual([prompt]);
    expect(r.stats).toMatchObject({ generatedTokens: 0, stopReason: 'length' });
    const closing = new FakeModel(Array(64).fill(1));
    const tokens: number[] = [];
    let reason: string | undefined;
    for await (const e of generateTokens(closing, tokenizer, prompt, GREEDY)) {
      if (e.type === 'done') reason = e.stats.stopReason;
      else if (tokens.push(e.token) === 3) closing.closed = true;
    }
    expect(tokens).toHaveLength(3);
    expect(reason).toBe('aborted');
  });

  it('chat prompt text: the BOS / EOS text the template writes is left to the tokenizer', () => {
    const t = new ChatTemplate('{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{{ eos_token }}', {
      bosToken: '<s>',
      eosToken: '</s>',
    });
    const messages = [{ role: 'user', content: 'Hi' }];
    expect(chatPromptText(t, messages, { addBos: true, addEos: false })).toBe('[user]Hi</s>');
    expect(chatPromptText(t, messages, { addBos: false, addEos: true })).toBe('<s>[user]Hi');
    const chatml = new ChatTemplate(CHATML_TEMPLATE, { bosToken: '<s>', eosToken: '</s>' });
    expect(chatPromptText(chatml, messages, { addBos: true, addEos: false })).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });
});

// --- loadModel on golden files ----------------------------------------------------------------

interface VariantJson {
  prompt_text: string;
  prompt_tokens: number[];
  greedy_tokens: number[];
  logits_file: string;
  logits_positions: number[];
  logits_f32_reference_std: number;
}
const SKIP = skipGolden('model API on golden models');
const MODELS = [
  { model: 'llama_dense', experts: undefined },
  { model: 'mixtral', experts: { count: 8, used: 2, layers: [0, 1] } },
] as const;

for (const { model: name, experts } of MODELS) {
  describe.skipIf(SKIP)(`loadModel: ${name} Q4_K_M`, () => {
    const path = goldenPath(name, `${name}-Q4_K_M.gguf`);
    const j: VariantJson = SKIP ? ({} as VariantJson) : JSON.parse(readFileSync(goldenPath(name, `${name}-Q4_K_M.json`), 'utf8'));
    let model: LoadedModel;
    beforeAll(async () => {
      model = await loadModel(path, { contextLength: 512, kvCacheType: 'f32' });
    });
    afterAll(async () => {
      await model?.close();
    });

    it('info', () => {
      expect(model.info).toMatchObject({ path, architecture: 'llama', contextLength: 512, vocabSize: 32000, layers: 2, kvCacheType: 'f32' });
      expect(model.info.experts).toEqual(experts);
      expect(model.info.parameters.total).toBeGreaterThan(model.info.parameters.experts);
      if (experts) expect(model.info.parameters.activePerToken).toBeLessThan(model.info.parameters.total);
    });

    it("greedy generation equals llama.cpp's greedy tokens; text = detokenize(tokens)", async () => {
      expect(model.tokenize(j.prompt_text)).toEqual(j.prompt_tokens);
      const r = await collect(model.generate(j.prompt_text, { temperature: 0, maxTokens: j.greedy_tokens.length }));
      expect(r.tokens).toEqual(j.greedy_tokens);
      expect(r.text).toBe(model.detokenize(r.tokens));
      expect(r.stats).toMatchObject({ promptTokens: j.prompt_tokens.length, generatedTokens: 24, stopReason: 'length' });
      expect(r.stats.decodeTokensPerSecond).toBeGreaterThan(0);
      expect(r.stats.promptTokensPerSecond).toBeGreaterThan(0);
      // token ids in, the same continuation out
      const again = await collect(model.generate(j.prompt_tokens, { temperature: 0, maxTokens: 3 }));
      expect(again.tokens).toEqual(j.greedy_tokens.slice(0, 3));
    });

    it('logits of a fresh sequence: the native rows within 2e-2 σ, argmax of the last = first greedy token', () => {
      const V = model.info.vocabSize;
      const logits = model.logits(j.prompt_tokens);
      expect(logits.length).toBe(j.prompt_tokens.length * V);
      const b = readFileSync(goldenPath(name, j.logits_file));
      const ref = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      for (let r = 0; r < 4; r++) {
        const p = j.logits_positions[r] as number;
        let worst = 0;
        for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs((logits[p * V + i] as number) - (ref[r * V + i] as number)));
        expect(worst / j.logits_f32_reference_std).toBeLessThanOrEqual(2e-2);
      }
      expect(argmax(logits.subarray((j.prompt_tokens.length - 1) * V))).toBe(j.greedy_tokens[0]);
    });

    it('seeded sampling is reproducible', async () => {
      const opts = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 42, maxTokens: 8 };
      const a = await collect(model.generate(j.prompt_text, opts));
      const b = await collect(model.generate(j.prompt_text, opts));
      expect(a.tokens).toEqual(b.tokens);
      expect(a.tokens).toHaveLength(8);
    });

    it('abort after three tokens; one sequence at a time', async () => {
      const ac = new AbortController();
      const tokens: number[] = [];
      let reason: string | undefined;
      for await (const e of model.generate(j.prompt_text, { temperature: 0, signal: ac.signal })) {
        if (e.type === 'done') reason = e.stats.stopReason;
        else if (tokens.push(e.token) === 3) ac.abort();
      }
      expect(tokens).toEqual(j.greedy_tokens.slice(0, 3));
      expect(reason).toBe('aborted');

      const first = model.generate(j.prompt_text, { temperature: 0 })[Symbol.asyncIterator]();
      await first.next();
      expect(() => model.logits([1])).toThrow(/running 1 generation; logits needs it alone/);
      await expect(collect(model.generate('x'))).rejects.toThrow(SwitchyardError);
      await first.return?.(undefined);
      expect(model.logits([1]).length).toBe(model.info.vocabSize);
    });

    it('chat renders the template (ChatML: these files have none) and generates from it', async () => {
      const messages = [{ role: 'user', content: 'Call me Ishmael.' }];
      const r = await collect(model.chat(messages, { temperature: 0, maxTokens: 4 }));
      const text = '<|im_start|>user\nCall me Ishmael.<|im_end|>\n<|im_start|>assistant\n';
      const expected = await collect(model.generate(model.tokenize(text, { parseSpecial: true }), { temperature: 0, maxTokens: 4 }));
      expect(r.tokens).toEqual(expected.tokens);
      expect(r.stats.promptTokens).toBe(model.tokenize(text, { parseSpecial: true }).length);
    });
  });
}

describe.skipIf(SKIP)('loadModel: context limits and close', () => {
  const path = goldenPath('llama_dense', 'llama_dense-Q4_K_M.gguf');

  it('a prompt longer than the context is a ContextLengthError; a full context ends generation', async () => {
    const j: VariantJson = JSON.parse(readFileSync(goldenPath('llama_dense', 'llama_dense-Q4_K_M.json'), 'utf8'));
    const small = await loadModel(path, { contextLength: 32, kvCacheType: 'f32' });
    try {
      await expect(collect(small.generate(j.prompt_text))).rejects.toThrow(ContextLengthError);
      expect(() => small.logits(j.prompt_tokens)).toThrow(ContextLengthError);
    } finally {
      await small.close();
    }
    const fits = await loadModel(path, { contextLength: j.prompt_tokens.length + 3, kvCacheType: 'f32' });
    try {
      const r = await collect(fits.generate(j.prompt_tokens, { temperature: 0 }));
      expect(r.tokens).toEqual(j.greedy_tokens.slice(0, 4)); // 3 more positions: 3 decode steps, 4 tokens
      expect(r.stats.stopReason).toBe('length');
    } finally {
      await fits.close();
    }
  });

  it('after close() every call is refused', async () => {
    const m = await loadModel(path, { contextLength: 64 });
    expect(m.info.kvCacheType).toBe('f16'); // llama.cpp's default
    await m.close();
    await m.close(); // twice is fine
    expect(() => m.logits([1])).toThrow(/closed/);
    await expect(collect(m.generate('x'))).rejects.toThrow(/closed/);
  });
});
