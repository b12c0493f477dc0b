/**
 * Expert cache policies: which resident expert to evict next. The expert cache owns the
 * slots and the bytes; a policy only orders keys (key = layer * expertCount + expert).
 *
 *   lru   least recently used first (a Map's insertion order: delete + set moves a key to MRU).
 *   lfu   fewest uses first, ties least recently used. Use counts outlive eviction (a returning
 *         hot expert is recognised) and halve every 10 * capacity touches (aging, so the counts
 *         follow shifts in routing). A count is therefore sum over its uses of 2^-(agings since).
 *   slru  segmented LRU (Karedla, Love & Wherry, "Caching strategies to improve disk system
 *         performance", IEEE Computer 1994): new keys enter a probationary segment; a second use
 *         promotes to a protected segment (at most 80% of capacity, its LRU demoted back to
 *         probation MRU); victims come from probation LRU first. A one-off scan never reaches
 *         protected, so it cannot flush the hot set.
 *
 * Contract: admit() a key that is not resident; touch() for each use (the cache touches once
 * right after admit() for the use the key was loaded for; a prefetched key is admitted and
 * touched later, if ever); remove() a resident key. Misuse is a bug in the cache and throws.
 */
import { InvalidArgumentError } from '../core/errors.js';

export const POLICY_NAMES = ['lru', 'lfu', 'slru'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export interface CachePolicy {
  readonly name: PolicyName;
  /** key became resident (after a demand load or a prefetch). */
  admit(key: number): void;
  /** key was used by a token (a hit, or its first use after loading). */
  touch(key: number): void;
  /** The resident key to evict next among those evictable(key) allows (others are in use or
   *  still loading, or belong to another layer's pool); undefined when none may go. Does not
   *  remove it: the cache calls remove(). */
  victim(evictable: (key: number) => boolean): number | undefined;
  /** key left the cache. */
  remove(key: number): void;
}

/** The share of capacity the SLRU protected segment may hold (the usual choice). */
const SLRU_PROTECTED_SHARE = 0.8;
/** LFU halves all counts every this many touches per slot of capacity. */
const LFU_AGING_TOUCHES_PER_SLOT = 10;

export function createPolicy(name: PolicyName, capacity: number): CachePolicy {
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new InvalidArgumentError(`expert cache policy: capacity must be a positive integer (experts), got ${capacity}`);
  }
  switch (name) {
    case 'lru':
      return new LruPolicy();
    case 'lfu':
      return new LfuPolicy(capacity);
    case 'slru':
      return new SlruPolicy(capacity);
    default:
      throw new InvalidArgumentError(`unknown expert cache policy '${String(name)}': valid policies are ${POLICY_NAMES.join(', ')}`);
  }
}

function notResident(policy: PolicyName, op: string, key: number): InvalidArgumentError {
  return new InvalidArgumentError(`expert cache policy ${policy}: ${op}(${key}) of a key that is not resident`);
}

function alreadyResident(policy: PolicyName, key: number): InvalidArgumentError {
  return new InvalidArgumentError(`expert cache policy ${policy}: admit(${key}) of a key that is already resident`);
}

/** First key of a Map (in insertion order, LRU first) that evictable() allows. */
function firstEvictable(keys: Map<number, unknown>, evictable: (key: number) => boolean): number | undefined {
  for (const key of keys.keys()) if (evictable(key)) return key;
  return undefined;
}

class LruPolicy implements CachePolicy {
  readonly name = 'lru';
  /** Resident keys, LRU first. */
  private readonly order = new Map<number, true>();

  admit(key: number): void {
    if (this.order.has(key)) throw alreadyResident(this.name, key);
    this.order.set(key, true);
  }

  touch(key: number): void {
    if (!this.order.delete(key)) return; // not resident (a pinned expert, say): nothing to order
    this.order.set(key, true);
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    return firstEvictable(this.order, evictable);
  }

  remove(key: number): void {
    if (!this.order.delete(key)) throw notResident(this.name, 'remove', key);
  }
}

class LfuPolicy implements CachePolicy {
  readonly name = 'lfu';
  /** Aged use counts of every key ever touched, resident or not (one number per expert). */
  private readonly counts = new Map<number, number>();
  /** Resident keys -> recency stamp of their last admit or touch (ties go to the older). */
  private readonly resident = new Map<number, number>();
  private clock = 0;
  private touches = 0;
  private readonly agingPeriod: number;

  constructor(capacity: number) {
    this.agingPeriod = LFU_AGING_TOUCHES_PER_SLOT * capacity;
  }

  admit(key: number): void {
    if (this.resident.has(key)) throw alreadyResident(this.name, key);
    this.resident.set(key, ++this.clock);
  }

  touch(key: number): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (this.resident.has(key)) this.resident.set(key, ++this.clock);
    if (++this.touches % this.agingPeriod === 0) {
      // Halving (not flooring) keeps counts exact dyadic numbers and never forgets a use entirely.
      for (const [k, c] of this.counts) this.counts.set(k, c / 2);
    }
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    let best: number | undefined;
    let bestCount = Number.POSITIVE_INFINITY;
    let bestStamp = Number.POSITIVE_INFINITY;
    for (const [key, stamp] of this.resident) {
      const count = this.counts.get(key) ?? 0;
      if (count > bestCount || (count === bestCount && stamp > bestStamp) || !evictable(key)) continue;
      best = key;
      bestCount = count;
      bestStamp = stamp;
    }
    return best;
  }

  remove(key: number): void {
    if (!this.resident.delete(key)) throw notResident(this.name, 'remove', key);
  }
}

class SlruPolicy implements CachePolicy {
  readonly name = 'slru';
  /** Probationary and protected segments, LRU first. The value says, in probation, whether
   *  the key has had its first use (the one it was loaded for) since admission. */
  private readonly probation = new Map<number, boolean>();
  private readonly protected = new Map<number, true>();
  private readonly protectedCapacity: number;

  constructor(capacity: number) {
    this.protectedCapacity = Math.floor(SLRU_PROTECTED_SHARE * capacity);
  }

  admit(key: number): void {
    if (this.probation.has(key) || this.protected.has(key)) throw alreadyResident(this.name, key);
    this.probation.set(key, false);
  }

  touch(key: number): void {
    if (this.protected.delete(key)) {
      this.protected.set(key, true);
      return;
    }
    const used = this.probation.get(key);
    if (used === undefined) return; // not resident (a pinned expert, say): nothing to order
    this.probation.delete(key);
    if (!used || this.protectedCapacity === 0) {
      // The use the key was loaded for is not a re-reference: it stays on probation (at MRU).
      this.probation.set(key, true);
      return;
    }
    if (this.protected.size >= this.protectedCapacity) {
      const demoted = this.protected.keys().next().value as number;
      this.protected.delete(demoted);
      this.probation.set(demoted, true);
    }
    this.protected.set(key, true);
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    return firstEvictable(this.probation, evictable) ?? firstEvictable(this.protected, evictable);
  }

  remove(key: number): void {
    if (!this.probation.delete(key) && !this.protected.delete(key)) throw notResident(this.name, 'remove', key);
  }
}
