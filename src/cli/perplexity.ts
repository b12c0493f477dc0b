/**
 * `switchyard perplexity <model> -f <text file> --ctx <n> --batch <n> [--json]`: perplexity
 * exactly as llama.cpp's `llama-perplexity -f FILE -c CTX -b BATCH` computes it (the convention is
 * documented in src/api/perplexity.ts: BOS first, chunks of ctx tokens each starting with BOS,
 * the second half of each chunk scored, a running value per chunk). As llama.cpp's -f does
 * (common/arg.cpp), one trailing newline of the file is dropped. Progress ("[i]value", as
 * llama-perplexity prints it) goes to stderr; the result to stdout, with --json as one last line
 * `{"chunks": [running values], "final": <number>}`.
 */
import { readFileSync } from 'node:fs';
import { type ExpertFlags, expertLoadOptions, printExpertStats } from './experts.js';
import { inputFileFlag, kvCacheFlag, modelArgument, numberFlag, openModel } from './generate.js';
import type { GlobalOptions } from './options.js';
import { type RoutingFlags, routingControls } from './routing.js';

export interface PerplexityFlags extends ExpertFlags, RoutingFlags {
  file?: string;
  ctx?: string;
  batch?: string;
  json?: boolean;
  dequantize?: boolean;
  kvCache?: string;
}

export async function perplexityCommand(modelArg: string | undefined, flags: PerplexityFlags, global: GlobalOptions): Promise<void> {
  const file = modelArgument(modelArg, 'perplexity');
  const input = inputFileFlag(flags.file, 'perplexity', 'the text');
  const ctx = numberFlag(flags.ctx ?? '512', '--ctx', { integer: true, min: 2 });
  const batch = flags.batch === undefined ? ctx : numberFlag(flags.batch, '--batch', { integer: true, min: 1 });
  const kvCacheType = kvCacheFlag(flags.kvCache);
  let text = readFileSync(input, 'utf8');
  if (text.endsWith('\n')) text = text.slice(0, -1); // llama.cpp -f

  const model = await openModel(file, global, { contextLength: ctx, dequantize: flags.dequantize, kvCacheType, ...expertLoadOptions(flags) });
  try {
    const started = performance.now();
    const routing = routingControls(flags);
    const result = await model.perplexity(text, {
      ctx,
      ...(routing ? { routing } : {}),
      batch,
      onChunk: (i, running) => {
        process.stderr.write(`${i === 0 ? '' : ','}[${i + 1}]${running.toFixed(4)}`);
      },
    });
    if (result.chunks.length) process.stderr.write('\n');
    const seconds = (performance.now() - started) / 1000;
    const summary =
      `perplexity: ${result.final.toFixed(4)} +/- ${result.finalStderr.toFixed(5)} ` +
      `(${result.tokens} tokens, ${result.chunks.length} chunks of ${ctx}, ${seconds.toFixed(1)} s)`;
    if (flags.json) {
      process.stderr.write(`${summary}\n`);
      process.stdout.write(`${JSON.stringify({ chunks: result.chunks, final: result.final })}\n`);
    } else {
      process.stdout.write(`${summary}\n`);
    }
    printExpertStats(model, flags);
  } finally {
    await model.close();
  }
}
