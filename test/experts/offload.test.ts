/**
 * Expert offloading end to end: a model whose routed experts stay in the file and run through
 * the expert cache gives exactly the resident run's logits (bit for bit) for every budget,
 * policy, slot allocation, prefetch setting and pinning; statistics add up; impossible budgets
 * and failing reads are clear typed errors. The reference is the same model loaded with every
 * expert resident (the path the goldens test against llama.cpp).
 */
import { copyFileSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import { type GenerateStats, loadModel } from '../../src/api/model.js';
import { type ExpertLayout, ExpertMemoryError, expertLayout, minimumExpertMemory } from '../../src/experts/layout.js';
import { GGUFFile } from '../../src/formats/gguf/reader.js';
import { modelConfigFromGGUF } from '../../src/models/config.js';
import { Model, type ModelLoadOptions } from '../../src/models/model.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

const TINY = findDefaultModel() as string;
// A prompt long enough that one layer's tokens select more experts than small budgets hold.
const PROMPT = [1, 464, 1181, 286, 262, 4479, 318, 1913, 11, 290, 262, 1578, 2585, 423, 257, 890, 2106, 13, 383, 3139];

/** Logits of a prompt in one step, then of 6 single-token steps (greedy), as one array per step. */
function runSteps(model: Model, prompt: readonly number[] = PROMPT): Float32Array[] {
  const V = model.config.vocabSize;
  prompt = prompt.map((t) => t % V);
  const out = [model.eval(prompt, 0)];
  let next = argmax(out[0] as Float32Array, model.config.vocabSize, prompt.length - 1);
  for (let i = 0; i < 6; i++) {
    const l = model.eval([next], prompt.length + i);
    out.push(l);
    next = argmax(l, model.config.vocabSize, 0);
  }
  return out;
}

function argmax(logits: Float32Array, V: number, row: number): number {
  let best = 0;
  for (let v = 1; v < V; v++) if ((logits[row * V + v] as number) > (logits[row * V + best] as number)) best = v;
  return best;
}

function expectIdentical(a: Float32Array[], b: Float32Array[]): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    const x = new Uint32Array((a[i] as Float32Array).buffer);
    const y = new Uint32Array((b[i] as Float32Array).buffer);
    expect(x.length).toBe(y.length);
    let diff = 0;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) diff++;
    expect(diff, `step ${i}: ${diff} logits differ from the resident run`).toBe(0);
  }
}

async function withModel<T>(file: string, options: ModelLoadOptions, f: (m: Model) => T | Promise<T>): Promise<T> {
  const m = await Model.load(file, { threads: 2, contextLength: 64, ...options });
  try {
    return await f(m);
  } finally {
    await m.close();
  }
}

describe('expert offloading on the embedded model (16 experts x 4 layers, top-2)', () => {
  let resident: Float32Array[];
  beforeAll(async () => {
    resident = await withModel(TINY, { expertMemory: 'all' }, (m) => {
      expect(m.offload).toBeUndefined();
      return runSteps(m);
    });
  });

  for (const expertMemory of ['4%', '10%', '25%', '50%', '100%']) {
    it(`is bit-identical to the resident run at ${expertMemory} of the expert bytes (lru, prefetch)`, async () => {
      await withModel(TINY, { expertMemory }, (m) => {
        expect(m.offload).toBeDefined();
        expectIdentical(runSteps(m), resident);
        const st = m.offload?.cache.stats();
        expect(st?.needed).toBe((st?.hits ?? 0) + (st?.inFlight ?? 0) + (st?.misses ?? 0));
        expect(st?.tokens).toBe(PROMPT.length + 6);
      });
    });
  }

  for (const policy of ['lru', 'lfu', 'slru'] as const) {
    for (const allocation of ['shared', 'per-layer'] as const) {
      for (const prefetch of [false, 0, 2] as const) {
        it(`is bit-identical with policy ${policy}, ${allocation} slots, prefetch ${prefetch}`, async () => {
          await withModel(TINY, { expertMemory: '25%', expertCache: { policy, allocation, prefetch } }, (m) => {
            expectIdentical(runSteps(m), resident);
            const st = m.offload?.cache.stats();
            if (prefetch === false) expect(st?.prefetchIssued).toBe(0);
            else expect(st?.prefetchIssued).toBeGreaterThan(0);
            // Every prediction is settled by the end of a step (the lookahead stops at the last block).
            expect((st?.prefetchUsed ?? -1) + (st?.prefetchWasted ?? -1)).toBe(st?.prefetchIssued);
          });
        });
      }
    }
  }

  it('at the minimum budget (one layer\'s K experts) it still matches, reading in token chunks', async () => {
    await withModel(TINY, { expertMemory: 2 * (await slotBytes()), expertCache: { prefetch: false } }, (m) => {
      expect(m.offload?.cache.layerCapacity(0)).toBe(2);
      expectIdentical(runSteps(m), resident);
    });
  });

  it('with synchronous reads and the reference kernels it matches the reference kernels resident', async () => {
    const ref = await withModel(TINY, { expertMemory: 'all', kernels: 'ref', threads: 1 }, (m) => runSteps(m, PROMPT.slice(0, 6)));
    await withModel(TINY, { expertMemory: '25%', kernels: 'ref', threads: 1, expertCache: { ioThreads: 0 } }, (m) =>
      expectIdentical(runSteps(m, PROMPT.slice(0, 6)), ref),
    );
  });

  it('matches with the slots spread over several wasm memories (layers keep to their home heap)', async () => {
    await withModel(TINY, { expertMemory: '25%', maxHeapBytes: 6 << 20 }, (m) => {
      expect(m.offload?.cache.heapCount).toBeGreaterThan(1);
      expectIdentical(runSteps(m), resident);
    });
  });

  it('keeps pinned experts resident and still matches', async () => {
    const pin = [
      { layer: 0, expert: 3 },
      { layer: 2, expert: 15 },
    ];
    await withModel(TINY, { expertMemory: '10%', expertCache: { pin } }, (m) => {
      expectIdentical(runSteps(m), resident);
      const cache = m.offload?.cache;
      expect(cache?.resident(0, 3)).toBe(true);
      expect(cache?.resident(2, 15)).toBe(true);
      expect(cache?.stats().pinned).toBe(2);
    });
  });

  it('counts reads: with room for every expert, a second pass over the same tokens only hits', async () => {
    await withModel(TINY, { expertMemory: '100%', expertCache: { prefetch: false } }, (m) => {
      runSteps(m);
      const first = m.offload?.cache.stats();
      expect(first?.demandBytes).toBe((first?.misses ?? 0) * (m.offload?.cache.layout.layers[0]?.expertBytes ?? 0));
      m.offload?.cache.resetStats();
      runSteps(m);
      const second = m.offload?.cache.stats();
      expect(second?.misses).toBe(0);
      expect(second?.hits).toBe(second?.needed);
      expect(second?.demandBytes).toBe(0);
    });
  });

  it('refuses a budget below one layer\'s active experts, saying the minimum', async () => {
    const min = 2 * (await slotBytes());
    await expect(Model.load(TINY, { expertMemory: min - 1 })).rejects.toThrow(ExpertMemoryError);
    await expect(Model.load(TINY, { expertMemory: min - 1 })).rejects.toThrow(/below the minimum of .*2 active experts/);
    await expect(Model.load(TINY, { expertMemory: 'lots' })).rejects.toThrow(/4GiB, 512MiB/);
  });

  it('a file truncated after loading gives a read error naming the file, not garbage', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sy-offload-'));
    try {
      const copy = path.join(dir, 'tiny.gguf');
      copyFileSync(TINY, copy);
      const m = await Model.load(copy, { threads: 2, contextLength: 64, expertMemory: '10%', expertCache: { prefetch: false } });
      try {
        truncateSync(copy, 4 << 20); // well inside the first layers' experts
        expect(() => runSteps(m)).toThrow(/tiny\.gguf/);
      } finally {
        await m.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function slotBytes(): Promise<number> {
  return withModel(TINY, { expertMemory: '100%' }, (m) => m.offload?.cache.layout.slotBytes as number);
}

// Architectures with expert biases (gpt-oss), leading dense blocks and shared experts
// (deepseek2, qwen2moe).
describe('expert offloading on golden models', () => {
  const cases = [
    ['gpt_oss', 'gpt_oss-MXFP4_MOE.gguf'],
    ['deepseek2_lite', 'deepseek2_lite-Q4_K_M.gguf'],
    ['qwen2moe', 'qwen2moe-Q4_K_M.gguf'],
  ] as const;
  for (const [model, name] of cases) {
    it(`${model}: bit-identical at the minimum budget and at 50% of the expert bytes`, async () => {
      if (skipGolden(`offload ${model}`)) return;
      const file = goldenPath(model, name);
      const ref = await withModel(file, { expertMemory: 'all' }, (m) => runSteps(m, PROMPT.slice(0, 12)));
      const f = await GGUFFile.open(file);
      const min = minimumExpertMemory(expertLayout(f, modelConfigFromGGUF(f.metadata).moe?.expertUsedCount ?? 0) as ExpertLayout);
      await f.close();
      for (const options of [{ expertMemory: min }, { expertMemory: '50%', expertCache: { policy: 'slru' } }] as ModelLoadOptions[]) {
        await withModel(file, options, (m) => {
          expectIdentical(runSteps(m, PROMPT.slice(0, 12)), ref);
        });
      }
    });
  }
});


describe('the library API with an expert cache', () => {
  it('reports the plan, memory by kind, and per-generation cache statistics', async () => {
    const model = await loadModel(TINY, { threads: 2, contextLength: 64, expertMemory: '25%', expertCache: { policy: 'lfu', prefetch: 2 } });
    try {
      expect(model.info.expertMemory).toMatchObject({ resident: false, slots: 16, share: 0.25, policy: 'lfu', allocation: 'shared', prefetch: 2 });
      const mem = model.memory();
      expect(mem.expertCache).toBe(16 * (model.info.expertMemory?.slotBytes ?? 0));
      expect(mem.weights).toBeLessThan(4 << 20); // the 9 MiB of experts stay in the file
      const before = model.expertStats();
      let stats: GenerateStats | undefined;
      for await (const e of model.generate('The state of the Union', { maxTokens: 8, temperature: 0 })) if (e.type === 'done') stats = e.stats;
      const st = stats?.experts;
      expect(st).toBeDefined();
      // the prompt in one step, then every sampled token but the last
      expect(st?.tokens).toBe((stats?.promptTokens ?? 0) + (stats?.generatedTokens ?? 0) - 1);
      expect(st?.needed).toBe((model.expertStats()?.needed ?? 0) - (before?.needed ?? 0));
      expect(model.memory().activations).toBeGreaterThan(0); // a step's peak, kept after the step
      model.resetExpertStats();
      expect(model.expertStats()?.needed).toBe(0);
    } finally {
      await model.close();
    }
  });

  it('profileExperts counts K selections per token in every layer', async () => {
    const model = await loadModel(TINY, { threads: 2, contextLength: 64 });
    try {
      const text = 'We the People of the United States, in Order to form a more perfect Union. '.repeat(8);
      const p = await model.profileExperts(text, { ctx: 32, top: 5 });
      expect(p.layers.map((l) => l.layer)).toEqual([0, 1, 2, 3]);
      for (const l of p.layers) expect(l.counts.reduce((a, b) => a + b, 0)).toBe(2 * p.tokens);
      expect(p.pin.length).toBeGreaterThanOrEqual(5);
      // An expert has a peak output exactly when tokens selected it.
      for (const l of p.layers) {
        l.counts.forEach((n, e) => {
          expect((l.peaks?.[e] ?? 0) > 0, `block ${l.layer} expert ${e}`).toBe(n > 0);
        });
      }
      const top = p.layers.flatMap((l) => l.counts.map((n) => n)).sort((a, b) => b - a)[0];
      const first = p.pin[p.superExperts?.length ?? 0] as { layer: number; expert: number };
      expect(p.layers[first.layer]?.counts[first.expert]).toBe(top);
      // Each expert run alone through the cache gives the resident peaks exactly.
      const cached = await loadModel(TINY, { threads: 2, contextLength: 64, expertMemory: '10%' });
      try {
        const q = await cached.profileExperts(text, { ctx: 32, top: 5 });
        expect(q.layers).toEqual(p.layers);
      } finally {
        await cached.close();
      }
    } finally {
      await model.close();
    }
  });
});
