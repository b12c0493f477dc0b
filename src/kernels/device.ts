/**
 * The backend registry: a Device is one heap plus the kernel backend that computes over
 * it. createDevice() probes the platform, picks the best build (relaxed > simd128 > ref)
 * unless told otherwise (option `kernels`, else SWITCHYARD_KERNELS), and starts the
 * threads (option `threads`, else SWITCHYARD_THREADS, else every core).
 *
 * A model larger than one wasm32 memory (4 GiB) uses several devices: see DeviceSet.
 */
import { availableParallelism } from 'node:os';
import { CapabilityError } from '../core/errors.js';
import { Heap, type HeapOptions } from '../core/heap.js';
import type { KernelBackend, KernelBackendName } from './backend.js';
import { type Capabilities, probeCapabilities } from './capabilities.js';
import { RefBackend } from './ref/index.js';
import { kernelModule } from './wasm/abi.js';
import { WasmBackend } from './wasm/backend.js';

export type KernelChoice = KernelBackendName | 'auto';
export const KERNEL_CHOICES: readonly KernelChoice[] = ['auto', 'relaxed', 'simd128', 'ref'];

export interface DeviceOptions {
  /** Kernel build; default SWITCHYARD_KERNELS or 'auto' (the best that passes its probe). */
  kernels?: KernelChoice;
  /** Threads; default SWITCHYARD_THREADS or the number of cores. */
  threads?: number;
  /** Heap limits (the heap grows on demand up to maxBytes, at most 4 GiB). */
  heap?: Omit<HeapOptions, 'reservedBytes' | 'shared'>;
}

export interface Device {
  readonly heap: Heap;
  readonly backend: KernelBackend;
  readonly capabilities: Capabilities;
  dispose(): void;
}

/** Parse a kernel choice from user input (flag or environment), naming the source on error. */
export function parseKernelChoice(value: string, source: string): KernelChoice {
  if ((KERNEL_CHOICES as readonly string[]).includes(value)) return value as KernelChoice;
  throw new CapabilityError(`${source}: unknown kernel build '${value}' (choose one of ${KERNEL_CHOICES.join(', ')})`);
}

/** Parse a thread count from user input, naming the source on error. */
export function parseThreads(value: string | number, source: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new CapabilityError(`${source}: thread count must be a whole number from 1 to 256, got '${value}'`);
  }
  return n;
}

export function resolveKernelChoice(opt?: KernelChoice): KernelBackendName {
  const caps = probeCapabilities();
  const env = process.env.SWITCHYARD_KERNELS;
  const choice = opt ?? (env ? parseKernelChoice(env, 'SWITCHYARD_KERNELS') : 'auto');
  if (choice === 'auto') return caps.relaxedSimd ? 'relaxed' : caps.simd128 ? 'simd128' : 'ref';
  if (choice === 'relaxed' && !caps.relaxedSimd) {
    throw new CapabilityError(`relaxed SIMD kernels requested but unavailable: ${caps.relaxedSimdNote}`);
  }
  if (choice === 'simd128' && !caps.simd128) {
    throw new CapabilityError('SIMD128 kernels requested but this JavaScript engine cannot run them');
  }
  return choice;
}

export function resolveThreads(opt?: number): number {
  if (opt !== undefined) return parseThreads(opt, 'threads option');
  const env = process.env.SWITCHYARD_THREADS;
  return env ? parseThreads(env, 'SWITCHYARD_THREADS') : availableParallelism();
}

let reserved: number | undefined;
/** Bytes at the bottom of every heap that the kernel module owns (its __heap_base). */
function kernelReservedBytes(): number {
  if (reserved === undefined) {
    const probe = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true });
    const inst = new WebAssembly.Instance(kernelModule('simd128'), { env: { memory: probe } });
    reserved = (inst.exports.__heap_base as WebAssembly.Global).value as number;
  }
  return reserved;
}

export async function createDevice(opts: DeviceOptions = {}): Promise<Device> {
  const capabilities = probeCapabilities();
  const kernels = resolveKernelChoice(opts.kernels);
  const threads = resolveThreads(opts.threads);
  const heap = new Heap({
    ...opts.heap,
    reservedBytes: kernels === 'ref' ? 64 : kernelReservedBytes(),
    shared: kernels !== 'ref',
  });
  const backend: KernelBackend = kernels === 'ref' ? new RefBackend() : await WasmBackend.create(kernels, heap, threads);
  return { heap, backend, capabilities, dispose: () => backend.dispose() };
}
