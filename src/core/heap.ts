/**
 * The memory manager of one WebAssembly memory (a "heap"): a first-fit allocator with
 * coalescing over the linear memory, and named arenas (weights, activations, caches...)
 * that account for their bytes, may have a byte limit, and can be reset as a whole.
 *
 * One wasm32 memory tops out at 4 GiB, so a model may span several heaps, each with its
 * own kernel instance (see src/kernels/device.ts and HeapSet below). Allocation never
 * moves data; growth uses WebAssembly.Memory.grow, so views must be re-made after it
 * (Tensor does that on every access).
 */
import { OutOfMemoryError, SwitchyardError } from './errors.js';

export const PAGE_BYTES = 65536;
/** Largest wasm32 memory: 65536 pages. */
export const MAX_HEAP_BYTES = 65536 * PAGE_BYTES;
/** Alignment of every allocation: a cache line, and a multiple of every SIMD width. */
export const ALLOC_ALIGN = 64;

export interface HeapOptions {
  /** Bytes at the bottom owned by the kernel module (static data, main stack). */
  reservedBytes?: number;
  /** Upper bound for this memory, at most 4 GiB. */
  maxBytes?: number;
  /** Initial size; the heap grows on demand up to maxBytes. */
  initialBytes?: number;
  /** Shared memory (needed by the thread pool). Default true. */
  shared?: boolean;
  /** A name for error messages, e.g. "heap 0". */
  name?: string;
}

interface Block {
  offset: number;
  bytes: number;
}

export interface Allocation {
  readonly heap: Heap;
  readonly offset: number;
  readonly bytes: number;
  readonly arena: Arena;
  readonly purpose: string;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export class Heap {
  readonly memory: WebAssembly.Memory;
  readonly name: string;
  readonly maxBytes: number;
  readonly base: number;
  private top: number;
  private free: Block[] = []; // sorted by offset, coalesced
  private readonly arenas = new Map<string, Arena>();

  constructor(opts: HeapOptions = {}) {
    this.name = opts.name ?? 'heap';
    this.maxBytes = Math.min(opts.maxBytes ?? MAX_HEAP_BYTES, MAX_HEAP_BYTES);
    this.base = alignUp(opts.reservedBytes ?? PAGE_BYTES, ALLOC_ALIGN);
    const initial = Math.max(this.base, opts.initialBytes ?? 16 * 1024 * 1024);
    const initialPages = Math.ceil(Math.min(initial, this.maxBytes) / PAGE_BYTES);
    const maximum = Math.ceil(this.maxBytes / PAGE_BYTES);
    if (this.base >= this.maxBytes) {
      throw new SwitchyardError(
        'E_HEAP_CONFIG',
        `${this.name}: maxBytes ${this.maxBytes} is below the ${this.base} bytes the kernels reserve`,
      );
    }
    this.memory = new WebAssembly.Memory({ initial: initialPages, maximum, shared: opts.shared ?? true });
    this.top = this.base;
  }

  /** Current size of the linear memory. */
  get sizeBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Bytes currently handed out. */
  get usedBytes(): number {
    let used = this.top - this.base;
    for (const b of this.free) used -= b.bytes;
    return used;
  }

  /** Bytes that could still be allocated (free blocks plus room to grow). */
  get freeBytes(): number {
    return this.maxBytes - this.base - this.usedBytes;
  }

  get largestFreeBlock(): number {
    let largest = this.maxBytes - this.top;
    for (const b of this.free) largest = Math.max(largest, b.bytes);
    return largest;
  }

  /** A named arena (created on first use); `limitBytes` caps what it may hold. */
  arena(name: string, limitBytes = Number.POSITIVE_INFINITY): Arena {
    let a = this.arenas.get(name);
    if (!a) {
      a = new Arena(this, name, limitBytes);
      this.arenas.set(name, a);
    }
    return a;
  }

  /** Usage per arena, for reports. */
  arenaUsage(): { name: string; usedBytes: number; peakBytes: number; limitBytes: number }[] {
    return [...this.arenas.values()].map((a) => ({ name: a.name, usedBytes: a.usedBytes, peakBytes: a.peakBytes, limitBytes: a.limitBytes }));
  }

  /** @internal Arena.alloc is the public path. Returns an offset or -1. */
  rawAlloc(bytes: number): number {
    const size = alignUp(Math.max(bytes, 1), ALLOC_ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.bytes >= size) {
        const offset = b.offset;
        if (b.bytes === size) this.free.splice(i, 1);
        else {
          b.offset += size;
          b.bytes -= size;
        }
        return offset;
      }
    }
    if (this.top + size > this.maxBytes) return -1;
    const offset = this.top;
    const end = offset + size;
    if (end > this.sizeBytes) {
      const pages = Math.ceil((end - this.sizeBytes) / PAGE_BYTES);
      try {
        this.memory.grow(pages);
      } catch {
        return -1; // the host refused the memory
      }
    }
    this.top = end;
    return offset;
  }

  /** @internal */
  rawFree(offset: number, bytes: number): void {
    const size = alignUp(Math.max(bytes, 1), ALLOC_ALIGN);
    let i = 0;
    while (i < this.free.length && this.free[i].offset < offset) i++;
    this.free.splice(i, 0, { offset, bytes: size });
    // Coalesce with neighbours, then give a free tail back to the bump pointer.
    if (i + 1 < this.free.length && this.free[i].offset + this.free[i].bytes === this.free[i + 1].offset) {
      this.free[i].bytes += this.free[i + 1].bytes;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].offset + this.free[i - 1].bytes === this.free[i].offset) {
      this.free[i - 1].bytes += this.free[i].bytes;
      this.free.splice(i, 1);
    }
    const last = this.free[this.free.length - 1];
    if (last && last.offset + last.bytes === this.top) {
      this.top = last.offset;
      this.free.pop();
    }
  }
}

/**
 * A named group of allocations in one heap. Arenas keep the accounting that reports
 * and budgets need (weights vs activations vs caches) and free together on reset().
 */
export class Arena {
  private readonly live = new Set<Allocation>();
  usedBytes = 0;
  /** The most this arena has held at once. */
  peakBytes = 0;

  constructor(
    readonly heap: Heap,
    readonly name: string,
    readonly limitBytes: number,
  ) {}

  /** Allocate `bytes` (64-byte aligned). Throws OutOfMemoryError naming the request. */
  alloc(bytes: number, purpose = 'buffer'): Allocation {
    if (!Number.isFinite(bytes) || bytes < 0) {
      throw new SwitchyardError('E_INVALID_ARGUMENT', `${this.name}: cannot allocate ${bytes} bytes for ${purpose}`);
    }
    const size = alignUp(Math.max(bytes, 1), ALLOC_ALIGN);
    const fail = (why: string): never => {
      throw new OutOfMemoryError(
        `${this.heap.name}/${this.name}: cannot allocate ${fmtBytes(bytes)} for ${purpose}: ${why} ` +
          `(free ${fmtBytes(this.heap.freeBytes)}, largest free block ${fmtBytes(this.heap.largestFreeBlock)}, ` +
          `heap limit ${fmtBytes(this.heap.maxBytes)})`,
        { bytes, purpose, arena: this.name },
        { freeBytes: this.heap.freeBytes, largestFreeBlock: this.heap.largestFreeBlock, capacityBytes: this.heap.maxBytes },
      );
    };
    if (this.usedBytes + size > this.limitBytes) {
      fail(`arena limit ${fmtBytes(this.limitBytes)} reached (${fmtBytes(this.usedBytes)} in use)`);
    }
    const offset = this.heap.rawAlloc(size);
    if (offset < 0) fail('the heap is full');
    const a: Allocation = { heap: this.heap, offset, bytes: size, arena: this, purpose };
    this.live.add(a);
    this.usedBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.usedBytes);
    return a;
  }

  free(a: Allocation): void {
    if (!this.live.delete(a)) return;
    this.usedBytes -= a.bytes;
    this.heap.rawFree(a.offset, a.bytes);
  }

  /** Free every allocation of this arena. */
  reset(): void {
    for (const a of [...this.live]) this.free(a);
  }

  get allocationCount(): number {
    return this.live.size;
  }
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return 'unlimited';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}
