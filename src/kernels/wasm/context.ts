/**
 * What a wasm kernel wrapper needs: the instance (argument slots, kernel table), the
 * heap it runs over, the thread count, and a scratch buffer the kernels may use.
 */
import type { Allocation, Heap } from '../../core/heap.js';
import type { KernelInstance } from './abi.js';

export class WasmContext {
  private scratchAlloc?: Allocation;

  constructor(
    readonly instance: KernelInstance,
    readonly heap: Heap,
    readonly threads: number,
  ) {}

  /** Offset of a scratch buffer of at least `bytes` (valid until the next call). */
  scratch(bytes: number): number {
    if (!this.scratchAlloc || this.scratchAlloc.bytes < bytes) {
      const arena = this.heap.arena('scratch');
      if (this.scratchAlloc) arena.free(this.scratchAlloc);
      this.scratchAlloc = arena.alloc(Math.max(bytes, 64 * 1024) * 1.25, 'kernel scratch');
    }
    return this.scratchAlloc.offset;
  }

  /** Threads worth using for `work` units, at least `minPerThread` each (small jobs stay on one thread). */
  threadsFor(work: number, minPerThread = 1): number {
    return Math.max(1, Math.min(this.threads, Math.floor(work / minPerThread)));
  }

  /** Run kernel `name` with int/pointer slots `ints` and float slots `floats` (slot -> value). */
  run(name: string, ints: readonly number[], floats: Readonly<Record<number, number>> = {}, nth = this.threads): void {
    this.instance.call(name, nth, ints, floats);
  }
}
