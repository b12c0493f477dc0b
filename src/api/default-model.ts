/**
 * The embedded default model: a small MoE language model Switchyard trained itself
 * (recipes/tiny-moe.json; how and how well: recipes/README.md and docs/BENCHMARKS.md), shipped
 * in the package's models/ folder so that the first command needs no download.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The file name of the embedded model inside the package's models/ folder. */
export const DEFAULT_MODEL_FILE = 'switchyard-tiny-moe.gguf';

/** The embedded model's path (src/api and dist/api are both two levels below the package root). */
export function defaultModelPath(): string {
  return fileURLToPath(new URL(`../../models/${DEFAULT_MODEL_FILE}`, import.meta.url));
}

/** The embedded model's path, or undefined when this copy of the package lacks it. */
export function findDefaultModel(): string | undefined {
  const path = defaultModelPath();
  return existsSync(path) ? path : undefined;
}
