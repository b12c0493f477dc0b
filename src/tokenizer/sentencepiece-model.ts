/**
 * SentencePiece `tokenizer.model` files (a protobuf ModelProto): read and write the parts a
 * llama-type vocabulary needs. Hugging Face Llama, Mistral and Phi-3 checkpoints ship one next
 * to tokenizer.json because tokenizer.json has no piece scores, and llama.cpp's converter
 * (convert_hf_to_gguf.py `_create_vocab_sentencepiece`) takes pieces, scores and types from it.
 *
 * Reference: sentencepiece src/sentencepiece_model.proto (ModelProto: pieces = 1 {piece = 1,
 * score = 2, type = 3}, trainer_spec = 2 {model_type = 3, vocab_size = 4, byte_fallback = 35,
 * unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43}, normalizer_spec = 3 {name = 1,
 * add_dummy_prefix = 3, remove_extra_whitespaces = 4, escape_whitespaces = 5}); the protobuf
 * wire format (varints, length-delimited fields, fixed32 floats). Unknown fields are skipped.
 * Piece types use the same numbers as GGUF token types (NORMAL 1 ... BYTE 6).
 */
import { TokenizerError } from './types.js';

export interface SentencePiece {
  readonly piece: string;
  readonly score: number;
  /** 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE (protobuf default 1). */
  readonly type: number;
}

export interface SentencePieceModelProto {
  readonly pieces: readonly SentencePiece[];
  /** trainer_spec.model_type: 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR (default 1). */
  readonly modelType: number;
  readonly byteFallback: boolean;
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  /** -1 when the model has no padding piece. */
  readonly padId: number;
  /** normalizer_spec.add_dummy_prefix: prepend a space to the text (default true). */
  readonly addDummyPrefix: boolean;
  readonly removeExtraWhitespaces: boolean;
  readonly escapeWhitespaces: boolean;
}

// ---- reading -------------------------------------------------------------------------

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

class ProtoReader {
  private at = 0;
  private readonly view: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get done(): boolean {
    return this.at >= this.bytes.length;
  }
  private fail(message: string): never {
    throw new TokenizerError(`${this.what}: not a valid SentencePiece model (${message} at byte ${this.at})`);
  }
  private varint64(): bigint {
    let result = 0n;
    for (let i = 0n; i < 10n; i++) {
      if (this.at >= this.bytes.length) this.fail('truncated varint');
      const b = this.bytes[this.at++];
      result |= BigInt(b & 0x7f) << (7n * i);
      if ((b & 0x80) === 0) return result;
    }
    return this.fail('varint longer than 10 bytes');
  }
  /** An unsigned varint (lengths, enums, bools); values past 2^53 are refused. */
  varint(): number {
    const v = this.varint64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`varint ${v} too large`);
    return Number(v);
  }
  /** A varint as a signed 32-bit value (negative int32 fields are 10-byte varints). */
  int32(): number {
    return Number(BigInt.asIntN(32, this.varint64()));
  }
  bytesField(): Uint8Array {
    const length = this.varint();
    if (length > this.bytes.length - this.at) this.fail(`field of ${length} bytes past the end`);
    const out = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return out;
  }
  float(): number {
    if (this.at + 4 > this.bytes.length) this.fail('truncated float');
    const v = this.view.getFloat32(this.at, true);
    this.at += 4;
    return v;
  }
  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_BYTES) this.bytesField();
    else if (wire === WIRE_FIXED32) this.at += 4;
    else if (wire === WIRE_FIXED64) this.at += 8;
    else this.fail(`unsupported wire type ${wire}`);
    if (this.at > this.bytes.length) this.fail('truncated field');
  }
  /** Calls `field(number, wire)` for each field; it must consume the value or return false to skip it. */
  fields(field: (number: number, wire: number) => boolean): void {
    while (!this.done) {
      const key = this.varint();
      const number = Math.floor(key / 8);
      const wire = key % 8;
      if (!field(number, wire)) this.skip(wire);
    }
  }
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // keep a U+FEFF piece

/** Parse a `tokenizer.model` file. `what` names it in error messages. */
export function readSentencePieceModel(bytes: Uint8Array, what = 'tokenizer.model'): SentencePieceModelProto {
  const pieces: SentencePiece[] = [];
  const model = {
    modelType: 1,
    byteFallback: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  const top = new ProtoReader(bytes, what);
  top.fields((number, wire) => {
    if (wire !== WIRE_BYTES || (number !== 1 && number !== 2 && number !== 3)) return false;
    const inner = new ProtoReader(top.bytesField(), what);
    if (number === 1) {
      let piece = '';
      let score = 0;
      let type = 1;
      inner.fields((n, w) => {
        if (n === 1 && w === WIRE_BYTES) {
          try {
            piece = utf8Decoder.decode(inner.bytesField());
          } catch {
            throw new TokenizerError(`${what}: piece ${pieces.length} is not valid UTF-8`);
          }
        } else if (n === 2 && w === WIRE_FIXED32) score = inner.float();
        else if (n === 3 && w === WIRE_VARINT) type = inner.varint();
        else return false;
        return true;
      });
      pieces.push({ piece, score, type });
    } else if (number === 2) {
      inner.fields((n, w) => {
        if (w !== WIRE_VARINT) return false;
        if (n === 3) model.modelType = inner.varint();
        else if (n === 35) model.byteFallback = inner.varint() !== 0;
        else if (n === 40) model.unkId = inner.int32();
        else if (n === 41) model.bosId = inner.int32();
        else if (n === 42) model.eosId = inner.int32();
        else if (n === 43) model.padId = inner.int32();
        else return false;
        return true;
      });
    } else {
      inner.fields((n, w) => {
        if (w !== WIRE_VARINT) return false;
        if (n === 3) model.addDummyPrefix = inner.varint() !== 0;
        else if (n === 4) model.removeExtraWhitespaces = inner.varint() !== 0;
        else if (n === 5) model.escapeWhitespaces = inner.varint() !== 0;
        else return false;
        return true;
      });
    }
    return true;
  });
  if (pieces.length === 0) throw new TokenizerError(`${what}: the SentencePiece model has no pieces`);
  return { pieces, ...model };
}

// ---- writing -------------------------------------------------------------------------

class ProtoWriter {
  private chunks: number[] = [];
  /** Negative values are written as 64-bit two's complement (10 bytes), as protobuf does for int32. */
  varint(value: number): this {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.chunks.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.chunks.push(Number(v));
    return this;
  }
  key(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }
  bytes(field: number, data: Uint8Array): this {
    this.key(field, WIRE_BYTES).varint(data.length);
    for (const b of data) this.chunks.push(b);
    return this;
  }
  float(field: number, value: number): this {
    this.key(field, WIRE_FIXED32);
    const buf = new DataView(new ArrayBuffer(4));
    buf.setFloat32(0, value, true);
    for (let i = 0; i < 4; i++) this.chunks.push(buf.getUint8(i));
    return this;
  }
  int(field: number, value: number): this {
    return this.key(field, WIRE_VARINT).varint(value);
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

const utf8Encoder = new TextEncoder();

/** Serialize a model; readSentencePieceModel(writeSentencePieceModel(m)) gives m back. */
export function writeSentencePieceModel(model: SentencePieceModelProto): Uint8Array {
  const out = new ProtoWriter();
  for (const p of model.pieces) {
    const piece = new ProtoWriter().bytes(1, utf8Encoder.encode(p.piece)).float(2, p.score).int(3, p.type).finish();
    out.bytes(1, piece);
  }
  const trainer = new ProtoWriter()
    .int(3, model.modelType)
    .int(4, model.pieces.length)
    .int(35, model.byteFallback ? 1 : 0)
    .int(40, model.unkId)
    .int(41, model.bosId)
    .int(42, model.eosId)
    .int(43, model.padId)
    .finish();
  out.bytes(2, trainer);
  const normalizer = new ProtoWriter()
    .bytes(1, utf8Encoder.encode('identity'))
    .int(3, model.addDummyPrefix ? 1 : 0)
    .int(4, model.removeExtraWhitespaces ? 1 : 0)
    .int(5, model.escapeWhitespaces ? 1 : 0)
    .finish();
  out.bytes(3, normalizer);
  return out.finish();
}
