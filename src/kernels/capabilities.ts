/**
 * Start-up capability probe: which kernel builds this JavaScript engine can run, and
 * whether they compute correctly. Relaxed SIMD is behind a flag on Node 20 (V8 11.3), so
 * the flag is switched on before any module is compiled, then the relaxed build is
 * validated and its self-check (sy_probe in probe.c) compared with the value computed
 * here: presence is not enough (V8 11.3's i32x4 relaxed dot returns twice the spec value).
 */
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { type KernelBuild, KernelInstance, kernelBytes } from './wasm/abi.js';

export interface Capabilities {
  node: string;
  v8: string;
  simd128: boolean;
  relaxedSimd: boolean;
  /** Why relaxed SIMD is off, when it is. */
  relaxedSimdNote?: string;
  threads: boolean;
  cores: number;
}

let relaxedFlagSet = false;
/** Must run before the relaxed module is compiled. Harmless where relaxed SIMD is standard. */
export function enableRelaxedSimdFlag(): void {
  if (relaxedFlagSet) return;
  relaxedFlagSet = true;
  try {
    setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // engines without the flag either have relaxed SIMD on or not at all; the probe decides
  }
}

/** The value sy_probe() must return, computed from its definition in probe.c. */
export function expectedProbeValue(): number {
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < 16; i++) {
    const a = ((i * 17 - 128) << 24) >> 24;
    const b = i * 8 + 3;
    s1 += a * b;
    s2 += Math.max(a, -127) * (b - 60);
  }
  return s1 * 3 + s2 * 7 + 15;
}

function probeBuild(build: KernelBuild): string | undefined {
  if (!WebAssembly.validate(kernelBytes(build))) return 'the engine cannot compile it';
  try {
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true });
    const got = new KernelInstance(build, memory).exports.sy_probe();
    const want = expectedProbeValue();
    if (got !== want) return `self-check returned ${got}, expected ${want}`;
  } catch (e) {
    return `self-check failed: ${(e as Error).message}`;
  }
  return undefined;
}

let cached: Capabilities | undefined;

export function probeCapabilities(): Capabilities {
  if (cached) return cached;
  enableRelaxedSimdFlag();
  let threads = typeof SharedArrayBuffer === 'function';
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch {
    threads = false;
  }
  const simdProblem = threads ? probeBuild('simd128') : 'no shared memory';
  const relaxedProblem = simdProblem ? 'SIMD128 build unavailable' : probeBuild('relaxed');
  cached = {
    node: process.versions.node,
    v8: process.versions.v8,
    simd128: !simdProblem,
    relaxedSimd: !relaxedProblem,
    relaxedSimdNote: relaxedProblem,
    threads,
    cores: availableParallelism(),
  };
  return cached;
}
