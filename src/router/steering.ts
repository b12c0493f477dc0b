/**
 * Expert steering: profiles that ban, force or scale chosen (layer, expert) pairs, and two ways
 * to find the pairs worth steering from recorded routings. A profile is JSON, validated field by
 * field like an expert profile (src/experts/profile.ts); the router applies it (`--steer`).
 *
 *   frequency(l, e)  = tokens whose layer-l selection holds e / tokens
 *   difference(l, e) = frequency in set A - frequency in set B
 *     (Dahlke et al. 2025, "Mixture of Tunable Experts - Behavior Modification of DeepSeek-R1 at
 *      Inference Time", arXiv 2502.11096: experts distinctive of a behaviour are those far more
 *      active on prompts that elicit it than on neutral ones)
 *   nPMI(e, m)       = log(p(e, m) / (p(e) p(m))) / -log p(e, m)
 *     (Wang et al. 2025, "Two Experts Are All You Need for Steering Thinking: Reinforcing
 *      Cognitive Effort in MoE Reasoning Models Without Additional Training" (RICE), arXiv
 *      2505.14681: "PMI(x, y) = log2 p(x, y) / (p(x) p(y))", "nPMI(x, y) = PMI(x, y) / -log2
 *      p(x, y)", x a thinking token, y = E_i an expert; the log base cancels in the ratio)
 *
 * Probabilities are pooled token counts of one sample: p(e) = tokens selecting e / N, p(m) =
 * marker tokens / N, p(e, m) = marker tokens selecting e / N. nPMI is in [-1, 1]: -1 when e and
 * a marker never meet, 0 when independent, 1 when they always come together.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { InvalidArgumentError, SwitchyardError } from '../core/errors.js';
import type { ExpertRef } from '../experts/cache.js';

export type { ExpertRef };

export const STEERING_FORMAT = 'switchyard-steering';

export interface SteeringProfile {
  readonly format: typeof STEERING_FORMAT;
  readonly version: 1;
  readonly description?: string;
  /** Never selected. */
  readonly ban: readonly ExpertRef[];
  /** Always selected (in place of the lowest-scoring selection). */
  readonly force: readonly ExpertRef[];
  /** Routing probability multiplied by factor (before selection and weighting). */
  readonly scale: readonly (ExpertRef & { readonly factor: number })[];
}

/** A steering profile that cannot be used: names the file and the field. */
export class SteeringError extends SwitchyardError {
  constructor(message: string) {
    super('E_STEERING', message);
  }
}

/** Selected experts per token and layer: the shape of a RoutingTrace (src/router/trace.ts). */
export interface RoutingSample {
  /** Model layer index of each of the L recorded MoE layers. */
  readonly layers: readonly number[];
  /** E: routed experts per layer. */
  readonly experts: number;
  /** K: selection slots per token and layer. */
  readonly used: number;
  /** [N, L, K] selected expert ids; a negative id is an empty slot (fewer than K selected). */
  readonly ids: Int16Array;
  /** [N] token ids. */
  readonly tokens: Int32Array;
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;
const key = (r: ExpertRef) => `${r.layer}/${r.expert}`;

/** Checks a parsed profile; `where` prefixes every message (the file, or 'steering profile'). */
function checkProfile(raw: unknown, where: string): SteeringProfile {
  const bad = (field: string, why: string): never => {
    throw new SteeringError(`${where}: '${field}' ${why}`);
  };
  const p = raw as Record<string, unknown>;
  if (typeof p !== 'object' || p === null || p.format !== STEERING_FORMAT) bad('format', `must be "${STEERING_FORMAT}"`);
  if (p.version !== 1) bad('version', `is ${JSON.stringify(p.version)}; this Switchyard reads version 1`);
  if (p.description !== undefined && typeof p.description !== 'string') bad('description', 'must be a string');
  const refs = (field: 'ban' | 'force' | 'scale'): void => {
    if (!Array.isArray(p[field])) bad(field, 'must be an array of {"layer", "expert"}');
    (p[field] as unknown[]).forEach((r, i) => {
      const o = r as Record<string, unknown>;
      if (typeof o !== 'object' || o === null) bad(`${field}[${i}]`, 'must be {"layer": n, "expert": n}');
      if (!isCount(o.layer)) bad(`${field}[${i}].layer`, 'must be a whole number');
      if (!isCount(o.expert)) bad(`${field}[${i}].expert`, 'must be a whole number');
      if (field === 'scale' && !(typeof o.factor === 'number' && Number.isFinite(o.factor) && o.factor >= 0)) {
        bad(`${field}[${i}].factor`, 'must be a finite number >= 0');
      }
    });
  };
  refs('ban');
  refs('force');
  refs('scale');
  // An expert both banned and forced has no meaning: refuse it rather than pick a winner.
  const banned = new Set((p.ban as ExpertRef[]).map(key));
  (p.force as ExpertRef[]).forEach((r, i) => {
    if (banned.has(key(r))) bad(`force[${i}]`, `(layer ${r.layer}, expert ${r.expert}) is also in 'ban'`);
  });
  return p as unknown as SteeringProfile;
}

/** Reads and checks a steering profile file. */
export function readSteeringProfile(path: string): SteeringProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SteeringError(`${path}: ${code === 'ENOENT' ? 'no such file' : `not a JSON file (${(e as Error).message})`}`);
  }
  return checkProfile(raw, path);
}

/** Checks a profile and writes it as JSON. */
export function writeSteeringProfile(path: string, p: SteeringProfile): void {
  checkProfile(p, path);
  writeFileSync(path, `${JSON.stringify(p, null, 2)}\n`);
}

/** Per (layer slot, expert) the number of tokens that selected it; each expert counts once per token. */
export function selectionCounts(s: RoutingSample): { n: number; counts: Int32Array[] } {
  const L = s.layers.length;
  const E = s.experts;
  const K = s.used;
  const N = s.tokens.length;
  if (!isCount(E) || E === 0 || !isCount(K) || K === 0) {
    throw new InvalidArgumentError(`routing sample: experts (${E}) and used (${K}) must be whole numbers > 0`);
  }
  if (s.ids.length !== N * L * K) {
    throw new InvalidArgumentError(`routing sample: ids has ${s.ids.length} entries, expected tokens x layers x used = ${N} x ${L} x ${K}`);
  }
  const counts = s.layers.map(() => new Int32Array(E));
  const seen = new Int32Array(E).fill(-1); // last (token * L + layer) that counted each expert
  for (let t = 0; t < N; t++) {
    for (let l = 0; l < L; l++) {
      const row = t * L + l;
      for (let k = 0; k < K; k++) {
        const e = s.ids[row * K + k] as number;
        if (e < 0) continue;
        if (e >= E) throw new InvalidArgumentError(`routing sample: token ${t}, layer ${s.layers[l]} selects expert ${e} of ${E}`);
        if (seen[e] === row) continue;
        seen[e] = row;
        (counts[l] as Int32Array)[e]++;
      }
    }
  }
  return { n: N, counts };
}

/** Activation frequencies: for each (layer, expert), the share of the sample's tokens that selected it. */
export function activationFrequency(s: RoutingSample): { layer: number; expert: number; frequency: number }[] {
  const { n, counts } = selectionCounts(s);
  return s.layers.flatMap((layer, l) =>
    Array.from(counts[l] as Int32Array, (c, expert) => ({ layer, expert, frequency: n === 0 ? 0 : c / n })),
  );
}

const byLayerExpert = (x: ExpertRef, y: ExpertRef) => x.layer - y.layer || x.expert - y.expert;

/** Mixture of Tunable Experts: (layer, expert) by frequency in A minus frequency in B, largest first (ties: layer, expert). */
export function rankByFrequencyDifference(
  a: RoutingSample,
  b: RoutingSample,
): { layer: number; expert: number; difference: number; a: number; b: number }[] {
  if (a.experts !== b.experts || a.layers.length !== b.layers.length || a.layers.some((l, i) => l !== b.layers[i])) {
    throw new InvalidArgumentError(
      `routing samples differ: A has layers [${a.layers}] x ${a.experts} experts, B has layers [${b.layers}] x ${b.experts} experts`,
    );
  }
  const fb = activationFrequency(b);
  return activationFrequency(a)
    .map((x, i) => {
      const y = (fb[i] as { frequency: number }).frequency;
      return { layer: x.layer, expert: x.expert, difference: x.frequency - y, a: x.frequency, b: y };
    })
    .sort((x, y) => y.difference - x.difference || byLayerExpert(x, y));
}

/** RICE: (layer, expert) by nPMI between being selected at a token and the token being a marker, largest first (ties: layer, expert). */
export function rankByNPMI(s: RoutingSample, markers: ReadonlySet<number>): { layer: number; expert: number; npmi: number; together: number }[] {
  const { n, counts } = selectionCounts(s);
  const L = s.layers.length;
  const K = s.used;
  // Co-occurrence counts: the same pass restricted to marker tokens.
  const together = s.layers.map(() => new Int32Array(s.experts));
  let markerTokens = 0;
  const seen = new Int32Array(s.experts).fill(-1);
  for (let t = 0; t < n; t++) {
    if (!markers.has(s.tokens[t] as number)) continue;
    markerTokens++;
    for (let l = 0; l < L; l++) {
      const row = t * L + l;
      for (let k = 0; k < K; k++) {
        const e = s.ids[row * K + k] as number;
        if (e < 0 || seen[e] === row) continue;
        seen[e] = row;
        (together[l] as Int32Array)[e]++;
      }
    }
  }
  const pm = markerTokens / n;
  return s.layers
    .flatMap((layer, l) =>
      Array.from(together[l] as Int32Array, (both, expert) => {
        const pe = ((counts[l] as Int32Array)[expert] as number) / n;
        const pem = both / n;
        // Never together: -1 by convention (the limit as p(e, m) -> 0); always together (p = 1): 1.
        const npmi = both === 0 ? -1 : pem === 1 ? 1 : Math.log(pem / (pe * pm)) / -Math.log(pem);
        return { layer, expert, npmi, together: both };
      }),
    )
    .sort((x, y) => y.npmi - x.npmi || byLayerExpert(x, y));
}

/** A profile from a ranking: its first `count` pairs banned, forced, or boosted (scaled by `factor`). */
export function makeSteeringProfile(
  ranking: readonly ExpertRef[],
  options: { action: 'ban' | 'force' | 'boost'; count: number; factor?: number; description?: string },
): SteeringProfile {
  const { action, count, factor, description } = options;
  if (!isCount(count)) throw new SteeringError(`steering profile: 'count' must be a whole number (got ${count})`);
  if (action === 'boost' && !(typeof factor === 'number' && Number.isFinite(factor) && factor >= 0)) {
    throw new SteeringError(`steering profile: 'factor' must be a finite number >= 0 to boost (got ${factor})`);
  }
  if (action !== 'ban' && action !== 'force' && action !== 'boost') {
    throw new SteeringError(`steering profile: 'action' must be ban, force or boost (got ${JSON.stringify(action)})`);
  }
  const top = ranking.slice(0, count).map(({ layer, expert }) => ({ layer, expert }));
  return {
    format: STEERING_FORMAT,
    version: 1,
    ...(description !== undefined ? { description } : {}),
    ban: action === 'ban' ? top : [],
    force: action === 'force' ? top : [],
    scale: action === 'boost' ? top.map((r) => ({ ...r, factor: factor as number })) : [],
  };
}
