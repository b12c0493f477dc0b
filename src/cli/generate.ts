/**
 * `switchyard run [model] [prompt]`: streams a continuation of the prompt to stdout, then one
 * line of speed and memory figures to stderr (llama-cli's "prompt eval / eval time" lines, short).
 * The prompt is the second argument, `-p <text>`, or stdin when it is piped. An argument that
 * names an existing file is the model; with no model, the embedded default model
 * (src/api/default-model.ts) runs. Ctrl-C stops generation (the
 * figures are still printed); a second Ctrl-C exits.
 * Also the helpers the other model commands share: sampling flags, loading with the global
 * --threads / --kernels, and one-line errors.
 */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_MODEL_FILE, findDefaultModel } from '../api/default-model.js';
import {
  type GenerateEvent,
  type GenerateOptions,
  type GenerateStats,
  type LoadedModel,
  type LoadModelOptions,
  loadModel,
} from '../api/model.js';
import { InvalidArgumentError } from '../core/errors.js';
import { fmtBytes } from '../core/heap.js';
import { KV_CACHE_TYPES, type KVCacheType } from '../generate/kv-cache.js';
import { type ExpertFlags, expertLoadOptions, expertMemoryLine, printExpertStats } from './experts.js';
import type { GlobalOptions } from './options.js';
import { type RoutingFlags, routingOptions } from './routing.js';

// ---- flags ---------------------------------------------------------------------------

/** The sampling flags of `run` and `chat`, as commander hands them over (strings). */
export interface SamplingFlags {
  temp?: string;
  topK?: string;
  topP?: string;
  minP?: string;
  repeatPenalty?: string;
  repeatLastN?: string;
  seed?: string;
  maxTokens?: string;
  stop?: string[];
  ctx?: string;
  kvCache?: string;
}

/** Adds the sampling flags (llama-cli's names and defaults) to a command. */
export function withSamplingOptions(command: Command): Command {
  return command
    .option('--temp <t>', 'temperature; 0 = greedy (default 0.8)')
    .option('--top-k <k>', 'keep the k most likely tokens; 0 = off (default 40)')
    .option('--top-p <p>', 'keep the smallest set of tokens with probability >= p; 1 = off (default 0.95)')
    .option('--min-p <p>', 'drop tokens less likely than p x the best; 0 = off (default 0.05)')
    .option('--repeat-penalty <r>', 'penalise tokens seen in the last --repeat-last-n; 1 = off (default 1)')
    .option('--repeat-last-n <n>', 'tokens the penalty looks at; -1 = all (default 64)')
    .option('--seed <n>', 'random seed, for reproducible sampling (default: random)')
    .option('-n, --max-tokens <n>', 'tokens to generate at most (default: until end of generation or a full context)')
    .option('--stop <text>', 'stop when this text is generated (repeatable)', (v: string, all: string[] = []) => [...all, v])
    .option('--ctx <n>', 'context length: prompt + generated tokens (default: the model\'s, at most 4096)')
    .option('--kv-cache <type>', `KV cache type: ${KV_CACHE_TYPES.join(' or ')} (default f16)`);
}

/** A number from a flag, checked; errors name the flag. */
export function numberFlag(value: string, flag: string, check: { integer?: boolean; min?: number; max?: number; minExclusive?: boolean } = {}): number {
  const n = value.trim() === '' ? Number.NaN : Number(value);
  const range =
    check.min !== undefined && check.max !== undefined
      ? ` from ${check.min} to ${check.max}`
      : check.min !== undefined
        ? check.minExclusive
          ? ` above ${check.min}`
          : ` >= ${check.min}`
        : '';
  const ok =
    Number.isFinite(n) &&
    (!check.integer || Number.isInteger(n)) &&
    (check.min === undefined || (check.minExclusive ? n > check.min : n >= check.min)) &&
    (check.max === undefined || n <= check.max);
  if (!ok) throw new InvalidArgumentError(`${flag} must be ${check.integer ? 'a whole number' : 'a number'}${range}, got '${value}'`);
  return n;
}

/** GenerateOptions from the sampling flags (only those given; the library has the defaults). */
export function samplingOptions(f: SamplingFlags): GenerateOptions {
  const o: GenerateOptions = {};
  if (f.temp !== undefined) o.temperature = numberFlag(f.temp, '--temp', { min: 0 });
  if (f.topK !== undefined) o.topK = numberFlag(f.topK, '--top-k', { integer: true, min: 0 });
  if (f.topP !== undefined) o.topP = numberFlag(f.topP, '--top-p', { min: 0, max: 1 });
  if (f.minP !== undefined) o.minP = numberFlag(f.minP, '--min-p', { min: 0, max: 1 });
  if (f.repeatPenalty !== undefined) o.repeatPenalty = numberFlag(f.repeatPenalty, '--repeat-penalty', { min: 0, minExclusive: true });
  if (f.repeatLastN !== undefined) o.repeatLastN = numberFlag(f.repeatLastN, '--repeat-last-n', { integer: true, min: -1 });
  if (f.seed !== undefined) o.seed = numberFlag(f.seed, '--seed', { integer: true, min: 0, max: 2 ** 32 - 1 });
  if (f.maxTokens !== undefined) o.maxTokens = numberFlag(f.maxTokens, '--max-tokens', { integer: true, min: 0 });
  if (f.stop?.length) o.stop = f.stop;
  return o;
}

/** --kv-cache, checked: the KV cache element type (the library's default is f16, as llama.cpp's). */
export function kvCacheFlag(value: string | undefined): KVCacheType | undefined {
  if (value === undefined) return undefined;
  if (!(KV_CACHE_TYPES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--kv-cache must be one of ${KV_CACHE_TYPES.join(', ')}, got '${value}'`);
  }
  return value as KVCacheType;
}

/** --ctx, checked. */
export function contextFlag(ctx: string | undefined): number | undefined {
  return ctx === undefined ? undefined : numberFlag(ctx, '--ctx', { integer: true, min: 1 });
}

/** The path given with -f, which must exist: names the command and what to give, or the missing file. */
export function inputFileFlag(path: string | undefined, command: string, what: string): string {
  if (path === undefined) throw new InvalidArgumentError(`${command}: give ${what} with -f <file>`);
  if (!existsSync(path)) throw new InvalidArgumentError(`${command}: ${path}: no such file`);
  return path;
}

// ---- models --------------------------------------------------------------------------

/** The message when a command is given no model and this copy of the package lacks the embedded one. */
export function noDefaultModel(command: string): string {
  return (
    `${command}: no model given, and the embedded default model (models/${DEFAULT_MODEL_FILE}) is missing from this installation: ` +
    `give a GGUF file, e.g. switchyard ${command} model.gguf${command === 'run' ? ' "Once upon a time"' : ''}`
  );
}

/** Is `arg` a model path: an existing file? */
export function isModelFile(arg: string | undefined): arg is string {
  return arg !== undefined && existsSync(arg) && statSync(arg).isFile();
}

/** The model file named by a command's first argument, or a one-line error. */
export function modelArgument(arg: string | undefined, command: string): string {
  if (arg === undefined) {
    const embedded = findDefaultModel();
    if (!embedded) throw new InvalidArgumentError(noDefaultModel(command));
    return embedded;
  }
  if (!existsSync(arg)) throw new InvalidArgumentError(`${command}: ${arg}: no such file`);
  if (!statSync(arg).isFile()) throw new InvalidArgumentError(`${command}: ${arg} is not a file (give a GGUF file)`);
  return arg;
}

/** Loads a model with the global --threads / --kernels; a progress line on a terminal. */
export async function openModel(
  file: string,
  global: GlobalOptions,
  options: { contextLength?: number; dequantize?: boolean; threads?: number; kvCacheType?: KVCacheType } & Pick<
    LoadModelOptions,
    'expertMemory' | 'expertCache' | 'sequences'
  > = {},
): Promise<LoadedModel> {
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  let shown = -1;
  const model = await loadModel(file, {
    contextLength: options.contextLength,
    kernels: global.kernels,
    threads: options.threads ?? global.threads,
    dequantize: options.dequantize,
    ...(options.kvCacheType ? { kvCacheType: options.kvCacheType } : {}),
    ...(options.expertMemory !== undefined ? { expertMemory: options.expertMemory } : {}),
    ...(options.expertCache ? { expertCache: options.expertCache } : {}),
    ...(options.sequences !== undefined ? { sequences: options.sequences } : {}),
    onProgress: tty
      ? (p) => {
          const pct = Math.floor((100 * p.bytes) / Math.max(1, p.totalBytes));
          if (pct !== shown) process.stderr.write(`\rloading ${file}: ${(shown = pct)}%`);
        }
      : undefined,
  });
  if (tty) process.stderr.write(`\rloading ${file}: done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  // Say so when experts are not all resident: speed then depends on the budget.
  if (model.info.expertMemory && !model.info.expertMemory.resident) process.stderr.write(`${expertMemoryLine(model.info)}\n`);
  return model;
}

/** One line of figures after a generation. */
export function statsLine(s: GenerateStats): string {
  const rate = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–');
  return (
    `prompt: ${s.promptTokens} tokens, ${rate(s.promptTokensPerSecond)} tokens/s | ` +
    `generation: ${s.generatedTokens} tokens, ${rate(s.decodeTokensPerSecond)} tokens/s | ` +
    `stop: ${s.stopReason} | peak memory ${fmtBytes(s.peakMemoryBytes)}`
  );
}

/** Writes the token texts of `events` to stdout as they come; returns the final statistics. */
export async function streamText(events: AsyncIterable<GenerateEvent>): Promise<{ text: string; stats: GenerateStats }> {
  let text = '';
  for await (const e of events) {
    if (e.type === 'done') return { text, stats: e.stats };
    if (e.text) {
      text += e.text;
      process.stdout.write(e.text);
    }
  }
  throw new Error('generation ended without statistics');
}

/** Ctrl-C aborts `controller` (generation stops between tokens); a second one exits. */
export function abortOnInterrupt(controller: AbortController): () => void {
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  return () => process.off('SIGINT', onSigint);
}

// ---- run -----------------------------------------------------------------------------

export interface RunFlags extends SamplingFlags, ExpertFlags, RoutingFlags {
  prompt?: string; // -p
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runCommand(first: string | undefined, second: string | undefined, flags: RunFlags, global: GlobalOptions): Promise<void> {
  // [model] [prompt]: the first argument is the model when it names a file.
  let file: string | undefined;
  let prompt: string | undefined;
  if (isModelFile(first)) {
    file = first;
    prompt = second;
  } else if (first !== undefined && (second !== undefined || /\.gguf$/i.test(first))) {
    // two arguments, or one that looks like a model path: the model is missing
    modelArgument(first, 'run');
  } else {
    if (first !== undefined && flags.prompt !== undefined) throw new InvalidArgumentError(`run: ${first}: no such model file`);
    prompt = first;
  }
  if (prompt !== undefined && flags.prompt !== undefined) {
    throw new InvalidArgumentError('run: give the prompt once: as an argument or with -p, not both');
  }
  prompt ??= flags.prompt;
  const options = { ...samplingOptions(flags), ...routingOptions(flags) };
  const contextLength = contextFlag(flags.ctx);
  const kvCacheType = kvCacheFlag(flags.kvCache);
  file ??= modelArgument(undefined, 'run');
  if (prompt === undefined) {
    if (process.stdin.isTTY) throw new InvalidArgumentError('run: give a prompt: switchyard run <model> "text", -p "text", or pipe it to stdin');
    prompt = await readStdin();
  }

  const model = await openModel(file, global, { contextLength, kvCacheType, ...expertLoadOptions(flags) });
  const controller = new AbortController();
  const release = abortOnInterrupt(controller);
  try {
    const { text, stats } = await streamText(model.generate(prompt, { ...options, signal: controller.signal }));
    if (text !== '' && !text.endsWith('\n')) process.stdout.write('\n');
    process.stderr.write(`${statsLine(stats)}\n`);
    printExpertStats(model, flags);
  } finally {
    release();
    await model.close();
  }
}
