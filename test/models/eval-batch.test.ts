/**
 * Model.evalBatch: several sequences in one forward step (each with its own KV cache) give each
 * sequence exactly (bit for bit: every kernel is row-independent) the logits it gets evaluated
 * alone, for prompts of different lengths and for decode
 * steps at different positions; on the embedded model, golden architectures with sliding windows
 * and sinks (gpt-oss) and shared experts (qwen2moe), and through an expert cache. The reference is
 * the same model evaluating each sequence alone (the path every golden test checks).
 */
import { describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import { Model } from '../../src/models/model.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

const TINY = findDefaultModel() as string;
const PROMPTS = [
  [1, 464, 1181, 286, 262],
  [1, 3139, 17],
  [1, 290, 262, 1578, 2585, 423, 257],
];
const DECODE = [
  [318, 11, 13],
  [464, 286, 1913],
  [890, 2106, 383],
];

/** Last-token logits of every step, each sequence alone (its own cache) or all in one batch. */
function run(model: Model, batched: boolean): Float32Array[][] {
  const V = model.config.vocabSize;
  const prompts = PROMPTS.map((p) => p.map((t) => t % V));
  const decode = DECODE.map((d) => d.map((t) => t % V));
  const caches = prompts.map(() => model.newKVCache());
  const out: Float32Array[][] = prompts.map(() => []);
  const steps = [prompts, ...[0, 1, 2].map((k) => decode.map((d) => [d[k] as number]))];
  const pos = prompts.map(() => 0);
  for (const step of steps) {
    const seqs = step.map((tokens, i) => ({ tokens, pos: pos[i] as number, cache: caches[i] as ReturnType<Model['newKVCache']> }));
    const logits = batched ? model.evalBatch(seqs) : seqs.map((q) => model.eval(q.tokens, q.pos, { last: true, cache: q.cache }));
    logits.forEach((l, i) => {
      out[i]?.push(l);
      pos[i] = (pos[i] as number) + (step[i] as number[]).length;
    });
  }
  return out;
}

function maxRelDiff(a: Float32Array[][], b: Float32Array[][]): number {
  let worst = 0;
  a.forEach((seq, i) => {
    seq.forEach((x, j) => {
      const y = b[i]?.[j] as Float32Array;
      let scale = 0;
      for (const v of y) scale = Math.max(scale, Math.abs(v));
      for (let k = 0; k < x.length; k++) worst = Math.max(worst, Math.abs((x[k] as number) - (y[k] as number)) / scale);
    });
  });
  return worst;
}

async function compare(file: string, options: Parameters<typeof Model.load>[1] = {}): Promise<number> {
  const m = await Model.load(file, { threads: 2, contextLength: 32, kvCacheType: 'f32', ...options });
  try {
    return maxRelDiff(run(m, true), run(m, false));
  } finally {
    await m.close();
  }
}

describe('Model.evalBatch', () => {
  it('gives every sequence the logits it gets alone (embedded model)', async () => {
    expect(await compare(TINY)).toBe(0);
  });

  it('works through an expert cache too', async () => {
    expect(await compare(TINY, { expertMemory: '25%' })).toBe(0);
  });

  it('with an F16 KV cache', async () => {
    expect(await compare(TINY, { kvCacheType: 'f16' })).toBe(0);
  });

  for (const [model, name] of [
    ['gpt_oss', 'gpt_oss-MXFP4_MOE.gguf'],
    ['qwen2moe', 'qwen2moe-Q4_K_M.gguf'],
    ['mixtral', 'mixtral-Q4_K_M.gguf'],
  ] as const) {
    it(`${model}: every sequence's logits as alone`, async () => {
      if (skipGolden(`evalBatch ${model}`)) return;
      expect(await compare(goldenPath(model, name))).toBe(0);
    });
  }

  it('refuses shared caches and deepseek2, clearly', async () => {
    const m = await Model.load(TINY, { threads: 2, contextLength: 16 });
    try {
      const c = m.newKVCache();
      expect(() => m.evalBatch([{ tokens: [1], pos: 0, cache: c }, { tokens: [2], pos: 0, cache: c }])).toThrow(/its own KV cache/);
      expect(() => m.evalBatch([{ tokens: [], pos: 0, cache: c }])).toThrow(/no tokens/);
    } finally {
      await m.close();
    }
    if (skipGolden('evalBatch deepseek2')) return;
    const d = await Model.load(goldenPath('deepseek2_lite', 'deepseek2_lite-Q4_K_M.gguf'), { threads: 2, contextLength: 16 });
    try {
      expect(() => d.evalBatch([{ tokens: [1], pos: 0, cache: d.newKVCache() }])).toThrow(/deepseek2/);
    } finally {
      await d.close();
    }
  });
});
