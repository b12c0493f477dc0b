/**
 * Expert layout and budgets: where each expert's slices are in the file (checked against the
 * bytes of the whole stacked tensor read another way), expert-memory values, the budget plan
 * (default, shares, minimum), and expert profiles (validation naming the field, the pin order
 * against a brute-force sort).
 */
import { mkdtempSync, openSync, readSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import {
  ExpertMemoryError,
  expertLayout,
  fullExpertMemory,
  minimumExpertMemory,
  parseExpertMemory,
  planExpertMemory,
  type ExpertLayout,
} from '../../src/experts/layout.js';
import { ExpertProfileError, makeProfile, mostUsed, readExpertProfile, superExperts } from '../../src/experts/profile.js';
import { GGUFFile } from '../../src/formats/gguf/reader.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

const TINY = findDefaultModel() as string;
const dir = mkdtempSync(path.join(tmpdir(), 'sy-layout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('expertLayout', () => {
  it('finds every expert slice of the embedded model where the stacked tensors hold it', async () => {
    const f = await GGUFFile.open(TINY);
    try {
      const layout = expertLayout(f, 2) as ExpertLayout;
      expect(layout.layers.length).toBe(4);
      expect(layout.experts).toBe(64);
      expect(layout.expertBytes + layout.residentBytes).toBe(f.tensorBytes);
      const fd = openSync(TINY, 'r');
      try {
        for (const L of layout.layers) {
          if (!L) throw new Error('every block of the embedded model has experts');
          expect(L.count).toBe(16);
          for (const part of [L.gate, L.up, L.down]) {
            const whole = await f.read(part.tensor); // the stacked tensor, read by name
            for (const e of [0, 7, 15]) {
              const got = Buffer.alloc(part.bytes);
              readSync(fd, got, 0, part.bytes, part.position + e * part.bytes);
              expect(Buffer.compare(got, Buffer.from(whole.subarray(e * part.bytes, (e + 1) * part.bytes)))).toBe(0);
            }
            expect(part.slotOffset % 64).toBe(0);
            expect(part.slotOffset + part.bytes).toBeLessThanOrEqual(layout.slotBytes);
          }
          expect(L.up.slotOffset).toBeGreaterThanOrEqual(L.gate.bytes);
          expect(L.down.slotOffset).toBeGreaterThanOrEqual(L.up.slotOffset + L.up.bytes);
        }
      } finally {
        closeSync(fd);
      }
    } finally {
      await f.close();
    }
  });

  it('is undefined for a dense model', async () => {
    if (skipGolden('expertLayout on llama_dense')) return;
    const f = await GGUFFile.open(goldenPath('llama_dense', 'llama_dense-Q4_K_M.gguf'));
    try {
      expect(expertLayout(f, 0)).toBeUndefined();
    } finally {
      await f.close();
    }
  });
});

describe('parseExpertMemory', () => {
  it.each([
    ['4GiB', 4 * 2 ** 30],
    ['512MiB', 512 * 2 ** 20],
    ['512 mib', 512 * 2 ** 20],
    ['1.5GB', 1.5e9],
    ['2000000000', 2e9],
    ['64KiB', 65536],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseExpertMemory(text)).toEqual({ kind: 'bytes', bytes });
  });
  it('reads shares, all and numbers', () => {
    expect(parseExpertMemory('25%')).toEqual({ kind: 'share', share: 0.25 });
    expect(parseExpertMemory('ALL')).toEqual({ kind: 'all' });
    expect(parseExpertMemory(12345.7)).toEqual({ kind: 'bytes', bytes: 12345 });
  });
  it.each(['lots', '0', '-1GiB', '4 GiBs', '0%', '150%', ''])('refuses %j, naming the flag', (text) => {
    expect(() => parseExpertMemory(text, '--expert-memory')).toThrow(ExpertMemoryError);
    expect(() => parseExpertMemory(text, '--expert-memory')).toThrow(/--expert-memory/);
  });
  it('refuses bad numbers', () => {
    for (const n of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => parseExpertMemory(n)).toThrow(ExpertMemoryError);
  });
});

describe('planExpertMemory', () => {
  // A made-up layout: 10 layers x 8 experts of 1 MiB, K = 2, 50 MiB of other weights.
  const MiB = 2 ** 20;
  const layout = { file: 'm.gguf', layers: [], used: 2, expertBytes: 80 * MiB, residentBytes: 50 * MiB, slotBytes: MiB, experts: 80 } as unknown as ExpertLayout;

  it('minimum and full', () => {
    expect(minimumExpertMemory(layout)).toBe(2 * MiB);
    expect(fullExpertMemory(layout)).toBe(80 * MiB);
  });
  it('by default keeps everything resident when the model fits in 80% of memory', () => {
    const p = planExpertMemory(layout, undefined, { available: 1000 * MiB, otherBytes: 10 * MiB });
    expect(p.resident).toBe(true);
    expect(p.reason).toMatch(/fits/);
  });
  it('by default caches half of what is left after the resident weights when it does not', () => {
    const p = planExpertMemory(layout, undefined, { available: 150 * MiB, otherBytes: 20 * MiB });
    expect(p.resident).toBe(false);
    expect(p.slots).toBe(Math.floor((150 - 50 - 20) / 2)); // 40 slots of 1 MiB
    expect(p.budgetBytes).toBe(40 * MiB);
    // Too little memory: the minimum, never less.
    expect(planExpertMemory(layout, undefined, { available: 60 * MiB, otherBytes: 20 * MiB }).slots).toBe(2);
  });
  it('turns a request into whole slots, and refuses less than the minimum with the numbers', () => {
    expect(planExpertMemory(layout, { kind: 'share', share: 0.25 }, { available: 0, otherBytes: 0 }).slots).toBe(20);
    expect(planExpertMemory(layout, { kind: 'bytes', bytes: 5.5 * MiB }, { available: 0, otherBytes: 0 }).slots).toBe(5);
    expect(planExpertMemory(layout, { kind: 'bytes', bytes: 1e12 }, { available: 0, otherBytes: 0 }).slots).toBe(80);
    expect(planExpertMemory(layout, { kind: 'all' }, { available: 0, otherBytes: 0 }).resident).toBe(true);
    expect(() => planExpertMemory(layout, { kind: 'bytes', bytes: MiB }, { available: 0, otherBytes: 0 })).toThrow(
      /1\.00 MiB is below the minimum of 2\.00 MiB: one layer's 2 active experts/,
    );
  });
});

describe('expert profiles', () => {
  it('pins the most used experts over all layers (ties: lower layer, lower expert)', () => {
    const counts = new Map([
      [0, [5, 0, 9, 9]],
      [1, [9, 1, 2, 3]],
    ]);
    const p = makeProfile('m.gguf', 100, counts, new Map(), 4);
    const brute = [...counts]
      .flatMap(([layer, c]) => c.map((n, expert) => ({ layer, expert, n })))
      .sort((a, b) => b.n - a.n || a.layer - b.layer || a.expert - b.expert)
      .slice(0, 4)
      .map(({ layer, expert }) => ({ layer, expert }));
    expect(p.pin).toEqual(brute);
    expect(mostUsed(p.layers, 0)).toEqual([]);
    const file = path.join(dir, 'p.json');
    writeFileSync(file, JSON.stringify(p));
    expect(readExpertProfile(file)).toEqual(p);
  });

  it('finds super experts (peak output >= 8x the median of used experts) and pins them first', () => {
    const counts = new Map([
      [0, [5, 3, 1, 0]],
      [1, [2, 2, 9, 1]],
    ]);
    const peaks = new Map([
      [0, [1, 1.5, 40, 0]],
      [1, [2, 1, 1.2, 7.9]],
    ]);
    const p = makeProfile('m.gguf', 10, counts, peaks, 3);
    // median of the 7 used peaks (1, 1, 1.2, 1.5, 2, 7.9, 40) is 1.5: the threshold is 12
    expect(superExperts(p.layers)).toEqual([{ layer: 0, expert: 2 }]);
    expect(p.superExperts).toEqual([{ layer: 0, expert: 2 }]);
    expect(p.pin).toEqual([
      { layer: 0, expert: 2 },
      { layer: 1, expert: 2 },
      { layer: 0, expert: 0 },
    ]);
  });

  it.each([
    ['{"format": "x"}', /'format' must be "switchyard-expert-profile"/],
    ['{"format": "switchyard-expert-profile", "version": 2}', /'version' is 2/],
    ['{"format": "switchyard-expert-profile", "version": 1, "tokens": 1, "layers": [{"layer": 0, "counts": [1, -2]}], "pin": []}', /'layers\[0\]\.counts'/],
    ['{"format": "switchyard-expert-profile", "version": 1, "tokens": 1, "layers": [], "pin": [{"layer": 0}]}', /'pin\[0\]'/],
    ['not json', /not a JSON file/],
  ])('refuses a bad profile %#, naming the file and the field', (text, why) => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, text);
    expect(() => readExpertProfile(file)).toThrow(ExpertProfileError);
    expect(() => readExpertProfile(file)).toThrow(why);
    expect(() => readExpertProfile(file)).toThrow(/bad\.json/);
  });

  it('names a missing file', () => {
    expect(() => readExpertProfile(path.join(dir, 'none.json'))).toThrow(/none\.json: no such file/);
  });
});
