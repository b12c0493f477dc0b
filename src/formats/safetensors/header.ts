/**
 * The safetensors header: decoding and validating it (reader side) and encoding it (writer side).
 *
 * Layout: 8 bytes little-endian u64 N, N bytes of UTF-8 JSON, then the data section. The JSON maps
 * each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
 * data section) plus an optional "__metadata__" string-to-string map.
 *
 * Validation follows the reference crate (safetensors/src/tensor.rs, `Metadata::validate` and
 * `read_metadata`): the tensors, sorted by offset, must tile the data section exactly: no overlap,
 * no hole, no trailing byte ("The byte buffer needs to be entirely indexed, and cannot contain
 * holes. This prevents the creation of polyglot files." - README). A file the reference refuses
 * is refused here too. Unknown fields inside a tensor entry are ignored, as serde does.
 *
 * Reference: https://github.com/huggingface/safetensors README "Format"; safetensors/src/tensor.rs.
 */
import { type JsonObject, JsonSyntaxError, type JsonValue, parseStrictJson } from './json.js';
import {
  describeValue,
  isSafetensorsDType,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  SafetensorsError,
  tensorByteLength,
} from './types.js';

/** One tensor entry of a header; begin/end are relative to the data section. */
export interface HeaderTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface ParsedHeader {
  /** `__metadata__` in file order, or undefined when absent or null. */
  metadata: Map<string, string> | undefined;
  /** Sorted by data offset (ties keep header order). */
  tensors: HeaderTensor[];
}

const METADATA_KEY = '__metadata__';

/**
 * Decodes and validates a header. `dataLength` is the size of the data section (file size minus
 * 8 minus N); `file` only serves the error messages.
 */
export function parseHeader(bytes: Uint8Array, file: string, dataLength: number): ParsedHeader {
  const where = `safetensors file ${file}`;
  let text: string;
  try {
    // ignoreBOM keeps a byte-order mark in the text so that it fails as JSON, as in the reference.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(`${where}: the header is not valid UTF-8; the file is corrupt or not safetensors`);
  }
  let root: JsonValue;
  try {
    root = parseStrictJson(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new SafetensorsError(
      `${where}: the header is not valid JSON (${e.message} of ${text.length}); the file is corrupt or not safetensors`,
    );
  }
  if (!(root instanceof Map)) {
    throw new SafetensorsError(`${where}: the header is ${describeValue(root)}, expected a JSON object`);
  }

  let metadata: Map<string, string> | undefined;
  const tensors: HeaderTensor[] = [];
  for (const [name, entry] of root) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(entry, where);
      continue;
    }
    const tensor = parseTensorEntry(name, entry, where);
    if (tensor.end > dataLength) {
      throw new SafetensorsError(
        `${where}: tensor ${JSON.stringify(name)}: data_offsets end ${tensor.end} is past the end of the data ` +
          `section (${dataLength} bytes); the file is truncated or its header is corrupt`,
      );
    }
    tensors.push(tensor);
  }

  // Array.prototype.sort is stable, so equal offsets (empty tensors) keep header order.
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: HeaderTensor | undefined;
  for (const t of tensors) {
    if (t.begin < covered) {
      throw new SafetensorsError(
        `${where}: tensor ${JSON.stringify(t.name)} (bytes ${t.begin}..${t.end}) overlaps tensor ` +
          `${JSON.stringify(previous!.name)} (bytes ${previous!.begin}..${previous!.end})`,
      );
    }
    if (t.begin > covered) {
      throw new SafetensorsError(
        `${where}: data bytes ${covered}..${t.begin} before tensor ${JSON.stringify(t.name)} belong to no ` +
          'tensor; the spec forbids holes in the data section',
      );
    }
    covered = t.end;
    previous = t;
  }
  if (covered !== dataLength) {
    throw new SafetensorsError(
      `${where}: the data section has ${dataLength} bytes but its tensors cover only ${covered}; ` +
        'the spec forbids trailing bytes (the file was appended to, or its header is corrupt)',
    );
  }
  return { metadata, tensors };
}

function parseMetadata(entry: JsonValue, where: string): Map<string, string> | undefined {
  if (entry === null) return undefined; // serde reads null as an absent Option
  if (!(entry instanceof Map)) {
    throw new SafetensorsError(`${where}: ${METADATA_KEY} is ${describeValue(entry)}, expected an object of strings`);
  }
  for (const [key, value] of entry) {
    if (typeof value !== 'string') {
      throw new SafetensorsError(
        `${where}: ${METADATA_KEY}[${JSON.stringify(key)}] is ${describeValue(value)}; metadata values must be strings`,
      );
    }
  }
  return entry as Map<string, string>;
}

function parseTensorEntry(name: string, entry: JsonValue, where: string): HeaderTensor {
  const fail = (what: string): never => {
    throw new SafetensorsError(`${where}: tensor ${JSON.stringify(name)}: ${what}`);
  };
  if (!(entry instanceof Map)) return fail(`entry is ${describeValue(entry)}, expected an object`);
  const fields = entry as JsonObject;

  const dtype = fields.get('dtype');
  if (dtype === undefined) fail('missing "dtype"');
  if (typeof dtype !== 'string') fail(`"dtype" is ${describeValue(dtype)}, expected a string`);
  if (!isSafetensorsDType(dtype)) {
    fail(`unknown dtype ${describeValue(dtype)} (known: ${SAFETENSORS_DTYPES.join(', ')})`);
  }

  const rawShape = fields.get('shape');
  if (rawShape === undefined) fail('missing "shape"');
  if (!Array.isArray(rawShape)) fail(`"shape" is ${describeValue(rawShape)}, expected an array of integers`);
  const shape = (rawShape as JsonValue[]).map((d, i) => exactInteger(d, `shape[${i}]`, fail));

  const offsets = fields.get('data_offsets');
  if (offsets === undefined) fail('missing "data_offsets"');
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    fail(`"data_offsets" is ${describeValue(offsets)}, expected [begin, end]`);
  }
  const [begin, end] = (offsets as JsonValue[]).map((v, i) => exactInteger(v, `data_offsets[${i}]`, fail));
  if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`);

  const byteLength = tensorByteLength(dtype as SafetensorsDType, shape, fail);
  if (end - begin !== byteLength) {
    fail(
      `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape [${shape.join(', ')}] ` +
        `of ${dtype} needs ${byteLength}`,
    );
  }
  return { name, dtype: dtype as SafetensorsDType, shape, begin, end };
}

/** A JSON integer token in [0, 2^53); floats such as 2.0 are refused, as serde_json does. */
function exactInteger(v: JsonValue, field: string, fail: (what: string) => never): number {
  if (typeof v === 'bigint') {
    if (v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    return fail(`${field} is ${v}; expected an integer in [0, 2^53)`);
  }
  if (typeof v === 'number') return fail(`${field} is ${v} written as a decimal or exponent; expected an integer`);
  return fail(`${field} is ${describeValue(v)}; expected an integer`);
}

/**
 * Encodes a header exactly as the reference serializer does: compact JSON with "__metadata__"
 * first (only when given), then the tensors in the given order, each as
 * {"dtype","shape","data_offsets"}, padded with spaces to a multiple of 8 bytes so that the data
 * section starts 8-aligned. JSON.stringify escapes strings the way serde_json does (", \, and
 * control characters; everything else raw UTF-8).
 */
export function encodeHeader(tensors: readonly HeaderTensor[], metadata?: Iterable<[string, string]>): Uint8Array {
  const parts: string[] = [];
  if (metadata !== undefined) {
    const entries: string[] = [];
    for (const [k, v] of metadata) entries.push(JSON.stringify(k) + ':' + JSON.stringify(v));
    parts.push(JSON.stringify(METADATA_KEY) + ':{' + entries.join(',') + '}');
  }
  for (const t of tensors) {
    parts.push(
      JSON.stringify(t.name) +
        ':{"dtype":' +
        JSON.stringify(t.dtype) +
        ',"shape":[' +
        t.shape.join(',') +
        '],"data_offsets":[' +
        t.begin +
        ',' +
        t.end +
        ']}',
    );
  }
  const json = new TextEncoder().encode('{' + parts.join(',') + '}');
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  return padded;
}
