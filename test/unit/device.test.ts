// Devices: kernel choice and thread count from options and environment, errors, thread pool.
import { afterEach, describe, expect, it } from 'vitest';
import { CapabilityError } from '../../src/core/errors.js';
import { GGMLType, KERNEL_DTYPES } from '../../src/core/dtypes.js';
import { f32Tensor } from '../../src/core/tensor.js';
import { expectedProbeValue, probeCapabilities } from '../../src/kernels/capabilities.js';
import { createDevice, parseKernelChoice, parseThreads, resolveKernelChoice, resolveThreads } from '../../src/kernels/device.js';
import { KernelInstance } from '../../src/kernels/wasm/abi.js';
import { bitDiffs, randomF32, wasmBuilds } from '../helpers/backends.js';

const saved = { ...process.env };
afterEach(() => {
  process.env.SWITCHYARD_KERNELS = saved.SWITCHYARD_KERNELS;
  process.env.SWITCHYARD_THREADS = saved.SWITCHYARD_THREADS;
  if (saved.SWITCHYARD_KERNELS === undefined) delete process.env.SWITCHYARD_KERNELS;
  if (saved.SWITCHYARD_THREADS === undefined) delete process.env.SWITCHYARD_THREADS;
});

describe('capabilities', () => {
  it('finds SIMD128, threads and (on Node 20 with the flag) relaxed SIMD that passes its self-check', () => {
    const caps = probeCapabilities();
    expect(caps.simd128).toBe(true);
    expect(caps.threads).toBe(true);
    // The machines run Node 20 (V8 11.3), where relaxed SIMD works once the flag is on.
    expect(caps.relaxedSimd).toBe(true);
  });

  it('every wasm build returns the self-check value computed independently in TypeScript', () => {
    for (const build of wasmBuilds()) {
      const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true });
      expect(new KernelInstance(build, memory).exports.sy_probe()).toBe(expectedProbeValue());
    }
  });

  it('the C type table agrees with src/core/dtypes.ts', () => {
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true });
    const k = new KernelInstance('simd128', memory).exports;
    for (const t of KERNEL_DTYPES) {
      expect([k.sy_type_info(t.id, 0), k.sy_type_info(t.id, 1), k.sy_type_info(t.id, 2)], t.name).toEqual([
        t.blockElems,
        t.blockBytes,
        t.dotType,
      ]);
    }
    expect(k.sy_type_info(GGMLType.IQ2_XXS, 0)).toBe(-1);
  });
});

describe('kernel and thread choice', () => {
  it('parses user input and names the source of bad values', () => {
    expect(parseKernelChoice('relaxed', '--kernels')).toBe('relaxed');
    expect(() => parseKernelChoice('avx512', '--kernels')).toThrow(CapabilityError);
    expect(() => parseKernelChoice('avx512', '--kernels')).toThrow(/--kernels: unknown kernel build 'avx512' \(choose one of auto, relaxed, simd128, ref\)/);
    expect(parseThreads('3', 'SWITCHYARD_THREADS')).toBe(3);
    for (const bad of ['0', '-1', '1.5', 'many', '']) {
      expect(() => parseThreads(bad, 'SWITCHYARD_THREADS')).toThrow(/SWITCHYARD_THREADS: thread count must be a whole number/);
    }
  });

  it('an option beats the environment, which beats the default', () => {
    process.env.SWITCHYARD_KERNELS = 'simd128';
    process.env.SWITCHYARD_THREADS = '1';
    expect(resolveKernelChoice()).toBe('simd128');
    expect(resolveKernelChoice('ref')).toBe('ref');
    expect(resolveThreads()).toBe(1);
    expect(resolveThreads(2)).toBe(2);
    delete process.env.SWITCHYARD_KERNELS;
    expect(resolveKernelChoice()).toBe(probeCapabilities().relaxedSimd ? 'relaxed' : 'simd128');
    process.env.SWITCHYARD_KERNELS = 'fast';
    expect(() => resolveKernelChoice()).toThrow(/SWITCHYARD_KERNELS: unknown kernel build 'fast'/);
  });

  it('SWITCHYARD_KERNELS=ref gives the reference backend', async () => {
    process.env.SWITCHYARD_KERNELS = 'ref';
    const dev = await createDevice();
    expect(dev.backend.name).toBe('ref');
    dev.dispose();
  });
});

describe('thread pool', () => {
  it.each(wasmBuilds())('%s: results do not depend on the thread count, over many calls', async (build) => {
    const one = await createDevice({ kernels: build, threads: 1, heap: { maxBytes: 64 << 20 } });
    const two = await createDevice({ kernels: build, threads: 2, heap: { maxBytes: 64 << 20 } });
    try {
      const R = 300;
      const C = 512;
      const wData = randomF32(R * C, 1);
      const mk = (dev: typeof one) => {
        const a = dev.heap.arena('t');
        return { w: f32Tensor(a, [R, C], wData), x: f32Tensor(a, [4, C]), out: f32Tensor(a, [4, R]) };
      };
      const a = mk(one);
      const b = mk(two);
      // Many short calls in a row: a lost wake-up or a missed job would hang or corrupt here.
      for (let i = 0; i < 300; i++) {
        const x = randomF32(4 * C, 100 + i);
        a.x.f32().set(x);
        b.x.f32().set(x);
        one.backend.matmul(a.out, a.w, a.x);
        two.backend.matmul(b.out, b.w, b.x);
        expect(bitDiffs(a.out.f32(), b.out.f32())).toEqual([]);
      }
      expect(two.backend.threads).toBe(2);
    } finally {
      one.dispose();
      two.dispose();
    }
  });

  it('disposing stops the workers so the process can exit', async () => {
    const dev = await createDevice({ kernels: 'simd128', threads: 2, heap: { maxBytes: 16 << 20 } });
    const [out, w, x] = [0, 1, 2].map(() => f32Tensor(dev.heap.arena('t'), [64, 64], new Float32Array(64 * 64)));
    dev.dispose();
    // A call after dispose throws instead of waiting forever for the workers that quit.
    expect(() => dev.backend.matmul(out, w, x)).toThrow(/device was disposed/);
    // A second device over a new heap works independently.
    const again = await createDevice({ kernels: 'simd128', threads: 2, heap: { maxBytes: 16 << 20 } });
    expect(again.backend.threads).toBe(2);
    again.dispose();
  });
});

describe('kernel failures', () => {
  it('a trap on a worker thread is reported as a KernelError, not a hang, and the device is retired', async () => {
    const dev = await createDevice({ kernels: 'simd128', threads: 2, heap: { maxBytes: 64 << 20 } });
    const stderr = process.stderr.write;
    process.stderr.write = () => true; // the worker reports its trap on stderr
    try {
      const a = dev.heap.arena('t');
      const R = 256;
      const C = 256;
      const w = f32Tensor(a, [R, C], randomF32(R * C, 3));
      const x = f32Tensor(a, [1, C], randomF32(C, 4));
      const ctx = (dev.backend as unknown as { ctx: import('../../src/kernels/wasm/context.js').WasmContext }).ctx;
      const scratch = ctx.scratch(4 * C);
      // Bypass validation on purpose: rows 0-127 (thread 0) end at the last byte of the memory,
      // rows 128-255 (the worker's share) lie past it, so only the worker traps.
      const end = dev.heap.memory.buffer.byteLength;
      const run = () => ctx.run('matmul', [end - 4 * (R / 2), w.offset, x.offset, scratch, R, C, 1, GGMLType.F32, 0], {}, 2);
      expect(run).toThrow(/kernel 'matmul' failed on a worker thread .*dispose it and create a new one/);
      // Any later call fails at once with the same error instead of touching a broken pool.
      const out = f32Tensor(a, [1, R]);
      expect(() => dev.backend.matmul(out, w, x)).toThrow(/kernel 'matmul' failed on a worker thread/);
    } finally {
      process.stderr.write = stderr;
      dev.dispose();
    }
    // A new device works.
    const fresh = await createDevice({ kernels: 'simd128', threads: 2, heap: { maxBytes: 16 << 20 } });
    const a = fresh.heap.arena('t');
    const w = f32Tensor(a, [4, 4], new Float32Array(16).fill(1));
    const x = f32Tensor(a, [1, 4], [1, 2, 3, 4]);
    const out = f32Tensor(a, [1, 4]);
    fresh.backend.matmul(out, w, x);
    expect(Array.from(out.f32())).toEqual([10, 10, 10, 10]);
    fresh.dispose();
  });
});
