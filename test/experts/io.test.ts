// ExpertReader (src/experts/io.ts): positional reads into shared wasm memory on worker threads.
// Every byte that lands is compared with the file read another way (fs.readFileSync, or
// fs.readSync with a BigInt position for offsets past 4 GiB).
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, SwitchyardError } from '../../src/core/errors.js';
import { ExpertReader, ExpertReadError, MAX_RANGES_PER_TICKET, type ReadRange } from '../../src/experts/io.js';
import { randomBytes, rng } from '../helpers/random.js';

const PAGE = 65536;
let dir: string;
let fileA: string; // 3 MiB of random bytes
let fileB: string; // 1 MiB of other random bytes
let bytesA: Uint8Array;
let bytesB: Uint8Array;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-io-'));
  fileA = join(dir, 'a.bin');
  fileB = join(dir, 'b.bin');
  writeFileSync(fileA, randomBytes(3 << 20, 11));
  writeFileSync(fileB, randomBytes(1 << 20, 29));
  bytesA = new Uint8Array(readFileSync(fileA));
  bytesB = new Uint8Array(readFileSync(fileB));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function sharedMemory(pages: number, maximum = pages): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: pages, maximum, shared: true });
}

function landed(memory: WebAssembly.Memory, r: ReadRange): Uint8Array {
  return new Uint8Array(memory.buffer, r.offset, r.length);
}

describe.each([0, 1, 3])('ExpertReader with %i I/O threads', (threads) => {
  it('reads many random batches into two memories, byte for byte', async () => {
    const memories = [sharedMemory(64), sharedMemory(32)];
    const files = [bytesA, bytesB];
    const reader = await ExpertReader.open([fileA, fileB], memories, { threads, maxTickets: 64 });
    expect(reader.threads).toBe(threads);
    const rand = rng(1000 + threads);
    const int = (n: number) => Math.floor(rand() * n);
    let expectedBytes = 0;
    for (let round = 0; round < 6; round++) {
      // Destinations of reads in flight together must not overlap: a bump pointer per memory.
      const top = [0, 0];
      const batches: { ticket: number; ranges: ReadRange[] }[] = [];
      for (let b = 0; b < 40; b++) {
        const ranges: ReadRange[] = [];
        const count = 1 + int(MAX_RANGES_PER_TICKET);
        for (let i = 0; i < count; i++) {
          const file = int(2);
          const memory = int(2);
          const length = int(3) === 0 ? int(64) : int(64 << 10);
          const position = int(files[file].length - length + 1);
          const offset = top[memory] + int(64);
          if (offset + length > memories[memory].buffer.byteLength) continue;
          top[memory] = offset + length;
          ranges.push({ file, position, length, memory, offset });
          expectedBytes += length;
        }
        batches.push({ ticket: reader.submit(ranges, `round ${round} batch ${b}`), ranges });
      }
      // Wait in a shuffled order; done() must agree with wait().
      batches.sort(() => rand() - 0.5);
      for (const { ticket, ranges } of batches) {
        const seconds = reader.wait(ticket);
        expect(seconds).toBeGreaterThanOrEqual(0);
        for (const r of ranges) {
          expect(Buffer.compare(landed(memories[r.memory], r), files[r.file].subarray(r.position, r.position + r.length))).toBe(0);
        }
      }
    }
    expect(reader.bytesRead).toBe(expectedBytes);
    await reader.close();
  });

  it('reads positions past 4 GiB exactly (a sparse 5 GiB file)', async () => {
    const path = join(dir, `sparse-${threads}.bin`);
    const size = 5 * 2 ** 30;
    const fd = openSync(path, 'w+');
    // Marks straddling 2^32 and at the very end; the rest is a hole that costs no disk.
    const marks = [2 ** 32 - 3, 2 ** 32 + 12345, size - 777];
    try {
      ftruncateSync(fd, size);
      for (let i = 0; i < marks.length; i++) writeSync(fd, randomBytes(777, 50 + i), 0, 777, marks[i]);
    } finally {
      closeSync(fd);
    }
    const memory = sharedMemory(4);
    const reader = await ExpertReader.open([path], [memory], { threads });
    const ranges = marks.map((at, i) => ({ file: 0, position: at - 100, length: 877, memory: 0, offset: i * 1000 }));
    reader.wait(reader.submit(ranges, 'sparse marks'));
    const check = openSync(path, 'r');
    try {
      for (const r of ranges) {
        const want = new Uint8Array(r.length);
        expect(readSync(check, want, 0, r.length, BigInt(r.position))).toBe(r.length);
        expect(Buffer.compare(landed(memory, r), want)).toBe(0);
        expect(want.some((b) => b !== 0)).toBe(true); // the marks are really there
      }
    } finally {
      closeSync(check);
      await reader.close();
      rmSync(path);
    }
  });

  it('reports a file truncated after open at wait(), naming the file and the label, and stays usable', async () => {
    const path = join(dir, `short-${threads}.bin`);
    writeFileSync(path, bytesA.subarray(0, 1 << 20));
    const memory = sharedMemory(32);
    const reader = await ExpertReader.open([path], [memory], { threads });
    truncateSync(path, 500_000);
    const ticket = reader.submit(
      [
        { file: 0, position: 0, length: 1000, memory: 0, offset: 0 },
        { file: 0, position: 400_000, length: 200_000, memory: 0, offset: 4096 },
      ],
      'blk.3 expert 17',
    );
    let error: unknown;
    try {
      reader.wait(ticket);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ExpertReadError);
    const e = error as ExpertReadError;
    expect(e.code).toBe('E_EXPERT_READ');
    expect(e.file).toBe(path);
    expect(e.message).toContain(path);
    expect(e.message).toContain('blk.3 expert 17');
    expect(e.message).toContain('400000');
    expect(e.message).toMatch(/ended at byte 500000/);
    // The ticket was freed and the reader still works.
    expect(() => reader.done(ticket)).toThrow(InvalidArgumentError);
    const ok = { file: 0, position: 123, length: 300_000, memory: 0, offset: 8192 };
    reader.wait(reader.submit([ok], 'after the failure'));
    expect(Buffer.compare(landed(memory, ok), bytesA.subarray(123, 300_123))).toBe(0);
    await reader.close();
  });

  it('reads into a memory that grew after open', async () => {
    const memory = sharedMemory(2, 64);
    const reader = await ExpertReader.open([fileA], [memory], { threads });
    memory.grow(38); // 40 pages
    const r = { file: 0, position: 77, length: 1 << 20, memory: 0, offset: 20 * PAGE + 5 };
    reader.wait(reader.submit([r], 'grown'));
    expect(Buffer.compare(landed(memory, r), bytesA.subarray(77, 77 + (1 << 20)))).toBe(0);
    await reader.close();
  });
});

describe('ExpertReader', () => {
  it('rejects bad ranges at submit with a clear error', async () => {
    const memories = [sharedMemory(2), sharedMemory(1)];
    const reader = await ExpertReader.open([fileA], memories, { threads: 1 });
    const good: ReadRange = { file: 0, position: 0, length: 100, memory: 0, offset: 0 };
    const cases: [Partial<ReadRange>, RegExp][] = [
      [{ memory: 2 }, /memory index 2, but there are 2 memories/],
      [{ file: 1 }, /file index 1, but there are 1 files/],
      [{ memory: 1, offset: PAGE - 50 }, /beyond memory 1 \(65536 bytes\)/],
      [{ offset: -1 }, /offset must be a non-negative integer/],
      [{ length: 1.5 }, /length must be a non-negative integer/],
      [{ position: bytesA.length - 10 }, /beyond .*a\.bin/],
    ];
    for (const [change, message] of cases) {
      expect(() => reader.submit([good, { ...good, ...change }], 'bad')).toThrow(message);
      expect(() => reader.submit([{ ...good, ...change }], 'bad')).toThrow(InvalidArgumentError);
    }
    expect(() => reader.submit(Array(MAX_RANGES_PER_TICKET + 1).fill(good), 'too many')).toThrow(/at most 8/);
    // Nothing was started by the rejected batches: every ticket is still free.
    const t = reader.submit([good], 'good');
    expect(reader.wait(t)).toBeGreaterThanOrEqual(0);
    expect(reader.bytesRead).toBe(100);
    await reader.close();
  });

  it('refuses a batch when maxTickets are in flight, until one is waited on', async () => {
    const memory = sharedMemory(2);
    const reader = await ExpertReader.open([fileA], [memory], { threads: 1, maxTickets: 2 });
    const r = (offset: number): ReadRange => ({ file: 0, position: offset, length: 1000, memory: 0, offset });
    const t0 = reader.submit([r(0)], 'a');
    const t1 = reader.submit([r(1000)], 'b');
    let error: unknown;
    try {
      reader.submit([r(2000)], 'c');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SwitchyardError);
    expect((error as SwitchyardError).code).toBe('E_INTERNAL');
    reader.wait(t0);
    const t2 = reader.submit([r(2000)], 'c');
    expect(t2).toBe(t0); // recycled
    reader.wait(t1);
    reader.wait(t2);
    expect(Buffer.compare(new Uint8Array(memory.buffer, 0, 3000), bytesA.subarray(0, 3000))).toBe(0);
    await reader.close();
  });

  it('done() is false while a read is queued behind a slow one, true once it landed', async () => {
    // One worker busy with 256 MiB (a sparse file: fast for the disk, still ~0.1 s of copying)
    // cannot have finished the small read queued behind it when done() is asked at once.
    const path = join(dir, 'slow.bin');
    const fd = openSync(path, 'w+');
    ftruncateSync(fd, 256 << 20);
    closeSync(fd);
    const memory = sharedMemory(4096 + 2);
    const reader = await ExpertReader.open([path, fileA], [memory], { threads: 1 });
    const big = reader.submit([{ file: 0, position: 0, length: 256 << 20, memory: 0, offset: 0 }], 'big');
    const small = { file: 1, position: 5, length: 4096, memory: 0, offset: 4096 * PAGE };
    const ticket = reader.submit([small], 'small');
    expect(reader.done(ticket)).toBe(false);
    expect(reader.done(big)).toBe(false);
    expect(reader.wait(ticket)).toBeGreaterThan(0);
    expect(reader.done(big)).toBe(true); // FIFO with one worker
    expect(Buffer.compare(landed(memory, small), bytesA.subarray(5, 4101))).toBe(0);
    expect(reader.wait(big)).toBe(0);
    expect(reader.bytesRead).toBe((256 << 20) + 4096);
    await reader.close();
    rmSync(path);
  });

  it('falls back to synchronous reads for a memory that is not shared', async () => {
    const memory = new WebAssembly.Memory({ initial: 8 });
    const reader = await ExpertReader.open([fileA], [memory], { threads: 2 });
    expect(reader.threads).toBe(0);
    const r = { file: 0, position: 1 << 20, length: 300_000, memory: 0, offset: 99 };
    const ticket = reader.submit([r], 'plain');
    expect(reader.done(ticket)).toBe(true); // read inside submit()
    expect(reader.wait(ticket)).toBe(0);
    expect(Buffer.compare(landed(memory, r), bytesA.subarray(r.position, r.position + r.length))).toBe(0);
    await reader.close();
  });

  it('close() is idempotent, and later use is refused', async () => {
    const reader = await ExpertReader.open([fileA], [sharedMemory(1)], { threads: 2 });
    const pending = reader.submit([{ file: 0, position: 0, length: 10, memory: 0, offset: 0 }], 'left behind');
    await reader.close();
    await reader.close();
    expect(() => reader.submit([], 'late')).toThrow(/after close/);
    expect(() => reader.wait(pending)).toThrow(/after close/);
  });

  it('fails to open a missing file with its path', async () => {
    const missing = join(dir, 'missing.gguf');
    await expect(ExpertReader.open([missing], [sharedMemory(1)])).rejects.toThrow(/cannot open .*missing\.gguf: no such file/);
  });

  it('never keeps the process alive: a script that does not close the reader exits', () => {
    const script = `
      import { ExpertReader } from ${JSON.stringify(join(process.cwd(), 'src/experts/io.ts'))};
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
      const reader = await ExpertReader.open([${JSON.stringify(fileA)}], [memory], { threads: 3 });
      reader.wait(reader.submit([{ file: 0, position: 0, length: 100, memory: 0, offset: 0 }], 'x'));
      console.log('read', reader.bytesRead);
    `;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(child.stderr).toBe('');
    expect(child.stdout.trim()).toBe('read 100');
    expect(child.status).toBe(0); // null if it hung until the timeout
  });
});
