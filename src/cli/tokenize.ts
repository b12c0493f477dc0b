/**
 * `switchyard tokenize <model> <text>`: token ids of a text (or, with --decode, the text of ids),
 * like llama.cpp's llama-tokenize: BOS/EOS are added as the model's metadata says unless
 * --no-special, and special-token text (<|im_end|>) is read as that token unless
 * --no-parse-special (llama-tokenize's defaults, common/arg.cpp).
 * <model> is a GGUF file, a Hugging Face folder or a tokenizer.json.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import { GGUFFile } from '../formats/gguf/reader.js';
import { type Tokenizer, tokenizerFromGGUF, tokenizerFromHuggingFace } from '../tokenizer/index.js';

export interface TokenizeOptions {
  json?: boolean;
  decode?: boolean;
  special?: boolean; // commander's --no-special
  parseSpecial?: boolean; // commander's --no-parse-special
  file?: string;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InvalidArgumentError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** A tokenizer from a GGUF file, a Hugging Face folder, or a tokenizer.json file. */
export async function loadTokenizer(model: string): Promise<Tokenizer> {
  if (existsSync(model) && statSync(model).isDirectory()) {
    const json = path.join(model, 'tokenizer.json');
    if (!existsSync(json)) throw new InvalidArgumentError(`${model}: no tokenizer.json in this folder`);
    const config = path.join(model, 'tokenizer_config.json');
    return tokenizerFromHuggingFace(readJson(json), existsSync(config) ? readJson(config) : undefined, { source: json });
  }
  if (model.endsWith('.json')) return tokenizerFromHuggingFace(readJson(model), undefined, { source: model });
  const file = await GGUFFile.open(model);
  try {
    return tokenizerFromGGUF(file.metadata);
  } finally {
    await file.close();
  }
}

/** "1 2 3", "1,2,3" or "[1, 2, 3]" -> ids. */
export function parseIds(text: string): number[] {
  const parts = text.replace(/^\s*\[|\]\s*$/g, '').split(/[\s,]+/).filter(Boolean);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new InvalidArgumentError(`--decode: '${p}' is not a token id (give ids like "1 2 3" or [1,2,3])`);
    return Number(p);
  });
}

export async function tokenize(model: string, text: string | undefined, opts: TokenizeOptions): Promise<void> {
  if (text === undefined && !opts.file) throw new InvalidArgumentError('tokenize: give the text as an argument or with --file <path>');
  const input = opts.file ? readFileSync(opts.file, 'utf8') : (text as string);
  const tok = await loadTokenizer(model);
  if (opts.decode) {
    const out = tok.decode(parseIds(input));
    process.stdout.write(opts.json ? `${JSON.stringify(out)}\n` : `${out}\n`);
    return;
  }
  const ids = tok.encode(input, { addSpecial: opts.special !== false, parseSpecial: opts.parseSpecial !== false });
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(ids)}\n`);
    return;
  }
  const width = String(Math.max(0, ...ids)).length;
  const lines = ids.map((id) => `${String(id).padStart(width)} ${JSON.stringify(tok.tokenToPiece(id))}`);
  process.stdout.write(`${lines.join('\n')}\n${ids.length} tokens\n`);
}
