/**
 * The expert-cache flags of the model commands (--expert-memory, --expert-policy, --expert-slots,
 * --prefetch, --pin, --substitute-margin, --drop-below, --stats), checked and turned into
 * LoadModelOptions; the one-line description of what a budget came to; and `switchyard experts`,
 * which profiles expert use on a text and writes the profile `--pin` reads.
 * A thin shell over LoadModelOptions.expertMemory / expertCache and LoadedModel.profileExperts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { ExpertCacheSettings, LoadedModel, LoadModelOptions, ModelInfo } from '../api/model.js';
import { InvalidArgumentError } from '../core/errors.js';
import { fmtBytes } from '../core/heap.js';
import { parseExpertMemory } from '../experts/layout.js';
import { POLICY_NAMES, type PolicyName } from '../experts/policy.js';
import { readExpertProfile, SUPER_EXPERT_RATIO } from '../experts/profile.js';
import { formatExpertStats } from '../experts/stats.js';
import { inputFileFlag, modelArgument, numberFlag, openModel } from './generate.js';
import type { GlobalOptions } from './options.js';

export interface ExpertFlags {
  expertMemory?: string;
  expertPolicy?: string;
  expertSlots?: string;
  prefetch?: string;
  pin?: string;
  substituteMargin?: string;
  dropBelow?: string;
  stats?: boolean;
}

/** Adds the expert-cache flags to a model command. */
export function withExpertOptions(command: Command): Command {
  return command
    .option(
      '--expert-memory <size>',
      "memory for routed experts: a size (4GiB, 512MiB), a share of the expert bytes (25%), or 'all'; the rest stay in the file (default: all if the model fits in memory)",
    )
    .option('--expert-policy <name>', `expert cache eviction: ${POLICY_NAMES.join(', ')} (default lru)`)
    .option('--expert-slots <how>', 'slots shared by all layers, or per-layer quotas (default shared)')
    .option('--prefetch <layers>', "layers ahead whose experts are read early, or 'off' (default 1)")
    .option('--pin <profile.json>', 'keep the experts a profile lists resident (make one with switchyard experts)')
    .option('--substitute-margin <m>', 'inexact: use a resident expert for a missing one whose router score is within m (off by default)')
    .option('--drop-below <w>', 'inexact: skip a missing expert whose routing weight is below w and renormalise (off by default)')
    .option('--stats', 'print expert cache statistics at the end');
}

/** LoadModelOptions from the flags (only those given). */
export function expertLoadOptions(f: ExpertFlags): Pick<LoadModelOptions, 'expertMemory' | 'expertCache'> {
  const cache: { -readonly [K in keyof ExpertCacheSettings]: ExpertCacheSettings[K] } = {};
  if (f.expertPolicy !== undefined) {
    if (!(POLICY_NAMES as readonly string[]).includes(f.expertPolicy)) {
      throw new InvalidArgumentError(`--expert-policy must be one of ${POLICY_NAMES.join(', ')}, got '${f.expertPolicy}'`);
    }
    cache.policy = f.expertPolicy as PolicyName;
  }
  if (f.expertSlots !== undefined) {
    if (f.expertSlots !== 'shared' && f.expertSlots !== 'per-layer') {
      throw new InvalidArgumentError(`--expert-slots must be shared or per-layer, got '${f.expertSlots}'`);
    }
    cache.allocation = f.expertSlots;
  }
  if (f.prefetch !== undefined) cache.prefetch = f.prefetch === 'off' ? false : numberFlag(f.prefetch, '--prefetch', { integer: true, min: 0 });
  if (f.pin !== undefined) cache.pin = readExpertProfile(f.pin).pin;
  const margin = f.substituteMargin === undefined ? undefined : numberFlag(f.substituteMargin, '--substitute-margin', { min: 0 });
  const drop = f.dropBelow === undefined ? undefined : numberFlag(f.dropBelow, '--drop-below', { min: 0 });
  if (margin !== undefined || drop !== undefined) {
    cache.cacheAware = { ...(margin !== undefined ? { substituteMargin: margin } : {}), ...(drop !== undefined ? { dropBelow: drop } : {}) };
  }
  if (f.expertMemory !== undefined) parseExpertMemory(f.expertMemory, '--expert-memory'); // checked before loading
  return {
    ...(f.expertMemory !== undefined ? { expertMemory: f.expertMemory } : {}),
    ...(Object.keys(cache).length ? { expertCache: cache } : {}),
  };
}

/** One line on how the experts are held, e.g. "experts: 25.0% cached (4.4 GiB, 1536 slots), lru, prefetch 1 layer ahead". */
export function expertMemoryLine(info: ModelInfo): string | undefined {
  const e = info.expertMemory;
  if (!e) return undefined;
  if (e.resident) return `experts: all resident (${fmtBytes(e.expertBytes)}; ${e.reason})`;
  const prefetch = e.prefetch === false ? 'no prefetch' : `prefetch ${e.prefetch} layer${e.prefetch === 1 ? '' : 's'} ahead`;
  return (
    `experts: ${(100 * e.share).toFixed(1)}% cached (${fmtBytes(e.budgetBytes)} for ${e.slots} experts of ${fmtBytes(e.slotBytes)}; ` +
    `${fmtBytes(e.expertBytes)} in the file), ${e.policy}, ${e.allocation} slots, ${prefetch} (${e.reason})`
  );
}

/** The --stats report, when asked for and the model has an expert cache. */
export function printExpertStats(model: LoadedModel, flags: ExpertFlags): void {
  if (!flags.stats) return;
  const s = model.expertStats();
  const m = model.memory();
  process.stderr.write(
    `${s ? formatExpertStats(s) : 'expert cache: none (every expert is resident)'}\n` +
      `memory: ${fmtBytes(m.weights)} resident weights, ${fmtBytes(m.expertCache)} expert cache, ${fmtBytes(m.kvCache)} KV cache, ` +
      `${fmtBytes(m.activations)} activations at most (${m.heaps} wasm ${m.heaps === 1 ? 'memory' : 'memories'})\n`,
  );
}

// ---- switchyard experts --------------------------------------------------------------

export interface ExpertsFlags {
  file?: string;
  out?: string;
  top?: string;
  ctx?: string;
  json?: boolean;
}

/** `switchyard experts <model> -f text [--out profile.json]`: expert use per layer on a text. */
export async function expertsCommand(modelArg: string | undefined, flags: ExpertsFlags, global: GlobalOptions): Promise<void> {
  const file = modelArgument(modelArg, 'experts');
  const input = inputFileFlag(flags.file, 'experts', 'a calibration text');
  const top = flags.top === undefined ? undefined : numberFlag(flags.top, '--top', { integer: true, min: 0 });
  const ctx = flags.ctx === undefined ? 512 : numberFlag(flags.ctx, '--ctx', { integer: true, min: 1 });
  const text = readFileSync(input, 'utf8');
  const model = await openModel(file, global, { contextLength: ctx });
  try {
    const tty = process.stderr.isTTY === true;
    const profile = await model.profileExperts(text, {
      ctx,
      ...(top !== undefined ? { top } : {}),
      onProgress: (done, total) => {
        if (tty) process.stderr.write(`\rprofiling: ${done} of ${total} tokens`);
      },
    });
    if (tty) process.stderr.write('\n');
    if (flags.out) writeFileSync(flags.out, `${JSON.stringify(profile, null, 1)}\n`);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(profile)}\n`);
      return;
    }
    const lines = [`${profile.tokens} tokens of ${input}; share of selections per expert, busiest first:`];
    for (const l of profile.layers) {
      const total = l.counts.reduce((a, b) => a + b, 0) || 1;
      const order = l.counts.map((n, e) => [e, n] as const).sort((a, b) => b[1] - a[1]);
      const unused = l.counts.filter((n) => n === 0).length;
      lines.push(
        `  block ${String(l.layer).padStart(2)}: ${order
          .slice(0, 8)
          .map(([e, n]) => `#${e} ${((100 * n) / total).toFixed(1)}%`)
          .join('  ')}${unused ? `  (${unused} never used)` : ''}`,
      );
    }
    const supers = profile.superExperts ?? [];
    const peakOf = (r: { layer: number; expert: number }) => profile.layers.find((l) => l.layer === r.layer)?.peaks?.[r.expert] ?? 0;
    lines.push(
      supers.length
        ? `super experts (peak output >= ${SUPER_EXPERT_RATIO}x the median): ${supers.map((r) => `block ${r.layer} #${r.expert} (${peakOf(r).toFixed(1)})`).join(', ')}`
        : `no super experts (no expert's peak output reaches ${SUPER_EXPERT_RATIO}x the median)`,
    );
    lines.push(
      `pin list: ${profile.pin.length} experts (super experts, then the most used)${flags.out ? `, written to ${flags.out}; use it with --pin` : '; --out FILE writes the profile for --pin'}`,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await model.close();
  }
}
