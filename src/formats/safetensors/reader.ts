/**
 * Reading safetensors checkpoints lazily: a single .safetensors file, a sharded checkpoint
 * (model.safetensors.index.json + shards), or a folder holding either.
 *
 * open() reads only the 8-byte header length and the header of each shard (refusing, before
 * allocating, a header above 100 MB or one longer than the file); tensor bytes are read only when
 * asked, by positional reads straight into the caller's buffer (e.g. a view of wasm memory).
 * One file handle per shard stays open until close().
 *
 * Sharded checkpoints, as transformers writes them: {"metadata": {...}, "weight_map": {tensor:
 * shard file}}. Each shard named by weight_map is opened; every listed tensor must be in its
 * shard, and no tensor may be in two shards. A tensor that a shard holds but the index does not
 * list is still exposed (transformers loads every tensor of each shard file it opens).
 *
 * Reference: https://github.com/huggingface/safetensors README "Format" and
 * safetensors/src/tensor.rs; transformers' modeling_utils (sharded checkpoints, index file).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SwitchyardError } from '../../core/errors.js';
import { parseHeader } from './header.js';
import { JsonSyntaxError, type JsonValue, parseStrictJson, stringifyJson } from './json.js';
import { describeValue, MAX_HEADER_BYTES, SafetensorsError, type SafetensorsTensorInfo } from './types.js';

/** The file names transformers uses; a folder is opened through them first. */
export const SAFETENSORS_INDEX_NAME = 'model.safetensors.index.json';
export const SAFETENSORS_SINGLE_NAME = 'model.safetensors';

/** Node caps one read at 2 GiB - 1 bytes; larger tensors are read in 1 GiB pieces. */
const MAX_IO_BYTES = 1 << 30;

interface Shard {
  file: string;
  handle: fs.FileHandle;
}

export class SafetensorsCheckpoint {
  /** Every tensor, shards in file-name order and, within a shard, in data-offset order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /**
   * Each shard's `__metadata__` merged in shard order, then the index's "metadata" (which wins;
   * its non-string values, such as total_size, are given as their JSON text).
   */
  readonly metadata: Readonly<Record<string, string>>;
  /** Absolute paths of the shard files, in file-name order. */
  readonly files: readonly string[];
  /** What was opened: the .safetensors file or the index json (absolute). */
  readonly path: string;

  readonly #handles: Map<string, fs.FileHandle>;
  #closed = false;

  private constructor(
    openedPath: string,
    shards: Shard[],
    tensors: Map<string, SafetensorsTensorInfo>,
    metadata: Record<string, string>,
  ) {
    this.path = openedPath;
    this.files = shards.map((s) => s.file);
    this.#handles = new Map(shards.map((s) => [s.file, s.handle]));
    this.tensors = tensors;
    this.metadata = Object.freeze(metadata);
  }

  /** path: a .safetensors file, a model.safetensors.index.json, or a folder holding either. */
  static async open(inputPath: string): Promise<SafetensorsCheckpoint> {
    const resolved = await resolveCheckpointPath(path.resolve(inputPath));
    const parts = resolved.endsWith('.json') ? await openIndex(resolved) : await openShard(resolved, undefined);
    return new SafetensorsCheckpoint(resolved, parts.shards, parts.tensors, Object.fromEntries(parts.metadata));
  }

  /**
   * Reads a tensor's bytes into dest, whose length must equal the tensor's byteLength (e.g. a view
   * of wasm memory). dest must stay valid until the promise settles: growing a non-shared wasm
   * memory detaches its old views.
   */
  async readInto(name: string, dest: Uint8Array): Promise<void> {
    const info = this.#info(name);
    if (!(dest instanceof Uint8Array) || dest.length !== info.byteLength) {
      const got = dest instanceof Uint8Array ? `${dest.length} bytes` : describeValue(dest);
      throw new SafetensorsError(
        `readInto(${JSON.stringify(name)}) of ${info.file}: the destination has ${got}, ` +
          `the tensor has ${info.byteLength} bytes`,
      );
    }
    await readExactly(this.#handles.get(info.file)!, dest, info.offset, info.file, `tensor ${JSON.stringify(name)}`);
  }

  /** Reads a tensor's bytes into a new buffer. */
  async read(name: string): Promise<Uint8Array> {
    const info = this.#info(name);
    const dest = new Uint8Array(info.byteLength);
    await this.readInto(name, dest);
    return dest;
  }

  /** Closes every shard's file handle; reads afterwards fail. Closing twice is harmless. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeAll([...this.#handles.values()]);
  }

  #info(name: string): SafetensorsTensorInfo {
    if (this.#closed) {
      throw new SafetensorsError(`cannot read tensor ${JSON.stringify(name)}: checkpoint ${this.path} is closed`);
    }
    const info = this.tensors.get(name);
    if (info === undefined) {
      throw new SafetensorsError(`no tensor named ${JSON.stringify(name)} in checkpoint ${this.path}`);
    }
    return info;
  }
}

/** A folder becomes the checkpoint file inside it; anything else must be a regular file. */
async function resolveCheckpointPath(p: string): Promise<string> {
  const stat = await statOrThrow(p);
  if (stat.isFile()) return p;
  if (!stat.isDirectory()) throw new SafetensorsError(`${p} is neither a file nor a folder`);
  let names: string[];
  try {
    names = await fs.readdir(p);
  } catch (e) {
    throw ioError(`cannot list folder ${p}`, e);
  }
  if (names.includes(SAFETENSORS_INDEX_NAME)) return path.join(p, SAFETENSORS_INDEX_NAME);
  if (names.includes(SAFETENSORS_SINGLE_NAME)) return path.join(p, SAFETENSORS_SINGLE_NAME);
  const indexes = names.filter((n) => n.endsWith('.safetensors.index.json')).sort();
  if (indexes.length === 1) return path.join(p, indexes[0]);
  if (indexes.length > 1) {
    throw new SafetensorsError(`folder ${p} holds several safetensors indexes (${indexes.join(', ')}); name one`);
  }
  const files = names.filter((n) => n.endsWith('.safetensors')).sort();
  if (files.length === 1) return path.join(p, files[0]);
  if (files.length === 0) {
    throw new SafetensorsError(`folder ${p} holds no .safetensors file and no ${SAFETENSORS_INDEX_NAME}`);
  }
  throw new SafetensorsError(
    `folder ${p} holds several .safetensors files (${files.slice(0, 5).join(', ')}${files.length > 5 ? ', ...' : ''}) ` +
      `but no ${SAFETENSORS_INDEX_NAME}; name the file to open`,
  );
}

/** What open() builds a checkpoint from. */
interface OpenedParts {
  shards: Shard[];
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Map<string, string>;
}

/** Opens one .safetensors file and validates its header; the handle stays open on success. */
async function openShard(file: string, indexFile: string | undefined): Promise<OpenedParts> {
  const where = `safetensors file ${file}`;
  const stat = await statOrThrow(file, indexFile);
  // Refuse FIFOs, devices and folders before open(): opening a FIFO would block.
  if (!stat.isFile()) throw new SafetensorsError(`${where} is not a regular file`);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (e) {
    throw ioError(`cannot open ${where}`, e);
  }
  try {
    const size = (await handle.stat()).size;
    if (size < 8) {
      throw new SafetensorsError(`${where} has ${size} bytes, fewer than the 8-byte header length; it is truncated`);
    }
    const lengthBytes = new Uint8Array(8);
    await readExactly(handle, lengthBytes, 0, file, 'the header length');
    const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError(
        `${where}: header length ${headerLength} is above the ${MAX_HEADER_BYTES}-byte limit; ` +
          'the file is corrupt or not safetensors',
      );
    }
    const n = Number(headerLength);
    if (8 + n > size) {
      throw new SafetensorsError(
        `${where}: header length ${n} runs past the end of the file (${size} bytes); the file is truncated or corrupt`,
      );
    }
    const headerBytes = new Uint8Array(n);
    await readExactly(handle, headerBytes, 8, file, 'the header');
    const header = parseHeader(headerBytes, file, size - 8 - n);
    const tensors = new Map<string, SafetensorsTensorInfo>();
    for (const t of header.tensors) {
      tensors.set(t.name, {
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        file,
        offset: 8 + n + t.begin,
        byteLength: t.end - t.begin,
      });
    }
    return { shards: [{ file, handle }], tensors, metadata: header.metadata ?? new Map() };
  } catch (e) {
    await handle.close().catch(() => {});
    throw e;
  }
}

/** Opens a sharded checkpoint from its index json. */
async function openIndex(indexFile: string): Promise<OpenedParts> {
  const where = `safetensors index ${indexFile}`;
  const index = await readIndexJson(indexFile);
  if (!(index instanceof Map)) throw new SafetensorsError(`${where} is ${describeValue(index)}, expected a JSON object`);
  const weightMap = index.get('weight_map');
  if (!(weightMap instanceof Map)) {
    throw new SafetensorsError(`${where}: "weight_map" is ${describeValue(weightMap)}, expected an object`);
  }
  const indexMetadata = index.get('metadata');
  if (indexMetadata !== undefined && indexMetadata !== null && !(indexMetadata instanceof Map)) {
    throw new SafetensorsError(`${where}: "metadata" is ${describeValue(indexMetadata)}, expected an object`);
  }

  // weight_map: tensor -> shard file name (relative to the index's folder).
  const folder = path.dirname(indexFile);
  const expectedFile = new Map<string, string>();
  for (const [tensor, file] of weightMap) {
    if (typeof file !== 'string') {
      throw new SafetensorsError(
        `${where}: weight_map[${JSON.stringify(tensor)}] is ${describeValue(file)}, expected a file name`,
      );
    }
    if (file === '' || path.isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
      throw new SafetensorsError(
        `${where}: weight_map[${JSON.stringify(tensor)}] is ${JSON.stringify(file)}; shard names must be ` +
          "relative paths inside the index's folder",
      );
    }
    expectedFile.set(tensor, path.join(folder, file));
  }

  const shardFiles = [...new Set(expectedFile.values())].sort();
  const shards: OpenedParts[] = [];
  try {
    for (const file of shardFiles) shards.push(await openShard(file, indexFile));
    const tensors = new Map<string, SafetensorsTensorInfo>();
    for (const shard of shards) {
      for (const [name, info] of shard.tensors) {
        const earlier = tensors.get(name);
        if (earlier !== undefined) {
          throw new SafetensorsError(
            `${where}: tensor ${JSON.stringify(name)} is in two shards, ${earlier.file} and ${info.file}`,
          );
        }
        tensors.set(name, info);
      }
    }
    for (const [name, file] of expectedFile) {
      const found = tensors.get(name);
      if (found === undefined || found.file !== file) {
        throw new SafetensorsError(
          `${where}: weight_map puts tensor ${JSON.stringify(name)} in ${file}, but that shard does not hold it` +
            (found ? ` (it is in ${found.file})` : ''),
        );
      }
    }
    const metadata = new Map<string, string>();
    for (const shard of shards) for (const [key, value] of shard.metadata) metadata.set(key, value);
    for (const [key, value] of (indexMetadata as Map<string, JsonValue> | null | undefined) ?? []) {
      metadata.set(key, typeof value === 'string' ? value : stringifyJson(value));
    }
    return { shards: shards.map((s) => s.shards[0]), tensors, metadata };
  } catch (e) {
    await closeAll(shards.map((s) => s.shards[0].handle));
    throw e;
  }
}

async function readIndexJson(indexFile: string): Promise<JsonValue> {
  const where = `safetensors index ${indexFile}`;
  const stat = await statOrThrow(indexFile);
  if (!stat.isFile()) throw new SafetensorsError(`${where} is not a regular file`);
  if (stat.size > MAX_HEADER_BYTES) {
    throw new SafetensorsError(`${where} has ${stat.size} bytes, above the ${MAX_HEADER_BYTES}-byte limit`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(indexFile);
  } catch (e) {
    throw ioError(`cannot read ${where}`, e);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(`${where} is not valid UTF-8`);
  }
  try {
    return parseStrictJson(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new SafetensorsError(`${where} is not valid JSON (${e.message})`);
  }
}

/** Positional reads into dest until it is full; a read that returns nothing means the file shrank. */
async function readExactly(
  handle: fs.FileHandle,
  dest: Uint8Array,
  position: number,
  file: string,
  what: string,
): Promise<void> {
  let done = 0;
  while (done < dest.length) {
    const length = Math.min(dest.length - done, MAX_IO_BYTES);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(dest, done, length, position + done));
    } catch (e) {
      throw ioError(`cannot read ${what} from safetensors file ${file} at byte ${position + done}`, e);
    }
    if (bytesRead === 0) {
      throw new SafetensorsError(
        `safetensors file ${file}: unexpected end of file reading ${what} at byte ${position + done}; ` +
          'the file was truncated after it was opened',
      );
    }
    done += bytesRead;
  }
}

async function statOrThrow(p: string, indexFile?: string) {
  try {
    return await fs.stat(p);
  } catch (e) {
    const cited = indexFile ? ` (named by the index ${indexFile})` : '';
    throw ioError(`cannot open ${p}${cited}`, e);
  }
}

async function closeAll(handles: fs.FileHandle[]): Promise<void> {
  await Promise.all(handles.map((h) => h.close().catch(() => {})));
}

/** Wraps an fs error (ENOENT, EACCES, EIO...) so that callers only ever see SafetensorsError. */
function ioError(message: string, cause: unknown): SwitchyardError {
  if (cause instanceof SwitchyardError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new SafetensorsError(`${message}: ${detail}`, { cause });
}
