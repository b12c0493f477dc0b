#!/usr/bin/env node
// Entry point of the `switchyard` command: runs the compiled CLI in dist/ (built by `npm ci`
// through the `prepare` script, or by `npm run build`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('switchyard: the package is not built yet; run `npm run build` (or `npm ci`) first.\n');
  process.exit(2);
}
const { main } = await import(entry.href);
await main(process.argv);
