/**
 * The routing commands and flags of the CLI on the embedded model: run with routing controls and
 * self-contrast; trace -> analyze (text, JSON, a self-contained HTML report); steer writes a
 * profile that --steer applies; mistakes are one line and exit status 2.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readSteeringProfile } from '../../src/router/steering.js';
import { readTrace } from '../../src/router/trace.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', '--threads', '2', ...args], { cwd: root, encoding: 'utf8', timeout: 90_000 });
const dir = mkdtempSync(path.join(tmpdir(), 'sy-cli-routing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const RUN = ['run', 'The state of the Union', '-n', '12', '--temp', '0'];
const textA = path.join(dir, 'a.txt');
const textB = path.join(dir, 'b.txt');
writeFileSync(textA, 'The Congress shall have power to lay and collect taxes, duties, imposts and excises, to pay the debts. '.repeat(6));
writeFileSync(textB, 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse. '.repeat(6));

describe('switchyard routing flags and commands', () => {
  it('run takes routing controls and self-contrast', () => {
    for (const flags of [['--experts-k', '3', '--ban', '0:1,1:2'], ['--experts-top-p', '0.5,1,4', '--experts-skip', '0.2'], ['--contrast', '0.5,0.1']]) {
      const r = cli([...RUN, ...flags]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim().length).toBeGreaterThan(0);
    }
  });

  it.each([
    [['--experts-k', '99'], /routing\.topK must be a whole number from 1 to 16/],
    [['--ban', '0-1'], /--ban: '0-1' should be block:expert/],
    [['--experts-top-p', '1.5'], /--experts-top-p must be a number from 0 to 1/],
    [['--steer', 'missing.json'], /missing\.json/],
  ])('%j: one line, exit status 2', (flags, why) => {
    const r = cli([...RUN, ...flags]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
  });

  it('trace, then analyze to text, JSON and a self-contained HTML report', () => {
    const trace = path.join(dir, 'a.bin');
    const t = cli(['trace', '-f', textA, '--out', trace, '--peaks']);
    expect(t.status, t.stderr).toBe(0);
    const loaded = readTrace(trace);
    expect(loaded.layers).toEqual([0, 1, 2, 3]);
    const jsonl = path.join(dir, 'a.jsonl');
    expect(cli(['trace', '-f', textA, '--out', jsonl]).status).toBe(0);
    expect([...readTrace(jsonl).ids]).toEqual([...loaded.ids]);
    const html = path.join(dir, 'report.html');
    const a = cli(['analyze', trace, '--html', html]);
    expect(a.status, a.stderr).toBe(0);
    expect(existsSync(html)).toBe(true);
    expect(readFileSync(html, 'utf8')).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
    const j = cli(['analyze', trace, '--json', '--budgets', '8,24']);
    expect(j.status, j.stderr).toBe(0);
    const slots = (JSON.parse(j.stdout) as { cache: { slots: number }[] }).cache.map((c) => c.slots);
    expect(new Set(slots)).toEqual(new Set([8, 24]));
  });

  it('steer writes a profile that --steer applies', () => {
    const out = path.join(dir, 'steer.json');
    const s = cli(['steer', '--a', textA, '--b', textB, '--out', out, '--action', 'ban', '--count', '3']);
    expect(s.status, s.stderr).toBe(0);
    expect(readSteeringProfile(out).ban).toHaveLength(3);
    const r = cli([...RUN, '--steer', out]);
    expect(r.status, r.stderr).toBe(0);
    const m = cli(['steer', '-f', textA, '--markers', 'taxes,debts', '--out', path.join(dir, 'm.json')]);
    expect(m.status, m.stderr).toBe(0);
    expect(m.stdout).toMatch(/nPMI/);
  });
});
