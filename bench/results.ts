/** What every benchmark records with its results: the commit, and where the JSON goes. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The checked-out commit and whether tracked files differ from it. */
export function gitInfo(): { commit?: string; dirty?: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return { commit, dirty };
  } catch {
    return {};
  }
}

/** Writes bench/results/<name>-<timestamp>.json and <name>-latest.json; returns the first path. */
export function writeResults(name: string, started: Date, report: unknown): string {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const stamp = started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(`${dir}${name}-${stamp}.json`, json);
  writeFileSync(`${dir}${name}-latest.json`, json);
  return `bench/results/${name}-${stamp}.json`;
}
