/**
 * Routing controls on a real model (the embedded one): banned experts never appear in a trace and
 * forced ones always do; top-p uses fewer experts as p falls; controls give the same logits with
 * an expert cache as resident; self-contrast decoding picks the argmax of the documented formula
 * (src/generate/contrast.ts) applied to the strong and weak logits computed separately, and with
 * beta = 0 it generates what greedy decoding does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import { type LoadedModel, loadModel } from '../../src/api/model.js';
import { contrastLogits } from '../../src/generate/contrast.js';

const TINY = findDefaultModel() as string;
const TEXT = 'We the People of the United States, in Order to form a more perfect Union, establish Justice, insure domestic Tranquility. '.repeat(3);

let model: LoadedModel;
beforeAll(async () => {
  model = await loadModel(TINY, { threads: 2, contextLength: 128 });
});
afterAll(async () => {
  await model.close();
});

const idsAt = (t: { layers: readonly number[]; used: number; ids: Int16Array }, token: number, li: number) =>
  [...t.ids.subarray((token * t.layers.length + li) * t.used, (token * t.layers.length + li + 1) * t.used)].filter((e) => e >= 0);

describe('routing controls on the embedded model', () => {
  it('banned experts never appear in a trace; forced ones always do', async () => {
    const plain = await model.traceRouting(TEXT);
    const steered = await model.traceRouting(TEXT, {
      routing: { ban: [{ layer: 0, expert: 3 }, { layer: 2, expert: 5 }], force: [{ layer: 1, expert: 7 }] },
    });
    const N = steered.tokens.length;
    let bannedBefore = 0;
    for (let t = 0; t < N; t++) {
      expect(idsAt(steered, t, 0)).not.toContain(3);
      expect(idsAt(steered, t, 2)).not.toContain(5);
      expect(idsAt(steered, t, 1)).toContain(7);
      if (idsAt(plain, t, 0).includes(3)) bannedBefore++;
    }
    expect(bannedBefore).toBeGreaterThan(0); // the ban changed something real
  });

  it('top-p routing uses fewer experts per token as p falls', async () => {
    const mean = async (p: number) => {
      const t = await model.traceRouting(TEXT, { routing: { topP: { p, maxK: 6 } } });
      let n = 0;
      for (const e of t.ids) if (e >= 0) n++;
      return n / (t.tokens.length * t.layers.length);
    };
    const series = [await mean(0.95), await mean(0.7), await mean(0.4)];
    expect(series[1]).toBeLessThan(series[0] as number);
    expect(series[2]).toBeLessThan(series[1] as number);
  });

  it('gives the same logits through an expert cache as resident, with controls', async () => {
    const tokens = model.tokenize(TEXT).slice(0, 24);
    const routing = { topK: 4, ban: [{ layer: 3, expert: 0 }] };
    const resident = model.logits(tokens, { routing });
    const cached = await loadModel(TINY, { threads: 2, contextLength: 128, expertMemory: '25%' });
    try {
      const viaCache = cached.logits(tokens, { routing });
      expect(Buffer.compare(Buffer.from(viaCache.buffer), Buffer.from(resident.buffer))).toBe(0);
    } finally {
      await cached.close();
    }
  });

  it('self-contrast: the first token is the argmax of the formula on the strong and weak logits', async () => {
    const prompt = model.tokenize('The state of the Union');
    const V = model.info.vocabSize;
    const strong = model.logits(prompt).subarray((prompt.length - 1) * V);
    const weak = model.logits(prompt, { routing: { onlyRank: 3 } }).subarray((prompt.length - 1) * V);
    const combined = contrastLogits(strong, weak, { beta: 0.5, alpha: 0.1 });
    let best = 0;
    for (let v = 1; v < V; v++) if ((combined[v] as number) > (combined[best] as number)) best = v;
    const first = async (contrast?: { beta: number; alpha: number; weakRank?: number }) => {
      const out: number[] = [];
      for await (const e of model.generate(prompt, { maxTokens: 6, temperature: 0, ...(contrast ? { contrast } : {}) })) if (e.type === 'token') out.push(e.token);
      return out;
    };
    const withContrast = await first({ beta: 0.5, alpha: 0.1, weakRank: 3 });
    expect(withContrast[0]).toBe(best);
    // beta = 0: the strong logits, masked to plausible tokens: greedy decoding's tokens
    expect(await first({ beta: 0, alpha: 0.1 })).toEqual(await first());
  });

  it('traces a prompt set with each prompt as its own sequence', async () => {
    const prompts = ['The state of the Union is strong.', 'Call me Ishmael.'];
    const set = await model.traceRouting(prompts);
    const each = [];
    for (const p of prompts) each.push(await model.traceRouting(p)); // one sequence at a time
    expect(set.tokens.length).toBe(prompts.reduce((n, p) => n + model.tokenize(p).length, 0));
    // The second prompt's routing is what it gets alone (a fresh sequence, not a continuation).
    const second = each[1] as (typeof each)[0];
    expect([...set.ids.subarray(set.ids.length - second.ids.length)]).toEqual([...second.ids]);
  });

  it('generation with trace: each token carries the routing of the step that produced it', async () => {
    const prompt = model.tokenize('The state of the Union');
    const events = [];
    for await (const e of model.generate(prompt, { maxTokens: 5, temperature: 0, trace: true })) if (e.type === 'token') events.push(e);
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect(e.routing?.map((r) => r.layer)).toEqual([0, 1, 2, 3]);
      for (const r of e.routing ?? []) {
        expect(r.ids).toHaveLength(2);
        expect(r.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5); // qwen3moe renormalises top-2
      }
    }
    // The first token comes from the prompt's last position: the trace of the prompt says which experts.
    const t = await model.traceRouting(prompt.map((id) => model.tokenizer.tokenToPiece(id)).join(''));
    const last = t.tokens.length - 1;
    expect(events[0]?.routing?.map((r) => r.ids)).toEqual([0, 1, 2, 3].map((li) => idsAt(t, last, li)));
  });

  it('refuses bad controls before running', async () => {
    await expect(async () => {
      for await (const _ of model.generate('Hello', { routing: { topK: 99 } }));
    }).rejects.toThrow(/routing\.topK must be a whole number from 1 to 16/);
  });
});

describe('generation with logprobs', () => {
  it('logProbabilities: log-softmax and the top alternatives, against a float64 brute force', async () => {
    const { logProbabilities } = await import('../../src/api/generate.js');
    const logits = Float32Array.from([0.5, 2, -1, 2, 0.25]);
    const lse = Math.log([...logits].reduce((a, v) => a + Math.exp(v), 0));
    const r = logProbabilities(logits, 4, 3);
    expect(r.logprob).toBeCloseTo(0.25 - lse, 12);
    expect(r.topLogprobs.map((t) => t.token)).toEqual([1, 3, 0]); // ties: lower id first
    expect(r.topLogprobs[0]?.logprob).toBeCloseTo(2 - lse, 12);
  });

  it("the first token's logprob is the log-softmax of the prompt's last logits", async () => {
    const m = await loadModel(TINY, { threads: 2, contextLength: 64 });
    try {
      const prompt = m.tokenize('The state of the Union');
      const V = m.info.vocabSize;
      const last = m.logits(prompt).subarray((prompt.length - 1) * V);
      const events = [];
      for await (const e of m.generate(prompt, { maxTokens: 3, temperature: 0, logprobs: 2 })) if (e.type === 'token') events.push(e);
      const first = events[0] as (typeof events)[0];
      let lse = 0;
      const max = Math.max(...last);
      for (const v of last) lse += Math.exp(v - max);
      expect(first.logprob).toBeCloseTo((last[first.token] as number) - max - Math.log(lse), 5);
      expect(first.topLogprobs?.[0]?.token).toBe(first.token);
      await expect(async () => {
        for await (const _ of m.generate(prompt, { logprobs: 21 }));
      }).rejects.toThrow(/logprobs must be a whole number from 0 to 20/);
    } finally {
      await m.close();
    }
  });
});
