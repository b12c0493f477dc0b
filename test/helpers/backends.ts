/**
 * Test helpers: every available kernel build over one heap, deterministic random data,
 * and closeness checks. Kernel tests run each wasm build against the reference twin.
 */
import { probeCapabilities } from '../../src/kernels/capabilities.js';
import { createDevice, type Device } from '../../src/kernels/device.js';
import { RefBackend } from '../../src/kernels/ref/index.js';
import type { KernelBackend } from '../../src/kernels/backend.js';

export const ref = new RefBackend();

/** The wasm builds this machine can run (relaxed only where its probe passes). */
export function wasmBuilds(): ('simd128' | 'relaxed')[] {
  const caps = probeCapabilities();
  const builds: ('simd128' | 'relaxed')[] = [];
  if (caps.simd128) builds.push('simd128');
  if (caps.relaxedSimd) builds.push('relaxed');
  return builds;
}

const devices = new Map<string, Promise<Device>>();
/** A shared device per (build, threads), created once per test file. */
export function device(build: 'simd128' | 'relaxed', threads = 2): Promise<Device> {
  const key = `${build}/${threads}`;
  let d = devices.get(key);
  if (!d) {
    d = createDevice({ kernels: build, threads, heap: { maxBytes: 1 << 30 } });
    devices.set(key, d);
  }
  return d;
}

export async function disposeDevices(): Promise<void> {
  for (const d of devices.values()) (await d).dispose();
  devices.clear();
}

/** splitmix32-style deterministic generator: uniform in [lo, hi). */
export function rng(seed: number): (lo?: number, hi?: number) => number {
  let s = seed >>> 0;
  return (lo = -1, hi = 1) => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return lo + (hi - lo) * (z / 4294967296);
  };
}

export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r(-scale, scale);
  return a;
}

/** Largest |a - b| / (atol + rtol * |b|) over all elements; <= 1 means close. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(a[i]) !== Number.isNaN(b[i])) return Number.POSITIVE_INFINITY;
    if (Number.isNaN(d)) continue;
    worst = Math.max(worst, d / (atol + rtol * Math.abs(b[i])));
  }
  return worst;
}

/** Indices where the 32-bit patterns of two float arrays differ. */
export function bitDiffs(a: Float32Array, b: Float32Array): number[] {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  const out: number[] = [];
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) out.push(i);
  return out;
}

export type { KernelBackend };
