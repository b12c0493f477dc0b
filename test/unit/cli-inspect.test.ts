// `switchyard inspect`: the summary of a golden model against numbers worked out by hand from
// ../shared/golden/ARCHITECTURES.md, and errors for people.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exportGGUFToHuggingFace } from '../../src/weights/hf/export.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });

describe.skipIf(skipGolden('switchyard inspect on golden models'))('switchyard inspect', () => {
  it('qwen2moe Q4_K_M: parameters, experts, quantization mix', () => {
    const r = run(['inspect', goldenPath('qwen2moe/qwen2moe-Q4_K_M.gguf'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    // token_embd + output (64 x 32256 each) + output_norm, and per layer: norms 2x64, q 64x64,
    // k/v 64x32, biases 64+32+32, o 64x64, router 64x12, experts 3x64x128x12, shared gate 64,
    // shared expert 3x64x256.
    const perLayer = 64 + 4096 + 2048 + 2048 + 64 + 32 + 32 + 4096 + 64 + 768 + 294912 + 64 + 49152;
    const total = 2 * 64 * 32256 + 64 + 2 * perLayer;
    const experts = 2 * 12 * 3 * 64 * 128;
    expect(s.parameters).toEqual({ total, experts, activePerToken: total - experts + (experts * 4) / 12 });
    expect(s.experts).toEqual({ count: 12, used: 4, shared: 1, layers: 2 });
    expect(s.architecture).toBe('qwen2moe');
    expect(s.fileType).toBe('MOSTLY_Q4_K_M');
    expect(s.tensors).toHaveLength(37);
    // The golden JSON's tensor types, counted.
    const json = JSON.parse(readFileSync(goldenPath('qwen2moe/qwen2moe-Q4_K_M.json'), 'utf8'));
    const counts = Object.fromEntries(Object.entries(s.types).map(([t, v]) => [t, (v as { tensors: number }).tensors]));
    expect(counts).toEqual(json.tensor_type_counts);
    expect(s.memory.denseBytes + s.memory.expertBytes).toBe(s.memory.weightBytes);
  });

  it('prints a readable summary and, on request, every tensor', () => {
    const r = run(['inspect', goldenPath('mixtral/mixtral-Q4_0.gguf'), '--tensors']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/architecture +llama/);
    expect(r.stdout).toMatch(/experts +8 per layer in 2 layers, 2 used per token/);
    expect(r.stdout).toMatch(/blk\.1\.ffn_down_exps\.weight +Q4_0 +\[8, 64, 256\]/);
  });
});

describe.skipIf(skipGolden('switchyard inspect on a Hugging Face folder'))('switchyard inspect <hf-folder>', () => {
  it('summarises a checkpoint folder as the GGUF it converts to (same parameters and experts)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sy-inspect-'));
    try {
      const gguf = goldenPath('qwen2moe/qwen2moe-Q4_K_M.gguf');
      await exportGGUFToHuggingFace(gguf, dir);
      const fromFolder = run(['inspect', dir, '--json']);
      expect(fromFolder.status, fromFolder.stderr).toBe(0);
      const a = JSON.parse(fromFolder.stdout);
      const b = JSON.parse(run(['inspect', gguf, '--json']).stdout);
      expect(a.parameters).toEqual(b.parameters);
      expect(a.experts).toEqual(b.experts);
      const names = (x: { tensors: { name: string }[] }) => x.tensors.map((t) => t.name).sort();
      expect(names(a)).toEqual(names(b));
      expect(a.format).toMatch(/Hugging Face safetensors/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('switchyard inspect errors', () => {
  it('names a missing file and a file that is not GGUF, in one line', () => {
    const missing = run(['inspect', 'no-such-model.gguf']);
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim()).toBe('switchyard: no-such-model.gguf: cannot open: no such file');
    const notGGUF = run(['inspect', 'package.json']);
    expect(notGGUF.status).toBe(2);
    expect(notGGUF.stderr).toMatch(/package\.json: not a GGUF file/);
  });
});
