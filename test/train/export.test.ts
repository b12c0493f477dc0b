/**
 * The trained model is the model the runtime runs: a model built on the tape
 * (src/train/model.ts) and exported to GGUF (src/train/export.ts) gives the same logits through
 * the inference runtime (src/models/qwen3moe.ts, which matches llama.cpp within 1e-5 σ on the
 * goldens), for MoE and dense feed-forward blocks, grouped-query attention, and several
 * sequences in one batch (attention must not cross them). Weights are random but every norm
 * weight is perturbed, so a swapped or missing norm shows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { Heap } from '../../src/core/heap.js';
import { allocTensor } from '../../src/core/tensor.js';
import { GGUFFile } from '../../src/formats/gguf/reader.js';
import { Model } from '../../src/models/model.js';
import { bpeTokenizerMetadata, trainBPE } from '../../src/tokenizer/bpe-train.js';
import type { FFNSpec, ModelSpec } from '../../src/train/config.js';
import { ExportError, exportGGUF } from '../../src/train/export.js';
import { parameterSpecs, TrainModel } from '../../src/train/model.js';
import { ParameterStore } from '../../src/train/params.js';
import { Rng } from '../../src/train/rng.js';
import { Tape } from '../../src/train/tape.js';
import { ref } from '../helpers/backends.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const text = 'Mr. Speaker, the state of the Union is strong. Call me Ishmael. Some years ago, never mind how long precisely. '.repeat(20);
const bpe = trainBPE([text], { vocabSize: 300 });
const V = bpe.tokens.length;

function spec(ffn: FFNSpec): ModelSpec {
  return { dim: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, contextLength: 64, ropeTheta: 10000, normEps: 1e-6, initStd: 0.2, ffn };
}

async function compare(m: ModelSpec, B: number, T: number): Promise<number> {
  const heap = new Heap({ name: 'export-test', shared: false });
  const rng = new Rng(7);
  const params = new ParameterStore(heap, parameterSpecs(m, V), rng);
  for (const p of params.list) {
    if (p.shape.length === 1) {
      const v = p.value.f32();
      for (let i = 0; i < v.length; i++) v[i] = 0.5 + rng.next();
    }
  }
  const model = new TrainModel(m, V, params);
  const tape = new Tape(ref, heap);
  const arena = heap.arena('batch');
  const inputs = allocTensor(arena, GGMLType.I32, [B * T]);
  const targets = allocTensor(arena, GGMLType.I32, [B * T]);
  for (let i = 0; i < B * T; i++) inputs.i32()[i] = rng.int(V);
  targets.i32().fill(-1);
  const trained = model.forward(tape, inputs, targets, B, T, false).logits.value.f32().slice();

  const file = join(dir, `m-${m.ffn.kind}-${B}.gguf`);
  await exportGGUF(file, m, params, { name: 'export-test', type: 'f32', tokenizer: bpeTokenizerMetadata(bpe) });
  const runtime = await Model.load(file, { kernels: 'ref', kvCacheType: 'f32' });
  let worst = 0;
  let sumSq = 0;
  try {
    for (let b = 0; b < B; b++) {
      const ids = Array.from(inputs.i32().subarray(b * T, (b + 1) * T));
      const logits = runtime.eval(ids, 0);
      for (let i = 0; i < T * V; i++) {
        const want = logits[i];
        const got = trained[b * T * V + i];
        worst = Math.max(worst, Math.abs(want - got));
        sumSq += want * want;
      }
    }
  } finally {
    await runtime.close();
  }
  const sigma = Math.sqrt(sumSq / (B * T * V));
  return worst / sigma;
}

describe('export to qwen3moe GGUF: the runtime computes what was trained', () => {
  it('MoE (softmax top-k, renormalised), grouped-query attention, two sequences in a batch', async () => {
    const err = await compare(spec({ kind: 'moe', experts: 4, topK: 2, expertDim: 16, router: { kind: 'softmax-topk', normalize: true } }), 2, 12);
    expect(err).toBeLessThan(1e-4);
  });

  it('dense FFN (exported as one expert chosen with weight 1)', async () => {
    const err = await compare(spec({ kind: 'dense', hiddenDim: 24 }), 1, 10);
    expect(err).toBeLessThan(1e-4);
  });

  it('records the architecture, expert counts and tokenizer llama.cpp needs', async () => {
    const m = spec({ kind: 'moe', experts: 4, topK: 2, expertDim: 16, router: { kind: 'softmax-topk', normalize: true } });
    const heap = new Heap({ name: 'export-meta', shared: false });
    const params = new ParameterStore(heap, parameterSpecs(m, V), new Rng(1));
    const file = join(dir, 'meta.gguf');
    await exportGGUF(file, m, params, { name: 'meta', type: 'q8_0', tokenizer: bpeTokenizerMetadata(bpe) });
    const f = await GGUFFile.open(file);
    try {
      expect(f.metadata.string('general.architecture')).toBe('qwen3moe');
      expect(f.metadata.int('qwen3moe.expert_count')).toBe(4);
      expect(f.metadata.int('qwen3moe.expert_used_count')).toBe(2);
      expect(f.metadata.int('qwen3moe.expert_feed_forward_length')).toBe(16);
      expect(f.metadata.string('tokenizer.ggml.pre')).toBe('gpt-2');
      expect(f.tensors.has('output.weight')).toBe(false); // tied
      expect(f.tensor('blk.0.ffn_down_exps.weight').type).toBe(GGMLType.F16); // 16-wide rows are not whole Q8_0 blocks
      expect(f.tensor('blk.0.attn_q.weight').type).toBe(GGMLType.Q8_0);
      expect(f.tensor('blk.0.ffn_gate_inp.weight').type).toBe(GGMLType.F32);
    } finally {
      await f.close();
    }
  });

  it('refuses routers llama.cpp cannot run, naming the router', async () => {
    const m = spec({ kind: 'moe', experts: 4, topK: 2, expertDim: 16, router: { kind: 'sigmoid-bias' } });
    const heap = new Heap({ name: 'export-refuse', shared: false });
    const params = new ParameterStore(heap, parameterSpecs(m, V), new Rng(1));
    await expect(exportGGUF(join(dir, 'no.gguf'), m, params, { name: 'no', type: 'f32', tokenizer: [] })).rejects.toThrow(ExportError);
    await expect(exportGGUF(join(dir, 'no.gguf'), m, params, { name: 'no', type: 'f32', tokenizer: [] })).rejects.toThrow(/sigmoid-bias/);
  });
});
