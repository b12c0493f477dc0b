// `switchyard tokenize`: the golden prompt gives exactly llama.cpp's prompt tokens (BOS added as
// the model's metadata says), --decode gives the text back, and mistakes get one clear line.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { goldenPath, skipGolden } from '../helpers/golden.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });

describe.skipIf(skipGolden('switchyard tokenize on golden models'))('switchyard tokenize', () => {
  // One model per golden vocabulary: llama-spm, deepseek-coder, phi-3.
  it.each(['llama_dense', 'qwen3moe', 'phimoe'])('%s: the golden prompt gives llama.cpp prompt_tokens', (model) => {
    const json = JSON.parse(readFileSync(goldenPath(model, `${model}-Q4_K_M.json`), 'utf8'));
    const r = run(['tokenize', goldenPath(model, `${model}-Q4_K_M.gguf`), '--file', goldenPath('prompt.txt'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(json.prompt_tokens);
  });

  it('--decode turns the ids back into the text; --no-special leaves BOS out', () => {
    const gguf = goldenPath('qwen3moe/qwen3moe-Q4_K_M.gguf');
    const ids = JSON.parse(run(['tokenize', gguf, 'Call me Ishmael.', '--json', '--no-special']).stdout);
    expect(ids.length).toBeGreaterThan(2);
    const back = run(['tokenize', gguf, JSON.stringify(ids), '--decode']);
    expect(back.status, back.stderr).toBe(0);
    expect(back.stdout).toBe('Call me Ishmael.\n');
    const table = run(['tokenize', gguf, 'Call me']);
    expect(table.stdout).toMatch(/^ *\d+ "<｜begin▁of▁sentence｜>"\n/);
    expect(table.stdout).toMatch(/tokens\n$/);
  });
});

describe('switchyard tokenize errors', () => {
  it('names what is wrong in one line', () => {
    const noText = run(['tokenize', 'package.json']);
    expect(noText.status).toBe(2);
    expect(noText.stderr.trim()).toBe('switchyard: tokenize: give the text as an argument or with --file <path>');
    const badIds = run(['tokenize', 'missing.gguf', 'one two', '--decode']);
    expect(badIds.status).toBe(2);
    expect(badIds.stderr).toMatch(/missing\.gguf: cannot open: no such file/);
  });
});
