/**
 * Expert usage profiles: how often each routed expert of each layer was selected on a
 * calibration text, and the experts worth pinning in an expert cache (the most used of each
 * layer, chosen over all layers by use count). Written by `switchyard experts` /
 * LoadedModel.profileExperts, read by `--pin` / expertCache.pin. JSON, validated field by field.
 * Reference: Eliseev & Mazur 2023 (hot experts are stable enough to cache); issue 6.
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
  /** Per MoE layer, how many tokens selected each expert. */
  readonly layers: readonly { readonly layer: number; readonly counts: readonly number[] }[];
  /** The experts to pin, most used first. */
  readonly pin: readonly ExpertRef[];
}

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

export function makeProfile(model: string, tokens: number, counts: ReadonlyMap<number, readonly number[]>, top: number): ExpertProfile {
  const layers = [...counts].sort((a, b) => a[0] - b[0]).map(([layer, c]) => ({ layer, counts: [...c] }));
  return { format: PROFILE_FORMAT, version: 1, model, tokens, layers, pin: mostUsed(layers, top) };
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
  });
  if (!Array.isArray(p.pin)) bad('pin', 'must be an array of {"layer", "expert"}');
  (p.pin as unknown[]).forEach((r, i) => {
    const o = r as Record<string, unknown>;
    if (!isCount(o?.layer) || !isCount(o?.expert)) bad(`pin[${i}]`, 'must be {"layer": n, "expert": n} with whole numbers');
  });
  return p as unknown as ExpertProfile;
}
