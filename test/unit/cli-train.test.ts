// `switchyard train`: progress for people on stderr (stages, steps with loss / tokens/s / ETA,
// held-out evaluations, checkpoints), a summary on stdout, resuming by default, and one-line
// errors naming the config file or field (exit status 2). Runs in this process on a 3-step
// version of recipes/ci-tiny.json in a temporary folder.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { formatDuration } from '../../src/cli/train.js';

// biome-ignore lint/suspicious/noExplicitAny: configs here are plain JSON edited in place
type Cfg = any;

const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-cli-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    stdout += String(s);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    stderr += String(s);
    return true;
  });
  try {
    await main(['node', 'switchyard', ...args]);
    return { status: Number(process.exitCode ?? 0), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
  }
}

function recipe(changes: (c: Cfg) => void): string {
  const c = JSON.parse(readFileSync('recipes/ci-tiny.json', 'utf8'));
  c.training.steps = 3;
  c.training.evalEvery = 2;
  c.training.evalTokens = 1024;
  c.output.dir = path.join(dir, 'run');
  changes(c);
  const file = path.join(dir, `cfg-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(c));
  return file;
}

describe('switchyard train', () => {
  it('trains, reports progress and held-out loss, checkpoints, and resumes', async () => {
    const cfg = recipe(() => {});
    const r = await run(['train', '--config', cfg, '--threads', '2', '--stop-after', '2']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/loading the corpus/);
    expect(r.stderr).toMatch(/training a 512-token byte-level BPE vocabulary/);
    expect(r.stderr).toMatch(/held-out loss at step 0 .*sotu \d+\.\d{3} \(ppl \d+/);
    expect(r.stderr).toMatch(/step 1\/3 loss \d+\.\d{4} lr .* tok\/s \| ETA/); // off a terminal: the first step, then every 10 s
    expect(r.stderr).toMatch(/checkpoint at step 2: /);
    expect(r.stdout).toMatch(/2\/3 steps, 1,024 tokens/);
    expect(r.stdout).toMatch(/stopped early; run the same command again to resume/);
    const again = await run(['train', '--config', cfg, '--threads', '2']);
    expect(again.status).toBe(0);
    expect(again.stderr).toMatch(/resuming at step 2 of 3/);
    expect(again.stdout).toMatch(/3\/3 steps, 1,536 tokens/);
  }, 60_000);

  it('refuses to resume a checkpoint made with another model, naming both ways out', async () => {
    const r = await run(['train', '--config', recipe((c) => (c.seed = 99))]);
    expect(r.stderr.trim()).toMatch(/checkpoint\.gguf was made with a different seed, corpus, tokenizer, model or batch shape .*--fresh/);
    expect(r.status).toBe(2);
    const shapes = await run(['train', '--config', recipe((c) => (c.model.dim = 48))]);
    expect(shapes.stderr.trim()).toMatch(/tensor 'token_embd\.weight' has shape \[512, 64\], the model expects \[512, 48\]/);
    expect(shapes.status).toBe(2);
  });

  it.each([
    [['train', '--config', 'missing.json'], /^switchyard: cannot read training config missing\.json/],
    [['train', '--config', 'package.json'], /^switchyard: package\.json\.name is not a known field|package\.json\.\w+ is not a known field/],
  ])('%j: one line naming the problem', async (args, message) => {
    const r = await run(args as string[]);
    expect(r.stderr.trim()).toMatch(message);
    expect(r.status).not.toBe(0);
  });

  it('names a bad field of the config', async () => {
    const r = await run(['train', '--config', recipe((c) => (c.model.ffn.router.kind = 'magic'))]);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/model\.ffn\.router\.kind 'magic' is not a router/);
    expect(r.status).toBe(2);
  });

  it('refuses to start a run it could not export, saying why', async () => {
    const r = await run(['train', '--config', recipe((c) => {
      c.model.ffn.router = { kind: 'sigmoid-bias' };
      c.output.gguf = path.join(dir, 'x.gguf');
    })]);
    expect(r.stderr).toMatch(/router 'sigmoid-bias' has no llama\.cpp architecture.*remove output\.gguf/);
    expect(r.status).toBe(2);
  });

  it('formats durations', () => {
    expect(formatDuration(5)).toBe('00:05');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('--:--');
  });
});
