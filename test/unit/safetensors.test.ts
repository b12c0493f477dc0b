// The safetensors reader and writer: byte-exact layout against the spec and the reference
// crate's own test vectors, round trips of every dtype, empty and scalar tensors, metadata,
// sharded checkpoints with their index, lazy reads into wasm memory.
//
// The expected files here are built byte by byte from the spec (README "Format" of
// https://github.com/huggingface/safetensors): an 8-byte little-endian length, the header JSON
// written out literally in the test, then the data. Two vectors are the reference crate's own
// (safetensors/src/tensor.rs tests `test_serialization` and `test_empty`).
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SAFETENSORS_DTYPES,
  SafetensorsCheckpoint,
  type SafetensorsTensorInput,
  safetensorsDTypeBits,
  safetensorsDTypeBytes,
  writeSafetensors,
  writeShardedSafetensors,
} from '../../src/formats/safetensors/index.js';
import { randomBytes } from '../helpers/random.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sy-safetensors-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A file from its parts, as the spec lays it out; the header is padded with spaces to `padTo`. */
function fileBytes(headerJson: string, data: ArrayLike<number>, padTo = 8): Uint8Array {
  let header = new TextEncoder().encode(headerJson);
  const padded = Math.ceil(header.length / padTo) * padTo;
  header = Uint8Array.from([...header, ...new Array(padded - header.length).fill(0x20)]);
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(Array.from(data), 8 + header.length);
  return out;
}


async function written(name: string, tensors: SafetensorsTensorInput[], metadata?: Record<string, string>) {
  const file = path.join(dir, name);
  await writeSafetensors(file, tensors, metadata);
  return { file, bytes: new Uint8Array(await fs.readFile(file)) };
}

async function readAll(ckpt: SafetensorsCheckpoint): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const name of ckpt.tensors.keys()) out.set(name, await ckpt.read(name));
  return out;
}

describe('safetensors layout (byte exact)', () => {
  it("reproduces the reference crate's serialization vector", async () => {
    // safetensors/src/tensor.rs, test_serialization: "attn.0", F32, shape [1, 2, 3], values 0..5.
    const expected = [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58,
      34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116,
      97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
      0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ];
    const data = new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5]).buffer);
    const { file, bytes: got } = await written('ref.safetensors', [
      { name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data },
    ]);
    expect([...got]).toEqual(expected);

    const ckpt = await SafetensorsCheckpoint.open(file);
    expect([...ckpt.tensors.values()]).toEqual([
      { name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], file, offset: 72, byteLength: 24 },
    ]);
    expect(ckpt.metadata).toEqual({});
    expect([...new Float32Array((await ckpt.read('attn.0')).buffer)]).toEqual([0, 1, 2, 3, 4, 5]);
    await ckpt.close();
  });

  it("reproduces the reference crate's empty-file vector", async () => {
    // safetensors/src/tensor.rs, test_empty: "{}" padded to 8 bytes.
    const { file, bytes: got } = await written('empty.safetensors', []);
    expect([...got]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const ckpt = await SafetensorsCheckpoint.open(file);
    expect(ckpt.tensors.size).toBe(0);
    await ckpt.close();
  });

  it('sorts by dtype (descending reference order) then name, writes metadata first, pads to 8', async () => {
    const z = randomBytes(8, 1);
    const a = randomBytes(4, 2);
    const c = randomBytes(2, 3);
    const b = randomBytes(3, 4);
    const m = Uint8Array.of(1, 0);
    const input: SafetensorsTensorInput[] = [
      { name: 'b', dtype: 'U8', shape: [3], data: b },
      { name: 'a', dtype: 'F16', shape: [2], data: a },
      { name: 'm', dtype: 'BOOL', shape: [2], data: m },
      { name: 'z', dtype: 'I64', shape: [1], data: z },
      { name: 'c', dtype: 'F16', shape: [1], data: c },
    ];
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"z":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
      '"a":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},' +
      '"c":{"dtype":"F16","shape":[1],"data_offsets":[12,14]},' +
      '"b":{"dtype":"U8","shape":[3],"data_offsets":[14,17]},' +
      '"m":{"dtype":"BOOL","shape":[2],"data_offsets":[17,19]}}';
    const expected = fileBytes(header, [...z, ...a, ...c, ...b, ...m]);
    const { file, bytes: got } = await written('sorted.safetensors', input, { format: 'pt' });
    expect(got).toEqual(expected);
    expect((got.length - 19) % 8).toBe(0);

    const ckpt = await SafetensorsCheckpoint.open(file);
    expect([...ckpt.tensors.keys()]).toEqual(['z', 'a', 'c', 'b', 'm']);
    expect(ckpt.metadata).toEqual({ format: 'pt' });
    const read = await readAll(ckpt);
    for (const t of input) expect(read.get(t.name)).toEqual(t.data);
    await ckpt.close();
  });

  it('escapes names like serde_json and orders them by code point, not UTF-16 unit', async () => {
    // U+FF61 sorts before U+1F600 in UTF-8 bytes (Rust's order) but after it in UTF-16 units.
    const names = ['\u{1F600}', '\uFF61', 'é"\n\\'];
    const input = names.map((name, i) => ({ name, dtype: 'U8' as const, shape: [1], data: Uint8Array.of(i) }));
    const header =
      '{"é\\"\\n\\\\":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
      '"\uFF61":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},' +
      '"\u{1F600}":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}';
    const { file, bytes: got } = await written('unicode.safetensors', input);
    expect(got).toEqual(fileBytes(header, [2, 1, 0]));
    const ckpt = await SafetensorsCheckpoint.open(file);
    expect([...ckpt.tensors.keys()]).toEqual(['é"\n\\', '\uFF61', '\u{1F600}']);
    expect(await ckpt.read('\u{1F600}')).toEqual(Uint8Array.of(0));
    await ckpt.close();
  });

  it('reads files laid out by other writers: any header order, whitespace, extra fields, null metadata', async () => {
    // Header order differs from data order; leading whitespace as the reference crate's
    // test_whitespace_leading_padded_header allows; an unknown field that serde would ignore.
    const header =
      '\t\n{"__metadata__":null,"second":{"shape":[2],"dtype":"I16","data_offsets":[4,8],"extra":[1,{"x":2}]},' +
      '"first":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}\r \t\n';
    const data = [1, 2, 3, 4, 5, 6, 7, 8];
    const file = path.join(dir, 'foreign.safetensors');
    await fs.writeFile(file, fileBytes(header, data, 1));
    const ckpt = await SafetensorsCheckpoint.open(file);
    expect([...ckpt.tensors.keys()]).toEqual(['first', 'second']);
    const headerLength = new TextEncoder().encode(header).length;
    expect(ckpt.tensors.get('second')).toEqual({
      name: 'second',
      dtype: 'I16',
      shape: [2],
      file,
      offset: 8 + headerLength + 4,
      byteLength: 4,
    });
    expect(await ckpt.read('first')).toEqual(Uint8Array.of(1, 2, 3, 4));
    expect(await ckpt.read('second')).toEqual(Uint8Array.of(5, 6, 7, 8));
    expect(ckpt.metadata).toEqual({});
    await ckpt.close();
  });
});

describe('safetensors round trips', () => {
  it('round-trips every dtype, aligned to its element size, with metadata', async () => {
    expect(SAFETENSORS_DTYPES.length).toBe(22);
    const input: SafetensorsTensorInput[] = SAFETENSORS_DTYPES.map((dtype, i) => {
      // 8 elements fill whole bytes for every type, including F4 (4 bytes) and F6 (6 bytes).
      const shape = [4, 2];
      return { name: `t.${dtype.toLowerCase()}`, dtype, shape, data: randomBytes((8 * safetensorsDTypeBits(dtype)) / 8, i + 10) };
    });
    const metadata = { format: 'pt', note: 'every dtype' };
    const { file } = await written('dtypes.safetensors', input, metadata);
    const ckpt = await SafetensorsCheckpoint.open(file);
    expect(ckpt.tensors.size).toBe(input.length);
    expect(ckpt.metadata).toEqual(metadata);
    const dataStart = Math.min(...[...ckpt.tensors.values()].map((t) => t.offset));
    expect(dataStart % 8).toBe(0);
    for (const t of input) {
      const info = ckpt.tensors.get(t.name)!;
      expect(info.dtype).toBe(t.dtype);
      expect(info.shape).toEqual(t.shape);
      expect(info.byteLength).toBe(8 * safetensorsDTypeBytes(t.dtype));
      expect((info.offset - dataStart) % Math.ceil(safetensorsDTypeBytes(t.dtype))).toBe(0);
      expect(await ckpt.read(t.name)).toEqual(t.data);
    }
    await ckpt.close();
  });

  it('round-trips empty tensors and scalars', async () => {
    const input: SafetensorsTensorInput[] = [
      { name: 'empty', dtype: 'F32', shape: [0], data: new Uint8Array(0) },
      { name: 'empty3d', dtype: 'BF16', shape: [3, 0, 2], data: new Uint8Array(0) },
      { name: 'scalar', dtype: 'F32', shape: [], data: randomBytes(4, 5) },
      { name: 'scalar16', dtype: 'BF16', shape: [], data: randomBytes(2, 6) },
    ];
    const { file } = await written('empty-scalar.safetensors', input);
    const ckpt = await SafetensorsCheckpoint.open(file);
    for (const t of input) {
      expect(ckpt.tensors.get(t.name)!.shape).toEqual(t.shape);
      expect(await ckpt.read(t.name)).toEqual(t.data);
    }
    await ckpt.readInto('empty', new Uint8Array(0));
    await ckpt.close();

    const { file: onlyEmpty, bytes: raw } = await written('only-empty.safetensors', input.slice(0, 2));
    const header =
      '{"empty":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},' +
      '"empty3d":{"dtype":"BF16","shape":[3,0,2],"data_offsets":[0,0]}}';
    expect(raw).toEqual(fileBytes(header, []));
    const c2 = await SafetensorsCheckpoint.open(onlyEmpty);
    expect([...c2.tensors.keys()]).toEqual(['empty', 'empty3d']);
    await c2.close();
  });

  it('round-trips many tensors of mixed sizes (gathered small writes and direct large ones)', async () => {
    // The writer stages pieces smaller than half its buffer (min(4 MiB, file size)) and writes
    // larger ones directly; this mix crosses both paths and the flushes between them.
    const sizes = [0, 1, 7, 64, 5000, 3, 12000, 2, 900, 0, 40000, 5, 6, 31, 2048, 1];
    const input: SafetensorsTensorInput[] = sizes.map((n, i) => ({
      name: `t${String(i).padStart(2, '0')}`,
      dtype: 'I8',
      shape: [n],
      data: randomBytes(n, 500 + i),
    }));
    const { file, bytes: raw } = await written('mixed.safetensors', input);
    const headerLength = Number(new DataView(raw.buffer).getBigUint64(0, true));
    expect(raw.length).toBe(8 + headerLength + sizes.reduce((a, b) => a + b, 0));
    const ckpt = await SafetensorsCheckpoint.open(file);
    const read = await readAll(ckpt);
    for (const t of input) expect(read.get(t.name)).toEqual(t.data);
    await ckpt.close();
  });

  it('reads straight into a view of shared wasm memory', async () => {
    const data = randomBytes(4096, 7);
    const { file } = await written('wasm.safetensors', [{ name: 'w', dtype: 'F16', shape: [32, 64], data }]);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
    const view = new Uint8Array(memory.buffer, 1000, data.length);
    const ckpt = await SafetensorsCheckpoint.open(file);
    await ckpt.readInto('w', view);
    expect(new Uint8Array(memory.buffer, 1000, data.length)).toEqual(data);
    expect(new Uint8Array(memory.buffer, 999, 1)[0]).toBe(0);
    await ckpt.close();
  });

  it('opens lazily: a 1 GiB tensor in a sparse file costs nothing until read', async () => {
    const header =
      '{"big":{"dtype":"U8","shape":[1073741824],"data_offsets":[0,1073741824]},' +
      '"small":{"dtype":"F32","shape":[2],"data_offsets":[1073741824,1073741832]}}';
    const head = fileBytes(header, []);
    const file = path.join(dir, 'sparse.safetensors');
    await fs.writeFile(file, head);
    await fs.truncate(file, head.length + 2 ** 30 + 8);
    const f = await fs.open(file, 'r+');
    await f.write(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), 0, 8, head.length + 2 ** 30);
    await f.close();
    const ckpt = await SafetensorsCheckpoint.open(file);
    expect(ckpt.tensors.get('big')!.byteLength).toBe(2 ** 30);
    expect(await ckpt.read('small')).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    await ckpt.close();
  });

  it('replaces files atomically: no .tmp left, an open reader keeps the old file', async () => {
    const file = path.join(dir, 'atomic.safetensors');
    await writeSafetensors(file, [{ name: 'x', dtype: 'U8', shape: [2], data: Uint8Array.of(1, 2) }]);
    const old = await SafetensorsCheckpoint.open(file);
    await writeSafetensors(file, [{ name: 'y', dtype: 'U8', shape: [3], data: Uint8Array.of(7, 8, 9) }]);
    expect(await old.read('x')).toEqual(Uint8Array.of(1, 2));
    await old.close();
    const fresh = await SafetensorsCheckpoint.open(file);
    expect([...fresh.tensors.keys()]).toEqual(['y']);
    await fresh.close();
    expect((await fs.readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('opens a folder holding model.safetensors, or a single .safetensors file', async () => {
    const folder = path.join(dir, 'single');
    await fs.mkdir(folder);
    await writeSafetensors(path.join(folder, 'model.safetensors'), [
      { name: 'x', dtype: 'I32', shape: [1], data: randomBytes(4, 9) },
    ]);
    const a = await SafetensorsCheckpoint.open(folder);
    expect(a.path).toBe(path.join(folder, 'model.safetensors'));
    expect(a.files).toEqual([path.join(folder, 'model.safetensors')]);
    await a.close();
    const other = path.join(dir, 'other');
    await fs.mkdir(other);
    await writeSafetensors(path.join(other, 'consolidated.safetensors'), []);
    const b = await SafetensorsCheckpoint.open(other);
    expect(b.path).toBe(path.join(other, 'consolidated.safetensors'));
    await b.close();
  });
});

describe('sharded safetensors', () => {
  const sizes = [40, 40, 40, 150, 10, 100, 1, 0];
  const input: SafetensorsTensorInput[] = sizes.map((n, i) => ({
    name: `layers.${i}.weight`,
    dtype: 'U8',
    shape: [n],
    data: randomBytes(n, 100 + i),
  }));

  it('splits like huggingface_hub and writes the index as transformers does', async () => {
    const folder = path.join(dir, 'sharded');
    const paths = await writeShardedSafetensors(folder, input, { maxShardBytes: 100, metadata: { format: 'pt' } });
    // Groups: [40, 40] | [40] | [150] alone (over the limit) | [10] | [100] | [1, 0].
    const groups = [[0, 1], [2], [3], [4], [5], [6, 7]];
    const shardNames = groups.map((_, i) => `model-0000${i + 1}-of-00006.safetensors`);
    expect(paths).toEqual([...shardNames, 'model.safetensors.index.json'].map((n) => path.join(folder, n)));

    const weightMap = groups.flatMap((g, s) => g.map((i) => [`layers.${i}.weight`, shardNames[s]]));
    weightMap.sort((x, y) => (x[0] < y[0] ? -1 : 1));
    const expectedIndex =
      '{\n  "metadata": {\n    "format": "pt",\n    "total_size": 381\n  },\n  "weight_map": {\n' +
      weightMap.map(([k, v]) => `    "${k}": "${v}"`).join(',\n') +
      '\n  }\n}\n';
    expect(await fs.readFile(paths[6], 'utf8')).toBe(expectedIndex);

    // Each shard is an ordinary safetensors file holding its group.
    for (let s = 0; s < groups.length; s++) {
      const shard = await SafetensorsCheckpoint.open(paths[s]);
      expect([...shard.tensors.keys()].sort()).toEqual(groups[s].map((i) => `layers.${i}.weight`).sort());
      expect(shard.metadata).toEqual({ format: 'pt' });
      await shard.close();
    }

    for (const target of [folder, paths[6]]) {
      const ckpt = await SafetensorsCheckpoint.open(target);
      expect(ckpt.path).toBe(paths[6]);
      expect(ckpt.files).toEqual(paths.slice(0, 6));
      expect(ckpt.metadata).toEqual({ format: 'pt', total_size: '381' });
      expect([...ckpt.tensors.keys()]).toEqual(input.map((t) => t.name));
      groups.forEach((g, s) => {
        for (const i of g) expect(ckpt.tensors.get(input[i].name)!.file).toBe(paths[s]);
      });
      for (const t of input) expect(await ckpt.read(t.name)).toEqual(t.data);
      await ckpt.close();
    }
  });

  it('writes one shard plus an index when everything fits, and an empty shard for no tensors', async () => {
    const folder = path.join(dir, 'one-shard');
    const paths = await writeShardedSafetensors(folder, input, { maxShardBytes: 10_000 });
    expect(paths.map((p) => path.basename(p))).toEqual(['model-00001-of-00001.safetensors', 'model.safetensors.index.json']);
    const ckpt = await SafetensorsCheckpoint.open(folder);
    expect(ckpt.metadata).toEqual({ total_size: '381' });
    expect((await readAll(ckpt)).size).toBe(input.length);
    await ckpt.close();

    const none = path.join(dir, 'no-tensors');
    const p2 = await writeShardedSafetensors(none, [], { maxShardBytes: 1 });
    expect(p2.map((p) => path.basename(p))).toEqual(['model-00001-of-00001.safetensors', 'model.safetensors.index.json']);
    expect(await fs.readFile(p2[1], 'utf8')).toBe('{\n  "metadata": {\n    "total_size": 0\n  },\n  "weight_map": {}\n}\n');
    const c2 = await SafetensorsCheckpoint.open(none);
    expect(c2.tensors.size).toBe(0);
    await c2.close();
  });

  it('reads index metadata of any JSON type and exposes shard tensors the index does not list', async () => {
    const folder = path.join(dir, 'hand-index');
    await fs.mkdir(folder);
    await writeSafetensors(path.join(folder, 'a.safetensors'), [input[0], input[1]], { format: 'pt' });
    await writeSafetensors(path.join(folder, 'b.safetensors'), [input[2]], { format: 'pt', extra: 'b' });
    const index = {
      metadata: { total_size: 120, total_parameters: 120, nested: { k: [1, 'x'] }, format: 'mlx' },
      weight_map: { 'layers.2.weight': 'b.safetensors', 'layers.0.weight': 'a.safetensors' },
    };
    await fs.writeFile(path.join(folder, 'model.safetensors.index.json'), JSON.stringify(index));
    const ckpt = await SafetensorsCheckpoint.open(folder);
    expect(ckpt.files).toEqual([path.join(folder, 'a.safetensors'), path.join(folder, 'b.safetensors')]);
    expect([...ckpt.tensors.keys()]).toEqual(['layers.0.weight', 'layers.1.weight', 'layers.2.weight']);
    expect(ckpt.metadata).toEqual({
      format: 'mlx',
      extra: 'b',
      total_size: '120',
      total_parameters: '120',
      nested: '{"k":[1,"x"]}',
    });
    await ckpt.close();
  });
});
