/**
 * `npm run bench:offload`: expert offloading (src/experts/) measured. For each model, each
 * budget (share of the expert bytes), policy and prefetch setting, a child process loads the
 * model with that expert cache, evaluates a prompt in one step, then decodes teacher-forced
 * (one token per step from a fixed token stream, so routing follows real text on the trained
 * model instead of a greedy loop repeating itself) and reports: decode tokens/s and its ratio
 * to the fully resident run, hit rate (needed experts resident or already being read), ready
 * rate, bytes read per token, prefetch precision, time stalled per token, and whether every
 * logit matched the resident run bit for bit (an FNV hash of all logits).
 *
 * Models: `tiny` (the embedded trained model: real routing, 16 experts x 4 layers), and the
 * `olmoe` / `qwen3` shapes of bench/make-shapes.ts (random weights: near-uniform routing, so they
 * measure I/O and overlap). Cache-aware routing (inexact) is measured on the trained model:
 * held-out perplexity of the decoded stream against bytes read per token. With `--cap`, runs
 * also go into a child memory cgroup (cgroup v1 or v2, as root) whose limit keeps the operating
 * system's page cache from holding the file, after the file is dropped from the page cache.
 * Each run is its own process, so one configuration's memory and page cache do not help the next.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { findDefaultModel } from '../src/api/default-model.js';
import { loadModel } from '../src/api/model.js';
import { fmtBytes } from '../src/core/heap.js';
import { expertCacheRates } from '../src/experts/stats.js';
import { type ExpertCacheSettings, Model } from '../src/models/model.js';
import { loadSotu, isHeldOut } from '../src/train/corpus.js';
import { ensureShape, type ShapeName } from './make-shapes.js';
import { gitInfo, writeResults } from './results.js';

interface RunSpec {
  readonly model: string;
  readonly file: string;
  readonly expertMemory: string;
  readonly cache?: ExpertCacheSettings;
  readonly prompt: number;
  readonly decode: number;
  readonly threads: number;
  /** Text tokens (trained model) or pseudo-random ids. */
  readonly stream: 'text' | 'random';
}

interface RunResult {
  readonly ok: boolean;
  readonly error?: string;
  readonly promptTokPerSec?: number;
  readonly decodeTokPerSec?: number;
  readonly hash?: string;
  /** Perplexity of the decoded stream (each step predicts the next token). */
  readonly perplexity?: number;
  readonly stats?: ReturnType<typeof expertCacheRates> & { needed: number; misses: number; prefetchIssued: number; substituted: number; dropped: number };
  readonly peakRss?: number;
}

// ---- the child: one configuration ---------------------------------------------------

/** Tokens of the held-out 2018 address (never trained on), or pseudo-random ids. */
async function tokenStream(spec: RunSpec, model: Model, n: number): Promise<number[]> {
  const V = model.config.vocabSize;
  if (spec.stream === 'random') {
    let s = 12345;
    return Array.from({ length: n }, () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return 3 + (s % (V - 3));
    });
  }
  const sotu = loadSotu().documents;
  const doc = sotu.find((d) => d.id.startsWith('sotu/2018')) ?? sotu.find((_, i) => isHeldOut(i));
  const lm = await loadModel(spec.file, { expertMemory: 'all', threads: 1, contextLength: 8 });
  try {
    return lm.tokenize((doc as { text: string }).text).slice(0, n);
  } finally {
    await lm.close();
  }
}

async function child(spec: RunSpec): Promise<RunResult> {
  const model = await Model.load(spec.file, {
    threads: spec.threads,
    contextLength: spec.prompt + spec.decode + 1,
    expertMemory: spec.expertMemory,
    ...(spec.cache ? { expertCache: spec.cache } : {}),
  });
  try {
    const V = model.config.vocabSize;
    const tokens = await tokenStream(spec, model, spec.prompt + spec.decode + 1);
    let hash = 0x811c9dc5;
    const mix = (logits: Float32Array) => {
      const u = new Uint32Array(logits.buffer, logits.byteOffset, logits.length);
      for (let i = 0; i < u.length; i++) hash = Math.imul(hash ^ (u[i] as number), 16777619) >>> 0;
    };
    let t0 = performance.now();
    mix(model.eval(tokens.slice(0, spec.prompt), 0, { last: true }));
    const promptSeconds = (performance.now() - t0) / 1000;
    model.offload?.cache.resetStats();
    let nll = 0;
    t0 = performance.now();
    for (let i = 0; i < spec.decode; i++) {
      const pos = spec.prompt + i;
      const logits = model.eval([tokens[pos] as number], pos);
      mix(logits);
      let max = Number.NEGATIVE_INFINITY;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[v] as number);
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp((logits[v] as number) - max);
      nll += max + Math.log(sum) - (logits[tokens[pos + 1] as number] as number);
    }
    const decodeSeconds = (performance.now() - t0) / 1000;
    const st = model.offload?.cache.stats();
    return {
      ok: true,
      promptTokPerSec: spec.prompt / promptSeconds,
      decodeTokPerSec: spec.decode / decodeSeconds,
      hash: hash.toString(16).padStart(8, '0'),
      perplexity: Math.exp(nll / spec.decode),
      ...(st
        ? {
            stats: {
              ...expertCacheRates(st),
              needed: st.needed,
              misses: st.misses,
              prefetchIssued: st.prefetchIssued,
              substituted: st.substituted,
              dropped: st.dropped,
            },
          }
        : {}),
      peakRss: process.resourceUsage().maxRSS * 1024,
    };
  } finally {
    await model.close();
  }
}

// ---- the parent: configurations, cgroups, tables --------------------------------------

interface Options {
  models: string[];
  budgets: number[];
  policies: string[];
  prefetch: (number | false)[];
  decode?: number;
  prompt?: number;
  threads: number;
  /** Memory cgroup limit: bytes, or a share of the model file. */
  cap?: { bytes?: number; share?: number };
  cacheAware: boolean;
  json: boolean;
  /** Runs per configuration; the median decode speed is reported. */
  repeat: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    models: ['tiny', 'olmoe', 'qwen3'],
    budgets: [],
    policies: [],
    prefetch: [false, 1],
    threads: Math.min(2, cpus().length),
    cacheAware: true,
    json: true,
    repeat: 1,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    const list = () => v().split(',').filter(Boolean);
    if (a === '--model') o.models = list().flatMap((m) => (m === 'all' ? ['tiny', 'olmoe', 'qwen3'] : [m]));
    else if (a === '--budgets') o.budgets = list().map(Number);
    else if (a === '--policies') o.policies = list();
    else if (a === '--prefetch') o.prefetch = list().map((p) => (p === 'off' ? false : Number(p)));
    else if (a === '--decode') o.decode = Number(v());
    else if (a === '--prompt') o.prompt = Number(v());
    else if (a === '--threads') o.threads = Number(v());
    else if (a === '--cap') o.cap = parseSize(v());
    else if (a === '--no-cache-aware') o.cacheAware = false;
    else if (a === '--repeat') o.repeat = Number(v());
    else if (a === '--no-json') o.json = false;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    } else throw new Error(`unknown option ${a} (see --help)`);
  }
  for (const m of o.models) if (!['tiny', 'olmoe', 'qwen3'].includes(m)) throw new Error(`--model: unknown model '${m}' (tiny, olmoe, qwen3, all)`);
  return o;
}

const HELP = `npm run bench:offload -- [options]
  --model LIST        tiny (the embedded trained model), olmoe, qwen3, or all (default all)
  --budgets LIST      shares of the expert bytes in %, default 10,25,50,100 (shapes: also 5)
  --policies LIST     lru,lfu,slru (default: all three on tiny, lru on the shapes)
  --prefetch LIST     off and/or lookahead layers, default off,1
  --prompt N          prompt tokens (default 64; tiny 128)
  --decode N          teacher-forced decode steps (default 24; tiny 512)
  --threads N         kernel threads (default 2)
  --cap SIZE|SHARE    also run the shapes in a memory cgroup of SIZE (8GiB) or of a share of the
                      model file (45%: 8.3 GiB for the 18.4 GiB Qwen3 shape), the file dropped
                      from the page cache before each run (root only)
  --repeat N          runs per configuration, the median decode speed reported (default 1)
  --no-cache-aware    skip the cache-aware routing table
  --no-json           do not write bench/results/offload-*.json
`;

function parseSize(s: string): { bytes?: number; share?: number } {
  const m = /^(\d+(?:\.\d+)?)(GiB|MiB|%)$/.exec(s);
  if (!m) throw new Error(`--cap: give a size like 8GiB or 512MiB, or a share of the model file like 45%, got '${s}'`);
  if (m[2] === '%') return { share: Number(m[1]) / 100 };
  return { bytes: Math.floor(Number(m[1]) * (m[2] === 'GiB' ? 2 ** 30 : 2 ** 20)) };
}

/** A child memory cgroup of this process's own, or why there is none. */
function makeCgroup(limit: number): { procs: string; remove: () => void } | string {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v1 = lines.find((l) => /^\d+:memory:/.test(l))?.split(':')[2];
  const v2 = lines.find((l) => l.startsWith('0::'))?.slice(3);
  const candidates = [
    v1 !== undefined ? { dir: `/sys/fs/cgroup/memory${v1}`, limitFile: 'memory.limit_in_bytes', swap: 'memory.memsw.limit_in_bytes' } : undefined,
    v2 !== undefined ? { dir: `/sys/fs/cgroup${v2}`, limitFile: 'memory.max', swap: 'memory.swap.max' } : undefined,
  ];
  for (const c of candidates) {
    if (!c || !existsSync(`${c.dir}/${c.limitFile}`)) continue;
    const dir = `${c.dir.replace(/\/$/, '')}/switchyard-bench-${process.pid}`;
    try {
      mkdirSync(dir);
      writeFileSync(`${dir}/${c.limitFile}`, String(limit));
      return {
        procs: `${dir}/cgroup.procs`,
        remove: () => {
          try {
            rmdirSync(dir);
          } catch {
            // still busy: the kernel removes it with its last process
          }
        },
      };
    } catch (e) {
      return `cannot make a memory cgroup under ${c.dir}: ${(e as Error).message}`;
    }
  }
  return 'no writable memory cgroup (cgroup v1 memory controller or v2 memory.max) for this process';
}

/** Drops a file from the page cache (GNU dd: "iflag=nocache count=0" drops the whole file). */
function dropFromPageCache(file: string): void {
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
}

/** `repeat` runs of a configuration: the one with the median decode speed (all must agree on the logits). */
function runMedian(spec: RunSpec, repeat: number, cap?: { procs: string }): RunResult {
  const runs = Array.from({ length: Math.max(1, repeat) }, () => runChild(spec, cap));
  const failed = runs.find((r) => !r.ok);
  if (failed) return failed;
  if (new Set(runs.map((r) => r.hash)).size > 1) return { ok: false, error: `runs of the same configuration gave different logits: ${runs.map((r) => r.hash).join(', ')}` };
  runs.sort((a, b) => (a.decodeTokPerSec as number) - (b.decodeTokPerSec as number));
  return runs[Math.floor(runs.length / 2)] as RunResult;
}

function runChild(spec: RunSpec, cap?: { procs: string }): RunResult {
  const self = fileURLToPath(import.meta.url);
  const args = ['--import', 'tsx', self, '--child', JSON.stringify(spec)];
  const r = cap
    ? spawnSync('sh', ['-c', `echo $$ > "${cap.procs}" && exec "${process.execPath}" "$@"`, 'sh', ...args], { encoding: 'utf8' })
    : spawnSync(process.execPath, args, { encoding: 'utf8' });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as RunResult;
  } catch {
    const why = r.signal ? `killed by ${r.signal}${r.signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exit ${r.status}`;
    return { ok: false, error: `${why}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  }
}

interface Row {
  model: string;
  budget: string;
  policy: string;
  prefetch: string;
  route: string;
  capped: boolean;
  result: RunResult;
  vsResident?: number;
  exact?: boolean;
}

function fmtRow(r: Row): string {
  const x = r.result;
  if (!x.ok) return `| ${r.model} | ${r.budget} | ${r.policy} | ${r.prefetch} | ${r.route} | ${x.error} ||||||||`;
  const s = x.stats;
  const pct = (v?: number) => (v === undefined ? '–' : `${(100 * v).toFixed(1)}`);
  return [
    '',
    r.model + (r.capped ? ' (capped)' : ''),
    r.budget,
    r.policy,
    r.prefetch,
    r.route,
    (x.decodeTokPerSec as number).toFixed(2),
    r.vsResident === undefined ? '–' : `${r.vsResident.toFixed(2)}x`,
    pct(s?.hitRate),
    pct(s?.readyRate),
    s ? fmtBytes(s.bytesPerToken) : '0',
    s && s.prefetchIssued > 0 ? pct(s.prefetchPrecision) : '–',
    s ? (1000 * s.stallPerToken).toFixed(2) : '0',
    (x.perplexity as number).toFixed(2),
    r.exact === undefined ? '–' : r.exact ? 'yes' : 'NO',
    '',
  ].join(' | ').trim();
}

const HEADER = [
  '| model | budget | policy | prefetch | routing | decode tok/s | vs resident | hit % | ready % | read/token | prefetch used % | stall ms/token | stream ppl | = resident |',
  '|---|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|',
];

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = new Date();
  const rows: Row[] = [];
  const print = (r: Row) => {
    rows.push(r);
    process.stdout.write(`${fmtRow(r)}\n`);
  };
  process.stdout.write(`expert offloading, ${o.threads} threads, ${cpus()[0]?.model ?? 'unknown CPU'}\n${HEADER.join('\n')}\n`);
  for (const name of o.models) {
    const tiny = name === 'tiny';
    const file = tiny ? (findDefaultModel() as string) : (await ensureShape(name as ShapeName, { log: (l) => process.stderr.write(`${l}\n`) })).path;
    const base = {
      model: name,
      file,
      prompt: o.prompt ?? (tiny ? 128 : 64),
      decode: o.decode ?? (tiny ? 512 : 24),
      threads: o.threads,
      stream: tiny ? ('text' as const) : ('random' as const),
    };
    const policies = o.policies.length ? o.policies : tiny ? ['lru', 'lfu', 'slru'] : ['lru'];
    const resident = runMedian({ ...base, expertMemory: 'all' }, o.repeat);
    print({ model: name, budget: 'resident', policy: '–', prefetch: '–', route: 'exact', capped: false, result: resident, vsResident: 1, exact: true });
    const row = (budget: number, policy: string, prefetch: number | false, cache: ExpertCacheSettings, route: string, capped = false) => {
      const spec: RunSpec = { ...base, expertMemory: `${budget}%`, cache: { ...cache, policy: policy as 'lru', prefetch } };
      const result = capped ? runChild(spec, capGroup) : runMedian(spec, o.repeat);
      print({
        model: name,
        budget: `${budget}%`,
        policy,
        prefetch: prefetch === false ? 'off' : String(prefetch),
        route,
        capped,
        result,
        ...(resident.ok && result.ok ? { vsResident: (result.decodeTokPerSec as number) / (resident.decodeTokPerSec as number) } : {}),
        ...(route === 'exact' && resident.ok && result.ok ? { exact: result.hash === resident.hash } : {}),
      });
    };
    let capGroup: { procs: string; remove: () => void } | undefined;
    // The shapes route on random weights: 5% shows reads at a budget below one token's working set.
    const budgets = o.budgets.length ? o.budgets : tiny ? [10, 25, 50, 100] : [5, 10, 25, 50, 100];
    for (const budget of budgets) for (const policy of policies) for (const p of o.prefetch) row(budget, policy, p, {}, 'exact');
    if (tiny && o.cacheAware) {
      // Inexact routing: quality (stream perplexity) against bytes read, at small budgets.
      const settings: [string, ExpertCacheSettings][] = [
        ['substitute 0.05', { cacheAware: { substituteMargin: 0.05 } }],
        ['substitute 0.2', { cacheAware: { substituteMargin: 0.2 } }],
        ['drop < 0.3', { cacheAware: { dropBelow: 0.3 } }],
        ['sub 0.1 + drop < 0.3', { cacheAware: { substituteMargin: 0.1, dropBelow: 0.3 } }],
      ];
      for (const budget of [10, 25]) for (const p of [false, 1] as const) for (const [label, s] of settings) row(budget, 'lru', p, s, label);
    }
    if (o.cap !== undefined && !tiny) {
      const limit = o.cap.bytes ?? Math.floor((o.cap.share as number) * statSync(file).size);
      const g = makeCgroup(limit);
      if (typeof g === 'string') process.stdout.write(`(no capped runs: ${g})\n`);
      else {
        capGroup = g;
        try {
          process.stdout.write(`capped runs: memory cgroup of ${fmtBytes(limit)}, ${file} dropped from the page cache before each\n`);
          for (const [budget, label, s] of [
            [25, 'exact', {}],
            [25, 'sub 0.1 + drop < 0.3', { cacheAware: { substituteMargin: 0.1, dropBelow: 0.3 } }],
          ] as [number, string, ExpertCacheSettings][]) {
            dropFromPageCache(file);
            row(budget, 'lru', 1, s, label, true);
          }
          dropFromPageCache(file);
          const r = runChild({ ...base, expertMemory: 'all' }, capGroup);
          print({ model: name, budget: 'resident', policy: '–', prefetch: '–', route: 'exact', capped: true, result: r });
        } finally {
          g.remove();
        }
      }
    }
  }
  if (o.json) {
    const out = writeResults('offload', started, { ...gitInfo(), started: started.toISOString(), threads: o.threads, cpu: cpus()[0]?.model, rows });
    process.stdout.write(`results: ${out}\n`);
  }
}

const at = process.argv.indexOf('--child');
if (at >= 0) {
  child(JSON.parse(process.argv[at + 1] as string) as RunSpec)
    .then((r) => process.stdout.write(`${JSON.stringify(r)}\n`))
    .catch((e) => {
      process.stdout.write(`${JSON.stringify({ ok: false, error: String((e as Error).message ?? e) })}\n`);
    });
} else {
  main().catch((e) => {
    process.stderr.write(`bench:offload: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
