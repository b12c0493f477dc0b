// Bad GGUF files: each defect gives a GGUFError naming the file and what is wrong, nothing is
// allocated from an unchecked count, and nothing hangs. Then a fuzz run: mutated valid files
// (bit flips, byte and u64 overwrites, truncations, insertions) must either parse into a
// consistent header or fail with GGUFError. SWITCHYARD_FUZZ_CASES sets the number of cases
// (default 1500; e.g. 200000 for a long run).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { GGUFError, GGUFFile, type GGUFKV, GGUFValueType, kv, writeGGUF } from '../../src/formats/gguf/index.js';
import { parseGGUFHeader } from '../../src/formats/gguf/parse.js';
import { rng } from '../helpers/random.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sy-gguf-bad-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tmp = (name: string) => path.join(dir, name);

const META: GGUFKV[] = [
  kv.string('general.architecture', 'llama'),
  kv.u32('llama.block_count', 2),
  kv.f32('llama.rope.freq_base', 10000),
  kv.bool('tokenizer.ggml.add_bos_token', true),
  kv.strings('tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', '▁the', 'Ġa', '日本']),
  kv.f32s('tokenizer.ggml.scores', [0, 0, 0, -1, -2, -3]),
  kv.i32s('tokenizer.ggml.token_type', [2, 3, 3, 1, 1, 1]),
  { key: 'nested', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.ARRAY, items: [{ itemType: GGUFValueType.UINT64, items: new BigUint64Array([1n]) }] } },
];
const TENSORS = [
  { name: 'token_embd.weight', type: GGMLType.F32, shape: [6, 8], data: new Uint8Array(6 * 8 * 4).fill(1) },
  { name: 'blk.0.attn_q.weight', type: GGMLType.Q4_0, shape: [4, 32], data: new Uint8Array(4 * 18).fill(2) },
  { name: 'output_norm.weight', type: GGMLType.F32, shape: [8], data: new Uint8Array(32).fill(3) },
];
let valid: Uint8Array;
/** Byte offsets of fields in `valid`, found by parsing it. */
let layout: { tensorInfoStart: number; dataOffset: number };

beforeAll(async () => {
  await writeGGUF(tmp('valid.gguf'), { metadata: META, tensors: TENSORS });
  valid = new Uint8Array(readFileSync(tmp('valid.gguf')));
  const h = parseGGUFHeader(valid, valid.length, 'valid.gguf');
  const enc = new TextEncoder().encode('token_embd.weight');
  let at = 0;
  for (let i = 0; i < valid.length; i++) {
    if (enc.every((b, j) => valid[i + j] === b)) {
      at = i - 8;
      break;
    }
  }
  layout = { tensorInfoStart: at, dataOffset: h.dataOffset };
});

/** Writes bytes to a file, opens it, returns the error (or fails the test on success). */
async function openError(bytes: Uint8Array, name = 'bad.gguf'): Promise<GGUFError> {
  writeFileSync(tmp(name), bytes);
  try {
    const g = await GGUFFile.open(tmp(name));
    await g.close();
  } catch (e) {
    expect(e).toBeInstanceOf(GGUFError);
    expect((e as Error).message).toContain(name);
    return e as GGUFError;
  }
  throw new Error('expected a GGUFError');
}

function patched(at: number, bytes: number[] | Uint8Array): Uint8Array {
  const b = valid.slice();
  b.set(bytes, at);
  return b;
}
const u64le = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
};
const u32le = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
};
/** Offset of the first occurrence of a string's bytes (a key or tensor name) in the valid file. */
function find(s: string): number {
  const enc = new TextEncoder().encode(s);
  for (let i = 0; i < valid.length; i++) if (enc.every((b, j) => valid[i + j] === b)) return i;
  throw new Error(`'${s}' not in file`);
}

describe('GGUF files that are wrong', () => {
  it('empty, truncated and not-GGUF files', async () => {
    expect((await openError(new Uint8Array(0))).message).toContain('too short for a GGUF header');
    expect((await openError(valid.subarray(0, 10))).message).toContain('truncated');
    expect((await openError(valid.subarray(0, 100))).message).toMatch(/truncated/);
    expect((await openError(valid.subarray(0, layout.tensorInfoStart + 5))).message).toContain("name of tensor #0");
    expect((await openError(valid.subarray(0, valid.length - 40))).message).toContain(
      "truncated: tensor 'output_norm.weight' ends at byte",
    );
    expect((await openError(new TextEncoder().encode('PK\x03\x04 not a gguf file'))).message).toContain(
      'not a GGUF file (magic "PK\\u0003\\u0004"',
    );
  });

  it('unsupported versions and byte order', async () => {
    expect((await openError(patched(4, u32le(1)))).message).toContain('GGUF version 1 is not supported');
    expect((await openError(patched(4, u32le(99)))).message).toContain('unsupported GGUF version 99 (supported: 2, 3)');
    expect((await openError(patched(4, [0, 0, 0, 3]))).message).toContain('big-endian');
  });

  it('absurd counts and lengths are refused before allocating', async () => {
    expect((await openError(patched(8, u64le(2n ** 62n)))).message).toMatch(/tensor count is \d+, more than the \d+ the rest/);
    expect((await openError(patched(16, u64le(10n ** 12n)))).message).toContain('metadata count');
    // length of the first key
    expect((await openError(patched(24, u64le(2n ** 40n)))).message).toContain('length of metadata key #0');
    // element count of the token array
    const tokens = find('tokenizer.ggml.tokens') + 'tokenizer.ggml.tokens'.length + 4 + 4;
    expect((await openError(patched(tokens, u64le(2n ** 50n)))).message).toContain(
      "element count of 'tokenizer.ggml.tokens'",
    );
  });

  it('unknown value types, bad bools, invalid UTF-8, duplicate keys', async () => {
    const typeAt = find('llama.block_count') + 'llama.block_count'.length;
    expect((await openError(patched(typeAt, u32le(13)))).message).toContain("'llama.block_count' has unknown value type 13");
    const boolAt = find('tokenizer.ggml.add_bos_token') + 'tokenizer.ggml.add_bos_token'.length + 4;
    expect((await openError(patched(boolAt, [7]))).message).toContain('bool with byte value 7');
    const keyAt = find('llama.block_count');
    expect((await openError(patched(keyAt, [0xc3, 0x28]))).message).toContain('is not valid UTF-8');
    await writeGGUF(tmp('dup.gguf'), { metadata: [kv.u32('dup.a', 1), kv.u32('dup.b', 2)], tensors: [] });
    const dup = new Uint8Array(readFileSync(tmp('dup.gguf')));
    dup[dup.lastIndexOf(0x62)] = 0x61; // 'dup.b' -> 'dup.a'
    expect((await openError(dup)).message).toContain("metadata key 'dup.a' appears twice");
    const elemTypeAt = find('tokenizer.ggml.scores') + 'tokenizer.ggml.scores'.length + 4;
    expect((await openError(patched(elemTypeAt, u32le(42)))).message).toContain('unknown element type 42');
  });

  it('tensor infos: dimensions, types, offsets, overlaps, duplicates', async () => {
    const nameAt = layout.tensorInfoStart + 8 + 'token_embd.weight'.length;
    expect((await openError(patched(nameAt, u32le(0)))).message).toContain("'token_embd.weight' has 0 dimensions");
    expect((await openError(patched(nameAt, u32le(5)))).message).toContain('has 5 dimensions (1 to 4 allowed)');
    const typeAt = nameAt + 4 + 2 * 8;
    expect((await openError(patched(typeAt, u32le(77)))).message).toContain(
      "tensor 'token_embd.weight' has unknown or unsupported type id 77",
    );
    const offsetAt = typeAt + 4;
    expect((await openError(patched(offsetAt, u64le(3n)))).message).toContain('not a multiple of the alignment 32');
    expect((await openError(patched(offsetAt, u64le(2n ** 40n)))).message).toContain('past the end of the file');
    // token_embd at 0 (192 bytes), q at 192: move q to 160 so they overlap
    const qOffsetAt = find('blk.0.attn_q.weight') + 'blk.0.attn_q.weight'.length + 4 + 2 * 8 + 4;
    expect((await openError(patched(qOffsetAt, u64le(160n)))).message).toContain(
      "tensors 'token_embd.weight' and 'blk.0.attn_q.weight' overlap",
    );
    const qDimAt = find('blk.0.attn_q.weight') + 'blk.0.attn_q.weight'.length + 4;
    expect((await openError(patched(qDimAt, u64le(33n)))).message).toContain('not a multiple of its block size 32');
    expect((await openError(patched(qDimAt + 8, u64le(2n ** 60n)))).message).toMatch(/too large|too many elements/);
    const f32 = new Uint8Array(4);
    await writeGGUF(tmp('dupt.gguf'), {
      metadata: [],
      tensors: [
        { name: 'a.weight', type: GGMLType.F32, shape: [1], data: f32 },
        { name: 'b.weight', type: GGMLType.F32, shape: [1], data: f32 },
      ],
    });
    const dupT = new Uint8Array(readFileSync(tmp('dupt.gguf')));
    dupT[dupT.indexOf(0x62)] = 0x61; // 'b.weight' -> 'a.weight'
    expect((await openError(dupT)).message).toContain("tensor 'a.weight' appears twice");
  });

  it('a bad general.alignment', async () => {
    await writeGGUF(tmp('align.gguf'), { metadata: [kv.u32('general.alignment', 64)], tensors: [] });
    const b = new Uint8Array(readFileSync(tmp('align.gguf')));
    const at = b.length - 4; // the u32 value is the file's last 4 bytes
    b.set(u32le(48), at);
    expect((await openError(b)).message).toContain("'general.alignment' must be a u32 power of two, got 48");
  });

  it('paths that are not files', async () => {
    await expect(GGUFFile.open(tmp('missing.gguf'))).rejects.toThrow(/missing\.gguf: cannot open: no such file/);
    await expect(GGUFFile.open(dir)).rejects.toThrow(GGUFError);
  });
});


function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(r() * n);
  const kind = pick(6);
  let b = src.slice();
  const header = Math.min(b.length, layout.dataOffset); // most mutations hit the header
  switch (kind) {
    case 0: // bit flips
      for (let i = 1 + pick(4); i > 0; i--) {
        const at = pick(header);
        b[at] = (b[at] as number) ^ (1 << pick(8));
      }
      break;
    case 1: // byte overwrites with interesting values
      for (let i = 1 + pick(3); i > 0; i--) b[pick(header)] = [0, 0xff, 0x7f, 0x80, 1, 0x20][pick(6)] as number;
      break;
    case 2: {
      // a u64 field overwritten with a large or small value
      const at = pick(header - 8);
      const values = [0n, 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n, BigInt(pick(1 << 20))];
      b.set(u64le(values[pick(values.length)] as bigint), at);
      break;
    }
    case 3: // truncation
      b = b.slice(0, pick(b.length));
      break;
    case 4: {
      // insert or delete a few bytes in the header
      const at = pick(header);
      const n = 1 + pick(8);
      b = pick(2) ? new Uint8Array([...b.subarray(0, at), ...new Uint8Array(n).fill(pick(256)), ...b.subarray(at)]) : new Uint8Array([...b.subarray(0, at), ...b.subarray(at + n)]);
      break;
    }
    default: // a u32 field (a type or a dimension count)
      b.set(u32le([0, 1, 4, 8, 9, 12, 13, 39, 40, 0xffffffff][pick(10)] as number), pick(header - 4));
  }
  return b;
}

describe('GGUF fuzzing', () => {
  const cases = Number(process.env.SWITCHYARD_FUZZ_CASES ?? 1500);

  it(`${cases} mutated files: only GGUFError or a consistent header, no hang`, () => {
    const r = rng(20261122);
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < cases; i++) {
      const b = mutate(valid, r);
      try {
        const h = parseGGUFHeader(b, b.length, `case-${i}.gguf`);
        // Accepted: every tensor lies inside the file.
        for (const t of h.tensors) {
          expect(h.dataOffset + t.relOffset + t.byteLength).toBeLessThanOrEqual(b.length);
        }
        parsed++;
      } catch (e) {
        if (!(e instanceof GGUFError)) {
          throw new Error(`case ${i}: ${(e as Error).stack} (not a GGUFError)`);
        }
        expect(e.message).toContain(`case-${i}.gguf`);
        rejected++;
      }
    }
    console.log(`GGUF fuzz: ${cases} cases, ${rejected} rejected with GGUFError, ${parsed} parsed consistently, 0 crashes`);
    expect(parsed + rejected).toBe(cases);
  });

  it('200 mutated files through GGUFFile.open, reading every tensor', async () => {
    const r = rng(7);
    for (let i = 0; i < 200; i++) {
      const b = mutate(valid, r);
      writeFileSync(tmp('fuzz.gguf'), b);
      try {
        const g = await GGUFFile.open(tmp('fuzz.gguf'), { headerReadBytes: 64 + Math.floor(r() * 512) });
        for (const name of g.tensors.keys()) await g.read(name);
        await g.close();
      } catch (e) {
        if (!(e instanceof GGUFError)) throw new Error(`case ${i}: ${(e as Error).stack} (not a GGUFError)`);
      }
    }
  });
});

describe('GGUF short-string UTF-8 decoding', () => {
  it('agrees with TextDecoder (fatal, BOM kept) on 20000 random and adversarial byte strings', async () => {
    const { decodeShortUtf8 } = await import('../../src/formats/gguf/parse.js');
    const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    const r = rng(99);
    const tricky = [0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0x80, 0xbf, 0x9f, 0xa0, 0x8f, 0x90, 0x41, 0xef, 0xbb];
    for (let i = 0; i < 20000; i++) {
      const len = Math.floor(r() * 12);
      const b = Uint8Array.from({ length: len }, () => (i % 2 ? (tricky[Math.floor(r() * tricky.length)] as number) : Math.floor(r() * 256)));
      let expected: string | undefined;
      try {
        expected = dec.decode(b);
      } catch {
        expected = undefined;
      }
      expect(decodeShortUtf8(b), `bytes ${[...b].map((x) => x.toString(16))}`).toBe(expected);
    }
  });
});
