/**
 * Formats benchmark: how long opening a GGUF takes (header only; tensor data stays in the file)
 * and how fast tensor data reaches wasm memory by positional reads.
 * - A sparse ~26 GB GGUF with the layout of Mixtral-8x7B in Q4_K (real 32k vocabulary when
 *   ../shared is present) shows that opening does not depend on the file's size.
 * - Reads of a 264 MB expert stack of that file go through the read path without disk (holes).
 * - Reads of every tensor of the golden files (page cache) show the real-file rate.
 * Prints a table and writes bench/results/formats-<date>.json and formats-latest.json.
 * Usage: npm run bench:formats [-- --no-json]
 */
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GGMLType } from '../src/core/dtypes.js';
import { Heap } from '../src/core/heap.js';
import { GGUFFile, type GGUFKV, type GGUFWriteTensor, kv, layoutGGUF } from '../src/formats/gguf/index.js';
import { gitInfo, writeResults } from './results.js';

const noJson = process.argv.includes('--no-json');
const started = new Date();
const root = fileURLToPath(new URL('..', import.meta.url));
const golden = path.resolve(root, '../shared/golden');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}
async function timeIt(runs: number, f: () => Promise<void>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

/** Mixtral-8x7B's tensor list (32 layers, D 4096, F 14336, 8 experts, GQA 32/8), Q4_K weights. */
function mixtralTensors(): Omit<GGUFWriteTensor, 'data'>[] {
  const D = 4096;
  const F = 14336;
  const E = 8;
  const t: Omit<GGUFWriteTensor, 'data'>[] = [{ name: 'token_embd.weight', type: GGMLType.Q4_K, shape: [32000, D] }];
  for (let b = 0; b < 32; b++) {
    const blk = (n: string, type: number, shape: number[]) => t.push({ name: `blk.${b}.${n}`, type, shape });
    blk('attn_norm.weight', GGMLType.F32, [D]);
    blk('attn_q.weight', GGMLType.Q4_K, [D, D]);
    blk('attn_k.weight', GGMLType.Q4_K, [1024, D]);
    blk('attn_v.weight', GGMLType.Q6_K, [1024, D]);
    blk('attn_output.weight', GGMLType.Q4_K, [D, D]);
    blk('ffn_norm.weight', GGMLType.F32, [D]);
    blk('ffn_gate_inp.weight', GGMLType.F32, [E, D]);
    blk('ffn_gate_exps.weight', GGMLType.Q4_K, [E, F, D]);
    blk('ffn_up_exps.weight', GGMLType.Q4_K, [E, F, D]);
    blk('ffn_down_exps.weight', GGMLType.Q6_K, [E, D, F]);
  }
  t.push({ name: 'output_norm.weight', type: GGMLType.F32, shape: [D] });
  t.push({ name: 'output.weight', type: GGMLType.Q6_K, shape: [32000, D] });
  return t;
}

async function vocabulary(): Promise<{ entries: GGUFKV[]; source: string }> {
  const file = path.join(golden, 'tokenizers/ggml-vocab-llama-spm.gguf');
  if (existsSync(file)) {
    const g = await GGUFFile.open(file);
    const entries = g.metadata.entries.filter((e) => e.key.startsWith('tokenizer.'));
    await g.close();
    return { entries, source: 'llama-spm (32000 tokens)' };
  }
  const tokens = Array.from({ length: 32000 }, (_, i) => `tok${i}`);
  return { entries: [kv.strings('tokenizer.ggml.tokens', tokens)], source: 'synthetic 32000 tokens' };
}

const rows: { case: string; value: number; unit: string; note: string }[] = [];
const dir = mkdtempSync(path.join(tmpdir(), 'sy-bench-formats-'));
try {
  // 1. A sparse Mixtral-sized file: header written, data section a hole.
  const vocab = await vocabulary();
  const tensors = mixtralTensors();
  const metadata = [
    kv.string('general.architecture', 'llama'),
    kv.u32('llama.block_count', 32),
    kv.u32('llama.expert_count', 8),
    kv.u32('llama.expert_used_count', 2),
    ...vocab.entries,
  ];
  const layout = layoutGGUF({ metadata, tensors });
  const big = path.join(dir, 'mixtral-8x7b-like.gguf');
  const fd = openSync(big, 'w');
  writeSync(fd, layout.header);
  ftruncateSync(fd, layout.header.length + layout.dataBytes);
  closeSync(fd);
  const size = layout.header.length + layout.dataBytes;
  const openMs = await timeIt(7, async () => (await GGUFFile.open(big)).close());
  rows.push({ case: `open ${(size / 1e9).toFixed(1)} GB GGUF (${tensors.length} tensors, ${vocab.source})`, value: openMs, unit: 'ms', note: 'median of 7; header only' });

  // 2. Positional reads of one expert stack into wasm memory (holes: no disk, just the read path).
  const g = await GGUFFile.open(big);
  const name = 'blk.0.ffn_gate_exps.weight';
  const bytes = g.tensor(name).byteLength;
  const heap = new Heap({ initialBytes: bytes + (16 << 20) });
  const t = await g.load(name, heap.arena('weights')); // first touch of the pages
  const warmMs = await timeIt(5, () => g.readInto(name, t.bytes));
  rows.push({ case: `read ${(bytes / 1e6).toFixed(0)} MB expert stack into reused wasm pages`, value: bytes / 1e6 / warmMs, unit: 'GB/s', note: 'sparse file: read path without disk' });
  await g.close();

  // 3. Every tensor of the golden files from the page cache.
  if (existsSync(golden)) {
    const files = readdirSync(golden, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !['tokenizers', 'templates', 'quants', 'tools', 'excerpt_tokens'].includes(d.name))
      .flatMap((d) => readdirSync(path.join(golden, d.name)).filter((f) => f.endsWith('.gguf')).map((f) => path.join(golden, d.name, f)));
    let total = 0;
    const opened = await Promise.all(files.map((f) => GGUFFile.open(f)));
    const h2 = new Heap({ initialBytes: 64 << 20 });
    const arena = h2.arena('weights');
    const dest = arena.alloc(Math.max(...opened.flatMap((f) => [...f.tensors.values()].map((x) => x.byteLength))), 'read buffer');
    const readAll = async () => {
      total = 0;
      for (const f of opened) {
        for (const info of f.tensors.values()) {
          await f.readInto(info.name, new Uint8Array(h2.memory.buffer, dest.offset, info.byteLength));
          total += info.byteLength;
        }
      }
    };
    await readAll(); // page cache warm-up
    const ms = await timeIt(5, readAll);
    rows.push({ case: `read every tensor of ${files.length} golden GGUFs (${(total / 1e6).toFixed(0)} MB, page cache)`, value: total / 1e6 / ms, unit: 'GB/s', note: 'one positional read per tensor' });
    const openAll = await timeIt(5, async () => {
      for (const f of files) await (await GGUFFile.open(f)).close();
    });
    rows.push({ case: `open ${files.length} golden GGUFs`, value: openAll / files.length, unit: 'ms/file', note: '32k-token vocabularies' });
    await Promise.all(opened.map((f) => f.close()));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const machine = `${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} threads), node ${process.versions.node}`;
console.log(`bench:formats on ${machine}\n`);
const w = Math.max(...rows.map((r) => r.case.length));
for (const r of rows) console.log(`  ${r.case.padEnd(w)}  ${r.value.toFixed(2).padStart(8)} ${r.unit.padEnd(7)} ${r.note}`);
if (!noJson) {
  const file = writeResults('formats', started, { bench: 'formats', date: started.toISOString(), machine, git: gitInfo(), results: rows });
  console.log(`\nwrote ${file} and bench/results/formats-latest.json`);
}
