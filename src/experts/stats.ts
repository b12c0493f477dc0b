/**
 * Expert cache statistics: the counters an ExpertCache keeps, the difference of two snapshots
 * (one generation's share), and the derived rates reports print. "Hit rate" counts an expert
 * as available when it was resident or already being read when a token needed it, which is
 * what prefetching is for (the issue's "prefetch accuracy"); "ready" only counts resident ones.
 */
import { fmtBytes } from '../core/heap.js';
import type { PolicyName } from './policy.js';

/** Counters since load or the last reset. */
export interface ExpertCacheStats {
  readonly slots: number;
  readonly slotBytes: number;
  readonly budgetBytes: number;
  readonly policy: PolicyName;
  readonly allocation: 'shared' | 'per-layer';
  readonly pinned: number;
  /** Tokens evaluated (each decode step is one; a prompt counts all of its tokens). */
  tokens: number;
  /** Expert uses requested: the distinct experts of each layer's token chunk. */
  needed: number;
  /** Needed experts already resident and read. */
  hits: number;
  /** Needed experts still being read (by the prefetcher) when needed. */
  inFlight: number;
  /** Needed experts that were read on demand. */
  misses: number;
  /** Bytes read from the file: on demand and by the prefetcher. */
  demandBytes: number;
  prefetchBytes: number;
  /** Experts the prefetcher read, those later used, and those evicted or passed over unused. */
  prefetchIssued: number;
  prefetchUsed: number;
  prefetchWasted: number;
  /** Seconds the forward pass waited for reads. */
  stallSeconds: number;
  /** Cache-aware routing: selections replaced by a resident expert, and dropped. */
  substituted: number;
  dropped: number;
}


const COUNTERS = [
  'tokens',
  'needed',
  'hits',
  'inFlight',
  'misses',
  'demandBytes',
  'prefetchBytes',
  'prefetchIssued',
  'prefetchUsed',
  'prefetchWasted',
  'stallSeconds',
  'substituted',
  'dropped',
] as const;

/** The counters of `now` minus those of `before` (the configuration fields are `now`'s). */
export function statsSince(now: ExpertCacheStats, before: ExpertCacheStats): ExpertCacheStats {
  const out = { ...now };
  for (const k of COUNTERS) out[k] = now[k] - before[k];
  return out;
}

export interface ExpertCacheRates {
  /** Needed experts resident or already being read. */
  hitRate: number;
  /** Needed experts resident (no wait at all). */
  readyRate: number;
  /** Bytes read from the file per token (demand + prefetch). */
  bytesPerToken: number;
  /** Prefetched experts that were used. */
  prefetchPrecision: number;
  /** Seconds waited for reads per token. */
  stallPerToken: number;
}

export function expertCacheRates(s: ExpertCacheStats): ExpertCacheRates {
  const per = (n: number, d: number) => (d > 0 ? n / d : 0);
  return {
    hitRate: per(s.hits + s.inFlight, s.needed),
    readyRate: per(s.hits, s.needed),
    bytesPerToken: per(s.demandBytes + s.prefetchBytes, s.tokens),
    prefetchPrecision: per(s.prefetchUsed, s.prefetchIssued),
    stallPerToken: per(s.stallSeconds, s.tokens),
  };
}

/** A few lines for people (`--stats`). */
export function formatExpertStats(s: ExpertCacheStats): string {
  const r = expertCacheRates(s);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `expert cache: ${s.slots} slots of ${fmtBytes(s.slotBytes)} (${fmtBytes(s.budgetBytes)}), ${s.policy}, ${s.allocation}${s.pinned ? `, ${s.pinned} pinned` : ''}`,
    `  ${s.needed} experts needed over ${s.tokens} tokens: hit rate ${pct(r.hitRate)} (${pct(r.readyRate)} resident, ` +
      `${s.inFlight} being read), ${s.misses} read on demand`,
    `  read ${fmtBytes(s.demandBytes + s.prefetchBytes)} (${fmtBytes(r.bytesPerToken)} per token; prefetch ${fmtBytes(s.prefetchBytes)}), ` +
      `waited ${(1000 * s.stallSeconds).toFixed(1)} ms (${(1000 * r.stallPerToken).toFixed(2)} ms per token)`,
  ];
  if (s.prefetchIssued > 0) {
    lines.push(`  prefetch: ${s.prefetchIssued} experts read ahead, ${s.prefetchUsed} used (${pct(r.prefetchPrecision)}), ${s.prefetchWasted} unused`);
  }
  if (s.substituted || s.dropped) lines.push(`  cache-aware routing: ${s.substituted} substituted, ${s.dropped} dropped`);
  return lines.join('\n');
}
