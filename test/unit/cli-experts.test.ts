/**
 * The expert-cache flags of the CLI on the embedded model: --expert-memory gives the same text as
 * the resident run and --stats reports the cache; impossible budgets and bad flags are one line
 * and exit status 2; `switchyard experts` writes a profile that --pin reads; `inspect
 * --expert-memory` says what a budget implies.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readExpertProfile } from '../../src/experts/profile.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', '--threads', '2', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
const dir = mkdtempSync(path.join(tmpdir(), 'sy-cli-experts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const RUN = ['run', 'The state of the Union', '-n', '24', '--temp', '0'];

describe('switchyard expert cache flags', () => {
  it('--expert-memory 25%: the same text as every expert resident; --stats reports the cache', () => {
    const all = cli([...RUN, '--expert-memory', 'all']);
    const cached = cli([...RUN, '--expert-memory', '25%', '--expert-policy', 'slru', '--prefetch', '2', '--stats']);
    expect(all.status, all.stderr).toBe(0);
    expect(cached.status, cached.stderr).toBe(0);
    expect(cached.stdout).toBe(all.stdout);
    expect(cached.stderr).toMatch(/experts: 25\.0% cached .* slru, shared slots, prefetch 2 layers ahead/);
    expect(cached.stderr).toMatch(/expert cache: 16 slots/);
    expect(cached.stderr).toMatch(/hit rate \d+\.\d%/);
    expect(cached.stderr).toMatch(/prefetch: \d+ experts read ahead/);
  });

  it('cache-aware routing is opt-in and counted', () => {
    const r = cli([...RUN, '--expert-memory', '10%', '--substitute-margin', '0.5', '--drop-below', '0.5', '--stats']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/cache-aware routing: \d+ substituted, \d+ dropped/);
  });

  it.each([
    [['--expert-memory', '1KiB'], /below the minimum of .*one layer's 2 active experts/],
    [['--expert-memory', 'plenty'], /--expert-memory must be a size such as 4GiB/],
    [['--expert-policy', 'fifo'], /--expert-policy must be one of lru, lfu, slru/],
    [['--expert-slots', 'some'], /--expert-slots must be shared or per-layer/],
    [['--prefetch', '-1'], /--prefetch must be a whole number/],
    [['--pin', 'nowhere.json'], /nowhere\.json: no such file/],
  ])('%j: one line, exit status 2', (flags, why) => {
    const r = cli([...RUN, ...flags]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
    expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('npm warn'))).toHaveLength(1);
  });

  it('experts writes a profile that --pin keeps resident', () => {
    const text = path.join(dir, 'calibration.txt');
    writeFileSync(text, 'We the People of the United States, in Order to form a more perfect Union, establish Justice. '.repeat(20));
    const out = path.join(dir, 'profile.json');
    const p = cli(['experts', '-f', text, '--out', out, '--top', '6']);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/block {2}0: #\d+ \d+\.\d%/);
    const profile = readExpertProfile(out);
    expect(profile.pin).toHaveLength(6);
    expect(profile.layers).toHaveLength(4);
    // every token selects 2 experts in each of the 4 layers
    for (const l of profile.layers) expect(l.counts.reduce((a, b) => a + b, 0)).toBe(2 * profile.tokens);
    const r = cli([...RUN, '--expert-memory', '25%', '--pin', out, '--stats']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/6 pinned/);
    expect(JSON.parse(readFileSync(out, 'utf8')).format).toBe('switchyard-expert-profile');
  });

  it('inspect --expert-memory says what the budget holds and what stays resident', () => {
    const r = cli(['inspect', 'models/switchyard-tiny-moe.gguf', '--expert-memory', '25%']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/expert memory 25%: 16 of 64 experts at once \(25\.0%\)/);
    expect(r.stdout).toMatch(/minimum 288 KiB/);
    const j = cli(['inspect', 'models/switchyard-tiny-moe.gguf', '--expert-memory', '50%', '--json']);
    expect(JSON.parse(j.stdout).expertMemory.plan.slots).toBe(32);
  });
});
