/**
 * Training speed (`npm run bench:train`): optimizer steps of the embedded model's recipe
 * (recipes/tiny-moe.json, or --config) at 1 and 2 threads, on batches of the real training text
 * (speed depends on it: uniformly random ids make steps ~30% slower, measured), reporting training
 * tokens per second and where a step's time goes (forward, backward, optimizer). The vocabulary
 * is the recipe run's (output.dir/tokenizer.gguf) when it exists, else trained here. Prints a table and writes bench/results/train-<date>.json.
 */
import { parseArgs } from 'node:util';
import { GGMLType } from '../src/core/dtypes.js';
import { allocTensor } from '../src/core/tensor.js';
import { createDevice, type KernelChoice, parseKernelChoice } from '../src/kernels/device.js';
import { existsSync } from 'node:fs';
import { BpeEncoder, trainBPE } from '../src/tokenizer/bpe-train.js';
import { BatchSampler, tokenizeDocuments } from '../src/train/batches.js';
import { readTrainConfig } from '../src/train/config.js';
import { loadCorpus } from '../src/train/corpus.js';
import { activeParameters, parameterSpecs, TrainModel } from '../src/train/model.js';
import { AdamW, clipGradNorm } from '../src/train/optim.js';
import { ParameterStore } from '../src/train/params.js';
import { Rng } from '../src/train/rng.js';
import { Tape } from '../src/train/tape.js';
import { readRunVocabulary, runVocabularyPath } from '../src/train/trainer.js';
import { gitInfo, writeResults } from './results.js';

const USAGE = `usage: npm run bench:train -- [options]
  --config FILE    training config (default recipes/tiny-moe.json)
  --threads LIST   thread counts (default 1,2)
  --steps N        timed steps per thread count (default 5, after 1 warm-up step)
  --kernels BUILD  auto, relaxed, simd128 or ref (default auto)
  --no-json        do not write bench/results/train-*.json
  --help`;

const { values: opt } = parseArgs({
  options: {
    config: { type: 'string', default: 'recipes/tiny-moe.json' },
    threads: { type: 'string', default: '1,2' },
    steps: { type: 'string', default: '5' },
    kernels: { type: 'string', default: 'auto' },
    'no-json': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}
const started = new Date();
const config = readTrainConfig(opt.config as string);
const kernels: KernelChoice = parseKernelChoice(opt.kernels as string, '--kernels');
const threadList = (opt.threads as string).split(',').map(Number);
const steps = Number(opt.steps);
const tc = config.training;
const V = config.tokenizer.vocabSize;
const N = tc.seqLen * tc.batchSize;
const params = activeParameters(config.model, V);
const corpus = loadCorpus({ sources: config.corpus.sources });
const vocabFile = runVocabularyPath(config);
let encoder: BpeEncoder;
if (existsSync(vocabFile)) {
  encoder = BpeEncoder.fromVocabulary((await readRunVocabulary(vocabFile)).tokenizer.vocabulary);
} else {
  const trained = trainBPE(corpus.train.map((d) => d.text), { vocabSize: V });
  encoder = new BpeEncoder(trained);
}
const tokens = tokenizeDocuments(encoder, corpus.train.slice(0, 40));

interface Row {
  threads: number;
  build: string;
  tokensPerSecond: number;
  stepMs: number;
  forwardMs: number;
  backwardMs: number;
  optimizerMs: number;
}
const rows: Row[] = [];
for (const threads of threadList) {
  const device = await createDevice({ kernels, threads });
  try {
    const rng = new Rng(config.seed);
    const store = new ParameterStore(device.heap, parameterSpecs(config.model, V), rng);
    const model = new TrainModel(config.model, V, store);
    const opt = new AdamW(device.backend, store, { beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps, weightDecay: tc.weightDecay, decay: (p) => p.shape.length >= 2 });
    const tape = new Tape(device.backend, device.heap);
    const arena = device.heap.arena('bench.batch');
    const inputs = allocTensor(arena, GGMLType.I32, [N], 'inputs');
    const targets = allocTensor(arena, GGMLType.I32, [N], 'targets');
    let fwd = 0;
    let bwd = 0;
    let upd = 0;
    const sampler = new BatchSampler(tokens, { seqLen: tc.seqLen, batchSize: tc.batchSize }, config.seed);
    for (let s = 0; s <= steps; s++) {
      const b = sampler.next();
      inputs.i32().set(b.inputs);
      targets.i32().set(b.targets);
      const t0 = performance.now();
      store.zeroGrads();
      const r = model.forward(tape, inputs, targets, tc.batchSize, tc.seqLen);
      const t1 = performance.now();
      tape.backward(r.loss);
      tape.reset();
      const t2 = performance.now();
      clipGradNorm(device.backend, store, tc.clip || 1);
      opt.step(1e-3);
      for (const rt of model.routers) rt.afterStep();
      const t3 = performance.now();
      if (s === 0) continue; // warm-up: first-touch pages, JIT
      fwd += t1 - t0;
      bwd += t2 - t1;
      upd += t3 - t2;
    }
    const stepMs = (fwd + bwd + upd) / steps;
    rows.push({
      threads,
      build: device.backend.name,
      tokensPerSecond: (N * 1000) / stepMs,
      stepMs,
      forwardMs: fwd / steps,
      backwardMs: bwd / steps,
      optimizerMs: upd / steps,
    });
  } finally {
    device.dispose();
  }
}

console.log(`${config.name}: ${(params.total / 1e6).toFixed(2)}M parameters, ${(params.active / 1e6).toFixed(2)}M active; ${tc.batchSize} x ${tc.seqLen} tokens per step`);
console.log('| threads | build   | tokens/s | step ms | forward ms | backward ms | optimizer ms | scaling |');
console.log('|--------:|---------|---------:|--------:|-----------:|------------:|-------------:|--------:|');
for (const r of rows) {
  const scale = r === rows[0] ? '' : `${(r.tokensPerSecond / rows[0].tokensPerSecond).toFixed(2)}x`;
  console.log(
    `| ${String(r.threads).padStart(7)} | ${r.build.padEnd(7)} | ${r.tokensPerSecond.toFixed(0).padStart(8)} | ${r.stepMs.toFixed(0).padStart(7)} | ${r.forwardMs.toFixed(0).padStart(10)} | ${r.backwardMs.toFixed(0).padStart(11)} | ${r.optimizerMs.toFixed(0).padStart(12)} | ${scale.padStart(7)} |`,
  );
}
if (!opt['no-json']) {
  const file = writeResults('train', started, { bench: 'train', started: started.toISOString(), ...gitInfo(), config: opt.config, model: config.model, tokensPerStep: N, parameters: params, results: rows });
  console.log(`wrote ${file}`);
}
