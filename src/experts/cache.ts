/**
 * The expert cache: routed experts stay in the GGUF file and a fixed number of slots in wasm
 * memory hold the ones in use and the hot ones. A forward step asks for the experts a layer's
 * routing selected (`forEachResident`); misses are read from the file (three positional reads
 * per expert, on I/O threads) into slots the policy frees; the kernels then run on the slots'
 * bytes, which are the file's bytes, so results are bit-identical to the resident run. The
 * prefetcher (`prefetch`) starts reads of predicted experts early, so they overlap computation.
 *
 * Slots are grouped by heap: one kernel call reads all experts of a layer, so every layer has a
 * home heap and only uses slots there. Allocation of slots to layers is a policy decision:
 * 'shared' (any layer of the heap takes any slot: one cache) or 'per-layer' (equal quotas).
 * Pinned experts are read at start and never evicted.
 * References: Eliseev & Mazur 2023, "Fast Inference of Mixture-of-Experts Language Models with
 * Offloading" (LRU expert cache + speculative loading); Hwang et al. 2024, "Pre-gated MoE".
 */
import { SwitchyardError } from '../core/errors.js';
import { fmtBytes } from '../core/heap.js';
import { Tensor } from '../core/tensor.js';
import type { ExpertWeights } from '../kernels/backend.js';
import type { DeviceSet } from '../kernels/device-set.js';
import { ExpertReader } from './io.js';
import { type ExpertLayout, ExpertMemoryError, type LayerExperts } from './layout.js';
import { type CachePolicy, createPolicy, type PolicyName } from './policy.js';
import type { ExpertCacheStats } from './stats.js';

export type SlotAllocation = 'shared' | 'per-layer';

/** One expert of one layer. */
export interface ExpertRef {
  readonly layer: number;
  readonly expert: number;
}

export interface ExpertCacheOptions {
  /** Number of slots (each holds one expert; ExpertLayout.slotBytes bytes). */
  readonly slots: number;
  /** Eviction policy (default 'lru'). */
  readonly policy?: PolicyName;
  /** How slots are allotted to layers (default 'shared'). */
  readonly allocation?: SlotAllocation;
  /** Experts read at start and never evicted (they use slots of the budget). */
  readonly pin?: readonly ExpertRef[];
  /** I/O threads (default 2; 0 = synchronous reads, which also serve non-shared memories). */
  readonly ioThreads?: number;
  /** Resident expert biases by GGUF name (blk.N.ffn_*_exps.bias), copied next to their layer's slots. */
  readonly biases?: ReadonlyMap<string, Tensor>;
  /** Bytes of slots the first heap may hold (it also holds activations). */
  readonly firstHeapBytes?: number;
  /** Bytes every further heap keeps free (kernel scratch, activation copies). */
  readonly heapHeadroomBytes?: number;
}

const FREE = 0;
const LOADING = 1;
const READY = 2;

interface Slot {
  readonly group: Group;
  readonly offset: number;
  key: number;
  state: number;
  ticket: number;
  pinned: boolean;
  /** Read by the prefetcher and not used since (then also in `predicted` of its layer). */
  prefetched: boolean;
  inUse: boolean;
  views?: ExpertWeights;
}

interface Group {
  /** Index of the device (and of its memory in the reader). */
  readonly device: number;
  readonly slots: Slot[];
  readonly free: Slot[];
  /** Slots of pinned experts. */
  pinned: number;
  /** Copies of expert biases in this heap, by GGUF name. */
  readonly biases: Map<string, Tensor>;
}

/** A cache read of an expert failed, or the cache was asked what it cannot do. */
export class ExpertCacheError extends SwitchyardError {
  constructor(message: string) {
    super('E_EXPERT_CACHE', message);
  }
}

export class ExpertCache {
  private readonly byKey = new Map<number, Slot>();
  private readonly inFlightSlots = new Set<Slot>();
  /** Per layer, the slots holding its unused predictions (what forEachResident counts as wasted). */
  private readonly predicted: Set<Slot>[];
  private readonly layerGroup: (Group | undefined)[];
  /** Slots a layer may use at once (shared: its heap's unpinned slots; per-layer: its quota). */
  private readonly capacity: number[];
  /** Resident unpinned experts per layer (per-layer allocation). */
  private readonly layerCount: number[];
  private readonly stride: number;
  private counters!: ExpertCacheStats;

  private constructor(
    readonly layout: ExpertLayout,
    private readonly devices: DeviceSet,
    private readonly reader: ExpertReader,
    private readonly groups: Group[],
    private readonly policy: CachePolicy,
    readonly options: Required<Pick<ExpertCacheOptions, 'allocation' | 'slots'>> & { readonly policy: PolicyName },
  ) {
    const L = layout.layers.length;
    this.stride = Math.max(...layout.layers.map((l) => l?.count ?? 0));
    this.layerGroup = new Array(L).fill(undefined);
    this.capacity = new Array(L).fill(0);
    this.layerCount = new Array(L).fill(0);
    this.predicted = Array.from({ length: L }, () => new Set<Slot>());
    this.resetStats();
  }

  /**
   * Allocates the slots (the first heap up to `firstHeapBytes`, then further heaps), assigns
   * each MoE layer a home heap, starts the I/O threads and reads the pinned experts.
   */
  static async create(layout: ExpertLayout, files: readonly string[], devices: DeviceSet, o: ExpertCacheOptions): Promise<ExpertCache> {
    const K = layout.used;
    const seen = new Set<string>();
    const pins = (o.pin ?? []).filter((p) => !seen.has(`${p.layer}/${p.expert}`) && !!seen.add(`${p.layer}/${p.expert}`));
    const moeLayers = layout.layers.filter((l): l is LayerExperts => !!l).map((l) => l.layer);
    if (!Number.isInteger(o.slots) || o.slots < K) {
      throw new ExpertMemoryError(
        `an expert cache of ${o.slots} slots is below the minimum of ${K} (${fmtBytes(K * layout.slotBytes)}): one layer's ${K} active experts must fit at once`,
      );
    }
    // Slots: the first heap (within its cap), then further heaps, each keeping room for the
    // kernel scratch and activation copies of the expert calls it will run.
    const byDevice = new Map<number, number[]>();
    let made = 0;
    for (let d = 0; made < o.slots; d++) {
      const device = d < devices.devices.length ? (devices.devices[d] as DeviceSet['devices'][0]) : await devices.addDevice();
      const heap = device.heap;
      const room = d === 0 ? (o.firstHeapBytes ?? heap.freeBytes) : heap.freeBytes - (o.heapHeadroomBytes ?? 0);
      const arena = heap.arena('expert cache', Math.max(0, room));
      const offsets: number[] = [];
      while (made < o.slots && arena.usedBytes + layout.slotBytes <= arena.limitBytes && heap.largestFreeBlock >= layout.slotBytes) {
        offsets.push(arena.alloc(layout.slotBytes, `expert slot ${made}`).offset);
        made++;
      }
      if (offsets.length) byDevice.set(d, offsets);
    }
    const groups: Group[] = [];
    for (const [device, offsets] of [...byDevice].sort((a, b) => a[0] - b[0])) {
      const g: Group = { device, slots: [], free: [], pinned: 0, biases: new Map() };
      for (const offset of offsets) {
        const s: Slot = { group: g, offset, key: -1, state: FREE, ticket: -1, pinned: false, prefetched: false, inUse: false };
        g.slots.push(s);
        g.free.push(s);
      }
      groups.push(g);
    }
    const reader = await ExpertReader.open(
      files,
      devices.devices.map((d) => d.heap.memory),
      { threads: o.ioThreads ?? 2 },
    );
    const policy = createPolicy(o.policy ?? 'lru', o.slots);
    const cache = new ExpertCache(layout, devices, reader, groups, policy, {
      slots: o.slots,
      allocation: o.allocation ?? 'shared',
      policy: o.policy ?? 'lru',
    });
    try {
      cache.assignLayers(moeLayers, pins);
      cache.copyBiases(o.biases ?? new Map());
      cache.pinExperts(pins);
    } catch (e) {
      await reader.close();
      throw e;
    }
    return cache;
  }

  /** Home heaps: contiguous runs of layers, as many per heap as its slots allow. */
  private assignLayers(layers: readonly number[], pins: readonly ExpertRef[]): void {
    const K = this.layout.used;
    const usable = this.groups.filter((g) => g.slots.length >= K);
    const total = usable.reduce((n, g) => n + g.slots.length, 0);
    let gi = 0;
    let upTo = 0;
    layers.forEach((l, i) => {
      while (gi < usable.length - 1 && i >= Math.round((upTo + (usable[gi] as Group).slots.length) / total * layers.length)) {
        upTo += (usable[gi] as Group).slots.length;
        gi++;
      }
      this.layerGroup[l] = usable[gi];
    });
    for (const p of pins) {
      const L = this.layout.layers[p.layer];
      if (!L || !Number.isInteger(p.expert) || p.expert < 0 || p.expert >= L.count) {
        throw new ExpertCacheError(`cannot pin expert ${p.expert} of block ${p.layer}: the model has no such routed expert`);
      }
      (this.layerGroup[p.layer] as Group).pinned++;
    }
    for (const g of usable) {
      const mine = layers.filter((l) => this.layerGroup[l] === g);
      const open = g.slots.length - g.pinned;
      mine.forEach((l, i) => {
        this.capacity[l] =
          this.options.allocation === 'shared' ? open : Math.floor(open / mine.length) + (i < open % mine.length ? 1 : 0);
        if ((this.capacity[l] as number) < K) {
          throw new ExpertMemoryError(
            `${g.pinned} pinned experts and ${this.options.allocation} allocation leave block ${l} ${this.capacity[l]} slots, fewer than its ${K} active experts; raise the expert memory or pin fewer experts`,
          );
        }
      });
    }
  }

  private copyBiases(biases: ReadonlyMap<string, Tensor>): void {
    for (const [name, t] of biases) {
      const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1]);
      const g = this.layerGroup[layer];
      if (!g) continue;
      const device = this.devices.devices[g.device] as DeviceSet['devices'][0];
      if (t.heap === device.heap) g.biases.set(name, t);
      else {
        const a = device.heap.arena('expert biases').alloc(t.byteLength, `copy of ${name}`);
        const copy = new Tensor(device.heap, a.offset, t.type, t.shape, a);
        copy.bytes.set(t.bytes);
        g.biases.set(name, copy);
      }
    }
  }

  private pinExperts(pins: readonly ExpertRef[]): void {
    for (const p of pins) {
      const key = this.key(p.layer, p.expert);
      if (this.byKey.has(key)) continue;
      const g = this.layerGroup[p.layer] as Group;
      const slot = g.free.pop() as Slot;
      slot.pinned = true;
      this.startRead(slot, p.layer, p.expert);
      this.policy.remove(key); // pinned experts are not the policy's to evict
    }
    for (const s of [...this.inFlightSlots]) this.finishRead(s);
    this.resetStats();
  }

  private key(layer: number, expert: number): number {
    return layer * this.stride + expert;
  }

  /** Whether the expert is resident or being read (cache-aware routing treats both as available). */
  available(layer: number, expert: number): boolean {
    return this.byKey.has(this.key(layer, expert));
  }

  /** Whether the expert's bytes are in memory now. */
  resident(layer: number, expert: number): boolean {
    return this.byKey.get(this.key(layer, expert))?.state === READY;
  }

  /** Experts resident now, per layer (for reports and tests). */
  residentExperts(): ExpertRef[] {
    const out: ExpertRef[] = [];
    for (const [key, s] of this.byKey) if (s.state === READY) out.push({ layer: Math.floor(key / this.stride), expert: key % this.stride });
    return out;
  }

  /** Heaps holding slots (each layer uses the slots of one of them). */
  get heapCount(): number {
    return this.groups.length;
  }

  /** Slots layer `il` can hold at once (the token-chunk limit of forEachResident). */
  layerCapacity(il: number): number {
    return this.capacity[il] as number;
  }

  /** Counts what cache-aware routing changed. */
  countRouting(substituted: number, dropped: number): void {
    this.counters.substituted += substituted;
    this.counters.dropped += dropped;
  }

  /** Counts a forward step's tokens (for per-token statistics). */
  countTokens(n: number): void {
    this.counters.tokens += n;
  }

  /**
   * Runs `exec(t0, n, experts)` over the step's tokens in chunks [t0, t0 + n) whose selected
   * experts (ids [T, K], negative = none) fit in the layer's slots at once; `experts[e]` is
   * expert e's weights in its slot for every e the chunk selects. A decode step is one chunk.
   */
  forEachResident(
    il: number,
    ids: Int32Array,
    T: number,
    exec: (t0: number, n: number, experts: readonly (ExpertWeights | undefined)[]) => void,
  ): void {
    const L = this.layout.layers[il];
    if (!L) throw new ExpertCacheError(`block ${il} has no routed experts`);
    const K = ids.length / T;
    const cap = this.capacity[il] as number;
    this.reap();
    let t0 = 0;
    while (t0 < T) {
      const chunk = new Set<number>();
      let unpinned = 0;
      let t = t0;
      for (; t < T; t++) {
        const add = new Set<number>();
        for (let k = 0; k < K; k++) {
          const e = ids[t * K + k] as number;
          if (e >= 0 && !chunk.has(e)) add.add(e);
        }
        const more = [...add].filter((e) => !this.byKey.get(this.key(il, e))?.pinned).length;
        if (t > t0 && unpinned + more > cap) break;
        if (more > cap) {
          throw new ExpertMemoryError(
            `a token selects ${more} experts of block ${il} but the expert memory holds ${cap} of its experts at once: raise the expert memory or select fewer experts`,
          );
        }
        for (const e of add) chunk.add(e);
        unpinned += more;
      }
      const slots = this.acquire(il, L, chunk);
      try {
        const experts: (ExpertWeights | undefined)[] = new Array(L.count);
        for (const [e, s] of slots) experts[e] = s.views;
        exec(t0, t - t0, experts);
      } finally {
        for (const s of slots.values()) s.inUse = false;
      }
      t0 = t;
    }
    // Predictions for this layer that did not come true.
    for (const s of this.predicted[il] as Set<Slot>) {
      this.unpredict(s);
      this.counters.prefetchWasted++;
    }
  }

  /** Makes the chunk's experts resident and in use; waits for their reads. */
  private acquire(il: number, L: LayerExperts, chunk: ReadonlySet<number>): Map<number, Slot> {
    const c = this.counters;
    const slots = new Map<number, Slot>();
    for (const e of chunk) {
      const s = this.byKey.get(this.key(il, e));
      if (!s) continue;
      s.inUse = true;
      slots.set(e, s);
      c.needed++;
      if (s.state === READY) c.hits++;
      else c.inFlight++;
      if (s.prefetched) {
        this.unpredict(s);
        c.prefetchUsed++;
      }
    }
    for (const e of chunk) {
      if (slots.has(e)) continue;
      const s = this.takeSlot(il, false);
      if (!s) throw new ExpertCacheError(`no slot free for expert ${e} of block ${il} (a bug: the chunk was sized to fit)`);
      this.startRead(s, il, e);
      c.demandBytes += L.expertBytes;
      s.inUse = true;
      slots.set(e, s);
      c.needed++;
      c.misses++;
    }
    for (const s of slots.values()) {
      if (s.state === LOADING) this.finishRead(s);
      if (!s.pinned) this.policy.touch(s.key);
    }
    return slots;
  }

  /**
   * Starts reading predicted experts of layer `il` (most likely first) into slots that hold
   * neither experts in use, nor reads in flight, nor other unused predictions. Never waits.
   * `limit` caps how many reads start (default: the layer's capacity minus K, at least K).
   */
  prefetch(il: number, experts: readonly number[], limit?: number): number {
    const L = this.layout.layers[il];
    if (!L) return 0;
    this.reap();
    const max = limit ?? Math.max(this.layout.used, (this.capacity[il] as number) - this.layout.used);
    let started = 0;
    for (const e of experts) {
      if (started >= max) break;
      if (e < 0 || e >= L.count || this.byKey.has(this.key(il, e))) continue;
      if (this.inFlightSlots.size >= this.reader.maxTickets / 2) break; // keep tickets for demand reads
      const s = this.takeSlot(il, true);
      if (!s) break;
      this.startRead(s, il, e);
      s.prefetched = true;
      this.predicted[il]?.add(s);
      this.counters.prefetchIssued++;
      this.counters.prefetchBytes += L.expertBytes;
      started++;
    }
    return started;
  }

  private groupOf(il: number): Group {
    return this.layerGroup[il] as Group;
  }

  /** A free slot for layer il, evicting the policy's victim when needed; demand loads wait for reads in flight. */
  private takeSlot(il: number, forPrefetch: boolean): Slot | undefined {
    const g = this.groupOf(il);
    const perLayer = this.options.allocation === 'per-layer';
    const full = perLayer && (this.layerCount[il] as number) >= (this.capacity[il] as number);
    for (;;) {
      if (!full && g.free.length > 0) return this.claim(g.free.pop() as Slot, il);
      const victim = this.policy.victim((key) => {
        const s = this.byKey.get(key);
        if (!s || s.group !== g || s.inUse || s.state !== READY || s.pinned) return false;
        if (forPrefetch && s.prefetched) return false;
        return !perLayer || Math.floor(key / this.stride) === il;
      });
      if (victim !== undefined) {
        const s = this.byKey.get(victim) as Slot;
        this.evict(s);
        return this.claim(s, il);
      }
      if (forPrefetch) return undefined;
      // Every candidate is still being read: wait for one read of this heap, then retry.
      const loading = [...this.inFlightSlots].find((s) => s.group === g && !s.inUse);
      if (!loading) return undefined;
      this.finishRead(loading);
    }
  }

  private claim(s: Slot, il: number): Slot {
    if (this.options.allocation === 'per-layer') this.layerCount[il] = (this.layerCount[il] as number) + 1;
    return s;
  }

  private evict(s: Slot): void {
    const layer = Math.floor(s.key / this.stride);
    if (!s.pinned) this.policy.remove(s.key);
    this.byKey.delete(s.key);
    if (this.options.allocation === 'per-layer') this.layerCount[layer] = (this.layerCount[layer] as number) - 1;
    if (s.prefetched) {
      this.unpredict(s);
      this.counters.prefetchWasted++;
    }
    s.key = -1;
    s.state = FREE;
    s.views = undefined;
  }

  /** The slot's prediction is settled (used, wasted or evicted). */
  private unpredict(s: Slot): void {
    s.prefetched = false;
    this.predicted[Math.floor(s.key / this.stride)]?.delete(s);
  }

  private startRead(s: Slot, il: number, e: number): void {
    const L = this.layout.layers[il] as LayerExperts;
    const key = this.key(il, e);
    s.key = key;
    s.state = LOADING;
    s.ticket = this.reader.submit(
      [L.gate, L.up, L.down].map((p) => ({
        file: p.file,
        position: p.position + e * p.bytes,
        length: p.bytes,
        memory: s.group.device,
        offset: s.offset + p.slotOffset,
      })),
      `expert ${e} of block ${il} (${this.layout.file})`,
    );
    this.byKey.set(key, s);
    this.inFlightSlots.add(s);
    this.policy.admit(key);
    const heap = (this.devices.devices[s.group.device] as DeviceSet['devices'][0]).heap;
    const view = (p: LayerExperts['gate']) => new Tensor(heap, s.offset + p.slotOffset, p.type, p.shape);
    const bias = (part: string): Tensor | undefined => {
      const stack = s.group.biases.get(`blk.${il}.ffn_${part}_exps.bias`);
      if (!stack) return undefined;
      const bytes = stack.byteLength / (stack.shape[0] as number);
      return new Tensor(stack.heap, stack.offset + e * bytes, stack.type, stack.shape.slice(1));
    };
    const gateBias = bias('gate');
    const upBias = bias('up');
    const downBias = bias('down');
    s.views = {
      gate: view(L.gate),
      up: view(L.up),
      down: view(L.down),
      ...(gateBias ? { gateBias } : {}),
      ...(upBias ? { upBias } : {}),
      ...(downBias ? { downBias } : {}),
    };
  }

  /** Waits for a slot's read (counting the stall); a failed read empties the slot and throws. */
  private finishRead(s: Slot): void {
    this.inFlightSlots.delete(s);
    try {
      this.counters.stallSeconds += this.reader.wait(s.ticket);
    } catch (e) {
      s.inUse = false;
      this.evict(s);
      throw e;
    }
    s.state = READY;
  }

  /** Collects reads that finished without anyone waiting (prefetches), freeing their tickets. */
  private reap(): void {
    for (const s of this.inFlightSlots) {
      if (this.reader.done(s.ticket)) this.finishRead(s);
    }
  }

  stats(): ExpertCacheStats {
    return { ...this.counters };
  }

  resetStats(): void {
    this.counters = {
      slots: this.options.slots,
      slotBytes: this.layout.slotBytes,
      budgetBytes: this.options.slots * this.layout.slotBytes,
      policy: this.options.policy,
      allocation: this.options.allocation,
      pinned: this.groups.reduce((n, g) => n + g.pinned, 0),
      tokens: 0,
      needed: 0,
      hits: 0,
      inFlight: 0,
      misses: 0,
      demandBytes: 0,
      prefetchBytes: 0,
      prefetchIssued: 0,
      prefetchUsed: 0,
      prefetchWasted: 0,
      stallSeconds: 0,
      substituted: 0,
      dropped: 0,
    };
  }

  /** Waits for reads in flight, then stops the I/O threads. */
  async close(): Promise<void> {
    for (const s of [...this.inFlightSlots]) {
      try {
        this.finishRead(s);
      } catch {
        // closing: a failed prefetch no longer matters
      }
    }
    await this.reader.close();
  }
}
