// The model commands of the CLI (`run`, `chat`, `logits`, `perplexity`, `bench`) on golden files:
// logits written by `switchyard logits` equal llama.cpp's golden rows within the fidelity
// tolerances (native kernels 2e-2 σ, --dequantize vs f32math 1e-3 σ; F32 KV cache, as the goldens
// were computed); greedy `run` prints the
// golden greedy continuation; `perplexity --json` and `bench --json` end with the documented
// JSON line; mistakes give one line on stderr and exit status 2 (checked in this process).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { loadTokenizer } from '../../src/cli/tokenize.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[], input?: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', '--threads', '2', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    input,
  });

const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-cli-models-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface VariantJson {
  prompt_tokens: number[];
  greedy_tokens: number[];
  logits_file: string;
  logits_positions: number[];
  logits_f32_reference_std: number;
  f32math_reference: { logits_file: string; logits_positions: number[] };
}
const variant = (model: string, v: string): VariantJson => JSON.parse(readFileSync(goldenPath(model, `${model}-${v}.json`), 'utf8'));

/** max|Δ| / σ between our [T, V] logits and the golden rows (stored positions only). */
function maxDiff(ours: Float32Array, V: number, model: string, file: string, positions: number[], sigma: number): number {
  const b = readFileSync(goldenPath(model, file));
  const ref = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  let worst = 0;
  positions.forEach((p, r) => {
    for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs((ours[p * V + i] as number) - (ref[r * V + i] as number)));
  });
  return worst / sigma;
}

function readLogits(file: string): Float32Array {
  const b = readFileSync(file);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Float32Array.from({ length: b.byteLength / 4 }, (_, i) => view.getFloat32(4 * i, true));
}

/** The last line of a command's stdout, parsed. */
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1) as string);

describe.skipIf(skipGolden('switchyard model commands on golden models'))('switchyard model commands', () => {
  it('logits: llama.cpp native rows within 2e-2 σ (mixtral Q4_K_M)', () => {
    const j = variant('mixtral', 'Q4_K_M');
    const out = path.join(dir, 'mixtral.bin');
    const r = cli(['logits', goldenPath('mixtral', 'mixtral-Q4_K_M.gguf'), '--tokens', j.prompt_tokens.join(','), '--out', out, '--kv-cache', 'f32']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`[${j.prompt_tokens.length}, 32000]`);
    const logits = readLogits(out);
    expect(logits.length).toBe(j.prompt_tokens.length * 32000);
    expect(maxDiff(logits, 32000, 'mixtral', j.logits_file, j.logits_positions, j.logits_f32_reference_std)).toBeLessThanOrEqual(2e-2);
  });

  it('logits --dequantize: the f32math rows within 1e-3 σ (llama_dense Q4_K_M)', () => {
    const j = variant('llama_dense', 'Q4_K_M');
    const out = path.join(dir, 'llama.bin');
    const r = cli(['logits', goldenPath('llama_dense', 'llama_dense-Q4_K_M.gguf'), '--tokens', j.prompt_tokens.join(','), '--out', out, '--dequantize', '--kv-cache', 'f32']);
    expect(r.status, r.stderr).toBe(0);
    const ref = j.f32math_reference;
    expect(maxDiff(readLogits(out), 32000, 'llama_dense', ref.logits_file, ref.logits_positions, j.logits_f32_reference_std)).toBeLessThanOrEqual(1e-3);
  });

  it('run --temp 0: prints the golden greedy continuation, then the figures on stderr', async () => {
    const j = variant('llama_dense', 'Q4_K_M');
    const gguf = goldenPath('llama_dense', 'llama_dense-Q4_K_M.gguf');
    const r = cli(['run', gguf, '-p', readFileSync(goldenPath('prompt.txt'), 'utf8'), '--temp', '0', '-n', '8', '--kv-cache', 'f32']);
    expect(r.status, r.stderr).toBe(0);
    const tok = await loadTokenizer(gguf);
    expect(r.stdout).toBe(`${tok.decode(j.greedy_tokens.slice(0, 8))}\n`);
    expect(r.stderr).toMatch(/^prompt: \d+ tokens, [\d.]+ tokens\/s \| generation: 8 tokens, [\d.]+ tokens\/s \| stop: length \| peak memory /m);
  });

  it('chat: one reply per piped line until /exit', () => {
    const r = cli(['chat', goldenPath('qwen3moe', 'qwen3moe-Q4_K_M.gguf'), '-n', '3', '--seed', '1'], 'Hello\nHow are you?\n/exit\nnot read\n');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.match(/^prompt: /gm)?.length).toBe(2);
    expect(r.stdout.split('\n').filter(Boolean).length).toBeLessThanOrEqual(2);
  });

  it('perplexity --json: progress per chunk on stderr, {"chunks", "final"} as the last line', () => {
    const text = path.join(dir, 'text.txt');
    writeFileSync(text, `${readFileSync(goldenPath('moby_dick_excerpt.txt'), 'utf8').slice(0, 1500)}\n`);
    const r = cli(['perplexity', goldenPath('llama_dense', 'llama_dense-Q4_K_M.gguf'), '-f', text, '--ctx', '64', '--batch', '32', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = lastJson(r.stdout);
    expect(Object.keys(j)).toEqual(['chunks', 'final']);
    expect(j.chunks.length).toBeGreaterThanOrEqual(3);
    expect(j.final).toBe(j.chunks.at(-1));
    expect(j.chunks.every((v: number) => Number.isFinite(v) && v > 1)).toBe(true);
    expect(r.stderr).toContain(`[${j.chunks.length}]`);
  });

  it('bench --json: prompt and decode speed at 1 and all threads, peak RSS', () => {
    const gguf = goldenPath('llama_dense', 'llama_dense-Q4_K_M.gguf');
    const r = cli(['bench', gguf, '--json', '--prompt-tokens', '8', '--decode-tokens', '4']);
    expect(r.status, r.stderr).toBe(0);
    const j = lastJson(r.stdout);
    expect(Object.keys(j)).toEqual(['model', 'results', 'peak_rss_bytes']);
    expect(j.model).toBe(gguf);
    expect(j.results.map((x: { threads: number }) => x.threads)).toEqual([1, 2]);
    for (const x of j.results) {
      expect(Object.keys(x)).toEqual(['threads', 'prompt_tokens', 'prompt_tokens_per_second', 'decode_tokens', 'decode_tokens_per_second']);
      expect(x.prompt_tokens).toBe(8);
      expect(x.decode_tokens).toBe(4);
      expect(x.prompt_tokens_per_second).toBeGreaterThan(0);
      expect(x.decode_tokens_per_second).toBeGreaterThan(0);
    }
    expect(j.peak_rss_bytes).toBeGreaterThan(1e6);
  });
});

/** Runs the CLI in this process (as bin/switchyard does): its stderr and exit status. */
async function inProcess(args: string[]): Promise<{ status: number; stderr: string }> {
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    await main(['node', 'switchyard', ...args]);
    return { status: Number(process.exitCode ?? 0), stderr };
  } finally {
    spy.mockRestore();
    process.exitCode = undefined;
  }
}

describe('switchyard model commands: mistakes get one line and status 2', () => {
  // package.json is an existing file: the checks below come before any model is read.
  it.each([
    [['run', 'missing.gguf', 'hi'], /^switchyard: run: missing\.gguf: no such file$/],
    [['run', 'package.json', 'hi', '-p', 'again'], /^switchyard: run: give the prompt once/],
    [['run', 'package.json', 'hi', '--temp', '-1'], /^switchyard: --temp must be a number >= 0, got '-1'$/],
    [['run', 'package.json', 'hi', '--top-p', '2'], /^switchyard: --top-p must be a number from 0 to 1, got '2'$/],
    [['run', 'package.json', 'hi', '-n', 'many'], /^switchyard: --max-tokens must be a whole number >= 0, got 'many'$/],
    [['run', 'package.json', 'hi', '--seed', '1.5'], /^switchyard: --seed must be a whole number from 0 to 4294967295/],
    [['chat', 'package.json', '--ctx', '0'], /^switchyard: --ctx must be a whole number >= 1, got '0'$/],
    [['logits', 'package.json', '--out', 'x.bin'], /^switchyard: logits: give the token ids with --tokens/],
    [['logits', 'package.json', '--tokens', '1,2'], /^switchyard: logits: give the output file with --out/],
    [['logits', 'package.json', '--tokens', '1,x', '--out', 'x.bin'], /^switchyard: logits: --tokens takes token ids like 1,2,3, got '1,x'$/],
    [['perplexity', 'package.json'], /^switchyard: perplexity: give the text with -f <file>$/],
    [['perplexity', 'package.json', '-f', 'missing.txt'], /^switchyard: perplexity: missing\.txt: no such file$/],
    [['perplexity', 'package.json', '-f', 'package.json', '--ctx', '1'], /^switchyard: --ctx must be a whole number >= 2, got '1'$/],
    [['logits', 'package.json', '--tokens', '1', '--out', 'x.bin', '--kv-cache', 'q8'], /^switchyard: --kv-cache must be one of f16, f32, got 'q8'$/],
    [['bench', 'missing.gguf'], /^switchyard: bench: missing\.gguf: no such file$/],
    [['bench', 'package.json', '--prompt-tokens', '0'], /^switchyard: --prompt-tokens must be a whole number >= 1, got '0'$/],
  ])('%j', async (args, message) => {
    const r = await inProcess(args as string[]);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message as RegExp);
    expect(r.status).toBe(2);
  });

  it.skipIf(skipGolden('switchyard logits on a golden model'))('logits: a token id outside the vocabulary', async () => {
    const r = await inProcess(['logits', goldenPath('llama_dense', 'llama_dense-Q4_K_M.gguf'), '--tokens', '1,32000', '--out', path.join(dir, 'x.bin')]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^switchyard: logits: token id 32000 is outside the vocabulary of .*llama_dense-Q4_K_M\.gguf \(0\.\.31999\)$/);
  });

  it("an unknown flag is commander's error, exit status 1", () => {
    const r = cli(['run', 'package.json', 'hi', '--temperature', '0']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: unknown option '--temperature'/);
  });
});
