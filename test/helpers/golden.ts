// Where the reference data of ../shared/golden lives, and how tests that need it skip.
// Without ../shared a golden test is skipped with a note, except under CI=true where its
// absence is a failure (CI always has ../shared beside the clone).
// The F32 master GGUFs are not shipped: goldenF32() regenerates them once per machine with
// ../shared/golden/tools/gen_models.py (Python 3 + numpy, about 3 s) into tmp/golden-f32/.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const GOLDEN_DIR = path.resolve(REPO_ROOT, '../shared/golden');
export const HAVE_GOLDEN = existsSync(path.join(GOLDEN_DIR, 'README.md'));
const IN_CI = process.env.CI === 'true';

/** The ten golden models (folder names). */
export const GOLDEN_MODELS = [
  'llama_dense',
  'mixtral',
  'qwen2moe',
  'qwen3moe',
  'olmoe',
  'deepseek2_lite',
  'deepseek2_v3',
  'gpt_oss',
  'granitemoe',
  'phimoe',
] as const;
export type GoldenModel = (typeof GOLDEN_MODELS)[number];

/**
 * True when golden tests must be skipped (and says why, once). Under CI=true a missing
 * ../shared/golden throws instead, so CI cannot pass by skipping.
 */
export function skipGolden(what: string): boolean {
  if (HAVE_GOLDEN) return false;
  if (IN_CI) throw new Error(`${what}: ${GOLDEN_DIR} is missing (required under CI=true)`);
  console.warn(`skipping ${what}: ${GOLDEN_DIR} is absent (see README: ../shared beside the clone)`);
  return true;
}

export function goldenPath(...parts: string[]): string {
  return path.join(GOLDEN_DIR, ...parts);
}

/** Every shipped golden GGUF (model variants and vocab-only tokenizer files). */
export function goldenGGUFs(): string[] {
  const files: string[] = [];
  for (const model of GOLDEN_MODELS) {
    for (const v of ['F16', 'BF16', 'Q4_K_M', 'Q4_0', 'MXFP4_MOE']) {
      const f = goldenPath(model, `${model}-${v}.gguf`);
      if (existsSync(f)) files.push(f);
    }
  }
  return files;
}

const F32_DIR = path.join(REPO_ROOT, 'tmp/golden-f32');
let f32Problem: string | undefined;

/**
 * Path of a golden model's F32 master GGUF, regenerated when missing. Returns undefined (with
 * the reason in `goldenF32Problem()`) when Python or numpy is unavailable; under CI=true that
 * is an error.
 */
export function goldenF32(model: GoldenModel): string | undefined {
  const file = path.join(F32_DIR, model, `${model}-F32.gguf`);
  if (existsSync(file)) return file;
  if (!HAVE_GOLDEN || f32Problem) return undefined;
  // Test files run in parallel: generate into a private folder, then move each model into place.
  const scratch = `${F32_DIR}.${process.pid}`;
  try {
    execFileSync(
      'python3',
      [
        goldenPath('tools/gen_models.py'),
        '--config',
        goldenPath('tools/configs_shared.json'),
        '--vocab-dir',
        goldenPath('tokenizers'),
        '--out',
        scratch,
        '--per-model-dirs',
      ],
      { stdio: 'pipe' },
    );
    mkdirSync(F32_DIR, { recursive: true });
    for (const m of GOLDEN_MODELS) {
      try {
        if (!existsSync(path.join(F32_DIR, m))) renameSync(path.join(scratch, m), path.join(F32_DIR, m));
      } catch {
        // another process moved it first
      }
    }
  } catch (e) {
    f32Problem = `cannot regenerate the F32 masters with gen_models.py (needs python3 + numpy): ${String(e).slice(0, 300)}`;
    if (IN_CI) throw new Error(f32Problem);
    return undefined;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return existsSync(file) ? file : undefined;
}

export function goldenF32Problem(): string | undefined {
  return f32Problem;
}
