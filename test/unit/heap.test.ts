// The heap allocator and arenas: placement, reuse, coalescing, limits and errors.
import { describe, expect, it } from 'vitest';
import { OutOfMemoryError } from '../../src/core/errors.js';
import { ALLOC_ALIGN, Heap, PAGE_BYTES } from '../../src/core/heap.js';

describe('Heap', () => {
  it('aligns allocations, starts above the reserved bytes and never overlaps', () => {
    const heap = new Heap({ reservedBytes: 1000, maxBytes: 8 << 20, shared: false });
    const a = heap.arena('weights');
    const blocks = [1, 63, 64, 65, 1000, 4096].map((n) => a.alloc(n));
    for (const b of blocks) {
      expect(b.offset % ALLOC_ALIGN).toBe(0);
      expect(b.offset).toBeGreaterThanOrEqual(1000);
    }
    const sorted = [...blocks].sort((x, y) => x.offset - y.offset);
    for (let i = 1; i < sorted.length; i++) {
      expect(sorted[i].offset).toBeGreaterThanOrEqual(sorted[i - 1].offset + sorted[i - 1].bytes);
    }
  });

  it('reuses freed space, coalesces neighbours and returns a free tail', () => {
    const heap = new Heap({ maxBytes: 8 << 20, shared: false });
    const a = heap.arena('x');
    const b1 = a.alloc(1024);
    const b2 = a.alloc(1024);
    const b3 = a.alloc(1024);
    const keep = a.alloc(64);
    a.free(b1);
    a.free(b2);
    // b1 and b2 coalesce into one 2048-byte hole that a 2000-byte request fits.
    const big = a.alloc(2000);
    expect(big.offset).toBe(b1.offset);
    a.free(big);
    a.free(b3);
    a.free(keep);
    expect(heap.usedBytes).toBe(0);
    expect(a.usedBytes).toBe(0);
    // Everything was returned to the bump pointer: the next block starts at the base.
    expect(a.alloc(10).offset).toBe(heap.base);
  });

  it('grows the memory on demand', () => {
    const heap = new Heap({ initialBytes: PAGE_BYTES, maxBytes: 64 << 20, shared: true });
    const before = heap.sizeBytes;
    const t = heap.arena('w').alloc(10 << 20);
    expect(heap.sizeBytes).toBeGreaterThanOrEqual(t.offset + t.bytes);
    expect(heap.sizeBytes).toBeGreaterThan(before);
  });

  it('enforces arena limits with an error naming the request and the arena', () => {
    const heap = new Heap({ maxBytes: 8 << 20, shared: false });
    const kv = heap.arena('kv-cache', 4096);
    kv.alloc(4000);
    let err: unknown;
    try {
      kv.alloc(200, 'layer 3 keys');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutOfMemoryError);
    const oom = err as OutOfMemoryError;
    expect(oom.code).toBe('E_OUT_OF_MEMORY');
    expect(oom.message).toMatch(/kv-cache/);
    expect(oom.message).toMatch(/layer 3 keys/);
    expect(oom.message).toMatch(/arena limit 4\.00 KiB/);
    expect(oom.request).toEqual({ bytes: 200, purpose: 'layer 3 keys', arena: 'kv-cache' });
  });

  it('reports a full heap with what is free', () => {
    const heap = new Heap({ maxBytes: 2 << 20, shared: false, name: 'heap 1' });
    const a = heap.arena('weights');
    a.alloc(1 << 20);
    expect(() => a.alloc(3 << 20, 'blk.0.ffn_up_exps')).toThrow(/heap 1\/weights: cannot allocate 3\.00 MiB for blk\.0\.ffn_up_exps: the heap is full \(free .*largest free block/);
  });

  it('rejects nonsense sizes', () => {
    const heap = new Heap({ maxBytes: 1 << 20, shared: false });
    expect(() => heap.arena('a').alloc(-1)).toThrow(/cannot allocate -1 bytes/);
    expect(() => heap.arena('a').alloc(Number.NaN)).toThrow(/cannot allocate NaN bytes/);
  });

  it('resets an arena without touching the others', () => {
    const heap = new Heap({ maxBytes: 8 << 20, shared: false });
    const w = heap.arena('weights');
    const s = heap.arena('scratch');
    w.alloc(1000);
    s.alloc(1000);
    s.alloc(5000);
    s.reset();
    expect(s.usedBytes).toBe(0);
    expect(s.allocationCount).toBe(0);
    expect(w.usedBytes).toBe(1024);
    expect(heap.arenaUsage().map((u) => u.name)).toEqual(['weights', 'scratch']);
  });

  it('caps a heap at 4 GiB and checks its configuration', () => {
    expect(new Heap({ maxBytes: 2 ** 40, initialBytes: PAGE_BYTES, shared: false }).maxBytes).toBe(2 ** 32);
    expect(() => new Heap({ reservedBytes: 4 << 20, maxBytes: 1 << 20, shared: false })).toThrow(/below the .* bytes the kernels reserve/);
  });
});
