/**
 * The training loop end to end (src/train/trainer.ts) on the real corpus: a short training of a
 * small 16-expert MoE must bring held-out loss below a threshold taken from the measured curve
 * of this exact config (seed, kernels' results are deterministic per build and thread count),
 * a run stopped and resumed from its checkpoint ends bit-identical to an uninterrupted one, and
 * the exported GGUF runs in the inference runtime. Config errors name the field.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GGUFFile } from '../../src/formats/gguf/reader.js';
import { Model } from '../../src/models/model.js';
import { parseTrainConfig, readTrainConfig, type TrainConfig, TrainConfigError } from '../../src/train/config.js';
import { type TrainEvent, train } from '../../src/train/trainer.js';

// biome-ignore lint/suspicious/noExplicitAny: configs here are plain JSON edited in place
type Cfg = any;

const dir = mkdtempSync(join(tmpdir(), 'switchyard-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** recipes/ci-tiny.json (16 experts of 32, top-2, 512-token vocabulary), in a folder of this test's. */
function config(name: string, steps?: number, extra: { gguf?: string } = {}): TrainConfig {
  const recipe = readTrainConfig('recipes/ci-tiny.json');
  return {
    ...recipe,
    name,
    training: { ...recipe.training, ...(steps ? { steps, evalEvery: 0 } : {}) },
    output: { dir: join(dir, name), ...(extra.gguf ? { gguf: extra.gguf, type: 'f32' as const } : {}) },
  };
}

/** Reuse one trained vocabulary (the tokenizer trainer has its own tests). */
function withTokenizer(c: TrainConfig, from: string): TrainConfig {
  mkdirSync(c.output.dir, { recursive: true });
  copyFileSync(join(dir, from, 'tokenizer.gguf'), join(c.output.dir, 'tokenizer.gguf'));
  return c;
}

async function tensors(file: string): Promise<Map<string, Uint8Array>> {
  const f = await GGUFFile.open(file);
  try {
    const out = new Map<string, Uint8Array>();
    for (const name of f.tensors.keys()) out.set(name, await f.read(name));
    return out;
  } finally {
    await f.close();
  }
}

describe('train()', () => {
  it("brings held-out loss below the threshold from the recipe's measured curve, and exports a model the runtime runs", async () => {
    const events: TrainEvent[] = [];
    const gguf = join(dir, 'ci.gguf');
    const r = await train(config('ci', undefined, { gguf }), { threads: 2, onEvent: (e) => events.push(e) });
    expect(r.finished).toBe(true);
    expect(r.tokens).toBe(200 * 8 * 64);
    expect(events.filter((e) => e.kind === 'step')).toHaveLength(200);
    expect(events.filter((e) => e.kind === 'eval')).toHaveLength(5); // steps 0, 50, 100, 150, 200
    expect(r.heldOut.sotu).toBeLessThan(CI_THRESHOLD.sotu);
    expect(r.heldOut.mobyDick).toBeLessThan(CI_THRESHOLD.mobyDick);
    const model = await Model.load(gguf, { kernels: 'ref' });
    try {
      const logits = model.eval([1, 2, 3], 0, { last: true });
      expect(logits.every(Number.isFinite)).toBe(true);
    } finally {
      await model.close();
    }
  }, 300_000);

  it('resumes exactly: 3 + 3 steps from a checkpoint equal 6 steps straight', async () => {
    const straight = withTokenizer(config('straight', 6), 'ci');
    await train(straight, { threads: 2 });
    const split = withTokenizer(config('split', 6), 'ci');
    const first = await train(split, { threads: 2, stopAfter: 3 });
    expect(first.finished).toBe(false);
    expect(first.step).toBe(3);
    const second = await train(split, { threads: 2 });
    expect(second.step).toBe(6);
    const a = await tensors(join(straight.output.dir, 'checkpoint.gguf'));
    const b = await tensors(join(split.output.dir, 'checkpoint.gguf'));
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [name, bytes] of a) expect(Buffer.compare(Buffer.from(bytes), Buffer.from(b.get(name) as Uint8Array)), name).toBe(0);
  }, 300_000);
});

describe('gradient accumulation', () => {
  it('2 micro-batches of 4 sequences train like 1 batch of 8 (same windows, same mean loss and step)', async () => {
    const losses = async (name: string, batchSize: number, gradAccum: number) => {
      const base = withTokenizer(config(name, 3), 'ci');
      const c: TrainConfig = {
        ...base,
        // balancing losses are not linear in the batch: off, so only the cross-entropy counts
        model: { ...base.model, ffn: { ...(base.model.ffn as Extract<TrainConfig['model']['ffn'], { kind: 'moe' }>), balance: {} } },
        training: { ...base.training, batchSize, gradAccum },
      };
      const steps: number[] = [];
      await train(c, { threads: 2, onEvent: (e) => e.kind === 'step' && steps.push(e.loss) });
      return steps;
    };
    const whole = await losses('accum-1x8', 8, 1);
    const split = await losses('accum-2x4', 4, 2);
    expect(whole).toHaveLength(3);
    expect(Math.abs(split[0] - whole[0])).toBeLessThan(1e-5); // same parameters, same tokens
    for (let i = 1; i < 3; i++) expect(Math.abs(split[i] - whole[i])).toBeLessThan(2e-3); // after updates from (rounding-)equal gradients
  }, 300_000);
});

describe('training config', () => {
  const good = () => JSON.parse(JSON.stringify({ ...config('x'), output: { dir: 'x' } }));
  it.each([
    [(c: Cfg) => (c.model.ffn.topK = 17), /model\.ffn\.topK must be at most 16/],
    [(c: Cfg) => (c.model.dimm = 3), /model\.dimm is not a known field/],
    [(c: Cfg) => (c.model.ffn.router.kind = 'magic'), /router\.kind 'magic' is not a router/],
    [(c: Cfg) => (c.training.seqLen = 1000), /training\.seqLen must be at most 64/],
    [(c: Cfg) => (c.model.heads = 3), /heads \(3\) must be a multiple of kvHeads/],
    [(c: Cfg) => (c.tokenizer.vocabSize = 100), /tokenizer\.vocabSize must be at least 258/],
    [(c: Cfg) => delete c.training.lr, /training\.lr must be a number \(missing\)/],
    [(c: Cfg) => (c.output.type = 'q4_0'), /output\.type must be f32, f16, bf16 or q8_0/],
  ])('rejects a bad field with a message naming it (%#)', (mutate, message) => {
    const c = good();
    if (message.source.includes('kvHeads')) c.model.kvHeads = 2;
    mutate(c);
    expect(() => parseTrainConfig(c, 'cfg')).toThrow(TrainConfigError);
    expect(() => parseTrainConfig(c, 'cfg')).toThrow(message);
  });
});

/**
 * Held-out mean cross-entropy (nats/token) of recipes/ci-tiny.json, measured on the relaxed
 * build, 2 threads (Xeon KVM, 2 vCPU): step 0: 6.258 / 6.252 (= ln 512: untrained), 50: 5.283 /
 * 5.357 (the unigram plateau), 100: 5.144 / 5.273, 150: 4.743 / 4.950, 200: 4.601 / 4.858
 * (SOTU / Moby-Dick). The thresholds leave 0.15 nats for other builds and thread counts, and
 * lie well below the unigram plateau, so passing needs real learning of context.
 */
const CI_THRESHOLD = { sotu: 4.75, mobyDick: 5.0 };
