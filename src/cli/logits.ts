/**
 * `switchyard logits <model> --tokens <id,id,...> --out <file>`: the logits of every position of
 * a token sequence (run from position 0 in one batch), written as little-endian float32
 * [n_tokens, n_vocab], row-major: row i is what the model predicts after token i. The layout of
 * the golden references' `*.logits.bin` (../shared/golden/README.md), so outputs compare with
 * llama.cpp's directly. --dequantize computes in float32 on dequantized weights (the reference
 * path, comparable with the goldens' `f32math` files); --kv-cache f32 keeps keys and values in
 * float32, as the goldens were computed (llama.cpp -ctk f32 -ctv f32).
 */
import { writeFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { kvCacheFlag, modelArgument, openModel } from './generate.js';
import type { GlobalOptions } from './options.js';
import { parseIds } from './tokenize.js';

export interface LogitsFlags {
  tokens?: string;
  out?: string;
  dequantize?: boolean;
  kvCache?: string;
}

/** Little-endian float32 bytes of `values` (whatever the machine's byte order). */
export function float32LE(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i] as number, true);
  return out;
}

export async function logitsCommand(modelArg: string | undefined, flags: LogitsFlags, global: GlobalOptions): Promise<void> {
  const file = modelArgument(modelArg, 'logits');
  if (flags.tokens === undefined) throw new InvalidArgumentError('logits: give the token ids with --tokens <id,id,...>');
  if (flags.out === undefined) throw new InvalidArgumentError('logits: give the output file with --out <file>');
  let tokens: number[];
  try {
    tokens = parseIds(flags.tokens);
  } catch {
    throw new InvalidArgumentError(`logits: --tokens takes token ids like 1,2,3, got '${flags.tokens}'`);
  }
  if (tokens.length === 0) throw new InvalidArgumentError('logits: --tokens is empty; give at least one token id');
  const kvCacheType = kvCacheFlag(flags.kvCache);

  const model = await openModel(file, global, { contextLength: tokens.length, dequantize: flags.dequantize, kvCacheType });
  try {
    const V = model.info.vocabSize;
    const bad = tokens.find((t) => t >= V);
    if (bad !== undefined) throw new InvalidArgumentError(`logits: token id ${bad} is outside the vocabulary of ${file} (0..${V - 1})`);
    const logits = model.logits(tokens); // [T, V]
    writeFileSync(flags.out, float32LE(logits));
    process.stderr.write(`wrote float32 logits [${tokens.length}, ${V}] (${logits.byteLength} bytes) to ${flags.out}\n`);
  } finally {
    await model.close();
  }
}
