/**
 * THE JS <-> WASM BOUNDARY. Everything both sides must agree on is described here; the
 * C side of it is src/kernels/wasm/c/sy.h.
 *
 * Module: one wasm32 module per build (switchyard-simd128.wasm, switchyard-relaxed.wasm),
 * built by scripts/build-kernels.sh from src/kernels/wasm/c/*.c. It imports one shared
 * memory as `env.memory` (maximum 4 GiB) and exports:
 *   __heap_base            global  first byte after the module's static data and main stack
 *   __stack_pointer        global  mutable; each worker instance points it at its own stack
 *   sy_args_ptr() -> p     address of the 32 argument slots (sy_args), 4 bytes each
 *   sy_run(fn, nth)        run kernel `fn` on threads 0..nth-1 (thread 0 = the caller)
 *   sy_worker_main(tid, g) a worker's loop; returns after sy_quit(). g = the job counter at spawn
 *   sy_pool_gen() -> g     the job counter
 *   sy_quit()              end every sy_worker_main
 *   sy_set_spin(n)         spin iterations before a waiting thread sleeps in atomic.wait
 *   sy_set_failed(), sy_failed()  a thread trapped: waits give up, the pool is not used again
 *   sy_type_info(t, f)     block elements (f=0), bytes (1), dot type (2) of GGML type t, or -1
 *   sy_probe() -> v        self-check value (capabilities.ts)
 *   sy_kfn_<kernel>() -> fn  function-table index of each kernel, passed to sy_run
 *
 * Memory layout: [0, __heap_base) belongs to the module (data, the main thread's stack,
 * the argument slots, pool state). [__heap_base, end) belongs to JS: the Heap allocator
 * (core/heap.ts) hands it out; worker stacks are allocated there too (arena "system").
 *
 * Calling a kernel: write its arguments into the slots (pointers are byte offsets into
 * the memory, as uint32; ints as int32; floats as float32), then sy_run(fn, nth). Each
 * kernel documents its slots in a comment above its SY_KERNEL in C, and its wrapper in
 * TypeScript writes them in the same order. Calls are synchronous and not re-entrant:
 * one call at a time per instance (the slots are shared by its threads).
 *
 * Alignment: the Heap aligns every allocation to 64 bytes. Kernels use unaligned v128
 * loads, so tensor views at any byte offset work; aligned ones are faster.
 *
 * Ownership: JS owns every buffer it passes; a kernel reads its inputs and writes only
 * its outputs and the scratch buffers it is given, and keeps no pointer after returning.
 */
import { readFileSync } from 'node:fs';
import { KernelError } from '../../core/errors.js';

export type KernelBuild = 'simd128' | 'relaxed';

export interface KernelExports {
  readonly __heap_base: WebAssembly.Global;
  readonly __stack_pointer: WebAssembly.Global;
  sy_args_ptr(): number;
  sy_run(fn: number, nth: number): void;
  sy_worker_main(tid: number, gen: number): void;
  sy_pool_gen(): number;
  sy_quit(): void;
  sy_set_spin(n: number): void;
  sy_set_failed(): void;
  sy_failed(): number;
  sy_type_info(type: number, field: number): number;
  sy_probe(): number;
  [name: string]: unknown;
}

const BIN_DIR = new URL('../../../src/kernels/wasm/bin/', import.meta.url);

const modules = new Map<KernelBuild, WebAssembly.Module>();

/** The compiled module of a build (compiled once per process). */
export function kernelModule(build: KernelBuild): WebAssembly.Module {
  let m = modules.get(build);
  if (!m) {
    m = new WebAssembly.Module(kernelBytes(build));
    modules.set(build, m);
  }
  return m;
}

export function kernelBytes(build: KernelBuild): Uint8Array<ArrayBuffer> {
  const b = readFileSync(new URL(`switchyard-${build}.wasm`, BIN_DIR));
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength) as Uint8Array<ArrayBuffer>;
}

export const ARG_SLOTS = 32;

/** One instance of a kernel build over a memory, with typed access to its argument slots. */
export class KernelInstance {
  readonly exports: KernelExports;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly f32: Float32Array;
  private readonly fns = new Map<string, number>();

  constructor(
    readonly build: KernelBuild,
    readonly memory: WebAssembly.Memory,
  ) {
    const inst = new WebAssembly.Instance(kernelModule(build), { env: { memory } });
    this.exports = inst.exports as unknown as KernelExports;
    const p = this.exports.sy_args_ptr();
    // The slots sit below __heap_base; shared memory never detaches, so these views stay valid.
    this.i32 = new Int32Array(memory.buffer, p, ARG_SLOTS);
    this.u32 = new Uint32Array(memory.buffer, p, ARG_SLOTS);
    this.f32 = new Float32Array(memory.buffer, p, ARG_SLOTS);
    for (const name of Object.keys(this.exports)) {
      if (name.startsWith('sy_kfn_')) this.fns.set(name.slice(7), (this.exports[name] as () => number)());
    }
  }

  get heapBase(): number {
    return this.exports.__heap_base.value as number;
  }

  /** Function-table index of a kernel; throws for an unknown name. */
  fn(name: string): number {
    const f = this.fns.get(name);
    if (f === undefined) throw new Error(`kernel '${name}' is not in the ${this.build} build`);
    return f;
  }

  get kernelNames(): string[] {
    return [...this.fns.keys()];
  }

  /** Write `slots` (numbers: pointers/ints as int32 unless listed in `floats`) and run. */
  call(name: string, nth: number, ints: readonly number[], floats: Readonly<Record<number, number>> = {}): void {
    if (this.failure) throw this.failure;
    const fn = this.fn(name);
    for (let i = 0; i < ints.length; i++) this.i32[i] = ints[i];
    for (const k in floats) this.f32[+k] = floats[k];
    try {
      this.exports.sy_run(fn, nth);
    } catch (e) {
      throw this.retire(name, `on the calling thread: ${(e as Error).message}`);
    }
    if (this.exports.sy_failed()) throw this.retire(name, 'on a worker thread (its error is on stderr)');
  }

  private failure?: KernelError;

  /** The pool is gone: later calls throw instead of waiting forever for workers that quit. */
  markDisposed(): void {
    this.failure ??= new KernelError('this device was disposed; its kernels cannot run any more (create a new device)');
  }

  /** A kernel trapped: stop every wait, and refuse all later calls with the same error. */
  private retire(name: string, where: string): KernelError {
    this.exports.sy_set_failed();
    this.failure = new KernelError(
      `kernel '${name}' failed ${where}; its device cannot run kernels any more: dispose it and create a new one`,
    );
    return this.failure;
  }
}
