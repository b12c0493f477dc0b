/**
 * Kernel benchmark (`npm run bench:kernels`): matrix-vector and matrix-matrix throughput of
 * every kernel dtype, and the training gemm (F32, every transpose pair), for each wasm build,
 * at 1 thread and at all threads, next to the
 * machine's memory read bandwidth measured in the same run (read_bandwidth in
 * src/kernels/wasm/c/bench.c). Prints a table, writes bench/results/kernels-<date>.json and
 * bench/results/kernels-latest.json, and checks the project's matrix-vector target.
 * Options and method: bench/README.md. Reference: llama.cpp test-backend-ops `perf` mode
 * (MUL_MAT reported as GFLOPS and GB/s of weight bytes).
 */
import { createHash } from 'node:crypto';
import { arch, availableParallelism, cpus, platform, release, totalmem } from 'node:os';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type DTypeInfo, GGMLType, KERNEL_DTYPES, dtypeByName, rowBytes } from '../src/core/dtypes.js';
import { fmtBytes } from '../src/core/heap.js';
import { type Tensor, allocTensor } from '../src/core/tensor.js';
import { probeCapabilities } from '../src/kernels/capabilities.js';
import { type Device, createDevice } from '../src/kernels/device.js';
import { type KernelBuild, kernelBytes } from '../src/kernels/wasm/abi.js';
import type { WasmBackend } from '../src/kernels/wasm/backend.js';
import { gitInfo, writeResults } from './results.js';

type BuildName = KernelBuild | 'ref';
const MiB = 1024 * 1024;

// ---- options -----------------------------------------------------------------

const USAGE = `usage: npm run bench:kernels -- [options]
  --quick            small sizes and 0.05 s per case (about 20 s in all)
  --types LIST       dtypes, e.g. Q4_0,Q4_K (default: every kernel dtype)
  --builds LIST      simd128, relaxed, ref (default: simd128,relaxed,ref)
  --threads LIST     thread counts for the wasm builds (default: 1,<all cores>)
  --tokens LIST      matrix-matrix batch sizes T (default: 32)
  --min-time S       seconds of timed calls per case (default 0.5; --quick 0.05)
  --stat median|best the per-call statistic reported (default median)
  --no-json          do not write bench/results/*.json
  --help`;

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    types: { type: 'string' },
    builds: { type: 'string' },
    threads: { type: 'string' },
    tokens: { type: 'string' },
    'min-time': { type: 'string' },
    stat: { type: 'string', default: 'median' },
    'no-json': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}

function usageError(msg: string): never {
  console.error(`bench:kernels: ${msg}\n${USAGE}`);
  process.exit(2);
}

function list(s: string | undefined): string[] | undefined {
  return s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter(Boolean);
}

function positiveInts(s: string | undefined, what: string): number[] | undefined {
  const l = list(s);
  if (!l) return undefined;
  return l.map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1) usageError(`${what} must be whole numbers >= 1, got '${x}'`);
    return n;
  });
}

const quick = opt.quick;
const cores = availableParallelism();
const types: DTypeInfo[] = (list(opt.types) ?? KERNEL_DTYPES.map((t) => t.name)).map((name) => {
  let t: DTypeInfo;
  try {
    t = dtypeByName(name);
  } catch (e) {
    usageError((e as Error).message);
  }
  if (!t.kernels) usageError(`${t.name} is not a kernel dtype (choose from ${KERNEL_DTYPES.map((k) => k.name).join(', ')})`);
  return t;
});
const builds = (list(opt.builds) ?? ['simd128', 'relaxed', 'ref']).map((b) => {
  if (b !== 'simd128' && b !== 'relaxed' && b !== 'ref') usageError(`unknown build '${b}' (simd128, relaxed, ref)`);
  return b as BuildName;
});
const threadCounts = [...new Set(positiveInts(opt.threads, '--threads') ?? [1, cores])].sort((a, b) => a - b);
const tokenCounts = [...new Set(positiveInts(opt.tokens, '--tokens') ?? [32])].sort((a, b) => a - b);
const minTime = opt['min-time'] !== undefined ? Number(opt['min-time']) : quick ? 0.05 : 0.5;
const stat = opt.stat as string;
if (stat !== 'median' && stat !== 'best') usageError(`--stat must be median or best, got '${stat}'`);
if (!(minTime > 0)) usageError(`--min-time must be a positive number of seconds, got '${opt['min-time']}'`);

// Sizes. Matrix-vector: W of about MV_BYTES, well past the last-level cache share of one VM
// (on the reference 2-vCPU VM the read bandwidth falls to its DRAM value from 32 MiB on),
// with rows of MV_COLS elements as in real models (hidden sizes 2048-7168): the activation
// row then stays in L1 while the weights stream, as it does in a model; very long rows
// (e.g. 29K elements) push the activations out of L1 and measure that instead.
// Matrix-matrix: a smaller W, reused by T tokens, so it measures compute rather than memory.
const MV_COLS = quick ? 2048 : 4096;
const MV_BYTES = quick ? 8 * MiB : 64 * MiB;
const MM_ROWS = quick ? 256 : 1024;
const MM_COLS = quick ? 2048 : 4096;
// The reference backend only gets a small matrix: it is there for perspective.
const REF_ROWS = 256;
const REF_COLS = 1024;
const REF_TOKENS = 4;

/** Rows of MV_COLS elements giving about `bytes` of weights. */
function rowsFor(t: DTypeInfo, bytes: number): number {
  return Math.max(1, Math.floor(bytes / rowBytes(t.id, MV_COLS)));
}

// ---- random weights valid for each type ----------------------------------------

/** Byte offsets of the fp16 scale fields in each block (shared/golden/quants/README.md). */
const FP16_FIELDS: Record<string, number[]> = {
  Q4_0: [0],
  Q4_1: [0, 2],
  Q5_0: [0],
  Q5_1: [0, 2],
  Q8_0: [0],
  IQ4_NL: [0],
  Q2_K: [80, 82],
  Q3_K: [108],
  Q4_K: [0, 2],
  Q5_K: [0, 2],
  Q6_K: [208],
  IQ4_XS: [0],
  TQ1_0: [52],
  TQ2_0: [64],
};

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/**
 * Fill a weight tensor with random values that are valid for its type: random code bytes,
 * and scale fields set to small normal numbers (no NaN, Inf or subnormals, which would
 * change the speed of float arithmetic). Deterministic for a seed.
 */
function fillWeights(w: Tensor, seed: number): void {
  const name = w.info.name;
  const buf = w.heap.memory.buffer;
  const n = w.byteLength;
  const next = xorshift(seed);
  if (name === 'F32') {
    const f = new Float32Array(buf, w.offset, n / 4);
    for (let i = 0; i < f.length; i++) f[i] = next() / 2 ** 31 - 1;
    return;
  }
  if (name === 'F16' || name === 'BF16') {
    // sign and mantissa random, exponent in a narrow normal range (magnitudes ~0.1 to 2)
    const h = new Uint16Array(buf, w.offset, n / 2);
    for (let i = 0; i < h.length; i++) {
      const r = next();
      h[i] = name === 'F16' ? (r & 0x83ff) | ((12 + ((r >>> 10) & 3)) << 10) : (r & 0x807f) | ((123 + ((r >>> 7) & 3)) << 7);
    }
    return;
  }
  const words = new Uint32Array(buf, w.offset, n >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = next();
  const bytes = new Uint8Array(buf, w.offset, n);
  for (let i = words.length * 4; i < n; i++) bytes[i] = next() & 255;
  const bb = w.info.blockBytes;
  const blocks = n / bb;
  if (name === 'MXFP4') {
    for (let b = 0; b < blocks; b++) bytes[b * bb] = 118 + (next() & 7); // E8M0 exponent: 2^-9 .. 2^-2
    return;
  }
  if (name === 'Q8_0') {
    // ggml's codes are in [-127, 127]; -128 would make the relaxed dot product non-deterministic
    for (let i = 0; i < n; i++) if (bytes[i] === 0x80) bytes[i] = 0x81;
  }
  const fields = FP16_FIELDS[name];
  if (!fields) throw new Error(`no weight generator for ${name}: add its scale fields to FP16_FIELDS`);
  for (let b = 0; b < blocks; b++) {
    for (const f of fields) {
      const o = b * bb + f;
      const h = (next() & 0x83ff) | 0x2000; // ±2^-7 .. 2^-6, normal
      bytes[o] = h & 255;
      bytes[o + 1] = h >>> 8;
    }
  }
}

function fillActivations(x: Tensor, seed: number): void {
  const f = x.f32();
  const next = xorshift(seed);
  for (let i = 0; i < f.length; i++) f[i] = next() / 2 ** 31 - 1;
}

// ---- timing --------------------------------------------------------------------

interface Timing {
  median: number;
  best: number;
  samples: number;
}

function summarize(ms: number[]): Timing {
  const t = [...ms].sort((a, b) => a - b);
  const mid = t.length >> 1;
  const median = t.length % 2 ? t[mid] : (t[mid - 1] + t[mid]) / 2;
  return { median: median / 1000, best: t[0] / 1000, samples: t.length };
}

/**
 * Time several calls interleaved: rounds in which each call takes a turn of about 20 ms
 * (at least one timed call), so that a burst of outside load on a shared machine slows every
 * configuration alike instead of whichever ran at the time (the 1-thread vs n-thread
 * comparison matters most). The first call of a turn, which wakes that device's sleeping
 * workers, is not counted unless it is the only one (a call of 20 ms or more, where waking
 * costs nothing measurable), so the timings see the pool as a model's back-to-back kernel calls
 * do. Before timing, each call gets a warm-up of 10% of the budget. Rounds run until every
 * call has >= `seconds` of timed calls and >= 5 of them. A call that throws drops out; its
 * error replaces its timing.
 */
function timeInterleaved(fns: (() => void)[], seconds = minTime): (Timing | Error)[] {
  const TURN_MS = 20;
  const failed: (Error | undefined)[] = fns.map(() => undefined);
  const times: number[][] = fns.map(() => []);
  const spent = fns.map(() => 0);
  const live = () => fns.map((_, i) => i).filter((i) => !failed[i]);
  const call = (i: number): number => {
    const s = performance.now();
    try {
      fns[i]();
    } catch (e) {
      failed[i] = e instanceof Error ? e : new Error(String(e));
      return -1;
    }
    return performance.now() - s;
  };
  const turn = (i: number, record: boolean) => {
    const t: number[] = [];
    const t0 = performance.now();
    do {
      const dt = call(i);
      if (dt < 0) return;
      t.push(dt);
    } while (performance.now() - t0 < TURN_MS);
    // The first call woke the workers; drop it unless it was the turn's only (long) call.
    if (t.length > 1) t.shift();
    for (const dt of t) spent[i] += dt;
    if (record) times[i].push(...t);
  };
  while (live().some((i) => spent[i] < seconds * 100)) for (const i of live()) turn(i, false);
  spent.fill(0);
  while (live().some((i) => times[i].length < 5 || spent[i] < seconds * 1000)) for (const i of live()) turn(i, true);
  return fns.map((_, i) => failed[i] ?? summarize(times[i]));
}

// ---- devices -------------------------------------------------------------------

function heapOptions(bytes: number) {
  return { maxBytes: Math.min(4096 * MiB, Math.max(256 * MiB, 2 * bytes + 64 * MiB)) };
}

function wasmCtx(d: Device) {
  return (d.backend as WasmBackend).ctx;
}

interface Bandwidth {
  build: KernelBuild;
  threads: number;
  bytes: number;
  /** GB/s (1e9 bytes/s) of the reported call statistic, at the start and the end of the run. */
  start: number;
  end: number;
  /** max(start, end): the figure ratios use (so they are not flattered by a slow moment). */
  gbps: number;
}

// ---- one case --------------------------------------------------------------------

type Status = 'ok' | 'not implemented' | 'error';

interface CaseResult {
  R: number;
  C: number;
  T: number;
  weightBytes: number;
  /** Seconds per call: the reported statistic (--stat), then both. */
  seconds: number;
  medianSeconds: number;
  bestSeconds: number;
  samples: number;
  /** Weight bytes per second, 1e9 = 1 GB/s. */
  gbps: number;
  gflops: number;
  /** Output had a NaN or infinity (the data generator or the kernel is wrong). */
  nonFinite?: boolean;
}

interface Row {
  dtype: string;
  build: BuildName;
  threads: number;
  status: Status;
  error?: string;
  matvec?: CaseResult & { ratioToBandwidth?: number; scaling?: number };
  matmul: (CaseResult & { scaling?: number })[];
}

function classify(e: unknown): { status: Status; error: string } {
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  // A wasm stub traps with `unreachable`; the reference placeholders throw "not implemented".
  if (/unreachable|not implemented|no reference kernels/i.test(msg)) return { status: 'not implemented', error: msg };
  return { status: 'error', error: msg };
}

/** W [R, C] of type t, x [T, C] and out [T, R] in a device, filled, and the call to time. */
interface Prepared {
  w: Tensor;
  x: Tensor;
  run(): void;
  result(t: Timing): CaseResult;
  free(): void;
}

function prepare(d: Device, t: DTypeInfo, R: number, C: number, T: number, seed: number, like?: Prepared): Prepared {
  const arena = d.heap.arena('bench');
  const tensors: Tensor[] = [];
  const free = () => {
    for (const x of tensors) if (x.allocation) arena.free(x.allocation);
  };
  try {
    const w = allocTensor(arena, t.id, [R, C], 'bench W');
    tensors.push(w);
    const x = allocTensor(arena, GGMLType.F32, [T, C], 'bench x');
    tensors.push(x);
    const out = allocTensor(arena, GGMLType.F32, [T, R], 'bench out');
    tensors.push(out);
    if (like) {
      // the same data as another device's case: copying is much faster than generating
      w.bytes.set(like.w.bytes);
      x.bytes.set(like.x.bytes);
    } else {
      fillWeights(w, seed);
      fillActivations(x, seed + 1);
    }
    return {
      w,
      x,
      run: () => d.backend.matmul(out, w, x),
      result: (timing) => {
        const seconds = stat === 'best' ? timing.best : timing.median;
        const nonFinite = out.f32().some((v) => !Number.isFinite(v));
        return {
          R,
          C,
          T,
          weightBytes: w.byteLength,
          seconds,
          medianSeconds: timing.median,
          bestSeconds: timing.best,
          samples: timing.samples,
          gbps: w.byteLength / seconds / 1e9,
          gflops: (2 * R * C * T) / seconds / 1e9,
          ...(nonFinite ? { nonFinite } : {}),
        };
      },
      free,
    };
  } catch (e) {
    free();
    throw e;
  }
}

/** Time one case alone (the probe and the reference backend). */
function runCase(d: Device, t: DTypeInfo, R: number, C: number, T: number, seed: number, seconds = minTime): CaseResult {
  const p = prepare(d, t, R, C, T, seed);
  try {
    const [timing] = timeInterleaved([p.run], seconds);
    if (timing instanceof Error) throw timing;
    return p.result(timing);
  } finally {
    p.free();
  }
}

/** Whether a type's kernels run at all, on a single-thread device (a trap there is harmless). */
function probeType(d: Device, t: DTypeInfo): { status: Status; error?: string } {
  try {
    runCase(d, t, 4, 256, 2, 7, 0.001);
    return { status: 'ok' };
  } catch (e) {
    return classify(e);
  }
}

// ---- the run -------------------------------------------------------------------

const caps = probeCapabilities();
const notes: string[] = [];
if (quick) notes.push('--quick: the matrices fit in cache, so GB/s and the bandwidth ratios say little (a smoke run)');
const wasmBuilds = builds.filter((b): b is KernelBuild => b !== 'ref').filter((b) => {
  const ok = b === 'relaxed' ? caps.relaxedSimd : caps.simd128;
  if (!ok) {
    const why = b === 'relaxed' ? caps.relaxedSimdNote : 'this engine cannot run SIMD128 kernels';
    notes.push(`${b} build skipped: ${why}`);
    console.log(`skipping the ${b} build: ${why}`);
  }
  return ok;
});

/** Busy milliseconds of all CPUs since boot (every process). */
function busyMs(): number {
  return cpus().reduce((sum, c) => sum + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
}
// Hashes of the kernel files as the run starts (a rebuild during the run would not be used).
const kernelHashes = Object.fromEntries(
  wasmBuilds.map((b) => [b, { sha256: createHash('sha256').update(kernelBytes(b)).digest('hex') }]),
);
const started = new Date();
const busyStart = busyMs();
const ownCpuStart = process.cpuUsage();
const rows: Row[] = [];
const bandwidths: Bandwidth[] = [];
const mvSizes = new Map(types.map((t) => [t.name, { R: rowsFor(t, MV_BYTES), C: MV_COLS }]));
const maxMvBytes = Math.max(...types.map((t) => mvSizes.get(t.name)!.R * rowBytes(t.id, MV_COLS)));
const bwBytes = MV_BYTES;

console.log(
  `bench:kernels on ${cpus()[0]?.model ?? 'unknown CPU'} (${cores} threads), node ${process.versions.node}, ` +
    `matrix-vector W ~${fmtBytes(MV_BYTES)} [R, ${MV_COLS}], matrix-matrix W [${MM_ROWS}, ${MM_COLS}] x T=${tokenCounts.join(',')}, ` +
    `>= ${minTime} s per case, ${stat} call reported`,
);

// Which types run at all, per build: probed on one thread, where a trapping stub cannot hang the pool.
const runnable = new Map<string, { status: Status; error?: string }>();
for (const build of wasmBuilds) {
  const probe = await createDevice({ kernels: build, threads: 1, heap: { maxBytes: 64 * MiB } });
  for (const t of types) runnable.set(`${build}/${t.name}`, probeType(probe, t));
  probe.dispose();
}

// Every (build, threads) device stays up for the whole run, so cases can be interleaved.
interface Config {
  build: KernelBuild;
  threads: number;
  opts: { kernels: KernelBuild; threads: number; heap: { maxBytes: number } };
  device: Device;
}
const configs: Config[] = [];
for (const build of wasmBuilds) {
  for (const threads of threadCounts) {
    const opts = { kernels: build, threads, heap: heapOptions(Math.max(maxMvBytes, bwBytes)) };
    configs.push({ build, threads, opts, device: await createDevice(opts) });
  }
}
const label = (c: { build: string; threads: number }) => `${c.build}/${c.threads}T`;

/** Read bandwidth of every device, interleaved; GB/s per config (NaN when it failed). */
function measureBandwidths(): number[] {
  const bufs = configs.map((c) => {
    const arena = c.device.heap.arena('bench');
    const buf = arena.alloc(bwBytes, 'bandwidth buffer');
    const sums = arena.alloc(4 * 256, 'bandwidth checksums');
    new Uint8Array(c.device.heap.memory.buffer, buf.offset, bwBytes).fill(1); // touch every page
    return { arena, buf, sums };
  });
  try {
    const timings = timeInterleaved(
      configs.map((c, i) => {
        const ctx = wasmCtx(c.device);
        return () => ctx.run('read_bandwidth', [bufs[i].sums.offset, bufs[i].buf.offset, bwBytes], {}, ctx.threads);
      }),
    );
    return timings.map((t) => (t instanceof Error ? Number.NaN : bwBytes / (stat === 'best' ? t.best : t.median) / 1e9));
  } finally {
    for (const b of bufs) {
      b.arena.free(b.buf);
      b.arena.free(b.sums);
    }
  }
}

const bwStart = measureBandwidths();
console.log(`memory read bandwidth: ${configs.map((c, i) => `${label(c)} ${bwStart[i].toFixed(2)} GB/s`).join(', ')}`);

for (const t of types) {
  const typeRows = configs.map((c): Row => {
    const s = runnable.get(`${c.build}/${t.name}`)!;
    return { dtype: t.name, build: c.build, threads: c.threads, status: s.status, matmul: [], ...(s.error ? { error: s.error } : {}) };
  });
  rows.push(...typeRows);
  const { R, C } = mvSizes.get(t.name)!;
  const cases = [{ R, C, T: 1 }, ...tokenCounts.map((T) => ({ R: MM_ROWS, C: MM_COLS, T }))];
  for (const [k, cs] of cases.entries()) {
    const live = configs.map((_, i) => i).filter((i) => typeRows[i].status === 'ok');
    let first: Prepared | undefined;
    const prepared: (Prepared | Error)[] = live.map((i) => {
      try {
        const p = prepare(configs[i].device, t, cs.R, cs.C, cs.T, (k === 0 ? 1000 : 2000) + t.id, first);
        first ??= p;
        return p;
      } catch (e) {
        return e instanceof Error ? e : new Error(String(e));
      }
    });
    const ok = prepared.filter((p): p is Prepared => !(p instanceof Error));
    const timings = timeInterleaved(ok.map((p) => p.run));
    let j = 0;
    for (const [n, i] of live.entries()) {
      const p = prepared[n];
      const timing = p instanceof Error ? p : timings[j++];
      if (!(timing instanceof Error) && !(p instanceof Error)) {
        const r = p.result(timing);
        if (k === 0) typeRows[i].matvec = r;
        else typeRows[i].matmul.push(r);
      } else {
        Object.assign(typeRows[i], classify(timing), { status: 'error' });
      }
      if (!(p instanceof Error)) p.free();
      if (timing instanceof Error) {
        // A trap in a multi-thread call can leave the pool waiting for a dead worker: start afresh.
        const c = configs[i];
        c.device.dispose();
        c.device = await createDevice(c.opts);
      }
    }
  }
  const summary = typeRows.map((r, i) => {
    const c = configs[i];
    if (r.status !== 'ok' || !r.matvec) return `${label(c)} ${r.status}`;
    return `${label(c)} ${r.matvec.gbps.toFixed(2)} GB/s ${r.matmul.map((m) => `${m.gflops.toFixed(1)}`).join('/')} GFLOP/s`;
  });
  console.log(`  ${t.name.padEnd(6)} matvec, matmul: ${summary.join(', ')}`);
}

// ---- gemm (the training matrix product) ----------------------------------------------
// out [M, N] = op(a) · op(b) for each transpose pair: forward (N T), input gradient (N N) and
// weight gradient (T N) products of a linear layer. GFLOP/s = 2·M·N·K / time.
const GEMM_SHAPES = [
  { name: '512x512x512', M: 512, N: 512, K: 512 },
  { name: '2048x512x192', M: 2048, N: 512, K: 192 },
];
interface GemmRow {
  shape: string;
  trans: string;
  build: KernelBuild;
  threads: number;
  gflops: number;
}
const gemmRows: GemmRow[] = [];
for (const s of GEMM_SHAPES) {
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    const bufs = configs.map((c) => {
      const arena = c.device.heap.arena('bench-gemm');
      const a = allocTensor(arena, GGMLType.F32, ta ? [s.K, s.M] : [s.M, s.K]);
      const b = allocTensor(arena, GGMLType.F32, tb ? [s.N, s.K] : [s.K, s.N]);
      fillActivations(a, 1);
      fillActivations(b, 2);
      return { arena, a, b, out: allocTensor(arena, GGMLType.F32, [s.M, s.N]) };
    });
    const timings = timeInterleaved(configs.map((c, i) => () => c.device.backend.gemm(bufs[i].out, bufs[i].a, bufs[i].b, { transA: ta, transB: tb })));
    timings.forEach((t, i) => {
      const sec = t instanceof Error ? Number.NaN : stat === 'best' ? t.best : t.median;
      const { build, threads } = configs[i];
      gemmRows.push({ shape: s.name, trans: `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`, build, threads, gflops: (2 * s.M * s.N * s.K) / sec / 1e9 });
    });
    for (const b of bufs) b.arena.reset();
  }
}
const bwEnd = measureBandwidths();
for (const [i, c] of configs.entries()) {
  c.device.dispose();
  const gbps = Math.max(bwStart[i], bwEnd[i]);
  bandwidths.push({ build: c.build, threads: c.threads, bytes: bwBytes, start: bwStart[i], end: bwEnd[i], gbps });
  for (const r of rows) if (r.build === c.build && r.threads === c.threads && r.matvec) r.matvec.ratioToBandwidth = r.matvec.gbps / gbps;
}

if (builds.includes('ref')) {
  const d = await createDevice({ kernels: 'ref', threads: 1, heap: { maxBytes: 256 * MiB } });
  for (const t of types) {
    const row: Row = { dtype: t.name, build: 'ref', threads: 1, status: 'ok', matmul: [] };
    rows.push(row);
    try {
      row.matvec = runCase(d, t, REF_ROWS, REF_COLS, 1, 1000 + t.id, Math.min(minTime, 0.2));
      row.matmul.push(runCase(d, t, REF_ROWS, REF_COLS, REF_TOKENS, 2000 + t.id, Math.min(minTime, 0.2)));
    } catch (e) {
      Object.assign(row, classify(e));
      delete row.matvec;
      row.matmul = [];
    }
  }
  d.dispose();
}

// Scaling: each row at n threads against the same dtype and build at 1 thread.
for (const r of rows) {
  if (r.threads === 1 || r.status !== 'ok') continue;
  const one = rows.find((o) => o.dtype === r.dtype && o.build === r.build && o.threads === 1 && o.status === 'ok');
  if (!one) continue;
  if (r.matvec && one.matvec) r.matvec.scaling = one.matvec.seconds / r.matvec.seconds;
  for (const m of r.matmul) {
    const m1 = one.matmul.find((o) => o.T === m.T);
    if (m1) m.scaling = m1.seconds / m.seconds;
  }
}

// ---- the performance contract ------------------------------------------------------

// "a relaxed-SIMD Q4_K or Q4_0 matrix-vector should reach at least 6 GB/s of weight bytes
// on one thread and scale at least 1.6x on two" (on a 2 vCPU AMD EPYC).
const TARGET = { gbps1: 6, scaling2: 1.6 };
interface ContractEntry {
  dtype: string;
  gbps1?: number;
  scaling2?: number;
  pass: boolean;
  why?: string;
}
function contract(): { evaluated: boolean; pass: boolean; entries: ContractEntry[]; summary: string } {
  const entries: ContractEntry[] = [];
  if (!wasmBuilds.includes('relaxed') || !threadCounts.includes(1) || !threadCounts.includes(2)) {
    return { evaluated: false, pass: false, entries, summary: 'not evaluated (needs the relaxed build at 1 and 2 threads)' };
  }
  for (const dtype of ['Q4_0', 'Q4_K']) {
    if (!types.some((t) => t.name === dtype)) continue;
    const one = rows.find((r) => r.dtype === dtype && r.build === 'relaxed' && r.threads === 1);
    const two = rows.find((r) => r.dtype === dtype && r.build === 'relaxed' && r.threads === 2);
    if (!one?.matvec || !two?.matvec) {
      entries.push({ dtype, pass: false, why: one?.status ?? 'not run' });
      continue;
    }
    const gbps1 = one.matvec.gbps;
    const scaling2 = one.matvec.seconds / two.matvec.seconds;
    entries.push({ dtype, gbps1, scaling2, pass: gbps1 >= TARGET.gbps1 && scaling2 >= TARGET.scaling2 });
  }
  if (!entries.length) return { evaluated: false, pass: false, entries, summary: 'not evaluated (Q4_0 and Q4_K not selected)' };
  const pass = entries.some((e) => e.pass);
  const parts = entries.map((e) =>
    e.gbps1 === undefined ? `${e.dtype} ${e.why}` : `${e.dtype} ${e.gbps1.toFixed(2)} GB/s at 1T, ${e.scaling2!.toFixed(2)}x at 2T`,
  );
  return { evaluated: true, pass, entries, summary: `${pass ? 'PASS' : 'FAIL'}: ${parts.join('; ')}` };
}
const verdict = contract();

// ---- output ----------------------------------------------------------------------

const f2 = (v: number | undefined, suffix = '') => (v === undefined ? '' : `${v.toFixed(2)}${suffix}`);
const pct = (v: number | undefined) => (v === undefined ? '' : `${Math.round(v * 100)}%`);

function markdownTable(head: string[], body: string[][], right: boolean[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const cell = (s: string, i: number) => (right[i] ? s.padStart(w[i]) : s.padEnd(w[i]));
  const line = (r: string[]) => `| ${r.map(cell).join(' | ')} |`;
  const rule = `|${w.map((n, i) => (right[i] ? `${'-'.repeat(n + 1)}:` : `${'-'.repeat(n + 2)}`)).join('|')}|`;
  return [line(head), rule, ...body.map(line)].join('\n');
}

const bwTable = markdownTable(
  ['build', 'threads', 'read GB/s', 'start', 'end'],
  bandwidths.map((b) => [b.build, String(b.threads), f2(b.gbps), f2(b.start), f2(b.end)]),
  [false, true, true, true, true],
);

// Table order: dtype, then build, then threads; a dtype that does not run in a build gets one
// row for all its thread counts.
const typeOrder = new Map<string, number>(types.map((t, i) => [t.name, i]));
const buildOrder = new Map(builds.map((b, i) => [b, i]));
const tableRows: Row[] = [];
for (const r of [...rows].sort(
  (a, b) =>
    typeOrder.get(a.dtype)! - typeOrder.get(b.dtype)! || buildOrder.get(a.build)! - buildOrder.get(b.build)! || a.threads - b.threads,
)) {
  const prev = tableRows[tableRows.length - 1];
  if (r.status !== 'ok' && prev && prev.status === r.status && prev.dtype === r.dtype && prev.build === r.build) continue;
  tableRows.push(r);
}
const threadsOf = (r: Row) =>
  r.status === 'ok'
    ? String(r.threads)
    : rows.filter((o) => o.dtype === r.dtype && o.build === r.build).map((o) => o.threads).join(',');

const mmHeads = tokenCounts.flatMap((T) => [`matmul T=${T} GFLOP/s`, 'scaling']);
const mainTable = markdownTable(
  ['dtype', 'build', 'threads', 'matvec GB/s', 'matvec GFLOP/s', 'of bandwidth', 'scaling', ...mmHeads],
  tableRows.map((r) => {
    const mv = r.matvec;
    const mark = mv?.nonFinite || r.matmul.some((m) => m.nonFinite) ? ' (non-finite output!)' : '';
    const build = r.build === 'ref' ? `ref (${REF_ROWS}x${REF_COLS})` : r.build;
    if (r.status !== 'ok' || !mv) {
      return [r.dtype, build, threadsOf(r), r.status, '', '', '', ...tokenCounts.flatMap(() => ['', ''])];
    }
    // The reference row has one small batch (REF_TOKENS), shown in the first matmul column.
    const mm = tokenCounts.flatMap((T, i) => {
      const m = r.build === 'ref' ? (i === 0 ? r.matmul[0] : undefined) : r.matmul.find((x) => x.T === T);
      return [f2(m?.gflops) + (r.build === 'ref' && m ? ` (T=${m.T})` : ''), f2(m?.scaling, 'x')];
    });
    return [r.dtype, build, String(r.threads), f2(mv.gbps) + mark, f2(mv.gflops), pct(mv.ratioToBandwidth), f2(mv.scaling, 'x'), ...mm];
  }),
  [false, false, true, true, true, true, true, ...tokenCounts.flatMap(() => [true, true])],
);

const gemmTable = markdownTable(
  ['gemm M x N x K', 'op(a) op(b)', ...configs.map((c) => `${label(c)} GFLOP/s`)],
  [...new Set(gemmRows.map((r) => `${r.shape}|${r.trans}`))].map((key) => {
    const [shape, trans] = key.split('|');
    return [shape, trans, ...configs.map((c) => f2(gemmRows.find((r) => r.shape === shape && r.trans === trans && r.build === c.build && r.threads === c.threads)?.gflops))];
  }),
  [false, false, ...configs.map(() => true)],
);

const finished = new Date();
const command = ['node', ...process.execArgv, relative(process.cwd(), fileURLToPath(import.meta.url)), ...process.argv.slice(2)].join(' ');

console.log(`\nMemory read bandwidth (read_bandwidth, ${fmtBytes(bwBytes)} buffer, ${stat} call; ratios use the larger of start/end):\n`);
console.log(bwTable);
console.log(
  `\nKernels: matrix-vector W ~${fmtBytes(MV_BYTES)} [R per dtype, ${MV_COLS}], GB/s = weight bytes / ${stat} call time, ` +
    `GFLOP/s = 2·R·C·T / time; "of bandwidth" = matvec GB/s / read bandwidth at the same threads; ` +
    `scaling = time at 1 thread / time at n threads.\n`,
);
console.log(mainTable);
console.log(`\nTraining gemm (F32, out = op(a) · op(b), ${stat} call):\n`);
console.log(gemmTable);
console.log(`\nTarget (relaxed Q4_0 or Q4_K matvec >= ${TARGET.gbps1} GB/s at 1 thread, >= ${TARGET.scaling2}x at 2): ${verdict.summary}`);
for (const n of notes) console.log(`note: ${n}`);
const nonImpl = types
  .map((t) => ({ t: t.name, b: [...new Set(rows.filter((r) => r.dtype === t.name && r.status === 'not implemented').map((r) => r.build))] }))
  .filter((x) => x.b.length)
  .map((x) => (x.b.length === builds.length ? x.t : `${x.t} (${x.b.join(', ')})`));
if (nonImpl.length) console.log(`not implemented yet (the kernel traps, or the reference is a placeholder): ${nonImpl.join(', ')}`);
const errors = rows.filter((r) => r.status === 'error');
for (const r of errors) console.log(`error: ${r.dtype} ${r.build} ${r.threads}T: ${r.error}`);
if (errors.length) process.exitCode = 1;
// CPU time other processes used during the run, as a share of all cores: timings are only
// trustworthy on an otherwise idle machine.
const ownCpu = process.cpuUsage(ownCpuStart);
const wallSeconds = (Date.now() - started.getTime()) / 1000;
const otherCpuShare = Math.max(0, (busyMs() - busyStart) / 1000 - (ownCpu.user + ownCpu.system) / 1e6) / (wallSeconds * cpus().length);
if (otherCpuShare > 0.05) {
  console.log(`note: other processes used ${Math.round(otherCpuShare * 100)}% of the CPUs during the run; timings may be disturbed`);
}


if (!opt['no-json']) {
  const report = {
    benchmark: 'kernels',
    date: started.toISOString(),
    seconds: (finished.getTime() - started.getTime()) / 1000,
    command,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores,
      logicalCpus: cpus().length,
      memoryBytes: totalmem(),
      platform: platform(),
      release: release(),
      arch: arch(),
      node: process.versions.node,
      v8: process.versions.v8,
      capabilities: caps,
      otherCpuShare,
    },
    git: gitInfo(),
    kernels: kernelHashes,
    method: {
      timing: `devices interleaved in rounds of ~20 ms turns (a turn's first, pool-waking call not counted); warm-up, then rounds until each has >= ${minTime} s and >= 5 timed calls; the ${stat} call is reported (median and best kept)`,
      stat,
      matvec: { cols: MV_COLS, targetBytes: MV_BYTES, tokens: 1 },
      matmul: { rows: MM_ROWS, cols: MM_COLS, tokens: tokenCounts },
      ref: { rows: REF_ROWS, cols: REF_COLS, tokens: [1, REF_TOKENS] },
      bandwidth: { kernel: 'read_bandwidth (src/kernels/wasm/c/bench.c)', bytes: bwBytes },
      units: 'GB/s = 1e9 weight bytes per second; GFLOP/s = 2*R*C*T / 1e9 per second',
      quick,
    },
    bandwidth: bandwidths,
    results: rows,
    target: { ...TARGET, ...verdict },
    notes,
    table: mainTable,
    gemm: gemmRows,
    gemmTable,
  };
  const file = writeResults('kernels', started, report);
  console.log(`\nwrote ${file} and bench/results/kernels-latest.json`);
}
