/**
 * What a trained model learned (`npm run report:model -- --config recipes/tiny-moe.json`):
 * held-out perplexity over every held-out token of each split (SOTU addresses, Moby-Dick
 * chapters), expert load per layer on the held-out SOTU text (share of routed slots per expert;
 * a perfectly balanced layer gives each of E experts 1/E), computed with the training model from
 * the run's checkpoint; then sample generations from the exported GGUF through the public API
 * (the path `switchyard run` takes). Prints tables and writes bench/results/model-<date>.json.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/api/model.js';
import { createDevice } from '../src/kernels/device.js';
import { BpeEncoder } from '../src/tokenizer/bpe-train.js';
import { tokenizeDocuments } from '../src/train/batches.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { readTrainConfig } from '../src/train/config.js';
import { loadCorpus } from '../src/train/corpus.js';
import { evaluate, parameterSpecs, TrainModel } from '../src/train/model.js';
import { AdamW } from '../src/train/optim.js';
import { ParameterStore } from '../src/train/params.js';
import { Rng } from '../src/train/rng.js';
import { Tape } from '../src/train/tape.js';
import { readRunVocabulary, runVocabularyPath } from '../src/train/trainer.js';
import { gitInfo, writeResults } from './results.js';

const { values: opt } = parseArgs({
  options: {
    config: { type: 'string', default: 'recipes/tiny-moe.json' },
    threads: { type: 'string', default: '2' },
    samples: { type: 'string', default: '64' },
  },
});
const started = new Date();
const config = readTrainConfig(opt.config as string);
const tc = config.training;
const dir = config.output.dir;
const { tokenizer } = await readRunVocabulary(runVocabularyPath(config));
const encoder = BpeEncoder.fromVocabulary(tokenizer.vocabulary);
const corpus = loadCorpus({ sources: config.corpus.sources });

const device = await createDevice({ threads: Number(opt.threads) });
const params = new ParameterStore(device.heap, parameterSpecs(config.model, tokenizer.vocabSize), new Rng(0));
const optimizer = new AdamW(device.backend, params, {});
const ckpt = await loadCheckpoint(join(dir, 'checkpoint.gguf'), params, optimizer);
const model = new TrainModel(config.model, tokenizer.vocabSize, params);
const tape = new Tape(device.backend, device.heap);
const perplexity: Record<string, { tokens: number; ce: number; ppl: number }> = {};
let load: number[][] = [];
for (const [split, docs] of Object.entries(corpus.heldOut)) {
  const r = evaluate(model, tape, tokenizeDocuments(encoder, docs), tc.batchSize, tc.seqLen, Number.POSITIVE_INFINITY);
  perplexity[split] = { tokens: r.tokens, ce: r.ce, ppl: Math.exp(r.ce) };
  if (split === 'sotu') load = r.load.map((c) => Array.from(c, (x) => x / c.reduce((a, b) => a + b, 0)));
}
device.dispose();

console.log(`${config.name} at step ${ckpt.step}: held-out perplexity (every held-out token)`);
console.log('| split | tokens | nats/token | perplexity |');
console.log('|---|---:|---:|---:|');
for (const [k, v] of Object.entries(perplexity)) console.log(`| ${k} | ${v.tokens} | ${v.ce.toFixed(4)} | ${v.ppl.toFixed(2)} |`);
if (load.length) {
  const E = load[0].length;
  console.log(`\nexpert load on held-out SOTU (share of routed slots; balanced = ${(1 / E).toFixed(4)} each)`);
  console.log('| layer | min | max | max / balanced | coefficient of variation | shares (expert 0..E-1, %) |');
  console.log('|---:|---:|---:|---:|---:|---|');
  load.forEach((l, il) => {
    const mean = 1 / E;
    const cv = Math.sqrt(l.reduce((a, x) => a + (x - mean) ** 2, 0) / E) / mean;
    console.log(`| ${il} | ${Math.min(...l).toFixed(4)} | ${Math.max(...l).toFixed(4)} | ${(Math.max(...l) / mean).toFixed(2)} | ${cv.toFixed(3)} | ${l.map((x) => (100 * x).toFixed(1)).join(' ')} |`);
  });
}

const samples: { prompt: string; seed: number; text: string }[] = [];
if (config.output.gguf && existsSync(config.output.gguf)) {
  const m = await loadModel(config.output.gguf, { threads: Number(opt.threads) });
  try {
    const prompts = ['Fellow citizens of the Senate and House of Representatives:', 'The state of the Union', 'Call me Ishmael.', 'The whale'];
    for (const [i, prompt] of prompts.entries()) {
      let text = '';
      for await (const e of m.generate(prompt, { maxTokens: Number(opt.samples), temperature: 0.8, topP: 0.95, seed: i + 1 })) {
        if (e.type === 'token') text += e.text;
      }
      samples.push({ prompt, seed: i + 1, text });
      console.log(`\n> ${prompt}${text}`);
    }
  } finally {
    await m.close();
  }
}
const file = writeResults('model', started, { bench: 'model', started: started.toISOString(), ...gitInfo(), config: opt.config, step: ckpt.step, perplexity, load, samples });
console.log(`\nwrote ${file}`);
