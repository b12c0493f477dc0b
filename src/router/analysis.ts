/**
 * Routing trace analysis (pure functions over a RoutingTrace, src/router/trace.ts): expert load,
 * router entropy, inter-layer affinity, local routing consistency (SRP and SCH), simulated expert
 * cache hit rates per policy and budget, and super experts. `switchyard analyze` prints
 * formatAnalysis() or the JSON of analyzeTrace(); report.ts draws it.
 *
 * Notation: N tokens, L MoE layers (l), E experts (e), K selected per token; S(t, l) is the set
 * of experts token t selected at layer l (ids >= 0, duplicates counted once).
 *
 * Local routing consistency follows Liang et al. 2025, "Not All Models Suit Expert Offloading: On
 * Local Routing Consistency of Mixture-of-Expert Models" (arXiv 2505.16056). The paper's text was
 * not reachable from here; the formulas below are those of the authors' code
 * (github.com/ljcleo/moe-lrc, src/30_srp_calc.py + 31_srp_refine.py for SRP, src/41_sch_calc.py
 * for SCH, commit 7b3ca46), restated per layer for one sequence.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { ExpertRef } from '../experts/cache.js';
import { createPolicy, POLICY_NAMES, type PolicyName } from '../experts/policy.js';
import { superExperts } from '../experts/profile.js';
import { selectionCounts } from './steering.js';
import type { RoutingTrace } from './trace.js';

export interface LayerLoad {
  /** Block index. */
  layer: number;
  /** Tokens that selected each expert [E]. */
  counts: number[];
  /** counts / sum(counts) [E]. */
  share: number[];
  /** Coefficient of variation of counts: population std / mean (0 = perfectly balanced). */
  cv: number;
}

export interface LayerEntropy {
  layer: number;
  mean: number;
  min: number;
  max: number;
}

export interface LayerAffinity {
  /** Block indices of the layer pair. */
  from: number;
  to: number;
  /** [E][E]: row i, column j = P(j selected at `to` | i selected at `from`); a row never conditioned on is all 0. */
  matrix: number[][];
}

export interface RoutingConsistency {
  /** Segment lengths m evaluated (those asked for with 1 <= m <= N). */
  segments: number[];
  /** SRP per layer, one value per segment length. */
  srp: { layer: number; values: number[] }[];
  /** SRP of all layers pooled (one threshold for the model), per segment length. */
  srpAll: number[];
  /** SCH per layer and cache size (multiple x K slots, clamped to 1..E), one value per segment length. */
  sch: { layer: number; multiple: number; slots: number; values: number[] }[];
  /** SCH averaged over layers, per cache multiple and segment length. */
  schMean: { multiple: number; slots: number; values: number[] }[];
}

export interface CacheSimulation {
  policy: string;
  slots: number;
  hitRate: number;
}

export interface TraceAnalysis {
  model: string;
  architecture: string;
  tokens: number;
  layers: number[];
  experts: number;
  used: number;
  load: LayerLoad[];
  entropy: LayerEntropy[];
  affinity: LayerAffinity[];
  consistency: RoutingConsistency;
  /** Cache budgets simulated (slots shared by all layers). */
  budgets: number[];
  cache: CacheSimulation[];
  superExperts: ExpertRef[];
}

/** The simulated policies: those of the expert cache, then Belady's offline optimum. */
export const SIMULATED_POLICIES = [...POLICY_NAMES, 'optimal'] as const;
export const DEFAULT_SEGMENTS = [1, 2, 4, 8, 16, 32];
/** SCH cache sizes as multiples of K (the paper finds ~2K a good balance). */
export const DEFAULT_CACHE_MULTIPLES = [1, 2, 4];

/** S(t, l): the distinct selected experts of token t at layer index l, in selection order. */
function selected(t: RoutingTrace, token: number, l: number): number[] {
  const K = t.used;
  const at = (token * t.layers.length + l) * K;
  const out: number[] = [];
  for (let k = 0; k < K; k++) {
    const e = t.ids[at + k] as number;
    if (e >= 0 && !out.includes(e)) out.push(e);
  }
  return out;
}

/**
 * Load per layer: counts[e] = #{t : e in S(t, l)}; share = counts / sum(counts);
 * cv = sqrt(mean_e (counts[e] - mu)^2) / mu with mu = sum(counts) / E (0 when nothing was routed).
 */
export function expertLoad(t: RoutingTrace): LayerLoad[] {
  const E = t.experts;
  const perLayer = selectionCounts(t).counts;
  return t.layers.map((layer, l) => {
    const counts = Array.from(perLayer[l] as Int32Array);
    const total = counts.reduce((a, b) => a + b, 0);
    const mu = total / E;
    const variance = counts.reduce((a, c) => a + (c - mu) ** 2, 0) / E;
    return { layer, counts, share: counts.map((c) => (total > 0 ? c / total : 0)), cv: mu > 0 ? Math.sqrt(variance) / mu : 0 };
  });
}

/** Mean, min and max over tokens of the router entropy H(t, l) = -sum_e p_e log p_e (nats, recorded by the trace). */
export function routerEntropy(t: RoutingTrace): LayerEntropy[] {
  const N = t.tokens.length;
  const L = t.layers.length;
  return t.layers.map((layer, l) => {
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < N; i++) {
      const h = t.entropy[i * L + l] as number;
      sum += h;
      min = Math.min(min, h);
      max = Math.max(max, h);
    }
    return N > 0 ? { layer, mean: sum / N, min, max } : { layer, mean: 0, min: 0, max: 0 };
  });
}

/**
 * Inter-layer affinity for each consecutive MoE layer pair (l, l+1):
 *   A[i][j] = #{t : i in S(t, l) and j in S(t, l+1)} / #{t : i in S(t, l)}
 * the empirical P(j at l+1 | i at l) (Yao et al. 2024, "Exploiting Inter-Layer Expert Affinity
 * for Accelerating Mixture-of-Experts Model Inference"). A row sums to the mean number of experts
 * selected at l+1 by the tokens that chose i (K when every token selects K), not to 1.
 */
export function interLayerAffinity(t: RoutingTrace): LayerAffinity[] {
  const E = t.experts;
  const N = t.tokens.length;
  const out: LayerAffinity[] = [];
  for (let l = 0; l + 1 < t.layers.length; l++) {
    const joint = Array.from({ length: E }, () => new Array<number>(E).fill(0));
    const given = new Array<number>(E).fill(0);
    for (let i = 0; i < N; i++) {
      const next = selected(t, i, l + 1);
      for (const a of selected(t, i, l)) {
        given[a] = (given[a] as number) + 1;
        const row = joint[a] as number[];
        for (const b of next) row[b] = (row[b] as number) + 1;
      }
    }
    const matrix = joint.map((row, a) => row.map((c) => ((given[a] as number) > 0 ? c / (given[a] as number) : 0)));
    out.push({ from: t.layers[l] as number, to: t.layers[l + 1] as number, matrix });
  }
  return out;
}

/**
 * SRP sufficient statistics of one layer for segment length m, per threshold v = 0..m, over all
 * sliding segments [w, w + m), w = 0..N-m (every start, as the reference code's windows):
 *   c_e(w)  = #{t in [w, w+m) : e in S(t, l)}
 *   match(v) = sum_w sum_{e : c_e(w) >= v} c_e(w)      activations covered by the segment's set
 *   pred(v)  = sum_w m * #{e : c_e(w) >= v}             the set, predicted for all m tokens
 *   act      = sum_w sum_e c_e(w)                       all activations
 */
function srpStats(t: RoutingTrace, l: number, m: number): { match: number[]; pred: number[]; act: number } {
  const E = t.experts;
  const N = t.tokens.length;
  const match = new Array<number>(m + 1).fill(0);
  const pred = new Array<number>(m + 1).fill(0);
  let act = 0;
  const c = new Array<number>(E).fill(0);
  const sets = Array.from({ length: N }, (_, i) => selected(t, i, l));
  for (let i = 0; i < Math.min(m, N); i++) for (const e of sets[i] as number[]) c[e] = (c[e] as number) + 1;
  for (let w = 0; w + m <= N; w++) {
    if (w > 0) {
      for (const e of sets[w - 1] as number[]) c[e] = (c[e] as number) - 1;
      for (const e of sets[w + m - 1] as number[]) c[e] = (c[e] as number) + 1;
    }
    for (let e = 0; e < E; e++) {
      const n = c[e] as number;
      act += n;
      for (let v = 0; v <= n; v++) {
        match[v] = (match[v] as number) + n;
        pred[v] = (pred[v] as number) + m;
      }
    }
  }
  return { match, pred, act };
}

/**
 * SRP (segment routing best performance): the best F1, over the threshold v, of routing every
 * token of a segment to the fixed set {e : c_e(w) >= v} against the experts it really selected:
 *   SRP = max_v 2 match(v) / (pred(v) + act)
 * (31_srp_refine.py: f1 = m * 2 / (p + a), best over the threshold axis; pooled levels sum the
 * statistics first). 1 = the segment's experts are exactly those of each token.
 */
function srpOf(stats: { match: number[]; pred: number[]; act: number }[]): number {
  const m = (stats[0]?.match.length ?? 1) - 1;
  let best = 0;
  for (let v = 0; v <= m; v++) {
    let match = 0;
    let den = 0;
    for (const s of stats) {
      match += s.match[v] as number;
      den += (s.pred[v] as number) + s.act;
    }
    if (den > 0) best = Math.max(best, (2 * match) / den);
  }
  return best;
}

/**
 * SCH (segment cache best hit rate) of one layer, segment length m, `slots` cache slots
 * (41_sch_calc.py, calc_fsf): a cache that sees the routing of the segment of m tokens starting at
 * the current one. On a miss with a full cache it evicts the resident expert with the fewest uses
 * in that segment (uses already served excluded), ties: the least recently used; so m = 1 is LRU
 * and a longer segment lets the cache keep what is needed soon. Each token's hits are
 * judged against the cache before the token; then its experts are loaded in order. As in the
 * reference, the first `slots` distinct experts ever used fill the cache without counting as
 * misses (a warm start), so SCH = 1 when slots = E.
 *   SCH = hits / sum_t |S(t, l)|
 */
function sch(t: RoutingTrace, l: number, m: number, slots: number): number {
  const E = t.experts;
  const N = t.tokens.length;
  const sets = Array.from({ length: N }, (_, i) => selected(t, i, l));
  const future = new Array<number>(E).fill(0); // uses in the segment [i, i + m) not yet served
  const stamp = new Array<number>(E).fill(0);
  const seen = new Set<number>();
  const cache = new Set<number>();
  for (let i = 0; i < Math.min(m, N); i++) for (const e of sets[i] as number[]) future[e] = (future[e] as number) + 1;
  let hits = 0;
  let total = 0;
  let clock = 0;
  for (let i = 0; i < N; i++) {
    const set = sets[i] as number[];
    for (const e of set) {
      total++;
      if (cache.has(e)) hits++;
      else if (!seen.has(e)) {
        if (seen.size < slots) hits++; // warm start: the cache is still filling
        seen.add(e);
      }
    }
    for (const e of set) {
      if (!cache.has(e)) {
        if (cache.size >= slots) {
          let victim = -1;
          for (const r of cache) {
            if (victim < 0 || (future[r] as number) < (future[victim] as number) || (future[r] === future[victim] && (stamp[r] as number) < (stamp[victim] as number))) victim = r;
          }
          cache.delete(victim);
        }
        cache.add(e);
      }
      future[e] = (future[e] as number) - 1;
      stamp[e] = ++clock;
    }
    if (i + m < N) for (const e of sets[i + m] as number[]) future[e] = (future[e] as number) + 1;
  }
  return total > 0 ? hits / total : 0;
}

/**
 * Local routing consistency for each segment length (see srpStats, srpOf and sch above); SCH for
 * cache sizes of multiple x K slots (clamped to 1..E).
 */
export function routingConsistency(t: RoutingTrace, segments: readonly number[] = DEFAULT_SEGMENTS, cacheMultiples: readonly number[] = DEFAULT_CACHE_MULTIPLES): RoutingConsistency {
  for (const m of segments) if (!Number.isInteger(m) || m < 1) throw new InvalidArgumentError(`routing consistency: segment length ${m} must be a positive whole number`);
  for (const x of cacheMultiples) if (!(x > 0)) throw new InvalidArgumentError(`routing consistency: cache multiple ${x} must be positive`);
  const N = t.tokens.length;
  const segs = [...new Set(segments)].filter((m) => m <= N).sort((a, b) => a - b);
  const all = t.layers.map((_, l) => segs.map((m) => srpStats(t, l, m)));
  const srp = t.layers.map((layer, l) => ({ layer, values: (all[l] as ReturnType<typeof srpStats>[]).map((s) => srpOf([s])) }));
  const srpAll = segs.map((_, s) => srpOf(all.map((perLayer) => perLayer[s] as ReturnType<typeof srpStats>)));
  const slotsOf = (x: number) => Math.max(1, Math.min(t.experts, Math.round(x * t.used)));
  const schRows = t.layers.flatMap((layer, l) => cacheMultiples.map((multiple) => ({ layer, multiple, slots: slotsOf(multiple), values: segs.map((m) => sch(t, l, m, slotsOf(multiple))) })));
  const schMean = cacheMultiples.map((multiple) => {
    const rows = schRows.filter((r) => r.multiple === multiple);
    return { multiple, slots: slotsOf(multiple), values: segs.map((_, s) => rows.reduce((a, r) => a + (r.values[s] as number), 0) / rows.length) };
  });
  return { segments: segs, srp, srpAll, sch: schRows, schMean };
}

/**
 * The demand sequence of an expert cache shared by all layers: token by token, layer by layer, the
 * experts of S(t, l) as keys l * E + e; `group` marks where each (token, layer) starts.
 */
function demandSequence(t: RoutingTrace): { keys: number[]; group: number[] } {
  const keys: number[] = [];
  const group: number[] = [];
  for (let i = 0; i < t.tokens.length; i++) {
    for (let l = 0; l < t.layers.length; l++) {
      const g = keys.length;
      for (const e of selected(t, i, l)) {
        keys.push(l * t.experts + e);
        group.push(g);
      }
    }
  }
  return { keys, group };
}

/** Group membership of position p: the keys of its (token, layer), which are in use together. */
function groupKeys(keys: number[], group: number[], p: number): Set<number> {
  const g = group[p] as number;
  const out = new Set<number>();
  for (let q = g; q < keys.length && group[q] === g; q++) out.add(keys[q] as number);
  return out;
}

/** Hits of an online policy from src/experts/policy.ts, driven as the expert cache drives it. */
function simulatePolicy(name: PolicyName, keys: number[], group: number[], slots: number): number {
  const policy = createPolicy(name, slots);
  const resident = new Set<number>();
  let hits = 0;
  let inUse = new Set<number>();
  for (let p = 0; p < keys.length; p++) {
    const key = keys[p] as number;
    if (p === 0 || group[p] !== group[p - 1]) inUse = groupKeys(keys, group, p);
    if (resident.has(key)) {
      hits++;
      policy.touch(key);
      continue;
    }
    if (resident.size >= slots) {
      // Experts of the same (token, layer) are in use: evict one only if nothing else may go.
      const victim = policy.victim((k) => !inUse.has(k)) ?? (policy.victim(() => true) as number);
      policy.remove(victim);
      resident.delete(victim);
    }
    policy.admit(key);
    policy.touch(key);
    resident.add(key);
  }
  return hits;
}

/**
 * Belady's MIN (Belady 1966, "A study of replacement algorithms for a virtual-storage computer"):
 * on a miss with a full cache, evict the resident key whose next use is furthest in the future
 * (never = infinitely far); optimal in hits for a fixed sequence. A max-heap of (next use, key)
 * with stale entries skipped keeps it O(n log n).
 */
function simulateOptimal(keys: number[], group: number[], slots: number): number {
  const n = keys.length;
  const nextUse = new Array<number>(n);
  const last = new Map<number, number>();
  for (let p = n - 1; p >= 0; p--) {
    nextUse[p] = last.get(keys[p] as number) ?? n + (keys[p] as number); // never again: beyond every real use
    last.set(keys[p] as number, p);
  }
  const next = new Map<number, number>(); // resident key -> its next use
  const heap: [number, number][] = [];
  const push = (e: [number, number]) => {
    heap.push(e);
    for (let i = heap.length - 1; i > 0; ) {
      const up = (i - 1) >> 1;
      if ((heap[up] as [number, number])[0] >= e[0]) break;
      heap[i] = heap[up] as [number, number];
      heap[up] = e;
      i = up;
    }
  };
  const pop = (): [number, number] => {
    const top = heap[0] as [number, number];
    const end = heap.pop() as [number, number];
    if (heap.length > 0) {
      heap[0] = end;
      for (let i = 0; ; ) {
        const a = 2 * i + 1;
        const b = a + 1;
        let big = i;
        if (a < heap.length && (heap[a] as [number, number])[0] > (heap[big] as [number, number])[0]) big = a;
        if (b < heap.length && (heap[b] as [number, number])[0] > (heap[big] as [number, number])[0]) big = b;
        if (big === i) break;
        [heap[i], heap[big]] = [heap[big] as [number, number], heap[i] as [number, number]];
        i = big;
      }
    }
    return top;
  };
  let hits = 0;
  let inUse = new Set<number>();
  for (let p = 0; p < n; p++) {
    const key = keys[p] as number;
    if (p === 0 || group[p] !== group[p - 1]) inUse = groupKeys(keys, group, p);
    if (next.has(key)) hits++;
    else if (next.size >= slots) {
      const kept: [number, number][] = [];
      let victim: number | undefined;
      while (heap.length > 0) {
        const [use, k] = pop();
        if (next.get(k) !== use) continue; // stale
        if (inUse.has(k)) {
          kept.push([use, k]);
          continue;
        }
        victim = k;
        break;
      }
      if (victim === undefined) victim = (kept.shift() as [number, number])[1]; // all in use: the furthest of them
      for (const e of kept) push(e);
      next.delete(victim);
    }
    next.set(key, nextUse[p] as number);
    push([nextUse[p] as number, key]);
  }
  return hits;
}

/**
 * Hit rate of each policy at each budget over the trace's demand sequence (demandSequence):
 * hits / demands, a hit being a key already resident. Slots are shared by all layers (the expert
 * cache's default 'shared' allocation); keys of the current (token, layer) are not evicted while
 * another may go, as the cache keeps experts in use.
 */
export function simulateCache(t: RoutingTrace, budgets: readonly number[], policies: readonly string[] = SIMULATED_POLICIES): CacheSimulation[] {
  for (const b of budgets) if (!Number.isInteger(b) || b < 1) throw new InvalidArgumentError(`cache simulation: budget ${b} must be a positive whole number of slots`);
  for (const p of policies) {
    if (!(SIMULATED_POLICIES as readonly string[]).includes(p)) throw new InvalidArgumentError(`cache simulation: unknown policy '${p}' (valid: ${SIMULATED_POLICIES.join(', ')})`);
  }
  const { keys, group } = demandSequence(t);
  const out: CacheSimulation[] = [];
  for (const policy of policies) {
    for (const slots of budgets) {
      const hits = policy === 'optimal' ? simulateOptimal(keys, group, slots) : simulatePolicy(policy as PolicyName, keys, group, slots);
      out.push({ policy, slots, hitRate: keys.length > 0 ? hits / keys.length : 0 });
    }
  }
  return out;
}

/** Super experts from t.peaks (superExperts() of src/experts/profile.ts over the trace's load and peaks), or [] without peaks. */
export function traceSuperExperts(t: RoutingTrace): ExpertRef[] {
  const peaks = t.peaks;
  if (!peaks) return [];
  const E = t.experts;
  return superExperts(expertLoad(t).map((l, i) => ({ layer: l.layer, counts: l.counts, peaks: Array.from(peaks.subarray(i * E, (i + 1) * E)) })));
}

/** Default budgets: 10%, 25% and 50% of the L x E expert slots, each at least K. */
export function defaultBudgets(t: RoutingTrace): number[] {
  const total = t.layers.length * t.experts;
  return [...new Set([0.1, 0.25, 0.5].map((f) => Math.max(t.used, Math.round(f * total))))].sort((a, b) => a - b);
}

export function analyzeTrace(t: RoutingTrace, options: { budgets?: number[]; segments?: number[]; cacheMultiples?: number[] } = {}): TraceAnalysis {
  const budgets = options.budgets ?? defaultBudgets(t);
  return {
    model: t.model,
    architecture: t.architecture,
    tokens: t.tokens.length,
    layers: [...t.layers],
    experts: t.experts,
    used: t.used,
    load: expertLoad(t),
    entropy: routerEntropy(t),
    affinity: interLayerAffinity(t),
    consistency: routingConsistency(t, options.segments ?? DEFAULT_SEGMENTS, options.cacheMultiples ?? DEFAULT_CACHE_MULTIPLES),
    budgets,
    cache: simulateCache(t, budgets),
    superExperts: traceSuperExperts(t),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const fix = (x: number, d = 3) => x.toFixed(d);

/** The strongest transitions of an affinity matrix: (i, j, P) by P, rows conditioned on at least once. */
export function strongestTransitions(a: LayerAffinity, top = 5): { from: number; to: number; p: number }[] {
  const all = a.matrix.flatMap((row, i) => row.map((p, j) => ({ from: i, to: j, p })));
  return all
    .filter((x) => x.p > 0)
    .sort((x, y) => y.p - x.p || x.from - y.from || x.to - y.to)
    .slice(0, top);
}

/** A readable text summary (the CLI's default output). */
export function formatAnalysis(a: TraceAnalysis): string {
  const out: string[] = [];
  out.push(`${a.model} (${a.architecture}): ${a.tokens} tokens, ${a.layers.length} MoE layers, ${a.experts} experts, ${a.used} per token`);
  out.push('', 'Expert load per layer (cv = std / mean of counts; 0 = balanced)');
  out.push('  block      cv   busiest expert (share)   idle experts');
  for (const l of a.load) {
    const busiest = l.share.indexOf(Math.max(...l.share));
    const idle = l.counts.filter((c) => c === 0).length;
    out.push(`  ${String(l.layer).padStart(5)}  ${fix(l.cv).padStart(6)}   ${String(busiest).padStart(6)} (${pct(l.share[busiest] ?? 0).padStart(6)})      ${String(idle).padStart(6)}`);
  }
  out.push('', `Router entropy per layer (nats; uniform over ${a.experts} experts = ${fix(Math.log(a.experts))})`);
  out.push('  block    mean     min     max');
  for (const e of a.entropy) out.push(`  ${String(e.layer).padStart(5)}  ${fix(e.mean).padStart(6)}  ${fix(e.min).padStart(6)}  ${fix(e.max).padStart(6)}`);
  if (a.affinity.length > 0) {
    out.push('', 'Strongest inter-layer transitions P(j at next layer | i)');
    for (const af of a.affinity) {
      const s = strongestTransitions(af, 3)
        .map((x) => `${x.from}->${x.to} ${fix(x.p, 2)}`)
        .join(', ');
      out.push(`  ${af.from} -> ${af.to}: ${s || '(none)'}`);
    }
  }
  const c = a.consistency;
  if (c.segments.length > 0) {
    out.push('', 'Local routing consistency (Liang et al. 2025): SRP and SCH by segment length');
    out.push(`  segment  ${c.segments.map((m) => String(m).padStart(6)).join(' ')}`);
    out.push(`  SRP      ${c.srpAll.map((x) => fix(x).padStart(6)).join(' ')}`);
    for (const r of c.schMean) out.push(`  SCH ${`${r.multiple}K`.padEnd(4)} ${r.values.map((x) => fix(x).padStart(6)).join(' ')}   (${r.slots} slots per layer)`);
  }
  if (a.budgets.length > 0) {
    out.push('', 'Simulated expert cache hit rate (slots shared by all layers)');
    out.push(`  policy   ${a.budgets.map((b) => `${b} slots`.padStart(10)).join(' ')}`);
    for (const p of [...new Set(a.cache.map((r) => r.policy))]) {
      const row = a.budgets.map((b) => pct(a.cache.find((r) => r.policy === p && r.slots === b)?.hitRate ?? 0).padStart(10));
      out.push(`  ${p.padEnd(8)} ${row.join(' ')}`);
    }
  }
  out.push('', a.superExperts.length > 0 ? `Super experts: ${a.superExperts.map((r) => `${r.layer}:${r.expert}`).join(', ')}` : 'Super experts: none (or no peaks in the trace)');
  return out.join('\n');
}
