/**
 * `npm run bench:routing`: compute against quality for adaptive routing on the embedded trained
 * model (src/router/adaptive.ts). For each method (the model's top-2, other fixed k, top-p routing
 * at several p, weight-ratio skipping), the mean number of experts each token uses per MoE layer
 * (from a routing trace) and the held-out perplexity (llama-perplexity's procedure, ctx 256) of
 * held-out State of the Union text (never trained on). Prints a table and writes JSON.
 */
import { cpus } from 'node:os';
import { findDefaultModel } from '../src/api/default-model.js';
import { loadModel, type RoutingControls } from '../src/api/model.js';
import { isHeldOut, loadSotu } from '../src/train/corpus.js';
import { gitInfo, writeResults } from './results.js';

const METHODS: [string, RoutingControls | undefined][] = [
  ['top-2 (the model)', undefined],
  ['top-1', { topK: 1 }],
  ['top-3', { topK: 3 }],
  ['top-4', { topK: 4 }],
  ['top-p 0.9 (1..4)', { topP: { p: 0.9, maxK: 4 } }],
  ['top-p 0.7 (1..4)', { topP: { p: 0.7, maxK: 4 } }],
  ['top-p 0.5 (1..4)', { topP: { p: 0.5, maxK: 4 } }],
  ['top-p 0.3 (1..4)', { topP: { p: 0.3, maxK: 4 } }],
  ['top-p 0.2 (1..4)', { topP: { p: 0.2, maxK: 4 } }],
  ['top-p 0.1 (1..4)', { topP: { p: 0.1, maxK: 4 } }],
  ['skip < 0.3 x top', { skipRatio: 0.3 }],
  ['skip < 0.5 x top', { skipRatio: 0.5 }],
  ['skip < 0.8 x top', { skipRatio: 0.8 }],
];

async function main(): Promise<void> {
  const started = new Date();
  const at = process.argv.indexOf('--chars');
  const chars = at >= 0 ? Number(process.argv[at + 1]) : 20000;
  if (!(chars >= 2000)) throw new Error('--chars must be a number of at least 2000');
  const sotu = loadSotu().documents;
  // Held-out addresses only (every 10th), joined until `chars` characters.
  let text = '';
  for (const [i, d] of sotu.entries()) if (isHeldOut(i) && text.length < chars) text += `${d.text}\n`;
  text = text.slice(0, chars);
  const file = findDefaultModel() as string;
  const model = await loadModel(file, { threads: Math.min(2, cpus().length), contextLength: 256, kvCacheType: 'f32' });
  const rows: { method: string; activeExperts: number; perplexity: number; seconds: number }[] = [];
  process.stdout.write(`${file}: ${chars} characters of held-out State of the Union text, ctx 256\n`);
  process.stdout.write('| method | mean experts per token per layer | expert compute vs top-2 | held-out perplexity | vs top-2 |\n|---|--:|--:|--:|--:|\n');
  try {
    for (const [method, routing] of METHODS) {
      const t0 = performance.now();
      const trace = await model.traceRouting(text, { ctx: 256, ...(routing ? { routing } : {}) });
      let active = 0;
      for (const e of trace.ids) if (e >= 0) active++;
      const activeExperts = active / (trace.tokens.length * trace.layers.length);
      const { final } = await model.perplexity(text, { ctx: 256, ...(routing ? { routing } : {}) });
      rows.push({ method, activeExperts, perplexity: final, seconds: (performance.now() - t0) / 1000 });
      const base = rows[0] as (typeof rows)[0];
      process.stdout.write(
        `| ${method} | ${activeExperts.toFixed(3)} | ${(activeExperts / base.activeExperts).toFixed(2)}x | ${final.toFixed(2)} | ${(final / base.perplexity).toFixed(3)}x |\n`,
      );
    }
  } finally {
    await model.close();
  }
  if (!process.argv.includes('--no-json')) {
    const out = writeResults('routing', started, { ...gitInfo(), model: file, chars, rows });
    process.stdout.write(`results: ${out}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`bench:routing: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
