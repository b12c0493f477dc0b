#!/usr/bin/env node
// Makes the lean golden-quant fixtures in test/fixtures/quants from the full golden files
// (../shared/golden/quants, made with llama.cpp d32676d77; see its README.md): for each of
// the 17 types, the first 16 rows of <TYPE>.blocks.bin and <TYPE>.dequant.f32, plus a
// README.md with their sha256. test/kernels/quants-golden.test.ts reads them when the full
// files are absent (a fresh clone).
// Usage: node scripts/make-quant-fixtures.mjs [GOLDEN_QUANTS_DIR]
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROWS = 16;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.resolve(process.argv[2] ?? path.resolve(root, '../shared/golden/quants'));
const out = path.join(root, 'test/fixtures/quants');
const meta = JSON.parse(readFileSync(path.join(src, 'quants.json'), 'utf8'));
mkdirSync(out, { recursive: true });

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const lines = [];
for (const t of meta.types) {
  for (const kind of ['blocks', 'dequant']) {
    const full = readFileSync(path.join(src, t.files[kind]));
    if (sha256(full) !== t.sha256[kind]) throw new Error(`${t.files[kind]}: sha256 differs from quants.json`);
    const rowBytes = kind === 'blocks' ? t.row_bytes : 4 * t.row_length;
    const part = full.subarray(0, ROWS * rowBytes);
    writeFileSync(path.join(out, t.files[kind]), part);
    lines.push(`| \`${t.files[kind]}\` | ${part.length} | \`${sha256(part)}\` |`);
  }
}

writeFileSync(
  path.join(out, 'README.md'),
  `# Golden quant fixtures (first ${ROWS} rows)

For each of the ${meta.types.length} GGML types of \`../shared/golden/quants\` (llama.cpp
\`${meta.llama_cpp_commit}\`, see that folder's README.md for the block layouts and how the
files were made and cross-checked): the first ${ROWS} rows of \`<TYPE>.blocks.bin\` (raw blocks,
rows of 256 elements) and of \`<TYPE>.dequant.f32\` (their exact dequantization, little-endian
float32 \`[${ROWS}, 256]\`).

They let \`test/kernels/quants-golden.test.ts\` run from a fresh clone; when
\`../shared/golden/quants\` is present the test uses the full 64-row files instead, and checks
that these fixtures are their first rows.

Made by \`node scripts/make-quant-fixtures.mjs [GOLDEN_QUANTS_DIR]\` (it checks the source
files against the sha256 in \`quants.json\` first). Do not edit by hand.

| file | bytes | sha256 |
|---|---|---|
${lines.join('\n')}
`,
);
console.log(`make-quant-fixtures: wrote ${lines.length} files from ${src} to ${out}`);
