/**
 * Evidence that MoE helps (`npm run bench:moe-vs-dense`): trains the MoE recipe and a dense
 * model with the same active parameters per token (its FFN hidden size = topK · expertDim) on the
 * same token stream (same seed -> same batches), for several seeds each, and reports held-out
 * loss at matched steps (= matched tokens: both take the same batches) and the wall-clock each
 * needed. Runs are resumable: each has its own output folder under --dir; rerunning continues
 * unfinished runs and reuses finished ones. Prints a table and writes
 * bench/results/moe-vs-dense-<date>.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readTrainConfig, type TrainConfig } from '../src/train/config.js';
import { activeParameters } from '../src/train/model.js';
import { train } from '../src/train/trainer.js';
import { gitInfo, writeResults } from './results.js';

const USAGE = `usage: npm run bench:moe-vs-dense -- [options]
  --config FILE    the MoE recipe (default recipes/compare-moe.json)
  --seeds LIST     seeds (default 1,2,3)
  --dir DIR        where the runs live (default runs/moe-vs-dense)
  --threads N      threads per run (default 1)
  --only KIND      moe or dense (default both)
  --help`;

const { values: opt } = parseArgs({
  options: {
    config: { type: 'string', default: 'recipes/compare-moe.json' },
    seeds: { type: 'string', default: '1,2,3' },
    dir: { type: 'string', default: 'runs/moe-vs-dense' },
    threads: { type: 'string', default: '1' },
    only: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}
const started = new Date();
const moe = readTrainConfig(opt.config as string);
if (moe.model.ffn.kind !== 'moe') throw new Error(`${opt.config}: the recipe must be a MoE model`);
const f = moe.model.ffn;
const dense: TrainConfig = { ...moe, name: `${moe.name}-dense`, model: { ...moe.model, ffn: { kind: 'dense', hiddenDim: f.topK * f.expertDim } } };
const seeds = (opt.seeds as string).split(',').map(Number);
const kinds = opt.only ? [opt.only as 'moe' | 'dense'] : (['moe', 'dense'] as const);

interface EvalPoint {
  step: number;
  tokens: number;
  seconds: number;
  heldOut: Record<string, number>;
}
const runs: { kind: string; seed: number; evals: EvalPoint[]; seconds: number; tokens: number }[] = [];
for (const seed of seeds) {
  for (const kind of kinds) {
    const base = kind === 'moe' ? moe : dense;
    const dir = join(opt.dir as string, `${kind}-seed${seed}`);
    const config: TrainConfig = { ...base, seed, output: { dir } };
    const t0 = performance.now();
    console.error(`training ${kind} seed ${seed} -> ${dir}`);
    const r = await train(config, {
      threads: Number(opt.threads),
      onEvent: (e) => {
        if (e.kind === 'eval') console.error(`  ${kind} seed ${seed} step ${e.step}: ${JSON.stringify(e.heldOut)}`);
      },
    });
    const evals = readFileSync(join(dir, 'log.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as EvalPoint & { kind: string })
      .filter((e) => e.kind === 'eval');
    runs.push({ kind, seed, evals, seconds: r.seconds, tokens: r.tokens });
    console.error(`  done in ${((performance.now() - t0) / 1000).toFixed(0)} s this run, ${r.seconds.toFixed(0)} s of training in all`);
  }
}

const V = moe.tokenizer.vocabSize;
const pMoe = activeParameters(moe.model, V);
const pDense = activeParameters(dense.model, V);
console.log(`MoE: ${(pMoe.total / 1e6).toFixed(2)}M parameters, ${(pMoe.active / 1e6).toFixed(2)}M active; dense: ${(pDense.total / 1e6).toFixed(2)}M (all active)`);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));
const steps = [...new Set(runs.flatMap((r) => r.evals.map((e) => e.step)))].sort((a, b) => a - b);
const splits = Object.keys(runs[0]?.evals[0]?.heldOut ?? {});
const table: Record<string, unknown>[] = [];
console.log(`| step | tokens | ${splits.map((s) => `MoE ${s} | dense ${s}`).join(' | ')} | MoE s | dense s |`);
console.log(`|---:|---:|${splits.map(() => '---:|---:').join('|')}|---:|---:|`);
for (const step of steps) {
  const at = (kind: string) => runs.filter((r) => r.kind === kind).map((r) => r.evals.find((e) => e.step === step)).filter((e): e is EvalPoint => !!e);
  const m = at('moe');
  const d = at('dense');
  if (!m.length || !d.length) continue;
  const cells: string[] = [];
  const row: Record<string, unknown> = { step, tokens: m[0].tokens };
  for (const s of splits) {
    const ms = m.map((e) => e.heldOut[s]);
    const ds = d.map((e) => e.heldOut[s]);
    cells.push(`${mean(ms).toFixed(3)} ± ${sd(ms).toFixed(3)}`, `${mean(ds).toFixed(3)} ± ${sd(ds).toFixed(3)}`);
    row[s] = { moe: ms, dense: ds };
  }
  row.seconds = { moe: m.map((e) => e.seconds), dense: d.map((e) => e.seconds) };
  table.push(row);
  console.log(`| ${step} | ${m[0].tokens} | ${cells.join(' | ')} | ${mean(m.map((e) => e.seconds)).toFixed(0)} | ${mean(d.map((e) => e.seconds)).toFixed(0)} |`);
}
const file = writeResults('moe-vs-dense', started, { bench: 'moe-vs-dense', started: started.toISOString(), ...gitInfo(), config: opt.config, seeds, parameters: { moe: pMoe, dense: pDense }, table, runs });
console.log(`wrote ${file}`);

