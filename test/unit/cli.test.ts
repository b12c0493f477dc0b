// The switchyard command: default report, JSON, and errors written for people.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });

describe('switchyard CLI', () => {
  beforeAll(() => {
    execFileSync(process.execPath, ['--version']);
  });

  it('with no command reports capabilities, kernels and a passing self-check', () => {
    const r = run([]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/WebAssembly SIMD128: yes/);
    expect(r.stdout).toMatch(/kernels in use: (relaxed|simd128)/);
    expect(r.stdout).toMatch(/kernel self-check: passed/);
  });

  it('info --json on the reference kernels', () => {
    const r = run(['--kernels', 'ref', '--threads', '1', 'info', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.kernels).toBe('ref');
    expect(report.selfCheck).toBe('passed');
  });

  it('bad flags and environment get one clear line, not a stack trace', () => {
    const bad = run(['--threads', 'lots']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--threads: thread count must be a whole number from 1 to 256, got 'lots'/);
    expect(bad.stderr).not.toMatch(/at .*\.ts:\d+/);
    const env = run([], { SWITCHYARD_KERNELS: 'gpu' });
    expect(env.status).toBe(2);
    expect(env.stderr.trim()).toBe("switchyard: SWITCHYARD_KERNELS: unknown kernel build 'gpu' (choose one of auto, relaxed, simd128, ref)");
  });
});

describe('switchyard --version', () => {
  it('prints the package version', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', '--version'], { cwd: root, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(`${root}/package.json`, 'utf8')).version);
  });
});
