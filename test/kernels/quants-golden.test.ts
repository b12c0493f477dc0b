// Golden dequantization: for all 17 GGML types of shared/golden/quants (llama.cpp d32676d77),
// the reference twin and every wasm build must turn <TYPE>.blocks.bin into exactly the 32-bit
// patterns of <TYPE>.dequant.f32 (signed zeros included; see that folder's README.md).
// Uses the full 64-row files from ../shared/golden/quants when present, else the 16-row
// fixtures of test/fixtures/quants (scripts/make-quant-fixtures.mjs). Without ../shared the
// full-file check is skipped, or fails under CI=true.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { dtypeByName, rowBytes } from '../../src/core/dtypes.js';
import { allocTensor, f32Tensor } from '../../src/core/tensor.js';
import type { KernelBackend } from '../../src/kernels/backend.js';
import { bitDiffs, device, disposeDevices, ref, wasmBuilds } from '../helpers/backends.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FULL_DIR = path.resolve(repoRoot, '../shared/golden/quants');
const FIXTURE_DIR = path.join(repoRoot, 'test/fixtures/quants');
const haveFull = existsSync(path.join(FULL_DIR, 'quants.json'));
const dir = haveFull ? FULL_DIR : FIXTURE_DIR;
const source = haveFull ? `${FULL_DIR} (64 rows)` : 'test/fixtures/quants (16 rows)';

const TYPES = [
  'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K',
  'IQ4_NL', 'IQ4_XS', 'MXFP4', 'TQ1_0', 'TQ2_0',
] as const;
const ROW = 256; // every golden row has 256 elements
const BACKENDS = ['ref', ...wasmBuilds()] as const;

const passed = new Map<string, string[]>();
afterAll(async () => {
  const types = TYPES.filter((t) => passed.get(t)?.length === BACKENDS.length);
  const failing = TYPES.filter((t) => !types.includes(t));
  console.log(
    `golden quants: ${types.length} types x ${BACKENDS.length} backends bit-exact (${BACKENDS.join(', ')}; ${source})` +
      (failing.length ? `; not bit-exact on every backend: ${failing.join(', ')}` : ''),
  );
  await disposeDevices();
});

function load(file: string): Uint8Array {
  return new Uint8Array(readFileSync(path.join(dir, file)));
}

describe.each(TYPES)('golden dequantization of %s', (name) => {
  it.each(BACKENDS)(`${name} on %s reproduces dequant.f32 bit for bit`, async (backendName) => {
    const type = dtypeByName(name).id;
    const blocks = load(`${name}.blocks.bin`);
    const want = new Float32Array(load(`${name}.dequant.f32`).buffer);
    const rows = blocks.length / rowBytes(type, ROW);
    expect(rows * ROW).toBe(want.length);

    // Tensors live in a wasm heap; the ref backend reads the same heap.
    const dev = await device(backendName === 'ref' ? BACKENDS[1] ?? 'simd128' : backendName);
    const backend: KernelBackend = backendName === 'ref' ? ref : dev.backend;
    const arena = dev.heap.arena('golden');
    try {
      const src = allocTensor(arena, type, [rows, ROW]).setBytes(blocks);
      const out = f32Tensor(arena, [rows, ROW]);
      backend.dequantize(out, src);
      const got = out.f32().slice();
      const diffs = bitDiffs(got, want);
      const show = diffs.slice(0, 4).map((i) => `[${i}] got ${got[i]} want ${want[i]}`).join(', ');
      expect(diffs.length, `${name} on ${backendName}: ${diffs.length} of ${want.length} values differ: ${show}`).toBe(0);
      passed.set(name, [...(passed.get(name) ?? []), backendName]);
    } finally {
      arena.reset();
    }
  });
});

describe('golden quant files', () => {
  if (haveFull) {
    it('the full files match quants.json and the fixtures are their first rows', () => {
      const meta = JSON.parse(readFileSync(path.join(FULL_DIR, 'quants.json'), 'utf8')) as {
        types: { type: string; files: Record<string, string>; sha256: Record<string, string> }[];
      };
      expect(meta.types.map((t) => t.type).sort()).toEqual([...TYPES].sort());
      for (const t of meta.types) {
        for (const kind of ['blocks', 'dequant']) {
          const full = readFileSync(path.join(FULL_DIR, t.files[kind]));
          expect(createHash('sha256').update(full).digest('hex'), t.files[kind]).toBe(t.sha256[kind]);
          const fixture = readFileSync(path.join(FIXTURE_DIR, t.files[kind]));
          expect(fixture.length, `fixture ${t.files[kind]}`).toBe(full.length / 4);
          expect(Buffer.compare(fixture, full.subarray(0, fixture.length)), `fixture ${t.files[kind]}`).toBe(0);
        }
      }
    });
  } else if (process.env.CI === 'true') {
    it('the full files are present', () => {
      throw new Error(`golden quants: ${FULL_DIR} is absent; CI must run against the full 64-row files`);
    });
  } else {
    console.log(`golden quants: ${FULL_DIR} is absent, so only the 16-row fixtures are checked`);
    it.skip(`full 64-row files (absent: ${FULL_DIR})`, () => {});
  }
});
