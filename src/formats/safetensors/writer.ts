/**
 * Writing safetensors files, single or sharded with a model.safetensors.index.json.
 *
 * Layout matches the reference serializer (safetensors/src/tensor.rs, `prepare`): tensors are
 * sorted by dtype in descending enum order (the crate's "alignment" order: 8-byte types first, then
 * 4, 2, 1 and sub-byte), then by name (code-point order, like Rust's String ordering); the header is
 * compact JSON padded with spaces to a multiple of 8. With the header 8-aligned and the largest
 * elements first, every tensor's data starts at a multiple of its element size. For the same
 * tensors and at most one metadata entry this gives the reference's bytes exactly (the reference
 * keeps metadata in a hash map, so its order of several entries is not defined; we keep the
 * caller's order).
 *
 * Files are streamed tensor by tensor (small ones gathered in a 4 MiB staging buffer, never the
 * whole file) to `<path>.tmp`, synced, then renamed over `<path>`, so a crash never leaves a
 * half-written file under the real name (and a reader that still has the old file open keeps
 * reading the old file).
 *
 * Sharding follows transformers/huggingface_hub: tensors are taken in the given order and a new
 * shard starts when the next tensor would push the current one past maxShardBytes (data bytes,
 * header excluded); a tensor larger than maxShardBytes gets a shard of its own. Shards are named
 * model-00001-of-0000N.safetensors; the index lists {"metadata": {..., "total_size"},
 * "weight_map"} with sorted keys and a 2-space indent, as transformers' save_pretrained writes it.
 * Note: transformers refuses shards whose __metadata__ lacks "format" ("pt", "tf", "flax" or
 * "mlx") when metadata is present; pass { format: 'pt' } to write checkpoints it loads.
 *
 * Reference: https://github.com/huggingface/safetensors safetensors/src/tensor.rs;
 * huggingface_hub serialization/_base.py (split_state_dict_into_shards_factory).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SwitchyardError } from '../../core/errors.js';
import { encodeHeader, type HeaderTensor } from './header.js';
import { SAFETENSORS_INDEX_NAME } from './reader.js';
import {
  describeValue,
  isSafetensorsDType,
  MAX_HEADER_BYTES,
  SAFETENSORS_DTYPES,
  SafetensorsError,
  type SafetensorsTensorInput,
  safetensorsDTypeRank,
  tensorByteLength,
} from './types.js';

const MAX_IO_BYTES = 1 << 30;
const STAGING_BYTES = 4 << 20;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Writes one .safetensors file (atomically, via `<path>.tmp`). */
export async function writeSafetensors(
  filePath: string,
  tensors: SafetensorsTensorInput[],
  metadata?: Record<string, string>,
): Promise<void> {
  const target = path.resolve(filePath);
  checkInputs(`safetensors file ${target}`, tensors, metadata);
  await writeChecked(target, tensors, metadata);
}

/**
 * Splits the tensors into model-0000i-of-0000n.safetensors shards of at most maxShardBytes of data
 * each (a larger tensor gets a shard to itself) and writes model.safetensors.index.json after
 * them. `metadata` goes into every shard's __metadata__ and into the index's metadata (beside the
 * computed total_size). Returns the paths written: the shards in order, then the index.
 */
export async function writeShardedSafetensors(
  dir: string,
  tensors: SafetensorsTensorInput[],
  opts: { maxShardBytes: number; metadata?: Record<string, string> },
): Promise<string[]> {
  const folder = path.resolve(dir);
  const where = `sharded safetensors checkpoint ${folder}`;
  const maxShardBytes = opts?.maxShardBytes;
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes < 1) {
    throw new SafetensorsError(`${where}: maxShardBytes is ${describeValue(maxShardBytes)}, expected a positive integer`);
  }
  checkInputs(where, tensors, opts.metadata);

  const shards: SafetensorsTensorInput[][] = [];
  let current: SafetensorsTensorInput[] = [];
  let currentBytes = 0;
  for (const t of tensors) {
    const bytes = t.data.byteLength;
    if (bytes > maxShardBytes) {
      if (current.length > 0) shards.push(current);
      shards.push([t]);
      current = [];
      currentBytes = 0;
      continue;
    }
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);

  try {
    await fs.mkdir(folder, { recursive: true });
  } catch (e) {
    throw wrapIoError(`cannot create folder ${folder}`, e);
  }
  const width = Math.max(5, String(shards.length).length);
  const pad = (i: number) => String(i).padStart(width, '0');
  const written: string[] = [];
  const weightMap: [string, string][] = [];
  let totalSize = 0;
  for (let i = 0; i < shards.length; i++) {
    const name = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    const shardPath = path.join(folder, name);
    await writeChecked(shardPath, shards[i], opts.metadata);
    written.push(shardPath);
    for (const t of shards[i]) {
      weightMap.push([t.name, name]);
      totalSize += t.data.byteLength;
    }
  }

  const indexMetadata: [string, string | number][] = Object.entries(opts.metadata ?? {}).filter(
    ([k]) => k !== 'total_size',
  );
  indexMetadata.push(['total_size', totalSize]);
  const indexPath = path.join(folder, SAFETENSORS_INDEX_NAME);
  const indexText = formatIndexJson(indexMetadata, weightMap);
  await writeAtomically(indexPath, async (handle) => {
    await writeAllAt(handle, new TextEncoder().encode(indexText), 0);
  });
  written.push(indexPath);
  return written;
}

/** The index json as transformers writes it: json.dumps(index, indent=2, sort_keys=True) + "\n". */
function formatIndexJson(metadata: [string, string | number][], weightMap: [string, string][]): string {
  const section = (entries: [string, string | number][]) => {
    if (entries.length === 0) return '{}';
    const sorted = [...entries].sort((a, b) => compareCodePoints(a[0], b[0]));
    return '{\n' + sorted.map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(',\n') + '\n  }';
  };
  return `{\n  "metadata": ${section(metadata)},\n  "weight_map": ${section(weightMap)}\n}\n`;
}

/** Writes already validated tensors to one file. */
async function writeChecked(
  target: string,
  tensors: SafetensorsTensorInput[],
  metadata: Record<string, string> | undefined,
): Promise<void> {
  const ordered = [...tensors].sort(
    (a, b) => safetensorsDTypeRank(b.dtype) - safetensorsDTypeRank(a.dtype) || compareCodePoints(a.name, b.name),
  );
  const entries: HeaderTensor[] = [];
  let offset = 0;
  for (const t of ordered) {
    const begin = offset;
    offset += t.data.byteLength;
    entries.push({ name: t.name, dtype: t.dtype, shape: t.shape, begin, end: offset });
  }
  const header = encodeHeader(entries, metadata === undefined ? undefined : Object.entries(metadata));
  if (header.length > MAX_HEADER_BYTES) {
    throw new SafetensorsError(
      `safetensors file ${target}: the header would have ${header.length} bytes, above the ` +
        `${MAX_HEADER_BYTES}-byte limit readers enforce; write fewer tensors per file or less metadata`,
    );
  }
  const prefix = new Uint8Array(8 + header.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(header.length), true);
  prefix.set(header, 8);

  await writeAtomically(target, async (handle) => {
    const out = new StagedWriter(handle, Math.min(STAGING_BYTES, prefix.length + offset));
    await out.write(prefix);
    for (const t of ordered) await out.write(t.data);
    await out.flush();
  });
}

/**
 * Sequential writes that gather small pieces (a header, many tiny tensors) into one staging buffer
 * of at most STAGING_BYTES, so a file of 100k small tensors is not 100k system calls; pieces of
 * half the buffer or more are written straight from the caller's memory.
 */
class StagedWriter {
  readonly #handle: fs.FileHandle;
  readonly #staging: Uint8Array;
  #used = 0;
  #position = 0;

  constructor(handle: fs.FileHandle, capacity: number) {
    this.#handle = handle;
    this.#staging = new Uint8Array(capacity);
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.length * 2 >= this.#staging.length) {
      await this.flush();
      this.#position = await writeAllAt(this.#handle, bytes, this.#position);
      return;
    }
    if (this.#used + bytes.length > this.#staging.length) await this.flush();
    this.#staging.set(bytes, this.#used);
    this.#used += bytes.length;
  }

  async flush(): Promise<void> {
    if (this.#used === 0) return;
    this.#position = await writeAllAt(this.#handle, this.#staging.subarray(0, this.#used), this.#position);
    this.#used = 0;
  }
}

/**
 * Validates a write request before any file is touched: names (strings, unique, valid Unicode,
 * not "__metadata__"), dtypes, shapes (integers in [0, 2^53), products guarded) and that each
 * data buffer holds exactly product(shape) * dtype size bytes.
 */
function checkInputs(
  where: string,
  tensors: SafetensorsTensorInput[],
  metadata: Record<string, string> | undefined,
): void {
  if (!Array.isArray(tensors)) throw new SafetensorsError(`${where}: tensors is ${describeValue(tensors)}, expected an array`);
  const seen = new Set<string>();
  tensors.forEach((t, i) => {
    const label = typeof t?.name === 'string' ? `tensor ${JSON.stringify(t.name)}` : `tensor #${i}`;
    const fail = (what: string): never => {
      throw new SafetensorsError(`${where}: ${label}: ${what}`);
    };
    if (typeof t !== 'object' || t === null) fail(`is ${describeValue(t)}, expected {name, dtype, shape, data}`);
    if (typeof t.name !== 'string') fail(`name is ${describeValue(t.name)}, expected a string`);
    if (t.name === '__metadata__') fail('"__metadata__" is reserved for the metadata map');
    if (LONE_SURROGATE.test(t.name)) fail('the name holds a lone UTF-16 surrogate and cannot be encoded as UTF-8');
    if (seen.has(t.name)) fail('the name appears twice');
    seen.add(t.name);
    if (!isSafetensorsDType(t.dtype)) {
      fail(`unknown dtype ${describeValue(t.dtype)} (known: ${SAFETENSORS_DTYPES.join(', ')})`);
    }
    if (!Array.isArray(t.shape)) fail(`shape is ${describeValue(t.shape)}, expected an array of integers`);
    const expected = tensorByteLength(t.dtype, t.shape, fail);
    if (!(t.data instanceof Uint8Array)) fail(`data is ${describeValue(t.data)}, expected a Uint8Array`);
    if (t.data.byteLength !== expected) {
      fail(`data has ${t.data.byteLength} bytes but shape [${t.shape.join(', ')}] of ${t.dtype} needs ${expected}`);
    }
  });
  if (metadata === undefined) return;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new SafetensorsError(`${where}: metadata is ${describeValue(metadata)}, expected an object of strings`);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new SafetensorsError(`${where}: metadata[${JSON.stringify(key)}] is ${describeValue(value)}, expected a string`);
    }
    if (LONE_SURROGATE.test(key) || LONE_SURROGATE.test(value)) {
      throw new SafetensorsError(`${where}: metadata[${JSON.stringify(key)}] holds a lone UTF-16 surrogate`);
    }
  }
}

/** Runs `write` on `<target>.tmp`, syncs and renames it over target; on failure removes the tmp. */
async function writeAtomically(target: string, write: (handle: fs.FileHandle) => Promise<void>): Promise<void> {
  const tmp = target + '.tmp';
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(tmp, 'w');
    await write(handle);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(tmp, target);
  } catch (e) {
    await handle?.close().catch(() => {});
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw wrapIoError(`cannot write ${target}`, e);
  }
}

/** Writes all of bytes at position (looping on short writes); returns the position after them. */
async function writeAllAt(handle: fs.FileHandle, bytes: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < bytes.length) {
    const length = Math.min(bytes.length - done, MAX_IO_BYTES);
    const { bytesWritten } = await handle.write(bytes, done, length, position + done);
    if (bytesWritten === 0) throw new Error('write returned 0 bytes');
    done += bytesWritten;
  }
  return position + done;
}

/** Compares by Unicode code point (Rust's String order; UTF-16 order differs above U+FFFF). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate stands for a code point >= U+10000, above any unit in U+E000..U+FFFF.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && (xs ? y : x) >= 0xe000) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function wrapIoError(message: string, cause: unknown): SwitchyardError {
  if (cause instanceof SwitchyardError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new SafetensorsError(`${message}: ${detail}`, { cause });
}
