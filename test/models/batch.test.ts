/**
 * Concurrent generations on one model (LoadModelOptions.sequences, src/api/batch.ts): their steps
 * run in shared batches, and each generation gets exactly (token for token, log-probability for
 * log-probability, routing for routing) what it gets alone. The reference is the same model
 * generating each request by itself, one after another, which is the path the golden tests check.
 */
import { describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import { type GenerateEvent, type GenerateOptions, type LoadedModel, loadModel } from '../../src/api/model.js';
import { SwitchyardError } from '../../src/core/errors.js';
import { Model } from '../../src/models/model.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

const TINY = findDefaultModel() as string;

interface Result {
  tokens: number[];
  text: string;
  logprobs: number[];
  routing: string[];
  stop: string;
}

async function collect(events: AsyncIterable<GenerateEvent>): Promise<Result> {
  const r: Result = { tokens: [], text: '', logprobs: [], routing: [], stop: '' };
  for await (const e of events) {
    if (e.type === 'done') r.stop = e.stats.stopReason;
    else {
      r.tokens.push(e.token);
      r.text += e.text;
      if (e.logprob !== undefined) r.logprobs.push(e.logprob);
      if (e.routing) r.routing.push(JSON.stringify(e.routing));
    }
  }
  return r;
}

/** The requests: different prompt lengths, samplers, routing controls, traces and self-contrast. */
const REQUESTS: { prompt: string; options: GenerateOptions }[] = [
  { prompt: 'Once upon a time', options: { temperature: 0, maxTokens: 12 } },
  { prompt: 'The state of the Union is strong, and the people of this nation', options: { seed: 7, maxTokens: 10, logprobs: 3 } },
  { prompt: 'Call me Ishmael.', options: { temperature: 0, maxTokens: 9, trace: true } },
  { prompt: 'The whale', options: { seed: 3, maxTokens: 11, routing: { topK: 1 } } },
  { prompt: 'In the year', options: { temperature: 0, maxTokens: 6, contrast: { beta: 0.5, alpha: 0.1 } } },
  { prompt: 'Mr. Speaker', options: { seed: 11, maxTokens: 8, routing: { topK: 1 }, trace: true } },
];

async function alone(model: LoadedModel): Promise<Result[]> {
  const out: Result[] = [];
  for (const r of REQUESTS) out.push(await collect(model.generate(r.prompt, r.options)));
  return out;
}

describe('concurrent generations (sequences > 1)', () => {
  it('each gets what it gets alone, while their steps share batches', async () => {
    const model = await loadModel(TINY, { threads: 2, contextLength: 96, sequences: REQUESTS.length });
    try {
      const reference = await alone(model);
      const before = model.batchStats();
      const together = await Promise.all(REQUESTS.map((r) => collect(model.generate(r.prompt, r.options))));
      const after = model.batchStats();
      expect(together).toEqual(reference);
      expect(reference[2]?.routing.length).toBe(reference[2]?.tokens.length);
      expect(reference[1]?.logprobs.length).toBe(10);
      // Alone, every batch is one step; together, most hold several (one per sequence and routing).
      const batches = after.batches - before.batches;
      const steps = after.steps - before.steps;
      expect(steps).toBeGreaterThan(2 * batches);
      expect(before.steps).toBe(before.batches);
    } finally {
      await model.close();
    }
  });

  it('through an expert cache, and with prompts cut into batches of 5 tokens', async () => {
    const resident = await loadModel(TINY, { threads: 2, contextLength: 96, sequences: 1 });
    let reference: Result[];
    try {
      reference = await alone(resident);
    } finally {
      await resident.close();
    }
    const model = await loadModel(TINY, { threads: 2, contextLength: 96, sequences: 3, batchTokens: 5, expertMemory: '25%' });
    try {
      // Three at a time (the model's sequences), later ones starting as earlier ones finish.
      const results: Result[] = [];
      for (let i = 0; i < REQUESTS.length; i += 3) {
        results.push(...(await Promise.all(REQUESTS.slice(i, i + 3).map((r) => collect(model.generate(r.prompt, r.options))))));
      }
      expect(results).toEqual(reference);
      expect(model.batchStats().tokens).toBeGreaterThan(0);
    } finally {
      await model.close();
    }
  });

  it('a generation that starts while others decode joins their batches', async () => {
    const model = await loadModel(TINY, { threads: 2, contextLength: 96, sequences: 2, batchTokens: 4 });
    try {
      const [a, b] = REQUESTS as [(typeof REQUESTS)[0], (typeof REQUESTS)[0]];
      const first = await collect(model.generate(a.prompt, a.options));
      const second = await collect(model.generate(b.prompt, b.options));
      const it = model.generate(a.prompt, a.options)[Symbol.asyncIterator]();
      const events: GenerateEvent[] = [];
      const step = await it.next(); // a's prompt is done and it decodes
      events.push(step.value as GenerateEvent);
      const late = collect(model.generate(b.prompt, b.options)); // b's 14-token prompt goes in chunks between a's steps
      for (let r = await it.next(); !r.done; r = await it.next()) events.push(r.value);
      const rest = await collect((async function* () {
        yield* events;
      })());
      expect(rest).toEqual(first);
      expect(await late).toEqual(second);
    } finally {
      await model.close();
    }
  });

  it('refuses a generation beyond its sequences, and exclusive calls while generating, then recovers', async () => {
    const model = await loadModel(TINY, { threads: 2, contextLength: 32, sequences: 2 });
    try {
      const a = model.generate('a', { temperature: 0 })[Symbol.asyncIterator]();
      const b = model.generate('b', { temperature: 0 })[Symbol.asyncIterator]();
      await Promise.all([a.next(), b.next()]);
      const third = model.generate('c')[Symbol.asyncIterator]();
      await expect(third.next()).rejects.toThrow(/all 2 sequences are generating/);
      expect(() => model.logits([1])).toThrow(/running 2 generations; logits needs it alone/);
      await a.return?.(undefined);
      const c = await collect(model.generate('c', { temperature: 0, maxTokens: 2 }));
      expect(c.tokens.length).toBe(2);
      await b.return?.(undefined);
      expect(model.logits([1]).length).toBe(model.info.vocabSize);
      expect(model.info.sequences).toBe(2);
    } finally {
      await model.close();
    }
  });

  it('closing the model ends waiting generations as aborted', async () => {
    const model = await loadModel(TINY, { threads: 2, contextLength: 64, sequences: 2 });
    const a = collect(model.generate('Once upon a time', { temperature: 0 }));
    const b = collect(model.generate('The whale', { temperature: 0, contrast: { beta: 0.5, alpha: 0.1 } })); // two steps per token
    // The prompts' steps are submitted (generators run to their first await at once); the batch has not run.
    await model.close();
    expect((await a).stop).toBe('aborted');
    expect((await b).stop).toBe('aborted');
  });

  it('states bad options and sequences that do not fit', async () => {
    await expect(loadModel(TINY, { sequences: 0 })).rejects.toThrow(/sequences must be a positive integer, got 0/);
    await expect(loadModel(TINY, { batchTokens: 0 })).rejects.toThrow(/batchTokens must be a whole number >= 1, got 0/);
    const err = await Model.load(TINY, { contextLength: 512, sequences: 64, maxHeapBytes: 64 * 2 ** 20 }).catch((e) => e);
    expect(err).toBeInstanceOf(SwitchyardError);
    expect(err.code).toBe('E_OUT_OF_MEMORY');
    expect(err.message).toMatch(/64 sequences of 512 positions need 64 KV caches of .* each, more than one wasm memory holds .*: use fewer sequences or a smaller contextLength \(only \d+ fit\)/);
  });

  it('deepseek2 (no batched step): concurrent generations still match alone', async () => {
    if (skipGolden('concurrent generations, deepseek2')) return;
    const model = await loadModel(goldenPath('deepseek2_lite', 'deepseek2_lite-Q4_K_M.gguf'), { threads: 2, contextLength: 48, sequences: 3 });
    try {
      const reqs = REQUESTS.slice(0, 3).map((r) => ({ ...r, options: { ...r.options, maxTokens: 5 } }));
      const reference: Result[] = [];
      for (const r of reqs) reference.push(await collect(model.generate(r.prompt, r.options)));
      expect(await Promise.all(reqs.map((r) => collect(model.generate(r.prompt, r.options))))).toEqual(reference);
    } finally {
      await model.close();
    }
  });
});
