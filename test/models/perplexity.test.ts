// Perplexity against llama.cpp's llama-perplexity (d32676d77, `-c 128 -b 128 -fa off -ctk f32
// -ctv f32`, so an F32 KV cache here; ../shared/golden README "How llama.cpp computes the
// perplexity"):
// - the excerpt (one trailing "\n" dropped, as -f does) tokenizes to excerpt_tokens/<vocab>.txt;
// - every golden model whose architecture is registered: the F32 master's running value after
//   every chunk and the final value within 0.1% (the tolerance; a float64
//   re-implementation is within 1e-6);
// - one variant dequantized to F32 against its f32math perplexity, within 0.1%, every chunk
//   (the first QUICK_CHUNKS chunks; all of them with SWITCHYARD_TEST_TIER=all);
// - one variant on the native quantized kernels: the final value within 0.1% (the running values
//   of the first chunks, over few tokens, are only logged: see the test);
// - batches smaller than the chunk (-b 32) give the same values.
// A full run is 28-29 chunks of 128 tokens, a few seconds per model; SWITCHYARD_TEST_TIER=quick
// checks the first QUICK_CHUNKS running values only (no final value, no native run).
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type PerplexityResult } from '../../src/api/model.js';
import { ARCHITECTURES } from '../../src/models/registry.js';
import { GOLDEN_MODELS, type GoldenModel, goldenF32, goldenPath, skipGolden } from '../helpers/golden.js';

const TOLERANCE = 1e-3; // relative
const QUICK = process.env.SWITCHYARD_TEST_TIER === 'quick';
const ALL = process.env.SWITCHYARD_TEST_TIER === 'all';
const QUICK_CHUNKS = 4;
/** The native-kernel check: one variant, its final value. */
const NATIVE = { model: 'llama_dense', variant: 'Q4_K_M' } as const;
/** The dequantized check: one MoE variant against its f32math reference. */
const DEQUANTIZED = { model: 'mixtral', variant: 'Q4_K_M' } as const;

interface Perplexity {
  n_tokens: number;
  n_chunks: number;
  chunks: number[];
  final: number;
  final_stderr: number;
  tokens_file: string;
}
interface VariantJson {
  architecture: string;
  perplexity: Perplexity;
  f32math_reference?: { perplexity: Perplexity };
}

const SKIP = skipGolden('perplexity against llama-perplexity');
const lines: string[] = [];
afterAll(() => {
  if (lines.length) console.log(`golden perplexity: ${lines.join('; ')} (largest relative difference from llama-perplexity)`);
});

const readJson = (model: GoldenModel, variant: string): VariantJson =>
  JSON.parse(readFileSync(goldenPath(model, `${model}-${variant}.json`), 'utf8'));

/** moby_dick_excerpt.txt as llama-perplexity -f reads it: one trailing newline removed. */
function excerpt(): string {
  const text = readFileSync(goldenPath('moby_dick_excerpt.txt'), 'utf8');
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

async function perplexity(path: string, options: { dequantize?: boolean; batch?: number; chunks?: number } = {}) {
  const model = await loadModel(path, { contextLength: 128, kvCacheType: 'f32', dequantize: options.dequantize });
  try {
    const text = excerpt();
    const result = await model.perplexity(text, { ctx: 128, batch: options.batch ?? 128, chunks: options.chunks });
    return { result, tokens: model.tokenize(text) };
  } finally {
    await model.close();
  }
}

/** Largest relative difference of the running values (and the final, when every chunk ran). */
function worst(r: PerplexityResult, ref: Perplexity): { chunks: number; final?: number } {
  const rel = (a: number, b: number) => Math.abs(a / b - 1);
  const chunks = Math.max(...r.chunks.map((c, i) => rel(c, ref.chunks[i] as number)));
  return { chunks, final: r.chunks.length === ref.chunks.length ? rel(r.final, ref.final) : undefined };
}

describe.skipIf(SKIP)('perplexity (llama-perplexity -c 128 -b 128)', () => {
  for (const model of GOLDEN_MODELS) {
    const j = readJson(model, 'F32');
    it.skipIf(!(j.architecture in ARCHITECTURES))(`${model} F32 master: every running value and the final within 0.1%`, async () => {
      const path = goldenF32(model);
      if (!path) return;
      const { result, tokens } = await perplexity(path, { chunks: QUICK ? QUICK_CHUNKS : undefined });
      const expected = readFileSync(goldenPath(model, j.perplexity.tokens_file), 'utf8').trim().split(/\s+/).map(Number);
      expect(tokens).toEqual(expected);
      expect(result.tokens).toBe(j.perplexity.n_tokens);
      expect(result.chunks).toHaveLength(QUICK ? QUICK_CHUNKS : j.perplexity.n_chunks);
      const d = worst(result, j.perplexity);
      expect(d.chunks).toBeLessThanOrEqual(TOLERANCE);
      if (!QUICK) {
        expect(d.final).toBeLessThanOrEqual(TOLERANCE);
        expect(Math.abs(result.finalStderr / j.perplexity.final_stderr - 1)).toBeLessThanOrEqual(TOLERANCE);
      }
      lines.push(`${model} F32 ${d.chunks.toExponential(1)}`);
    });
  }

  it(`${DEQUANTIZED.model} ${DEQUANTIZED.variant} dequantized: within 0.1% of its f32math perplexity`, async () => {
    const j = readJson(DEQUANTIZED.model, DEQUANTIZED.variant);
    const ref = j.f32math_reference?.perplexity as Perplexity;
    const gguf = goldenPath(DEQUANTIZED.model, `${DEQUANTIZED.model}-${DEQUANTIZED.variant}.gguf`);
    const { result } = await perplexity(gguf, { dequantize: true, chunks: ALL ? undefined : QUICK_CHUNKS });
    const d = worst(result, ref);
    expect(d.chunks).toBeLessThanOrEqual(TOLERANCE);
    if (ALL) expect(d.final).toBeLessThanOrEqual(TOLERANCE);
    lines.push(`${DEQUANTIZED.model} ${DEQUANTIZED.variant} f32math ${d.chunks.toExponential(1)}`);
  });

  it.skipIf(QUICK)(`${NATIVE.model} ${NATIVE.variant} native kernels: final within 0.1%`, async () => {
    const j = readJson(NATIVE.model, NATIVE.variant);
    const gguf = goldenPath(NATIVE.model, `${NATIVE.model}-${NATIVE.variant}.gguf`);
    const { result } = await perplexity(gguf);
    const d = worst(result, j.perplexity);
    // Not every running value holds: the first chunks (63-126 scored tokens) differ by up to ~0.3%
    // (measured 2.7e-3, then 4e-4 to 1.6e-3; the final 6.2e-4), the kernels not being bit-exact
    // with llama.cpp's for 128-token batches. Dense F16 and BF16 hold everywhere (2.2e-4, 6.5e-4);
    // the MoE variants do not (an expert choice flipped by rounding moves a chunk by 0.2-2%).
    expect(d.final).toBeLessThanOrEqual(TOLERANCE);
    lines.push(`${NATIVE.model} ${NATIVE.variant} native final ${(d.final as number).toExponential(1)} (worst chunk ${d.chunks.toExponential(1)})`);
  });

  it('batches smaller than the chunk (-b 32) give the same running values', async () => {
    const j = readJson('llama_dense', 'F32');
    const path = goldenF32('llama_dense');
    if (!path) return;
    const { result } = await perplexity(path, { batch: 32, chunks: 3 });
    expect(worst(result, j.perplexity).chunks).toBeLessThanOrEqual(TOLERANCE);
  });
});
