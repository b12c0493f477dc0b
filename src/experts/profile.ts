/**
 * Expert usage profiles: how often each routed expert of each layer was selected on a
 * calibration text, the largest output magnitude each produced, and the experts worth pinning in
 * an expert cache: "super experts" first (an expert whose peak output is an extreme outlier: the
 * few experts that create the massive activations a model depends on, so losing or delaying them
 * matters most), then the most used experts over all layers. Written by `switchyard experts` /
 * LoadedModel.profileExperts, read by `--pin` / expertCache.pin. JSON, validated field by field.
 * References: Su et al. 2025, "Unveiling Super Experts in Mixture-of-Experts Large Language
 * Models" (peak |down_proj output| outliers); Eliseev & Mazur 2023 (hot experts are worth caching).
 */
import { readFileSync } from 'node:fs';
import { SwitchyardError } from '../core/errors.js';
import type { ExpertRef } from './cache.js';

export const PROFILE_FORMAT = 'switchyard-expert-profile';

export interface ExpertProfile {
  readonly format: typeof PROFILE_FORMAT;
  readonly version: 1;
  /** The model file the profile was measured on. */
  readonly model: string;
  /** Tokens evaluated. */
  readonly tokens: number;
  /** Per MoE layer, how many tokens selected each expert, and each expert's largest |output|
   *  (max over tokens and channels of its unweighted output; 0 when never selected). */
  readonly layers: readonly { readonly layer: number; readonly counts: readonly number[]; readonly peaks?: readonly number[] }[];
  /** Experts whose peak is at least SUPER_EXPERT_RATIO x the median peak of the selected experts. */
  readonly superExperts?: readonly ExpertRef[];
  /** The experts to pin: super experts, then the most used. */
  readonly pin: readonly ExpertRef[];
}

/** How far above the median peak an expert's peak must be to count as a super expert. */
export const SUPER_EXPERT_RATIO = 8;

/** A profile file that cannot be used: names the file and the field. */
export class ExpertProfileError extends SwitchyardError {
  constructor(message: string) {
    super('E_EXPERT_PROFILE', message);
  }
}

/** The `top` most used experts over all layers (ties: lower layer, then lower expert first). */
export function mostUsed(layers: ExpertProfile['layers'], top: number): ExpertRef[] {
  const all = layers.flatMap((l) => l.counts.map((n, expert) => ({ layer: l.layer, expert, n })));
  all.sort((a, b) => b.n - a.n || a.layer - b.layer || a.expert - b.expert);
  return all.slice(0, Math.max(0, top)).map(({ layer, expert }) => ({ layer, expert }));
}

/** Super experts: peak >= SUPER_EXPERT_RATIO x the median peak of every selected expert, largest first. */
export function superExperts(layers: ExpertProfile['layers']): ExpertRef[] {
  const all = layers.flatMap((l) => (l.peaks ?? []).map((peak, expert) => ({ layer: l.layer, expert, peak, used: (l.counts[expert] ?? 0) > 0 })));
  const used = all.filter((e) => e.used).map((e) => e.peak).sort((a, b) => a - b);
  if (used.length === 0) return [];
  const median = used[Math.floor(used.length / 2)] as number;
  return all
    .filter((e) => e.used && e.peak >= SUPER_EXPERT_RATIO * median)
    .sort((a, b) => b.peak - a.peak)
    .map(({ layer, expert }) => ({ layer, expert }));
}

export function makeProfile(
  model: string,
  tokens: number,
  counts: ReadonlyMap<number, readonly number[]>,
  peaks: ReadonlyMap<number, readonly number[]>,
  top: number,
): ExpertProfile {
  const layers = [...counts]
    .sort((a, b) => a[0] - b[0])
    .map(([layer, c]) => ({ layer, counts: [...c], ...(peaks.has(layer) ? { peaks: [...(peaks.get(layer) as number[])] } : {}) }));
  const supers = superExperts(layers);
  const key = (r: ExpertRef) => `${r.layer}/${r.expert}`;
  const chosen = new Set(supers.map(key));
  const pin = [...supers, ...mostUsed(layers, top + supers.length).filter((r) => !chosen.has(key(r)))].slice(0, Math.max(top, supers.length));
  return { format: PROFILE_FORMAT, version: 1, model, tokens, layers, superExperts: supers, pin };
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

/** Reads and checks a profile file. */
export function readExpertProfile(file: string): ExpertProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ExpertProfileError(`${file}: ${code === 'ENOENT' ? 'no such file' : `not a JSON file (${(e as Error).message})`}`);
  }
  const bad = (field: string, why: string): never => {
    throw new ExpertProfileError(`${file}: '${field}' ${why}`);
  };
  const p = raw as Record<string, unknown>;
  if (typeof p !== 'object' || p === null || p.format !== PROFILE_FORMAT) bad('format', `must be "${PROFILE_FORMAT}" (make one with switchyard experts)`);
  if (p.version !== 1) bad('version', `is ${JSON.stringify(p.version)}; this Switchyard reads version 1`);
  if (!isCount(p.tokens)) bad('tokens', 'must be a whole number');
  if (!Array.isArray(p.layers)) bad('layers', 'must be an array');
  (p.layers as unknown[]).forEach((l, i) => {
    const o = l as Record<string, unknown>;
    if (!isCount(o?.layer)) bad(`layers[${i}].layer`, 'must be a whole number');
    if (!Array.isArray(o.counts) || !o.counts.every(isCount)) bad(`layers[${i}].counts`, 'must be an array of whole numbers');
    if (o.peaks !== undefined && (!Array.isArray(o.peaks) || !o.peaks.every((x) => typeof x === 'number' && x >= 0))) {
      bad(`layers[${i}].peaks`, 'must be an array of non-negative numbers');
    }
  });
  if (!Array.isArray(p.pin)) bad('pin', 'must be an array of {"layer", "expert"}');
  (p.pin as unknown[]).forEach((r, i) => {
    const o = r as Record<string, unknown>;
    if (!isCount(o?.layer) || !isCount(o?.expert)) bad(`pin[${i}]`, 'must be {"layer": n, "expert": n} with whole numbers');
  });
  return p as unknown as ExpertProfile;
}
