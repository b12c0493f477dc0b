/**
 * GGUF header parser: magic, version, metadata and tensor infos, from the first bytes of a file.
 * Reference: ggml docs/gguf.md and ggml/src/gguf.cpp (gguf_init_from_file_impl).
 *
 * The parser is synchronous over a prefix of the file. When the prefix is too short it throws
 * NeedMoreBytes and the caller reads a longer prefix and parses again: a header is small next
 * to tensor data, so this costs less than making every field read asynchronous.
 * Every count and length is checked against the bytes that could possibly hold it before
 * anything is allocated, so a corrupt count cannot exhaust memory.
 */
import { dtypeInfo, rowBytes } from '../../core/dtypes.js';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_VALUE_TYPE_NAMES,
  type GGUFArray,
  GGUFError,
  type GGUFKV,
  type GGUFValue,
  GGUFValueType,
} from './types.js';

/** The header needs more bytes than the prefix holds (the file itself is long enough). */
export class NeedMoreBytes extends Error {
  constructor(readonly needed: number) {
    super(`need ${needed} bytes`);
  }
}

export interface ParsedHeader {
  readonly version: number;
  readonly metadata: GGUFKV[];
  readonly tensors: ParsedTensor[];
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
}

export interface ParsedTensor {
  readonly name: string;
  readonly type: number;
  readonly shape: number[];
  /** Offset relative to the data section. */
  readonly relOffset: number;
  readonly byteLength: number;
}

const SCALAR_BYTES: Record<number, number> = {
  [GGUFValueType.UINT8]: 1,
  [GGUFValueType.INT8]: 1,
  [GGUFValueType.UINT16]: 2,
  [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4,
  [GGUFValueType.INT32]: 4,
  [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT64]: 8,
  [GGUFValueType.INT64]: 8,
  [GGUFValueType.FLOAT64]: 8,
};
/** Smallest encoding of a value of each type (strings and arrays: their u64 length/header). */
function minValueBytes(type: number): number {
  if (type === GGUFValueType.STRING) return 8;
  if (type === GGUFValueType.ARRAY) return 12;
  return SCALAR_BYTES[type] ?? 1;
}

// ignoreBOM: a token may be U+FEFF itself; stripping it would change the file.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const codeUnits: number[] = [];

/**
 * Strict UTF-8 decoding of a short string (as TextDecoder with fatal: true and ignoreBOM:
 * overlongs, surrogates and code points past U+10FFFF are invalid); undefined when invalid.
 */
export function decodeShortUtf8(b: Uint8Array): string | undefined {
  codeUnits.length = 0;
  for (let i = 0; i < b.length; ) {
    const c = b[i] as number;
    if (c < 0x80) {
      codeUnits.push(c);
      i++;
      continue;
    }
    let n: number;
    let cp: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
      min = 0x10000;
    } else return undefined;
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return undefined;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      codeUnits.push(0xd800 | (cp >> 10), 0xdc00 | (cp & 0x3ff));
    } else codeUnits.push(cp);
    i += n + 1;
  }
  return String.fromCharCode.apply(null, codeUnits);
}

class Cursor {
  pos = 0;
  readonly view: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly fileSize: number,
    readonly file: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(message: string): never {
    throw new GGUFError(this.file, message);
  }

  /** Bytes left in the file after the cursor. */
  get remainingInFile(): number {
    return this.fileSize - this.pos;
  }

  need(n: number, what: string): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos + n > this.fileSize) {
      this.fail(
        `file is truncated: ${what} at byte ${this.pos} needs ${n} bytes, the file has ${this.fileSize}`,
      );
    }
    throw new NeedMoreBytes(this.pos + n);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 that must be a count of at most `max` (checked before use). */
  count(what: string, max: number): number {
    this.need(8, what);
    // Two u32 halves: no BigInt on the hot path (one length per vocabulary string).
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    const v = hi * 2 ** 32 + lo;
    if (v > max) {
      const exact = (BigInt(hi) << 32n) | BigInt(lo);
      this.fail(`${what} is ${exact}, more than the ${max} the rest of the file could hold (corrupt or truncated file)`);
    }
    return v;
  }
  string(what: string): string {
    const len = this.count(`length of ${what}`, this.remainingInFile - 8);
    this.need(len, what);
    const bytes = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    if (len <= 64) {
      // Vocabularies hold ~10^5 short strings; TextDecoder costs about a microsecond per call.
      const decoded = decodeShortUtf8(bytes);
      if (decoded !== undefined) return decoded;
      return this.fail(`${what} at byte ${this.pos - len} is not valid UTF-8`);
    }
    try {
      return utf8.decode(bytes);
    } catch {
      return this.fail(`${what} at byte ${this.pos - len} is not valid UTF-8`);
    }
  }
}

function readScalar(c: Cursor, type: number, what: string): GGUFValue {
  const v = c.view;
  switch (type) {
    case GGUFValueType.STRING:
      return c.string(what);
    case GGUFValueType.BOOL: {
      const b = c.u8(what);
      if (b > 1) c.fail(`${what} is a bool with byte value ${b} (must be 0 or 1)`);
      return b === 1;
    }
    case GGUFValueType.UINT8:
      return c.u8(what);
    case GGUFValueType.INT8:
      c.need(1, what);
      return v.getInt8(c.pos++);
    case GGUFValueType.UINT16:
      c.need(2, what);
      c.pos += 2;
      return v.getUint16(c.pos - 2, true);
    case GGUFValueType.INT16:
      c.need(2, what);
      c.pos += 2;
      return v.getInt16(c.pos - 2, true);
    case GGUFValueType.UINT32:
      return c.u32(what);
    case GGUFValueType.INT32:
      c.need(4, what);
      c.pos += 4;
      return v.getInt32(c.pos - 4, true);
    case GGUFValueType.FLOAT32:
      c.need(4, what);
      c.pos += 4;
      return v.getFloat32(c.pos - 4, true);
    case GGUFValueType.UINT64:
      return c.u64(what);
    case GGUFValueType.INT64:
      c.need(8, what);
      c.pos += 8;
      return v.getBigInt64(c.pos - 8, true);
    case GGUFValueType.FLOAT64:
      c.need(8, what);
      c.pos += 8;
      return v.getFloat64(c.pos - 8, true);
    default:
      return c.fail(`${what} has unknown value type ${type}`);
  }
}

/** Copies `n` little-endian numbers out of the buffer into a fresh typed array. */
function readNumbers(c: Cursor, type: number, n: number, what: string): GGUFArray['items'] {
  const size = SCALAR_BYTES[type] as number;
  c.need(n * size, what);
  const bytes = c.buf.slice(c.pos, c.pos + n * size).buffer; // a copy: aligned, owned
  c.pos += n * size;
  switch (type) {
    case GGUFValueType.UINT8:
      return new Uint8Array(bytes);
    case GGUFValueType.INT8:
      return new Int8Array(bytes);
    case GGUFValueType.UINT16:
      return new Uint16Array(bytes);
    case GGUFValueType.INT16:
      return new Int16Array(bytes);
    case GGUFValueType.UINT32:
      return new Uint32Array(bytes);
    case GGUFValueType.INT32:
      return new Int32Array(bytes);
    case GGUFValueType.FLOAT32:
      return new Float32Array(bytes);
    case GGUFValueType.FLOAT64:
      return new Float64Array(bytes);
    case GGUFValueType.UINT64:
      return new BigUint64Array(bytes);
    default:
      return new BigInt64Array(bytes);
  }
}

function readArray(c: Cursor, what: string, depth: number): GGUFArray {
  if (depth > 8) c.fail(`${what} nests arrays more than 8 deep`);
  const itemType = c.u32(`element type of ${what}`) as GGUFValueType;
  if (!(itemType in GGUF_VALUE_TYPE_NAMES)) {
    c.fail(`${what} has unknown element type ${itemType}`);
  }
  const max = Math.floor((c.remainingInFile - 8) / minValueBytes(itemType));
  const n = c.count(`element count of ${what}`, max);
  if (itemType === GGUFValueType.STRING) {
    const items: string[] = new Array(n);
    for (let i = 0; i < n; i++) items[i] = c.string(`${what}[${i}]`);
    return { itemType, items };
  }
  if (itemType === GGUFValueType.ARRAY) {
    const items: GGUFArray[] = new Array(n);
    for (let i = 0; i < n; i++) items[i] = readArray(c, `${what}[${i}]`, depth + 1);
    return { itemType, items };
  }
  if (itemType === GGUFValueType.BOOL) {
    const items: boolean[] = new Array(n);
    for (let i = 0; i < n; i++) items[i] = readScalar(c, itemType, `${what}[${i}]`) as boolean;
    return { itemType, items };
  }
  return { itemType, items: readNumbers(c, itemType, n, what) };
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/**
 * Parses the header from `buf`, the first bytes of a file of `fileSize` bytes.
 * Throws GGUFError for a bad file, NeedMoreBytes when `buf` is too short.
 */
export function parseGGUFHeader(buf: Uint8Array, fileSize: number, file: string): ParsedHeader {
  const c = new Cursor(buf, fileSize, file);
  if (fileSize < 4) c.fail(`file is truncated: ${fileSize} bytes, too short for a GGUF header`);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    const text = String.fromCharCode(...buf.subarray(0, 4));
    c.fail(`not a GGUF file (magic ${JSON.stringify(text)}, expected "GGUF")`);
  }
  const version = c.u32('version');
  if (version === 1) c.fail('GGUF version 1 is not supported (convert it with a newer llama.cpp)');
  if (version !== 2 && version !== 3) {
    // Version 2 or 3 written big-endian reads as 0x02000000 or 0x03000000.
    if (version === 0x02000000 || version === 0x03000000) c.fail('big-endian GGUF files are not supported');
    c.fail(`unsupported GGUF version ${version} (supported: 2, 3)`);
  }
  // A tensor info takes at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
  const nTensors = c.count('tensor count', Math.floor(c.remainingInFile / 24));
  const nKV = c.count('metadata count', Math.floor((c.remainingInFile - 8) / 12));

  const metadata: GGUFKV[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < nKV; i++) {
    const key = c.string(`metadata key #${i}`);
    if (seen.has(key)) c.fail(`metadata key '${key}' appears twice`);
    seen.add(key);
    const type = c.u32(`value type of '${key}'`) as GGUFValueType;
    if (!(type in GGUF_VALUE_TYPE_NAMES)) c.fail(`metadata key '${key}' has unknown value type ${type}`);
    const value =
      type === GGUFValueType.ARRAY ? readArray(c, `'${key}'`, 0) : readScalar(c, type, `'${key}'`);
    metadata.push({ key, type, value });
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const align = metadata.find((kv) => kv.key === 'general.alignment');
  if (align) {
    const a = align.value;
    if (align.type !== GGUFValueType.UINT32 || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0) {
      return c.fail(`'general.alignment' must be a u32 power of two, got ${String(a)}`);
    }
    alignment = a;
  }

  const tensors: ParsedTensor[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(`name of tensor #${i}`);
    if (names.has(name)) c.fail(`tensor '${name}' appears twice`);
    names.add(name);
    const nDims = c.u32(`dimension count of tensor '${name}'`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) {
      c.fail(`tensor '${name}' has ${nDims} dimensions (1 to ${GGUF_MAX_DIMS} allowed)`);
    }
    const ne: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const n = c.u64(`dimension ${d} of tensor '${name}'`);
      if (n > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`tensor '${name}' dimension ${d} is ${n}, too large`);
      ne.push(Number(n));
      elements *= Number(n);
      if (elements > Number.MAX_SAFE_INTEGER) c.fail(`tensor '${name}' has too many elements`);
    }
    const type = c.u32(`type of tensor '${name}'`);
    let byteLength: number;
    try {
      const info = dtypeInfo(type);
      if (info.blockElems > 1 && (ne[0] as number) % info.blockElems !== 0) {
        c.fail(
          `tensor '${name}' of type ${info.name} has rows of ${ne[0]} elements, not a multiple of its block size ${info.blockElems}`,
        );
      }
      byteLength = (ne[0] as number) === 0 ? 0 : rowBytes(type, ne[0] as number) * (elements / (ne[0] as number));
    } catch (e) {
      if (e instanceof GGUFError) throw e;
      return c.fail(`tensor '${name}' has unknown or unsupported type id ${type}`);
    }
    const relOffset = c.u64(`data offset of tensor '${name}'`);
    if (relOffset > BigInt(fileSize)) {
      c.fail(`tensor '${name}' data offset ${relOffset} is past the end of the file (${fileSize} bytes)`);
    }
    if (Number(relOffset) % alignment !== 0) {
      c.fail(`tensor '${name}' data offset ${relOffset} is not a multiple of the alignment ${alignment}`);
    }
    tensors.push({ name, type, shape: ne.reverse(), relOffset: Number(relOffset), byteLength });
  }

  const dataOffset = alignUp(c.pos, alignment);
  // Every tensor inside the file, and no two overlapping.
  const byOffset = [...tensors].sort((a, b) => a.relOffset - b.relOffset);
  let end = 0;
  let prev = '';
  for (const t of byOffset) {
    if (t.relOffset < end) c.fail(`tensors '${prev}' and '${t.name}' overlap`);
    end = t.relOffset + t.byteLength;
    prev = t.name;
    if (dataOffset + end > fileSize) {
      c.fail(
        `file is truncated: tensor '${t.name}' ends at byte ${dataOffset + end}, the file has ${fileSize}`,
      );
    }
  }
  return { version, metadata, tensors, alignment, dataOffset };
}
