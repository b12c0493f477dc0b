/**
 * GGUF writer: metadata, tensor infos and tensor data with the file's alignment, streamed
 * tensor by tensor to `<path>.tmp` and renamed when complete (a crash leaves no half file).
 * The layout is the one ggml/src/gguf.cpp (gguf_write_to_file) and gguf-py's GGUFWriter
 * produce: header, key-values, tensor infos, zero padding to the alignment, then each
 * tensor's data at the next aligned offset, zero-padded to the alignment, so a file read and
 * written again is byte-identical (tested on every golden model).
 */
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dtypeInfo, rowBytes } from '../../core/dtypes.js';
import { InvalidArgumentError } from '../../core/errors.js';
import type { GGUFFile } from './reader.js';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  type GGUFArray,
  type GGUFKV,
  type GGUFValue,
  GGUFValueType,
} from './types.js';

export interface GGUFWriteTensor {
  readonly name: string;
  /** GGML type id. */
  readonly type: number;
  /** Outermost first. */
  readonly shape: readonly number[];
  /**
   * The data; or a function producing it when the writer reaches this tensor; or a function
   * producing it in chunks (e.g. one expert at a time), so that no buffer holds a whole tensor
   * (JavaScript buffers stop at 4 GiB; a large model's expert stack does not).
   */
  readonly data: Uint8Array | (() => Promise<Uint8Array>) | (() => AsyncIterable<Uint8Array>);
}

export interface GGUFWriteOptions {
  /** Called after each tensor is written. */
  readonly onProgress?: (done: { tensors: number; bytes: number; totalTensors: number; totalBytes: number; name: string }) => void;
}

/** Metadata entry constructors with explicit GGUF types. */
export const kv = {
  string: (key: string, value: string): GGUFKV => ({ key, type: GGUFValueType.STRING, value }),
  u32: (key: string, value: number): GGUFKV => ({ key, type: GGUFValueType.UINT32, value }),
  i32: (key: string, value: number): GGUFKV => ({ key, type: GGUFValueType.INT32, value }),
  f32: (key: string, value: number): GGUFKV => ({ key, type: GGUFValueType.FLOAT32, value }),
  bool: (key: string, value: boolean): GGUFKV => ({ key, type: GGUFValueType.BOOL, value }),
  u64: (key: string, value: bigint): GGUFKV => ({ key, type: GGUFValueType.UINT64, value }),
  array: (key: string, value: GGUFArray): GGUFKV => ({ key, type: GGUFValueType.ARRAY, value }),
  strings: (key: string, items: string[]): GGUFKV => kv.array(key, { itemType: GGUFValueType.STRING, items }),
  i32s: (key: string, items: ArrayLike<number>): GGUFKV =>
    kv.array(key, { itemType: GGUFValueType.INT32, items: Int32Array.from(items) }),
  f32s: (key: string, items: ArrayLike<number>): GGUFKV =>
    kv.array(key, { itemType: GGUFValueType.FLOAT32, items: Float32Array.from(items) }),
};

/** Growable little-endian byte buffer for the header. */
class Bytes {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private grow(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  u8(v: number) {
    const at = this.grow(1); // grow() may replace the view
    this.view.setUint8(at, v);
  }
  i8(v: number) {
    const at = this.grow(1); // grow() may replace the view
    this.view.setInt8(at, v);
  }
  u16(v: number) {
    const at = this.grow(2); // grow() may replace the view
    this.view.setUint16(at, v, true);
  }
  i16(v: number) {
    const at = this.grow(2); // grow() may replace the view
    this.view.setInt16(at, v, true);
  }
  u32(v: number) {
    const at = this.grow(4); // grow() may replace the view
    this.view.setUint32(at, v, true);
  }
  i32(v: number) {
    const at = this.grow(4); // grow() may replace the view
    this.view.setInt32(at, v, true);
  }
  f32(v: number) {
    const at = this.grow(4); // grow() may replace the view
    this.view.setFloat32(at, v, true);
  }
  f64(v: number) {
    const at = this.grow(8); // grow() may replace the view
    this.view.setFloat64(at, v, true);
  }
  u64(v: bigint | number) {
    const at = this.grow(8); // grow() may replace the view
    this.view.setBigUint64(at, BigInt(v), true);
  }
  i64(v: bigint) {
    const at = this.grow(8); // grow() may replace the view
    this.view.setBigInt64(at, v, true);
  }
  raw(b: Uint8Array) {
    const at = this.grow(b.length);
    this.buf.set(b, at);
  }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.raw(b);
  }
  pad(alignment: number) {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.grow(n); // new bytes are zero: the buffer starts zeroed and only grows
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeValue(b: Bytes, key: string, type: number, value: GGUFValue): void {
  const bad = () => {
    throw new InvalidArgumentError(`GGUF metadata '${key}': value ${String(value)} does not fit type ${type}`);
  };
  switch (type) {
    case GGUFValueType.STRING:
      if (typeof value !== 'string') bad();
      b.string(value as string);
      return;
    case GGUFValueType.BOOL:
      if (typeof value !== 'boolean') bad();
      b.u8(value ? 1 : 0);
      return;
    case GGUFValueType.UINT64:
    case GGUFValueType.INT64:
      if (typeof value !== 'bigint' && typeof value !== 'number') bad();
      if (type === GGUFValueType.UINT64) b.u64(BigInt(value as number));
      else b.i64(BigInt(value as number));
      return;
    case GGUFValueType.ARRAY: {
      const a = value as GGUFArray;
      if (typeof a !== 'object' || a === null || !('itemType' in a)) bad();
      b.u32(a.itemType);
      b.u64(a.items.length);
      for (let i = 0; i < a.items.length; i++) writeValue(b, key, a.itemType, a.items[i] as GGUFValue);
      return;
    }
  }
  if (typeof value !== 'number') bad();
  const v = value as number;
  switch (type) {
    case GGUFValueType.UINT8:
      b.u8(v);
      return;
    case GGUFValueType.INT8:
      b.i8(v);
      return;
    case GGUFValueType.UINT16:
      b.u16(v);
      return;
    case GGUFValueType.INT16:
      b.i16(v);
      return;
    case GGUFValueType.UINT32:
      b.u32(v);
      return;
    case GGUFValueType.INT32:
      b.i32(v);
      return;
    case GGUFValueType.FLOAT32:
      b.f32(v);
      return;
    case GGUFValueType.FLOAT64:
      b.f64(v);
      return;
  }
  bad();
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

function tensorBytes(t: Omit<GGUFWriteTensor, 'data'>): number {
  if (t.shape.length < 1 || t.shape.length > GGUF_MAX_DIMS) {
    throw new InvalidArgumentError(`GGUF tensor '${t.name}': ${t.shape.length} dimensions (1 to ${GGUF_MAX_DIMS} allowed)`);
  }
  const cols = t.shape[t.shape.length - 1] as number;
  const rows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  dtypeInfo(t.type); // names an unknown type
  return cols === 0 ? 0 : rows * rowBytes(t.type, cols);
}

export interface GGUFContent {
  readonly metadata: readonly GGUFKV[];
  readonly tensors: readonly GGUFWriteTensor[];
  readonly version?: 2 | 3;
}

/** A file's layout before any tensor data is written. */
export interface GGUFLayout {
  /** Magic to the end of the padding before the data section. */
  readonly header: Uint8Array;
  readonly alignment: number;
  /** Data bytes of each tensor (without padding), in order. */
  readonly tensorBytes: readonly number[];
  /** Size of the data section (tensors and their padding); the file is header + this. */
  readonly dataBytes: number;
}

/** Encodes the header and computes the layout. `general.alignment` in the metadata sets the alignment. */
export function layoutGGUF(content: Omit<GGUFContent, 'tensors'> & { tensors: readonly Omit<GGUFWriteTensor, 'data'>[] }): GGUFLayout {
  const alignKV = content.metadata.find((e) => e.key === 'general.alignment');
  const alignment = alignKV ? Number(alignKV.value) : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new InvalidArgumentError(`GGUF 'general.alignment' must be a power of two, got ${alignment}`);
  }
  const names = new Set<string>();
  const keys = new Set<string>();
  for (const e of content.metadata) {
    if (keys.has(e.key)) throw new InvalidArgumentError(`GGUF metadata key '${e.key}' given twice`);
    keys.add(e.key);
  }

  const h = new Bytes();
  h.u32(GGUF_MAGIC);
  h.u32(content.version ?? 3);
  h.u64(content.tensors.length);
  h.u64(content.metadata.length);
  for (const e of content.metadata) {
    h.string(e.key);
    h.u32(e.type);
    writeValue(h, e.key, e.type, e.value);
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const t of content.tensors) {
    if (names.has(t.name)) throw new InvalidArgumentError(`GGUF tensor '${t.name}' given twice`);
    names.add(t.name);
    const size = tensorBytes(t);
    sizes.push(size);
    h.string(t.name);
    h.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) h.u64(t.shape[d] as number);
    h.u32(t.type);
    h.u64(offset);
    offset += alignUp(size, alignment);
  }
  // Files without tensors end right after the metadata (as llama.cpp's vocab files do).
  if (content.tensors.length) h.pad(alignment);
  return { header: h.bytes(), alignment, tensorBytes: sizes, dataBytes: offset };
}

/** Writes a GGUF file (v3 unless `version` says 2), streaming tensor data in order. */
export async function writeGGUF(file: string, content: GGUFContent, options: GGUFWriteOptions = {}): Promise<void> {
  const { header, alignment, tensorBytes: sizes, dataBytes: totalBytes } = layoutGGUF(content);
  const tmp = `${file}.tmp`;
  let out: FileHandle | undefined;
  try {
    out = await open(tmp, 'w');
    await out.write(header);
    const zeros = new Uint8Array(alignment);
    let written = 0;
    for (let i = 0; i < content.tensors.length; i++) {
      const t = content.tensors[i] as GGUFWriteTensor;
      const source = typeof t.data === 'function' ? t.data() : t.data;
      const chunks = source instanceof Uint8Array ? [source] : Symbol.asyncIterator in source ? source : [await source];
      let length = 0;
      for await (const chunk of chunks) {
        length += chunk.length;
        if (length > (sizes[i] as number)) break;
        await out.write(chunk);
      }
      if (length !== sizes[i]) {
        throw new InvalidArgumentError(
          `GGUF tensor '${t.name}': ${length > (sizes[i] as number) ? 'at least ' : ''}${length} bytes of data, its type and shape need ${sizes[i]}`,
        );
      }
      const pad = alignUp(length, alignment) - length;
      if (pad) await out.write(zeros.subarray(0, pad));
      written += length + pad;
      options.onProgress?.({
        tensors: i + 1,
        bytes: written,
        totalTensors: content.tensors.length,
        totalBytes,
        name: t.name,
      });
    }
    await out.close();
    out = undefined;
    await rename(tmp, file);
  } catch (e) {
    await out?.close();
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Writes an open GGUF file out again, with the same metadata and tensors (and the same bytes). */
export async function rewriteGGUF(source: GGUFFile, file: string, options?: GGUFWriteOptions): Promise<void> {
  await writeGGUF(
    file,
    {
      version: source.version as 2 | 3,
      metadata: source.metadata.entries,
      tensors: [...source.tensors.values()].map((t) => ({ ...t, data: () => source.read(t.name) })),
    },
    options,
  );
}
