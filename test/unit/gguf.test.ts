// GGUF reader, typed metadata and writer. The independent references are the GGUF spec
// (ggml docs/gguf.md: a file assembled byte by byte below) and the files llama.cpp wrote
// (every golden GGUF must be read and written back byte for byte, and agree with its JSON).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DTYPES, dtypeByName, GGMLType } from '../../src/core/dtypes.js';
import { Heap } from '../../src/core/heap.js';
import {
  GGUFError,
  GGUFFile,
  type GGUFKV,
  GGUFMetadata,
  GGUFMetadataError,
  GGUFValueType,
  kv,
  rewriteGGUF,
  writeGGUF,
} from '../../src/formats/gguf/index.js';
import { randomBytes } from '../helpers/random.js';
import { GOLDEN_MODELS, goldenF32, goldenGGUFs, goldenPath, skipGolden } from '../helpers/golden.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sy-gguf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tmp = (name: string) => path.join(dir, name);


const T = GGUFValueType;
const ALL_VALUES: GGUFKV[] = [
  kv.string('general.architecture', 'llama'),
  { key: 'u8', type: T.UINT8, value: 255 },
  { key: 'i8', type: T.INT8, value: -128 },
  { key: 'u16', type: T.UINT16, value: 65535 },
  { key: 'i16', type: T.INT16, value: -32768 },
  kv.u32('u32', 4294967295),
  kv.i32('i32', -2147483648),
  kv.f32('f32', Math.fround(0.1)),
  { key: 'f64', type: T.FLOAT64, value: 0.1 },
  kv.bool('bool.true', true),
  kv.bool('bool.false', false),
  kv.u64('u64', 18446744073709551615n),
  { key: 'i64', type: T.INT64, value: -9223372036854775808n },
  kv.string('empty', ''),
  kv.string('unicode', 'ünïcødé 日本語 🚀 \u0000 \ufeffBOM'),
  kv.strings('strings', ['a', '', '\ufeff', 'Ġthe', '<0x0A>']),
  kv.i32s('i32s', [1, -2, 3]),
  kv.f32s('f32s', [0.5, -1.25, 3e38]),
  { key: 'u64s', type: T.ARRAY, value: { itemType: T.UINT64, items: new BigUint64Array([0n, 2n ** 63n]) } },
  { key: 'bools', type: T.ARRAY, value: { itemType: T.BOOL, items: [true, false, true] } },
  { key: 'empty.array', type: T.ARRAY, value: { itemType: T.UINT32, items: new Uint32Array(0) } },
  {
    key: 'nested',
    type: T.ARRAY,
    value: {
      itemType: T.ARRAY,
      items: [
        { itemType: T.STRING, items: ['x', 'y'] },
        { itemType: T.ARRAY, items: [{ itemType: T.INT16, items: new Int16Array([-1, 7]) }] },
      ],
    },
  },
  { key: 'llama.head_count_kv', type: T.ARRAY, value: { itemType: T.INT32, items: new Int32Array([2, 4, 2]) } },
  kv.u32('llama.block_count', 3),
  kv.f32('llama.rope.freq_base', 10000),
];

describe('GGUF metadata values', () => {
  it('round-trips every value type, nested arrays, empty and non-ASCII strings', async () => {
    await writeGGUF(tmp('values.gguf'), { metadata: ALL_VALUES, tensors: [] });
    const g = await GGUFFile.open(tmp('values.gguf'));
    expect(g.version).toBe(3);
    expect(g.metadata.entries).toEqual(ALL_VALUES);
    expect(g.tensors.size).toBe(0);
    await g.close();
  });

  it('gives typed values and errors that name the key and the file', async () => {
    const m = new GGUFMetadata(ALL_VALUES, 'model.gguf');
    expect(m.architecture).toBe('llama');
    expect(m.int('u32', 5)).toBe(4294967295); // present: not the fallback
    expect(m.int('i16')).toBe(-32768);
    expect(m.int('missing', 7)).toBe(7);
    expect(m.float('u32')).toBe(4294967295);
    expect(m.archInt('block_count')).toBe(3);
    expect(m.archFloat('rope.freq_base')).toBe(10000);
    expect(m.archPerLayer('block_count', 2)).toEqual([3, 3]);
    expect(m.archPerLayer('head_count_kv', 3)).toEqual([2, 4, 2]);
    expect(m.stringArray('strings')).toEqual(['a', '', '\ufeff', 'Ġthe', '<0x0A>']);
    expect(m.numberArray('f32s')).toEqual([0.5, -1.25, Math.fround(3e38)]);
    expect(() => m.string('nope')).toThrow(GGUFMetadataError);
    expect(() => m.string('nope')).toThrow("model.gguf: metadata key 'nope' is missing");
    expect(() => m.int('unicode')).toThrow("metadata key 'unicode' has type string, expected an integer");
    expect(() => m.string('u32')).toThrow('has type uint32, expected a string');
    expect(() => m.stringArray('i32s')).toThrow('has an array of int32, expected an array of strings');
    expect(() => m.int('u64')).toThrow('too large');
    expect(() => m.archPerLayer('head_count_kv', 4)).toThrow('has 3 values, expected one per layer (4)');
    expect(() => m.bool('f32')).toThrow(GGUFMetadataError);
  });
});

describe('GGUF tensors', () => {
  it('writes and reads tensors of every GGML type, with 1-4 dimensions, aligned', async () => {
    const tensors = DTYPES.map((t, i) => {
      const shape = [[2 * t.blockElems], [3, 2 * t.blockElems], [2, 1, t.blockElems], [1, 2, 1, t.blockElems]][i % 4] as number[];
      const n = (shape.reduce((a, b) => a * b, 1) / t.blockElems) * t.blockBytes;
      return { name: `t.${t.name}`, type: t.id, shape, data: randomBytes(n, i + 1) };
    });
    for (const alignment of [32, 64]) {
      const file = tmp(`types-${alignment}.gguf`);
      const metadata = alignment === 32 ? [] : [kv.u32('general.alignment', alignment)];
      await writeGGUF(file, { metadata, tensors });
      const g = await GGUFFile.open(file);
      expect(g.alignment).toBe(alignment);
      expect(g.dataOffset % alignment).toBe(0);
      expect([...g.tensors.keys()]).toEqual(tensors.map((t) => t.name));
      for (const t of tensors) {
        const info = g.tensor(t.name);
        expect(info.type).toBe(t.type);
        expect(info.shape).toEqual(t.shape);
        expect(info.offset % alignment).toBe(0);
        expect(info.byteLength).toBe(t.data.length);
        expect(await g.read(t.name)).toEqual(t.data);
      }
      await g.close();
    }
  });

  it('reads tensor data straight into wasm memory', async () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    await writeGGUF(tmp('heap.gguf'), {
      metadata: [kv.string('general.architecture', 'llama')],
      tensors: [{ name: 'w', type: GGMLType.F32, shape: [2, 3], data: new Uint8Array(data.buffer) }],
    });
    const g = await GGUFFile.open(tmp('heap.gguf'));
    const heap = new Heap({ initialBytes: 1 << 20 });
    const t = await g.load('w', heap.arena('weights'));
    expect(t.shape).toEqual([2, 3]);
    expect([...t.f32()]).toEqual([...data]);
    expect(t.bytes.buffer).toBe(heap.memory.buffer);
    await expect(g.readInto('w', new Uint8Array(3))).rejects.toThrow("tensor 'w' holds 24 bytes, the destination 3");
    expect(() => g.tensor('nope')).toThrow(GGUFError);
    await g.close();
  });

  it('matches a file assembled byte by byte from the GGUF spec', async () => {
    // v3 header, one string key, one F32 [2] tensor at offset 0, padding to 32, data.
    const enc = new TextEncoder();
    const parts: number[] = [];
    const u32 = (v: number) => parts.push(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24);
    const u64 = (v: number) => {
      u32(v);
      u32(0);
    };
    const str = (s: string) => {
      u64(enc.encode(s).length);
      parts.push(...enc.encode(s));
    };
    parts.push(...enc.encode('GGUF'));
    u32(3);
    u64(1);
    u64(1);
    str('general.architecture');
    u32(8);
    str('llama');
    str('x');
    u32(1);
    u64(2);
    u32(0);
    u64(0);
    while (parts.length % 32) parts.push(0);
    parts.push(0, 0, 128, 63, 0, 0, 0, 64); // 1.0f, 2.0f
    while (parts.length % 32) parts.push(0);
    const expected = new Uint8Array(parts);
    writeFileSync(tmp('spec.gguf'), expected);

    const g = await GGUFFile.open(tmp('spec.gguf'));
    expect(g.metadata.architecture).toBe('llama');
    expect(g.tensor('x').shape).toEqual([2]);
    expect(new Float32Array((await g.read('x')).buffer)).toEqual(new Float32Array([1, 2]));
    await g.close();
    await writeGGUF(tmp('spec-out.gguf'), {
      metadata: [kv.string('general.architecture', 'llama')],
      tensors: [{ name: 'x', type: GGMLType.F32, shape: [2], data: new Uint8Array(new Float32Array([1, 2]).buffer) }],
    });
    expect(new Uint8Array(readFileSync(tmp('spec-out.gguf')))).toEqual(expected);
  });

  it('reads GGUF v2 files', async () => {
    await writeGGUF(tmp('v2.gguf'), { version: 2, metadata: ALL_VALUES.slice(0, 3), tensors: [] });
    const g = await GGUFFile.open(tmp('v2.gguf'));
    expect(g.version).toBe(2);
    expect(g.metadata.entries).toEqual(ALL_VALUES.slice(0, 3));
    await g.close();
  });

  it('grows its header read when the header is longer than the first read', async () => {
    const tokens = Array.from({ length: 5000 }, (_, i) => `token-${i}`);
    await writeGGUF(tmp('long.gguf'), { metadata: [kv.strings('tokenizer.ggml.tokens', tokens)], tensors: [] });
    const g = await GGUFFile.open(tmp('long.gguf'), { headerReadBytes: 100 });
    expect(g.metadata.stringArray('tokenizer.ggml.tokens')).toEqual(tokens);
    await g.close();
  });

  it('writes a tensor given in chunks (one expert at a time)', async () => {
    const experts = [randomBytes(64, 1), randomBytes(64, 2), randomBytes(64, 3)];
    async function* chunks() {
      for (const e of experts) yield e;
    }
    await writeGGUF(tmp('chunks.gguf'), {
      metadata: [],
      tensors: [{ name: 'ffn_up_exps.weight', type: GGMLType.F32, shape: [3, 4, 4], data: chunks }],
    });
    const g = await GGUFFile.open(tmp('chunks.gguf'));
    expect(await g.read('ffn_up_exps.weight')).toEqual(new Uint8Array([...experts[0], ...experts[1], ...experts[2]] as number[]));
    await g.close();
    async function* tooMuch() {
      yield* chunks();
      yield randomBytes(4, 9);
    }
    await expect(
      writeGGUF(tmp('chunks.gguf'), { metadata: [], tensors: [{ name: 'x', type: GGMLType.F32, shape: [3, 4, 4], data: tooMuch }] }),
    ).rejects.toThrow("GGUF tensor 'x': at least 196 bytes of data, its type and shape need 192");
  });

  it('refuses to write inconsistent content', async () => {
    const f32 = (n: number) => new Uint8Array(4 * n);
    await expect(
      writeGGUF(tmp('bad.gguf'), { metadata: [], tensors: [{ name: 'a', type: 0, shape: [4], data: f32(3) }] }),
    ).rejects.toThrow("GGUF tensor 'a': 12 bytes of data, its type and shape need 16");
    await expect(
      writeGGUF(tmp('bad.gguf'), {
        metadata: [],
        tensors: [
          { name: 'a', type: 0, shape: [1], data: f32(1) },
          { name: 'a', type: 0, shape: [1], data: f32(1) },
        ],
      }),
    ).rejects.toThrow("GGUF tensor 'a' given twice");
    await expect(
      writeGGUF(tmp('bad.gguf'), { metadata: [kv.u32('general.alignment', 48)], tensors: [] }),
    ).rejects.toThrow('power of two');
    await expect(
      writeGGUF(tmp('bad.gguf'), {
        metadata: [],
        tensors: [{ name: 'q', type: dtypeByName('Q4_0').id, shape: [2, 16], data: f32(4) }],
      }),
    ).rejects.toThrow('multiple of 32');
    // A failed write leaves neither the file nor its temporary.
    expect(() => readFileSync(tmp('bad.gguf'))).toThrow();
    expect(() => readFileSync(tmp('bad.gguf.tmp'))).toThrow();
  });
});

describe('GGUF split files', () => {
  async function writeSplit(parts: number, tensorsCount = 3) {
    const all = Array.from({ length: tensorsCount }, (_, i) => ({
      name: `blk.${i}.w`,
      type: GGMLType.F32,
      shape: [2, 2],
      data: randomBytes(16, i + 10),
    }));
    for (let p = 0; p < parts; p++) {
      const mine = all.filter((_, i) => i % parts === p);
      const metadata = [
        ...(p === 0 ? [kv.string('general.architecture', 'llama')] : []),
        { key: 'split.no', type: T.UINT16, value: p },
        { key: 'split.count', type: T.UINT16, value: parts },
        { key: 'split.tensors.count', type: T.INT32, value: all.length },
      ] as GGUFKV[];
      await writeGGUF(tmp(`m-${String(p + 1).padStart(5, '0')}-of-${String(parts).padStart(5, '0')}.gguf`), {
        metadata,
        tensors: mine,
      });
    }
    return all;
  }

  it('opens every part from any part and merges their tensors', async () => {
    const all = await writeSplit(3, 5);
    const g = await GGUFFile.open(tmp('m-00002-of-00003.gguf'));
    expect(g.paths.map((p) => path.basename(p))).toEqual([
      'm-00001-of-00003.gguf',
      'm-00002-of-00003.gguf',
      'm-00003-of-00003.gguf',
    ]);
    expect(g.metadata.architecture).toBe('llama');
    expect(g.tensors.size).toBe(5);
    for (const t of all) expect(await g.read(t.name)).toEqual(t.data);
    expect(path.basename(g.tensor('blk.1.w').file)).toBe('m-00002-of-00003.gguf');
    await g.close();
  });

  it('names a missing part', async () => {
    await writeSplit(2);
    rmSync(tmp('m-00002-of-00002.gguf'));
    await expect(GGUFFile.open(tmp('m-00001-of-00002.gguf'))).rejects.toThrow(
      /m-00002-of-00002\.gguf: cannot open: no such file/,
    );
  });

  it('refuses a split part renamed to a plain name', async () => {
    await writeSplit(2);
    writeFileSync(tmp('renamed.gguf'), readFileSync(tmp('m-00001-of-00002.gguf')));
    await expect(GGUFFile.open(tmp('renamed.gguf'))).rejects.toThrow('is part of a split model');
  });
});

describe.skipIf(skipGolden('golden GGUF round trips'))('golden GGUF files (llama.cpp d32676d77)', () => {
  const files = [...goldenGGUFs()];
  const vocabs = readFileSync(goldenPath('tokenizers/README.md'), 'utf8').match(/ggml-vocab-[\w-]+\.gguf/g) ?? [];
  const results: string[] = [];
  afterAll(() => console.log(`golden GGUF: ${results.length} files read and rewritten byte for byte`));

  it.each([...files, ...new Set(vocabs).values()].map((f) => [path.basename(f), f]))('%s', async (_, f) => {
    const file = f.includes('/') ? f : goldenPath('tokenizers', f);
    const g = await GGUFFile.open(file);
    const json = file.endsWith('.gguf') && !file.includes('tokenizers') ? JSON.parse(readFileSync(file.replace(/\.gguf$/, '.json'), 'utf8')) : undefined;
    if (json) {
      // The variant JSON lists llama.cpp's view of every tensor's type.
      const types = Object.fromEntries([...g.tensors.values()].map((t) => [t.name, DTYPES.find((d) => d.id === t.type)?.name]));
      expect(types).toEqual(json.tensor_types);
      expect(g.metadata.architecture).toBe(json.architecture);
    }
    const out = tmp(`rw-${path.basename(file)}`);
    await rewriteGGUF(g, out);
    await g.close();
    expect(readFileSync(out).equals(readFileSync(file))).toBe(true);
    rmSync(out);
    results.push(file);
  });

  it.each(GOLDEN_MODELS.map((m) => [m]))('F32 master of %s (regenerated) rewrites byte for byte', async (m) => {
    const file = goldenF32(m);
    if (!file) return; // goldenF32 explains (and fails under CI)
    const json = JSON.parse(readFileSync(goldenPath(m, `${m}-F32.json`), 'utf8'));
    expect(readFileSync(file).length).toBe(json.gguf_size);
    const g = await GGUFFile.open(file);
    const out = tmp(`rw-${m}.gguf`);
    await rewriteGGUF(g, out);
    await g.close();
    expect(readFileSync(out).equals(readFileSync(file))).toBe(true);
    rmSync(out);
    results.push(file);
  });
});
