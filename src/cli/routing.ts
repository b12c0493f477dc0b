/**
 * Routing on the command line: the per-request routing flags of run / chat / perplexity (top-k,
 * top-p, skipping, ban / force / boost, --steer, --contrast), and the commands `trace` (record a
 * text's routing), `analyze` (figures and an HTML report of a trace) and `steer` (find experts
 * that separate two texts, or that fire with marker tokens, and write a steering profile).
 * A thin shell over GenerateOptions.routing / contrast, LoadedModel.traceRouting,
 * src/router/analysis.ts, report.ts and steering.ts.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { GenerateOptions, RoutingControls } from '../api/model.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { ExpertRef } from '../experts/cache.js';
import { analyzeTrace, formatAnalysis } from '../router/analysis.js';
import { renderReport } from '../router/report.js';
import { makeSteeringProfile, rankByFrequencyDifference, rankByNPMI, readSteeringProfile, writeSteeringProfile } from '../router/steering.js';
import { readTrace, writeTrace } from '../router/trace.js';
import { inputFileFlag, modelArgument, numberFlag, openModel } from './generate.js';
import type { GlobalOptions } from './options.js';

export interface RoutingFlags {
  expertsK?: string;
  expertsKLayer?: string;
  expertsTopP?: string;
  expertsSkip?: string;
  ban?: string;
  force?: string;
  boost?: string;
  steer?: string;
  contrast?: string;
}

/** Adds the routing flags to a model command (`contrast`: generation commands only). */
export function withRoutingOptions(command: Command, contrast = true): Command {
  command
    .option('--experts-k <k>', 'experts per token in every MoE layer (default: the model\'s)')
    .option('--experts-k-layer <list>', 'experts per token by block, e.g. 0:4,3:1')
    .option('--experts-top-p <p[,min,max]>', 'top-p routing: the fewest experts whose probability reaches p (between min and max)')
    .option('--experts-skip <ratio>', 'skip experts whose weight is below ratio x the token\'s largest')
    .option('--ban <list>', 'never use these experts: block:expert,...')
    .option('--force <list>', 'always use these experts: block:expert,...')
    .option('--boost <list>', 'scale these experts\' routing probability: block:expert:factor,...')
    .option('--steer <profile.json>', 'apply a steering profile (switchyard steer writes one)');
  if (contrast) command.option('--contrast <beta,alpha[,rank]>', 'self-contrast decoding against the expert of this rank alone (SCMoE; e.g. 0.5,0.1)');
  return command;
}

function refs(value: string, flag: string, withFactor: false): ExpertRef[];
function refs(value: string, flag: string, withFactor: true): (ExpertRef & { factor: number })[];
function refs(value: string, flag: string, withFactor: boolean): (ExpertRef & { factor?: number })[] {
  return value
    .split(',')
    .filter((x) => x.trim() !== '')
    .map((item) => {
      const parts = item.split(':').map((p) => p.trim());
      const want = withFactor ? 3 : 2;
      const nums = parts.map(Number);
      if (parts.length !== want || nums.some((n, i) => !Number.isFinite(n) || (i < 2 && (!Number.isInteger(n) || n < 0)))) {
        throw new InvalidArgumentError(`${flag}: '${item}' should be ${withFactor ? 'block:expert:factor' : 'block:expert'} with whole numbers`);
      }
      return { layer: nums[0] as number, expert: nums[1] as number, ...(withFactor ? { factor: nums[2] as number } : {}) };
    });
}

/** Routing controls from the flags (undefined when none is given). */
export function routingControls(f: RoutingFlags): RoutingControls | undefined {
  const c: { -readonly [K in keyof RoutingControls]: RoutingControls[K] } = {};
  if (f.expertsK !== undefined) c.topK = numberFlag(f.expertsK, '--experts-k', { integer: true, min: 1 });
  if (f.expertsKLayer !== undefined) {
    const per: Record<number, number> = {};
    for (const item of f.expertsKLayer.split(',')) {
      const [l, k] = item.split(':').map((x) => x.trim());
      per[numberFlag(l ?? '', '--experts-k-layer (block)', { integer: true, min: 0 })] = numberFlag(k ?? '', '--experts-k-layer (k)', { integer: true, min: 1 });
    }
    c.topKPerLayer = per;
  }
  if (f.expertsTopP !== undefined) {
    const [p, min, max] = f.expertsTopP.split(',');
    c.topP = {
      p: numberFlag(p ?? '', '--experts-top-p', { min: 0, max: 1, minExclusive: true }),
      ...(min !== undefined ? { minK: numberFlag(min, '--experts-top-p (min)', { integer: true, min: 1 }) } : {}),
      ...(max !== undefined ? { maxK: numberFlag(max, '--experts-top-p (max)', { integer: true, min: 1 }) } : {}),
    };
  }
  if (f.expertsSkip !== undefined) c.skipRatio = numberFlag(f.expertsSkip, '--experts-skip', { min: 0, max: 1 });
  const profile = f.steer !== undefined ? readSteeringProfile(f.steer) : undefined;
  const ban = [...(profile?.ban ?? []), ...(f.ban ? refs(f.ban, '--ban', false) : [])];
  const force = [...(profile?.force ?? []), ...(f.force ? refs(f.force, '--force', false) : [])];
  const scale = [...(profile?.scale ?? []), ...(f.boost ? refs(f.boost, '--boost', true) : [])];
  if (ban.length) c.ban = ban;
  if (force.length) c.force = force;
  if (scale.length) c.scale = scale;
  return Object.keys(c).length ? c : undefined;
}

/** GenerateOptions' routing and contrast from the flags. */
export function routingOptions(f: RoutingFlags): Pick<GenerateOptions, 'routing' | 'contrast'> {
  const routing = routingControls(f);
  let contrast: GenerateOptions['contrast'];
  if (f.contrast !== undefined) {
    const [b, a, r] = f.contrast.split(',');
    contrast = {
      beta: numberFlag(b ?? '', '--contrast (beta)', { min: 0 }),
      alpha: numberFlag(a ?? '0.1', '--contrast (alpha)', { min: 0, max: 1 }),
      ...(r !== undefined ? { weakRank: numberFlag(r, '--contrast (rank)', { integer: true, min: 1 }) } : {}),
    };
  }
  return { ...(routing ? { routing } : {}), ...(contrast ? { contrast } : {}) };
}

// ---- switchyard trace ------------------------------------------------------------------

export interface TraceFlags extends RoutingFlags {
  file?: string;
  out?: string;
  ctx?: string;
  peaks?: boolean;
}

export async function traceCommand(modelArg: string | undefined, flags: TraceFlags, global: GlobalOptions): Promise<void> {
  const file = modelArgument(modelArg, 'trace');
  const input = inputFileFlag(flags.file, 'trace', 'the text');
  if (flags.out === undefined || !/\.(jsonl|bin)$/.test(flags.out)) throw new InvalidArgumentError('trace: give --out <file.jsonl> (readable) or <file.bin> (compact)');
  const ctx = flags.ctx === undefined ? 512 : numberFlag(flags.ctx, '--ctx', { integer: true, min: 1 });
  const routing = routingControls(flags);
  const model = await openModel(file, global, { contextLength: ctx });
  try {
    const tty = process.stderr.isTTY === true;
    const trace = await model.traceRouting(readFileSync(input, 'utf8'), {
      ctx,
      ...(routing ? { routing } : {}),
      ...(flags.peaks ? { peaks: true } : {}),
      onProgress: (done, total) => {
        if (tty) process.stderr.write(`\rtracing: ${done} of ${total} tokens`);
      },
    });
    if (tty) process.stderr.write('\n');
    writeTrace(flags.out, trace);
    process.stdout.write(`${trace.tokens.length} tokens x ${trace.layers.length} MoE layers written to ${flags.out} (switchyard analyze ${flags.out})\n`);
  } finally {
    await model.close();
  }
}

// ---- switchyard analyze ----------------------------------------------------------------

export interface AnalyzeFlags {
  json?: boolean;
  html?: string;
  budgets?: string;
}

export async function analyzeCommand(traceFile: string, flags: AnalyzeFlags): Promise<void> {
  if (!existsSync(traceFile)) throw new InvalidArgumentError(`analyze: ${traceFile}: no such file`);
  const trace = readTrace(traceFile);
  const budgets = flags.budgets?.split(',').map((b) => numberFlag(b, '--budgets', { integer: true, min: 1 }));
  const analysis = analyzeTrace(trace, budgets ? { budgets } : {});
  if (flags.html) {
    writeFileSync(flags.html, renderReport(trace, analysis, { title: `Routing of ${trace.model}` }));
    process.stderr.write(`report written to ${flags.html}\n`);
  }
  process.stdout.write(flags.json ? `${JSON.stringify(analysis)}\n` : `${formatAnalysis(analysis)}\n`);
}

// ---- switchyard steer ------------------------------------------------------------------

export interface SteerFlags {
  a?: string;
  b?: string;
  file?: string;
  markers?: string;
  out?: string;
  action?: string;
  count?: string;
  factor?: string;
  ctx?: string;
}

/**
 * Ranks (block, expert) pairs by how much more often prompt set A selects them than set B (one
 * prompt per line; Mixture of Tunable Experts), or by nPMI with marker tokens in one text (RICE),
 * prints the top and writes a steering profile that bans, forces or boosts them.
 */
export async function steerCommand(modelArg: string | undefined, flags: SteerFlags, global: GlobalOptions): Promise<void> {
  const file = modelArgument(modelArg, 'steer');
  const byMarkers = flags.markers !== undefined;
  const inputs = byMarkers ? [flags.file] : [flags.a, flags.b];
  if (inputs.some((f) => f === undefined)) throw new InvalidArgumentError('steer: give --a <text> --b <text>, or -f <text> --markers <words>');
  for (const f of inputs) if (!existsSync(f as string)) throw new InvalidArgumentError(`steer: ${f}: no such file`);
  const action = (flags.action ?? 'boost') as 'ban' | 'force' | 'boost';
  if (!['ban', 'force', 'boost'].includes(action)) throw new InvalidArgumentError(`--action must be ban, force or boost, got '${flags.action}'`);
  const count = numberFlag(flags.count ?? '4', '--count', { integer: true, min: 1 });
  const factor = numberFlag(flags.factor ?? '2', '--factor', { min: 0 });
  const ctx = flags.ctx === undefined ? 512 : numberFlag(flags.ctx, '--ctx', { integer: true, min: 1 });
  const model = await openModel(file, global, { contextLength: ctx });
  try {
    let ranking: (ExpertRef & { score: number })[];
    let description: string;
    if (byMarkers) {
      const markers = new Set<number>();
      for (const word of (flags.markers as string).split(',').filter(Boolean)) {
        for (const id of model.tokenize(word, { addSpecial: false })) markers.add(id);
        for (const id of model.tokenize(` ${word}`, { addSpecial: false })) markers.add(id);
      }
      const trace = await model.traceRouting(readFileSync(flags.file as string, 'utf8'), { ctx });
      ranking = rankByNPMI(trace, markers).map((r) => ({ layer: r.layer, expert: r.expert, score: r.npmi }));
      description = `nPMI with ${flags.markers} in ${flags.file}`;
    } else {
      // A prompt set: one prompt per non-empty line, each its own sequence.
      const prompts = (f: string) => readFileSync(f, 'utf8').split('\n').filter((l) => l.trim() !== '');
      const a = await model.traceRouting(prompts(flags.a as string), { ctx });
      const b = await model.traceRouting(prompts(flags.b as string), { ctx });
      ranking = rankByFrequencyDifference(a, b).map((r) => ({ layer: r.layer, expert: r.expert, score: r.difference }));
      description = `selected more often in ${flags.a} than in ${flags.b}`;
    }
    process.stdout.write(`${description}; the top ${Math.min(10, ranking.length)}:\n`);
    for (const r of ranking.slice(0, 10)) process.stdout.write(`  block ${r.layer} expert ${r.expert}: ${r.score.toFixed(4)}\n`);
    if (flags.out) {
      writeSteeringProfile(flags.out, makeSteeringProfile(ranking, { action, count, factor, description }));
      process.stdout.write(`steering profile (${action} the top ${count}) written to ${flags.out}; apply it with --steer ${flags.out}\n`);
    }
  } finally {
    await model.close();
  }
}
