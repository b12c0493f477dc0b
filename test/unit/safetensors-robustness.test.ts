// Bad safetensors files, indexes and write requests: each gives a SafetensorsError whose message
// names the file and what is wrong; a fuzz run over mutated valid files (bit flips, truncations,
// header overwrites) gives only SafetensorsError or success, never another exception or a hang.
// The strict header JSON parser is checked against JSON.parse on mutated texts.
//
// More fuzz cases: SWITCHYARD_FUZZ_CASES=20000 npx vitest run test/unit/safetensors-robustness.test.ts
// (SWITCHYARD_TEST_TIER=all runs 20000 by default; SWITCHYARD_FUZZ_SEED=<n> picks another stream).
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SafetensorsCheckpoint,
  SafetensorsError,
  type SafetensorsTensorInput,
  writeSafetensors,
  writeShardedSafetensors,
} from '../../src/formats/safetensors/index.js';
import { parseStrictJson } from '../../src/formats/safetensors/json.js';
import { rng } from '../helpers/random.js';

const FUZZ_SEED = Number(process.env.SWITCHYARD_FUZZ_SEED ?? 0x5afe7e75);
const FUZZ_CASES = Number(process.env.SWITCHYARD_FUZZ_CASES ?? (process.env.SWITCHYARD_TEST_TIER === 'all' ? 20000 : 1200));

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sy-safetensors-bad-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function fileBytes(header: string | Uint8Array, data: ArrayLike<number> = [], headerLength?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(Array.from(data), 8 + h.length);
  return out;
}


let counter = 0;
async function fileWith(content: Uint8Array, name = `case-${counter++}.safetensors`): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, content);
  return file;
}

/** Runs `action` and returns its SafetensorsError; fails the test on success or another error. */
async function safetensorsError(action: () => Promise<unknown>): Promise<SafetensorsError> {
  let caught: unknown;
  try {
    await action();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a SafetensorsError').toBeInstanceOf(SafetensorsError);
  expect((caught as SafetensorsError).code).toBe('E_SAFETENSORS');
  return caught as SafetensorsError;
}

async function expectOpenError(content: Uint8Array, pattern: RegExp): Promise<void> {
  const file = await fileWith(content);
  const err = await safetensorsError(() => SafetensorsCheckpoint.open(file));
  expect(err.message).toContain(file);
  expect(err.message).toMatch(pattern);
}

const T = (entry: string) => `{"t":${entry}}`;

describe('safetensors: bad files give a SafetensorsError naming the file', () => {
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['an empty file', () => new Uint8Array(0), /0 bytes, fewer than the 8-byte header length/],
    ['a 5-byte file', () => Uint8Array.of(8, 0, 0, 0, 0), /5 bytes.*truncated/],
    ['a header length past the end', () => fileBytes('{}', [], 1000n), /header length 1000 runs past the end.*10 bytes/],
    [
      'an absurd header length (u64 max)',
      () => fileBytes('{}', [], 0xffff_ffff_ffff_ffffn),
      /header length 18446744073709551615 is above the 100000000-byte limit/,
    ],
    ['a header length of 100 MB + 1', () => fileBytes('{}', [], 100_000_001n), /above the 100000000-byte limit/],
    ['a header that is not UTF-8', () => fileBytes(Uint8Array.of(0x7b, 0xff, 0x7d)), /not valid UTF-8/],
    ['a header starting with a BOM', () => fileBytes('\uFEFF{}'), /not valid JSON/],
    ['a header that is not JSON', () => fileBytes('{"t":'), /not valid JSON \(unexpected end of text/],
    ['a header holding an array', () => fileBytes('[]'), /header is an array, expected a JSON object/],
    ['a header nested 100 deep', () => fileBytes(`{"t":${'['.repeat(100)}${']'.repeat(100)}}`), /nesting deeper than 64/],
    [
      'a duplicate tensor name',
      () =>
        fileBytes(
          '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
          [1, 2],
        ),
      /duplicate key "a"/,
    ],
    ['a tensor entry that is a string', () => fileBytes(T('"x"')), /tensor "t": entry is "x", expected an object/],
    ['a missing dtype', () => fileBytes(T('{"shape":[1],"data_offsets":[0,1]}'), [0]), /tensor "t": missing "dtype"/],
    ['a missing shape', () => fileBytes(T('{"dtype":"U8","data_offsets":[0,1]}'), [0]), /tensor "t": missing "shape"/],
    ['missing data_offsets', () => fileBytes(T('{"dtype":"U8","shape":[1]}'), [0]), /missing "data_offsets"/],
    ['a numeric dtype', () => fileBytes(T('{"dtype":5,"shape":[1],"data_offsets":[0,1]}'), [0]), /"dtype" is 5, expected a string/],
    ['a string shape', () => fileBytes(T('{"dtype":"U8","shape":"1","data_offsets":[0,1]}'), [0]), /"shape" is "1", expected an array/],
    ['one data offset', () => fileBytes(T('{"dtype":"U8","shape":[1],"data_offsets":[0]}'), [0]), /"data_offsets" is an array, expected \[begin, end\]/],
    ['reversed data offsets', () => fileBytes(T('{"dtype":"U8","shape":[0],"data_offsets":[1,0]}'), [0]), /\[1, 0\] end before they begin/],
    ['a negative offset', () => fileBytes(T('{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}'), [0]), /data_offsets\[0\] is -1/],
    ['an unknown dtype', () => fileBytes(T('{"dtype":"Q4_0","shape":[1],"data_offsets":[0,1]}'), [0]), /unknown dtype "Q4_0" \(known: BOOL, F4/],
    [
      // safetensors/src/tensor.rs test_invalid_info: I32 [2, 2] in 4 bytes.
      'a byte length that does not match the shape',
      () => fileBytes(T('{"dtype":"I32","shape":[2,2],"data_offsets":[0,4]}'), [0, 0, 0, 0]),
      /hold 4 bytes but shape \[2, 2\] of I32 needs 16/,
    ],
    [
      // safetensors/src/tensor.rs "missing 2 bytes" vector: the data section is short.
      'offsets past the end of the data (truncated file)',
      () => fileBytes(T('{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}'), new Array(14).fill(0)),
      /end 16 is past the end of the data section \(14 bytes\).*truncated/,
    ],
    [
      'overlapping tensors',
      () =>
        fileBytes(
          '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}',
          [1, 2, 3, 4],
        ),
      /tensor "b" \(bytes 2..4\) overlaps tensor "a" \(bytes 0..4\)/,
    ],
    [
      'an empty tensor inside another one',
      () =>
        fileBytes(
          '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}',
          [1, 2, 3, 4],
        ),
      /tensor "e" \(bytes 2..2\) overlaps tensor "a"/,
    ],
    [
      'a hole between tensors',
      () =>
        fileBytes(
          '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}',
          [1, 2, 3, 4, 5],
        ),
      /data bytes 2..3 before tensor "b" belong to no tensor/,
    ],
    [
      // safetensors/src/tensor.rs polyglot vector: bytes after the last tensor.
      'trailing bytes after the last tensor',
      () => fileBytes(T('{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}'), new Array(16 + 34).fill(7)),
      /data section has 50 bytes but its tensors cover only 16/,
    ],
    ['a negative dimension', () => fileBytes(T('{"dtype":"U8","shape":[-2],"data_offsets":[0,0]}')), /shape\[0\] is -2/],
    ['a fractional dimension', () => fileBytes(T('{"dtype":"U8","shape":[2.5],"data_offsets":[0,0]}')), /shape\[0\] is 2.5 written as a decimal/],
    ['a dimension written 2.0', () => fileBytes(T('{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}'), [1, 2]), /shape\[0\] is 2 written as a decimal/],
    ['a dimension written 2e0', () => fileBytes(T('{"dtype":"U8","shape":[2e0],"data_offsets":[0,2]}'), [1, 2]), /decimal or exponent/],
    ['a string dimension', () => fileBytes(T('{"dtype":"U8","shape":["2"],"data_offsets":[0,2]}'), [1, 2]), /shape\[0\] is "2"; expected an integer/],
    ['a dimension of 2^53 + 1', () => fileBytes(T('{"dtype":"U8","shape":[9007199254740993],"data_offsets":[0,0]}')), /shape\[0\] is 9007199254740993; expected an integer in \[0, 2\^53\)/],
    [
      // safetensors/src/tensor.rs test_validation_overflow.
      'a dimension of u64 max - 1',
      () => fileBytes(T('{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}'), new Array(16).fill(0)),
      /shape\[1\] is 18446744073709551614/,
    ],
    ['a 40-digit dimension', () => fileBytes(T(`{"dtype":"U8","shape":[${'9'.repeat(40)}],"data_offsets":[0,0]}`)), /shape\[0\] is 10{30}; expected an integer/],
    [
      'an element count above 2^53',
      () => fileBytes(T('{"dtype":"U8","shape":[67108864,67108864,67108864],"data_offsets":[0,0]}')),
      /more than 2\^53 elements \(overflow\)/,
    ],
    [
      'a bit count above 2^53',
      () => fileBytes(T('{"dtype":"U64","shape":[1125899906842624,4],"data_offsets":[0,0]}')),
      /more than 2\^53 bits \(overflow\)/,
    ],
    ['F4 elements that do not fill a byte', () => fileBytes(T('{"dtype":"F4","shape":[3],"data_offsets":[0,1]}'), [0]), /3 elements of F4 \(4 bits each\) do not fill whole bytes/],
    ['a numeric metadata value', () => fileBytes('{"__metadata__":{"format":1}}'), /__metadata__\["format"\] is 1; metadata values must be strings/],
    ['metadata that is an array', () => fileBytes('{"__metadata__":["pt"]}'), /__metadata__ is an array, expected an object of strings/],
    ['a lone surrogate escape in a name', () => fileBytes('{"\\ud800":{}}'), /lone high surrogate/],
  ];

  for (const [label, build, pattern] of cases) {
    it(`refuses ${label}`, async () => {
      await expectOpenError(build(), pattern);
    });
  }

  it('refuses a missing path, a folder without safetensors, and an ambiguous folder', async () => {
    const missing = path.join(dir, 'nope.safetensors');
    const e1 = await safetensorsError(() => SafetensorsCheckpoint.open(missing));
    expect(e1.message).toMatch(/cannot open .*nope.safetensors.*ENOENT/);

    const emptyFolder = path.join(dir, 'empty-folder');
    await fs.mkdir(emptyFolder);
    const e2 = await safetensorsError(() => SafetensorsCheckpoint.open(emptyFolder));
    expect(e2.message).toContain(emptyFolder);
    expect(e2.message).toMatch(/no .safetensors file/);

    const two = path.join(dir, 'two-files');
    await fs.mkdir(two);
    await writeSafetensors(path.join(two, 'a.safetensors'), []);
    await writeSafetensors(path.join(two, 'b.safetensors'), []);
    const e3 = await safetensorsError(() => SafetensorsCheckpoint.open(two));
    expect(e3.message).toMatch(/several .safetensors files \(a.safetensors, b.safetensors\)/);
  });

  it('refuses a file truncated after it was opened, when its tensor is read', async () => {
    const data = new Uint8Array(64).fill(3);
    const file = path.join(dir, 'shrinks.safetensors');
    await writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [16], data }]);
    const ckpt = await SafetensorsCheckpoint.open(file);
    await fs.truncate(file, (await fs.stat(file)).size - 10);
    const err = await safetensorsError(() => ckpt.read('x'));
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/unexpected end of file reading tensor "x".*truncated after it was opened/);
    await ckpt.close();
  });

  it('refuses unknown tensors, wrong destination sizes and reads after close', async () => {
    const file = path.join(dir, 'api.safetensors');
    await writeSafetensors(file, [{ name: 'x', dtype: 'U8', shape: [4], data: new Uint8Array(4) }]);
    const ckpt = await SafetensorsCheckpoint.open(file);
    expect((await safetensorsError(() => ckpt.read('y'))).message).toMatch(/no tensor named "y" in checkpoint .*api.safetensors/);
    expect((await safetensorsError(() => ckpt.readInto('x', new Uint8Array(3)))).message).toMatch(
      /readInto\("x"\) of .*api.safetensors: the destination has 3 bytes, the tensor has 4 bytes/,
    );
    await ckpt.close();
    await ckpt.close();
    expect((await safetensorsError(() => ckpt.read('x'))).message).toMatch(/checkpoint .*api.safetensors is closed/);
  });
});

describe('safetensors: bad sharded checkpoints give a SafetensorsError naming the index', () => {
  const tensor = (name: string, n = 4): SafetensorsTensorInput => ({
    name,
    dtype: 'U8',
    shape: [n],
    data: new Uint8Array(n).fill(n),
  });

  async function checkpoint(name: string, index: unknown, shards: Record<string, SafetensorsTensorInput[]>) {
    const folder = path.join(dir, name);
    await fs.mkdir(folder);
    for (const [file, tensors] of Object.entries(shards)) await writeSafetensors(path.join(folder, file), tensors);
    const indexFile = path.join(folder, 'model.safetensors.index.json');
    await fs.writeFile(indexFile, typeof index === 'string' ? index : JSON.stringify(index));
    return { folder, indexFile };
  }

  const cases: [string, unknown, Record<string, SafetensorsTensorInput[]>, RegExp][] = [
    [
      'a missing shard file',
      { weight_map: { a: 'model-1.safetensors', b: 'model-2.safetensors' } },
      { 'model-1.safetensors': [tensor('a')] },
      /cannot open .*model-2.safetensors \(named by the index .*model.safetensors.index.json\): ENOENT/,
    ],
    [
      'a listed tensor missing from its shard',
      { weight_map: { a: 's1.safetensors', b: 's1.safetensors' } },
      { 's1.safetensors': [tensor('a')] },
      /weight_map puts tensor "b" in .*s1.safetensors, but that shard does not hold it/,
    ],
    [
      'a tensor listed in the wrong shard',
      { weight_map: { a: 's1.safetensors', b: 's1.safetensors', c: 's2.safetensors' } },
      { 's1.safetensors': [tensor('a')], 's2.safetensors': [tensor('b'), tensor('c')] },
      /puts tensor "b" in .*s1.safetensors, but that shard does not hold it \(it is in .*s2.safetensors\)/,
    ],
    [
      'a tensor in two shards',
      { weight_map: { a: 's1.safetensors', b: 's2.safetensors' } },
      { 's1.safetensors': [tensor('a'), tensor('b')], 's2.safetensors': [tensor('b')] },
      /tensor "b" is in two shards, .*s1.safetensors and .*s2.safetensors/,
    ],
    ['an index that is not JSON', '{"weight_map": {', {}, /is not valid JSON/],
    ['an index with a duplicate key', '{"weight_map": {"a": "x", "a": "y"}}', {}, /duplicate key "a"/],
    ['an index that is an array', '[]', {}, /is an array, expected a JSON object/],
    ['an index without weight_map', { metadata: {} }, {}, /"weight_map" is undefined, expected an object/],
    ['a weight_map value that is a number', { weight_map: { a: 3 } }, {}, /weight_map\["a"\] is 3, expected a file name/],
    ['a shard path leaving the folder', { weight_map: { a: '../x.safetensors' } }, {}, /"..\/x.safetensors"; shard names must be relative paths inside/],
    ['an absolute shard path', { weight_map: { a: '/etc/passwd' } }, {}, /shard names must be relative paths/],
    ['index metadata that is a string', { metadata: 'x', weight_map: {} }, {}, /"metadata" is "x", expected an object/],
  ];

  for (const [label, index, shards, pattern] of cases) {
    it(`refuses ${label}`, async () => {
      const { folder, indexFile } = await checkpoint(label.replace(/\W+/g, '-'), index, shards);
      const err = await safetensorsError(() => SafetensorsCheckpoint.open(folder));
      expect(err.message).toContain(indexFile);
      expect(err.message).toMatch(pattern);
    });
  }

  it('refuses an index that is not UTF-8', async () => {
    const folder = path.join(dir, 'index-not-utf8');
    await fs.mkdir(folder);
    const indexFile = path.join(folder, 'model.safetensors.index.json');
    await fs.writeFile(indexFile, Uint8Array.of(0x7b, 0xc3, 0x28, 0x7d));
    const err = await safetensorsError(() => SafetensorsCheckpoint.open(indexFile));
    expect(err.message).toMatch(/index .*model.safetensors.index.json is not valid UTF-8/);
  });

  it('refuses a shard whose own header is bad, naming the shard', async () => {
    const folder = path.join(dir, 'bad-shard');
    await fs.mkdir(folder);
    await fs.writeFile(path.join(folder, 's1.safetensors'), fileBytes('{"a":'));
    await fs.writeFile(path.join(folder, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 's1.safetensors' } }));
    const err = await safetensorsError(() => SafetensorsCheckpoint.open(folder));
    expect(err.message).toMatch(/safetensors file .*bad-shard\/s1.safetensors: the header is not valid JSON/);
  });
});

describe('safetensors: bad write requests give a SafetensorsError and write nothing', () => {
  const ok = (): SafetensorsTensorInput => ({ name: 'ok', dtype: 'F32', shape: [2], data: new Uint8Array(8) });
  const cases: [string, SafetensorsTensorInput[], Record<string, string> | undefined, RegExp][] = [
    ['a duplicate name', [ok(), ok()], undefined, /tensor "ok": the name appears twice/],
    ['a wrong data length', [{ ...ok(), data: new Uint8Array(7) }], undefined, /data has 7 bytes but shape \[2\] of F32 needs 8/],
    ['an unknown dtype', [{ ...ok(), dtype: 'Q8_0' as never }], undefined, /unknown dtype "Q8_0"/],
    ['a negative dimension', [{ ...ok(), shape: [-1] }], undefined, /shape\[0\] is -1/],
    ['a fractional dimension', [{ ...ok(), shape: [1.5] }], undefined, /shape\[0\] is 1.5/],
    ['a shape overflowing 2^53', [{ ...ok(), shape: [2 ** 30, 2 ** 30, 2 ** 30] }], undefined, /overflow/],
    ['the reserved name', [{ ...ok(), name: '__metadata__' }], undefined, /"__metadata__" is reserved/],
    ['a lone surrogate in a name', [{ ...ok(), name: 'x\uD800' }], undefined, /lone UTF-16 surrogate/],
    ['a data buffer that is not a Uint8Array', [{ ...ok(), data: [0, 0, 0, 0, 0, 0, 0, 0] as never }], undefined, /data is an array, expected a Uint8Array/],
    ['a non-string metadata value', [ok()], { format: 1 as never }, /metadata\["format"\] is 1, expected a string/],
    ['F4 elements that do not fill a byte', [{ name: 'q', dtype: 'F4', shape: [3], data: new Uint8Array(2) }], undefined, /do not fill whole bytes/],
  ];

  for (const [label, tensors, metadata, pattern] of cases) {
    it(`refuses ${label}`, async () => {
      const file = path.join(dir, `write-${label.replace(/\W+/g, '-')}.safetensors`);
      const err = await safetensorsError(() => writeSafetensors(file, tensors, metadata));
      expect(err.message).toContain(file);
      expect(err.message).toMatch(pattern);
      await expect(fs.stat(file)).rejects.toThrow(/ENOENT/);
      await expect(fs.stat(file + '.tmp')).rejects.toThrow(/ENOENT/);

      const folder = path.join(dir, `sharded-${label.replace(/\W+/g, '-')}`);
      const err2 = await safetensorsError(() => writeShardedSafetensors(folder, tensors, { maxShardBytes: 4, metadata }));
      expect(err2.message).toContain(folder);
      expect(err2.message).toMatch(pattern);
      await expect(fs.stat(folder)).rejects.toThrow(/ENOENT/);
    });
  }

  it('refuses a bad maxShardBytes', async () => {
    for (const max of [0, -5, 1.5, Number.NaN, undefined as never]) {
      const err = await safetensorsError(() => writeShardedSafetensors(path.join(dir, 'never'), [], { maxShardBytes: max }));
      expect(err.message).toMatch(/maxShardBytes is .*, expected a positive integer/);
    }
  });

  it('reports a failed rename (the target is a folder) and removes the .tmp file', async () => {
    const target = path.join(dir, 'is-a-folder.safetensors');
    await fs.mkdir(target);
    await fs.writeFile(path.join(target, 'keep'), 'x');
    const err = await safetensorsError(() => writeSafetensors(target, [ok()]));
    expect(err.message).toMatch(/cannot write .*is-a-folder.safetensors/);
    await expect(fs.stat(target + '.tmp')).rejects.toThrow(/ENOENT/);
  });
});

describe('safetensors fuzz', () => {
  const INTERESTING_BYTES = [...'{}[]",:-.0123456789eE \\u\t\n'].map((c) => c.charCodeAt(0)).concat([0x00, 0x7f, 0x80, 0xc3, 0xff]);
  const INTERESTING_NUMBERS = ['-1', '0', '1', '2.5', '1e3', '4294967296', '9007199254740991', '9007199254740993', '18446744073709551616', '9'.repeat(40), '-0', '00'];

  async function baseFiles(): Promise<Uint8Array[]> {
    const seedBytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255);
    const many: SafetensorsTensorInput[] = [
      { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [4, 8], data: seedBytes(64) },
      { name: 'model.layers.0.mlp.experts.0.down_proj.weight', dtype: 'F32', shape: [2, 3], data: seedBytes(24) },
      { name: 'scale', dtype: 'F64', shape: [], data: seedBytes(8) },
      { name: 'fp8', dtype: 'F8_E4M3', shape: [5], data: seedBytes(5) },
      { name: 'mx', dtype: 'F4', shape: [2, 2], data: seedBytes(2) },
      { name: 'empty', dtype: 'I32', shape: [0, 3], data: new Uint8Array(0) },
      { name: 'flag', dtype: 'BOOL', shape: [3], data: Uint8Array.of(0, 1, 1) },
    ];
    const files: Uint8Array[] = [];
    for (const [i, tensors] of [many, many.slice(2, 4), []].entries()) {
      const file = path.join(dir, `fuzz-base-${i}.safetensors`);
      await writeSafetensors(file, tensors, i === 0 ? { format: 'pt', 'ünïcode': 'välue' } : undefined);
      files.push(new Uint8Array(await fs.readFile(file)));
    }
    return files;
  }

  function mutate(base: Uint8Array, rand: () => number): { bytes: Uint8Array; how: string } {
    const int = (n: number) => Math.floor(rand() * n);
    const headerEnd = 8 + Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true));
    // Most mutations land in the header, where parsing happens; the rest anywhere.
    const position = () => (rand() < 0.85 ? int(headerEnd) : int(base.length));
    const kind = int(7);
    let out: Uint8Array = base.slice();
    let how: string;
    if (kind === 0) {
      const flips = 1 + int(4);
      for (let k = 0; k < flips; k++) {
        const p = position();
        out[p] ^= 1 << int(8);
      }
      how = `${flips} bit flips`;
    } else if (kind === 1) {
      const len = int(base.length);
      out = base.slice(0, len);
      how = `truncated to ${len}`;
    } else if (kind === 2) {
      const count = 1 + int(3);
      for (let k = 0; k < count; k++) out[8 + int(headerEnd - 8)] = INTERESTING_BYTES[int(INTERESTING_BYTES.length)];
      how = `${count} header bytes overwritten`;
    } else if (kind === 3) {
      const view = new DataView(out.buffer);
      const choice = int(4);
      const n = BigInt(headerEnd - 8);
      const value = [n + BigInt(int(17) - 8), BigInt(int(2 ** 31)) * BigInt(int(2 ** 31)), 0xffff_ffff_ffff_ffffn, 100_000_000n][choice];
      view.setBigUint64(0, value < 0n ? 0n : value, true);
      how = `header length set to ${value}`;
    } else if (kind === 4) {
      const extra = Uint8Array.from({ length: 1 + int(16) }, () => int(256));
      out = Uint8Array.from([...base, ...extra]);
      how = `${extra.length} bytes appended`;
    } else if (kind === 5) {
      // Replace one number of the header text with an interesting one, fixing the header length.
      const header = new TextDecoder().decode(base.subarray(8, headerEnd));
      const numbers = [...header.matchAll(/-?\d+/g)];
      if (numbers.length === 0) return { bytes: out, how: 'unchanged (no number)' };
      const m = numbers[int(numbers.length)];
      const replacement = INTERESTING_NUMBERS[int(INTERESTING_NUMBERS.length)];
      const text = header.slice(0, m.index) + replacement + header.slice(m.index! + m[0].length);
      const h = new TextEncoder().encode(text);
      out = fileBytes(h, base.subarray(headerEnd));
      how = `number ${m[0]} -> ${replacement}`;
    } else {
      // Duplicate or delete a slice of the header text, fixing the header length.
      const start = 8 + int(headerEnd - 8);
      const len = 1 + int(Math.min(24, headerEnd - start));
      const header = base.subarray(8, headerEnd);
      const h =
        rand() < 0.5
          ? Uint8Array.from([...header.subarray(0, start - 8 + len), ...header.subarray(start - 8)])
          : Uint8Array.from([...header.subarray(0, start - 8), ...header.subarray(start - 8 + len)]);
      out = fileBytes(h, base.subarray(headerEnd));
      how = `header slice at ${start - 8} (${len} bytes) duplicated or deleted`;
    }
    return { bytes: out, how };
  }

  it(`gives only SafetensorsError or success on ${FUZZ_CASES} mutated files`, async () => {
    const bases = await baseFiles();
    const rand = rng(FUZZ_SEED);
    const file = path.join(dir, 'fuzz.safetensors');
    const unexpected: string[] = [];
    let opened = 0;
    let refused = 0;
    const kinds = new Map<string, number>();
    for (let i = 0; i < FUZZ_CASES; i++) {
      const { bytes, how } = mutate(bases[i % bases.length], rand);
      await fs.writeFile(file, bytes);
      try {
        const ckpt = await SafetensorsCheckpoint.open(file);
        try {
          for (const [name, info] of ckpt.tensors) {
            const data = await ckpt.read(name);
            if (data.length !== info.byteLength || info.offset + info.byteLength > bytes.length) {
              unexpected.push(`case ${i} (${how}): tensor ${name} read ${data.length} of ${info.byteLength} bytes`);
            }
          }
        } finally {
          await ckpt.close();
        }
        opened++;
      } catch (e) {
        if (e instanceof SafetensorsError && e.message.includes(file)) {
          refused++;
          const kind = e.message.slice(e.message.indexOf(file) + file.length).replace(/"[^"]*"|\d+/g, '_').slice(0, 60);
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        } else unexpected.push(`case ${i} (${how}): ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      }
    }
    console.log(
      `safetensors fuzz (seed ${FUZZ_SEED}): ${FUZZ_CASES} cases, ${opened} opened, ${refused} refused (${kinds.size} kinds of error)`,
    );
    if (process.env.SWITCHYARD_FUZZ_VERBOSE) console.log([...kinds].sort((a, b) => b[1] - a[1]));
    expect(unexpected).toEqual([]);
    expect(refused).toBeGreaterThan(FUZZ_CASES / 2);
    expect(opened).toBeGreaterThan(0);
    // The mutations reach many different checks, not one early exit.
    expect(kinds.size).toBeGreaterThanOrEqual(15);
  });

  it('gives only SafetensorsError or success on mutated index files', async () => {
    const folder = path.join(dir, 'fuzz-sharded');
    const tensors: SafetensorsTensorInput[] = ['a', 'b', 'c', 'd'].map((name, i) => ({
      name: `layers.${name}`,
      dtype: 'U8',
      shape: [10],
      data: new Uint8Array(10).fill(i),
    }));
    const paths = await writeShardedSafetensors(folder, tensors, { maxShardBytes: 20 });
    const indexFile = paths[paths.length - 1];
    const base = new Uint8Array(await fs.readFile(indexFile));
    const rand = rng(42);
    const unexpected: string[] = [];
    const cases = Math.max(200, Math.floor(FUZZ_CASES / 5));
    for (let i = 0; i < cases; i++) {
      const out = base.slice();
      const edits = 1 + Math.floor(rand() * 3);
      for (let k = 0; k < edits; k++) {
        const p = Math.floor(rand() * out.length);
        out[p] = rand() < 0.5 ? out[p] ^ (1 << Math.floor(rand() * 8)) : INTERESTING_BYTES[Math.floor(rand() * INTERESTING_BYTES.length)];
      }
      await fs.writeFile(indexFile, out);
      try {
        const ckpt = await SafetensorsCheckpoint.open(folder);
        for (const name of ckpt.tensors.keys()) await ckpt.read(name);
        await ckpt.close();
      } catch (e) {
        if (!(e instanceof SafetensorsError)) unexpected.push(`case ${i}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      }
    }
    expect(unexpected).toEqual([]);
  });

  it('the strict JSON parser agrees with JSON.parse except for its documented refusals', () => {
    const texts = [
      '{"a":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]},"__metadata__":{"k":"v"}}',
      '[1, -2.5e3, true, false, null, "x\\u00e9\\n\\"\\\\\\/", {"y": [[]], "z": {}}, 12345678901234567890]',
      '{"\\ud83d\\ude00": "\u{1F600}", "s": "tab\\tend", "n": -0, "e": 1E+2, "f": 0.000001}',
    ];
    const plain = (v: unknown): unknown => {
      if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
      if (Array.isArray(v)) return v.map(plain);
      if (typeof v === 'bigint') return Number(v);
      return v;
    };
    const rand = rng(7);
    const alphabet = [...'{}[]",:-+.0123456789eE \\u/tnfalsrb\t\n\u00e9\u{1F600}', '\\ud800', '\\udc00', '\\u00'];
    let checked = 0;
    for (let i = 0; i < 3000; i++) {
      let text = texts[i % texts.length];
      const edits = 1 + Math.floor(rand() * 3);
      for (let k = 0; k < edits; k++) {
        const p = Math.floor(rand() * (text.length + 1));
        const r = rand();
        const piece = alphabet[Math.floor(rand() * alphabet.length)];
        text = r < 0.4 ? text.slice(0, p) + piece + text.slice(p) : r < 0.7 ? text.slice(0, p) + text.slice(p + 1) : text.slice(0, p) + piece + text.slice(p + 1);
      }
      let reference: unknown;
      let referenceOk = true;
      try {
        reference = JSON.parse(text);
      } catch {
        referenceOk = false;
      }
      let ours: unknown;
      let oursError: Error | undefined;
      try {
        ours = parseStrictJson(text);
      } catch (e) {
        oursError = e as Error;
      }
      if (oursError === undefined) {
        expect(referenceOk, `we accepted what JSON.parse refuses: ${text}`).toBe(true);
        expect(JSON.stringify(plain(ours)), text).toBe(JSON.stringify(reference));
      } else if (referenceOk) {
        expect(oursError.message, `we refused what JSON.parse accepts: ${text}`).toMatch(/duplicate key|surrogate|nesting/);
      } else {
        expect(oursError.name).toBe('JsonSyntaxError');
      }
      checked++;
    }
    expect(checked).toBe(3000);
  });
});
