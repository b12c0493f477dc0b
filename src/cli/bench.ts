/**
 * `switchyard bench <model> [--json]`: prompt processing and decode speed of a model file at 1
 * thread and at all threads (the global --threads, else every core), like llama-bench's pp/tg
 * tests, and the process's peak resident memory. Each thread count loads the model afresh
 * (threads are fixed when a model loads), warms up, then generates greedily from a fixed prompt
 * of token ids without stopping at end-of-generation tokens; the figures are the library's
 * generation statistics. With --json the last line is one object:
 *   {"model", "results": [{"threads", "prompt_tokens", "prompt_tokens_per_second",
 *    "decode_tokens", "decode_tokens_per_second"}], "peak_rss_bytes"}
 * (decode_tokens: the timed decode steps, i.e. generated tokens after the first).
 */
import { availableParallelism } from 'node:os';
import type { LoadedModel } from '../api/model.js';
import { fmtBytes } from '../core/heap.js';
import { type ExpertFlags, expertLoadOptions, printExpertStats } from './experts.js';
import { modelArgument, numberFlag, openModel } from './generate.js';
import type { GlobalOptions } from './options.js';

export interface BenchFlags extends ExpertFlags {
  json?: boolean;
  promptTokens?: string;
  decodeTokens?: string;
}

export interface BenchResult {
  threads: number;
  prompt_tokens: number;
  prompt_tokens_per_second: number;
  decode_tokens: number;
  decode_tokens_per_second: number;
}

/** A fixed prompt of ordinary token ids (no control tokens), the same for every run. */
function promptIds(model: LoadedModel, n: number): number[] {
  const V = model.info.vocabSize;
  const special = new Set(model.tokenizer.endOfGenerationIds());
  const ids: number[] = [];
  let s = 12345;
  while (ids.length < n) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const id = s % V;
    if (!special.has(id) && id !== model.tokenizer.bos) ids.push(id);
  }
  return ids;
}

async function measure(model: LoadedModel, threads: number, promptTokens: number, decodeTokens: number): Promise<BenchResult> {
  const prompt = promptIds(model, promptTokens);
  const greedy = { temperature: 0, stopTokens: [] as number[] };
  for await (const _ of model.generate(prompt.slice(0, 4), { ...greedy, maxTokens: 2 })); // warm-up
  for await (const e of model.generate(prompt, { ...greedy, maxTokens: decodeTokens + 1 })) {
    if (e.type === 'done') {
      return {
        threads,
        prompt_tokens: e.stats.promptTokens,
        prompt_tokens_per_second: e.stats.promptTokensPerSecond,
        decode_tokens: e.stats.generatedTokens - 1,
        decode_tokens_per_second: e.stats.decodeTokensPerSecond,
      };
    }
  }
  throw new Error('generation ended without statistics');
}

export async function benchCommand(modelArg: string | undefined, flags: BenchFlags, global: GlobalOptions): Promise<void> {
  const file = modelArgument(modelArg, 'bench');
  const promptTokens = numberFlag(flags.promptTokens ?? '64', '--prompt-tokens', { integer: true, min: 1 });
  const decodeTokens = numberFlag(flags.decodeTokens ?? '32', '--decode-tokens', { integer: true, min: 1 });
  const all = global.threads ?? availableParallelism();
  const results: BenchResult[] = [];
  for (const threads of [...new Set([1, all])]) {
    const model = await openModel(file, { ...global, threads }, { contextLength: promptTokens + decodeTokens + 1, ...expertLoadOptions(flags) });
    try {
      const r = await measure(model, threads, promptTokens, decodeTokens);
      results.push(r);
      process.stderr.write(
        `${threads} thread${threads === 1 ? '' : 's'}: prompt ${r.prompt_tokens} tokens at ${r.prompt_tokens_per_second.toFixed(2)} tokens/s, ` +
          `decode ${r.decode_tokens} tokens at ${r.decode_tokens_per_second.toFixed(2)} tokens/s\n`,
      );
      printExpertStats(model, flags);
    } finally {
      await model.close();
    }
  }
  const peak = process.resourceUsage().maxRSS * 1024;
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ model: file, results, peak_rss_bytes: peak })}\n`);
    return;
  }
  const rows = results.map(
    (r) =>
      `| ${String(r.threads).padStart(7)} | ${r.prompt_tokens_per_second.toFixed(2).padStart(12)} | ${r.decode_tokens_per_second.toFixed(2).padStart(12)} |`,
  );
  process.stdout.write(
    [
      `${file}: ${promptTokens}-token prompt, ${decodeTokens} decoded tokens`,
      '| threads | prompt tok/s | decode tok/s |',
      '|--------:|-------------:|-------------:|',
      ...rows,
      `peak resident memory: ${fmtBytes(peak)}`,
      '',
    ].join('\n'),
  );
}
