/**
 * GGUF file reader: opens a file (or a split model `name-00001-of-0000N.gguf`), parses its
 * header, and reads tensor data lazily by positional reads straight into the caller's buffer
 * (typically a view of wasm memory), so opening a large model reads only its header.
 * Reference: ggml docs/gguf.md; split files: llama.cpp src/llama-model-loader.cpp and
 * tools/gguf-split (metadata `split.no`, `split.count`, `split.tensors.count`).
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { Arena } from '../../core/heap.js';
import { allocTensor, type Tensor } from '../../core/tensor.js';
import { GGUFMetadata } from './metadata.js';
import { NeedMoreBytes, type ParsedHeader, parseGGUFHeader } from './parse.js';
import { GGUFError, type GGUFTensorInfo } from './types.js';

/** First read; most headers without a large vocabulary fit. */
const FIRST_READ_BYTES = 4 << 20;
const SPLIT_RE = /-(\d{5})-of-(\d{5})\.gguf$/;

interface OpenFile {
  readonly path: string;
  readonly handle: FileHandle;
  readonly size: number;
  readonly header: ParsedHeader;
}

/** Reads exactly `dest.length` bytes at `position`, looping on short reads. */
async function readFully(handle: FileHandle, dest: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < dest.length) {
    const { bytesRead } = await handle.read(dest, done, dest.length - done, position + done);
    if (bytesRead === 0) {
      throw new GGUFError(file, `file ended while reading ${dest.length} bytes at byte ${position} (was it truncated?)`);
    }
    done += bytesRead;
  }
}

async function openOne(file: string, firstRead: number): Promise<OpenFile> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(e);
    throw new GGUFError(file, `cannot open: ${why}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new GGUFError(file, 'cannot open: not a regular file');
    const size = stat.size;
    let want = Math.min(size, firstRead);
    for (;;) {
      const buf = new Uint8Array(want);
      await readFully(handle, buf, 0, file);
      try {
        return { path: file, handle, size, header: parseGGUFHeader(buf, size, file) };
      } catch (e) {
        if (!(e instanceof NeedMoreBytes)) throw e;
        want = Math.min(size, Math.max(e.needed, want * 4));
      }
    }
  } catch (e) {
    await handle.close();
    throw e;
  }
}

export interface GGUFOpenOptions {
  /** Bytes read for the header at first (it grows as needed); 4 MiB covers most vocabularies. */
  readonly headerReadBytes?: number;
}

export class GGUFFile {
  /** Tensors of all splits, in file order. */
  readonly tensors: ReadonlyMap<string, GGUFTensorInfo>;

  private constructor(
    /** The file that was opened (the first split for split models). */
    readonly path: string,
    readonly metadata: GGUFMetadata,
    private readonly files: OpenFile[],
  ) {
    const tensors = new Map<string, GGUFTensorInfo>();
    for (const f of files) {
      for (const t of f.header.tensors) {
        if (tensors.has(t.name)) throw new GGUFError(f.path, `tensor '${t.name}' is also in another split`);
        tensors.set(t.name, {
          name: t.name,
          type: t.type,
          shape: t.shape,
          file: f.path,
          offset: f.header.dataOffset + t.relOffset,
          byteLength: t.byteLength,
        });
      }
    }
    this.tensors = tensors;
  }

  /** GGUF version of the (first) file: 2 or 3. */
  get version(): number {
    return (this.files[0] as OpenFile).header.version;
  }
  get alignment(): number {
    return (this.files[0] as OpenFile).header.alignment;
  }
  /** Absolute offset of the first file's tensor data section. */
  get dataOffset(): number {
    return (this.files[0] as OpenFile).header.dataOffset;
  }
  /** Paths of all files (one, or every split in order). */
  get paths(): string[] {
    return this.files.map((f) => f.path);
  }
  /** Total bytes of tensor data. */
  get tensorBytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.byteLength;
    return n;
  }

  /**
   * Opens a GGUF file. For a split model, pass any of its parts (`-0000i-of-0000n.gguf`):
   * every part is opened and their tensors are merged; the metadata is the first part's.
   */
  static async open(file: string, options: GGUFOpenOptions = {}): Promise<GGUFFile> {
    const firstRead = Math.max(64, options.headerReadBytes ?? FIRST_READ_BYTES);
    const m = SPLIT_RE.exec(file);
    if (!m) {
      const one = await openOne(file, firstRead);
      const meta = new GGUFMetadata(one.header.metadata, file);
      if (meta.int('split.count', 1) > 1) {
        await one.handle.close();
        throw new GGUFError(file, `is part of a split model (split.count = ${meta.int('split.count')}) but its name does not end in -0000i-of-0000n.gguf`);
      }
      return new GGUFFile(file, meta, [one]);
    }
    const count = Number(m[2]);
    if (count < 1) throw new GGUFError(file, 'split file name says 0 parts');
    const partPath = (i: number) =>
      file.replace(SPLIT_RE, `-${String(i).padStart(5, '0')}-of-${m[2]}.gguf`);
    const files: OpenFile[] = [];
    try {
      for (let i = 1; i <= count; i++) {
        const f = await openOne(partPath(i), firstRead);
        files.push(f);
        const meta = new GGUFMetadata(f.header.metadata, f.path);
        const no = meta.int('split.no', i - 1);
        const total = meta.int('split.count', count);
        if (no !== i - 1 || total !== count) {
          throw new GGUFError(f.path, `split metadata says part ${no + 1} of ${total}, the file name says ${i} of ${count}`);
        }
      }
      const first = files[0] as OpenFile;
      const meta = new GGUFMetadata(first.header.metadata, first.path);
      const expected = meta.int('split.tensors.count', -1);
      const got = files.reduce((n, f) => n + f.header.tensors.length, 0);
      if (expected >= 0 && expected !== got) {
        throw new GGUFError(first.path, `split.tensors.count is ${expected} but the ${count} parts hold ${got} tensors`);
      }
      return new GGUFFile(first.path, meta, files);
    } catch (e) {
      await Promise.all(files.map((f) => f.handle.close()));
      throw e;
    }
  }

  /** The named tensor's info; a GGUFError naming the tensor when absent. */
  tensor(name: string): GGUFTensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new GGUFError(this.path, `has no tensor '${name}'`);
    return t;
  }

  /** Reads a tensor's bytes into `dest` (exactly its byteLength), e.g. a view of wasm memory. */
  async readInto(name: string, dest: Uint8Array): Promise<void> {
    const t = this.tensor(name);
    if (dest.length !== t.byteLength) {
      throw new GGUFError(this.path, `tensor '${name}' holds ${t.byteLength} bytes, the destination ${dest.length}`);
    }
    const f = this.files.find((x) => x.path === t.file) as OpenFile;
    await readFully(f.handle, dest, t.offset, f.path);
  }

  /** Reads a tensor's bytes into a new buffer. */
  async read(name: string): Promise<Uint8Array> {
    const dest = new Uint8Array(this.tensor(name).byteLength);
    await this.readInto(name, dest);
    return dest;
  }

  /** Allocates the tensor in `arena` and reads its data into it. */
  async load(name: string, arena: Arena): Promise<Tensor> {
    const t = this.tensor(name);
    const tensor = allocTensor(arena, t.type, t.shape, name);
    await this.readInto(name, tensor.bytes);
    return tensor;
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.handle.close()));
  }
}
