/**
 * Finding experts to steer (src/router/steering.ts) on tiny hand-made routing samples whose
 * activation frequencies, frequency differences (Mixture of Tunable Experts, Dahlke et al. 2025)
 * and nPMI values (RICE, Wang et al. 2025) are worked out by hand below; steering profiles: round
 * trip through a file and every validation error naming its field.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import {
  activationFrequency,
  makeSteeringProfile,
  type RoutingSample,
  rankByFrequencyDifference,
  rankByNPMI,
  readSteeringProfile,
  STEERING_FORMAT,
  SteeringError,
  type SteeringProfile,
  writeSteeringProfile,
} from '../../src/router/steering.js';

/** A sample from per-token rows: rows[t][l] = the K ids selected at layer slot l (-1 = empty). */
const sample = (layers: number[], experts: number, used: number, tokens: number[], rows: number[][][]): RoutingSample => ({
  layers,
  experts,
  used,
  ids: Int16Array.from(rows.flat(2)),
  tokens: Int32Array.from(tokens),
});

// Sample A: layers 0 and 3, E = 4, K = 2, four tokens. Token 1 leaves a slot empty at layer 3,
// token 3 lists expert 1 twice at layer 3 (it counts once).
const A = sample(
  [0, 3],
  4,
  2,
  [10, 20, 10, 30],
  [
    [
      [0, 1],
      [2, 3],
    ],
    [
      [0, 2],
      [2, -1],
    ],
    [
      [1, 0],
      [3, 2],
    ],
    [
      [0, 3],
      [1, 1],
    ],
  ],
);
// By hand, tokens selecting each expert / 4:
//   layer 0: e0 t0 t1 t2 t3 = 1, e1 t0 t2 = 0.5, e2 t1 = 0.25, e3 t3 = 0.25
//   layer 3: e0 none = 0, e1 t3 = 0.25, e2 t0 t1 t2 = 0.75, e3 t0 t2 = 0.5
const FREQ_A = [
  [0, 0, 1],
  [0, 1, 0.5],
  [0, 2, 0.25],
  [0, 3, 0.25],
  [3, 0, 0],
  [3, 1, 0.25],
  [3, 2, 0.75],
  [3, 3, 0.5],
];

// Sample B: two tokens. layer 0: e0 0, e1 1, e2 0.5, e3 0.5; layer 3: e0 1, e1 0, e2 0.5, e3 0.5.
const B = sample(
  [0, 3],
  4,
  2,
  [10, 10],
  [
    [
      [1, 2],
      [0, 2],
    ],
    [
      [1, 3],
      [0, 3],
    ],
  ],
);

const triples = <T extends { layer: number; expert: number }>(xs: T[], value: (x: T) => number) => xs.map((x) => [x.layer, x.expert, value(x)]);

describe('activationFrequency', () => {
  it('is the share of tokens that selected each (layer, expert), duplicates and empty slots aside', () => {
    expect(triples(activationFrequency(A), (x) => x.frequency)).toEqual(FREQ_A);
  });

  it('is 0 for every expert of an empty sample', () => {
    const empty = sample([5], 3, 2, [], []);
    expect(activationFrequency(empty)).toEqual([0, 1, 2].map((expert) => ({ layer: 5, expert, frequency: 0 })));
  });

  it('refuses ids of the wrong length or out of range', () => {
    expect(() => activationFrequency({ ...A, ids: A.ids.subarray(1) })).toThrow(InvalidArgumentError);
    expect(() => activationFrequency(sample([0], 2, 1, [1], [[[2]]]))).toThrow(/expert 2 of 2/);
  });
});

describe('rankByFrequencyDifference (Mixture of Tunable Experts)', () => {
  it('ranks A minus B by hand: largest first, ties by layer then expert', () => {
    // A - B: layer 0: 1, -0.5, -0.25, -0.25; layer 3: -1, 0.25, 0.25, 0.
    const ranked = rankByFrequencyDifference(A, B);
    expect(triples(ranked, (x) => x.difference)).toEqual([
      [0, 0, 1],
      [3, 1, 0.25],
      [3, 2, 0.25],
      [3, 3, 0],
      [0, 2, -0.25],
      [0, 3, -0.25],
      [0, 1, -0.5],
      [3, 0, -1],
    ]);
    expect(ranked[1]).toEqual({ layer: 3, expert: 1, difference: 0.25, a: 0.25, b: 0 });
    expect(ranked[2]).toEqual({ layer: 3, expert: 2, difference: 0.25, a: 0.75, b: 0.5 });
  });

  it('refuses samples of different layers or expert counts', () => {
    expect(() => rankByFrequencyDifference(A, { ...B, layers: [0, 2] })).toThrow(InvalidArgumentError);
    expect(() => rankByFrequencyDifference(A, { ...B, experts: 5 })).toThrow(/differ/);
  });
});

describe('rankByNPMI (RICE)', () => {
  const npmi = (s: RoutingSample, markers: number[]) => rankByNPMI(s, new Set(markers));
  const byPair = (xs: ReturnType<typeof rankByNPMI>) => new Map(xs.map((x) => [`${x.layer}/${x.expert}`, x]));

  it('marker 10 (tokens 0 and 2, p(m) = 0.5): hand-computed values and order', () => {
    // layer 0 e0: p(e) = 1, p(e,m) = 0.5: log(0.5 / 0.5) = 0 -> 0
    // layer 0 e1: p(e) = 0.5, p(e,m) = 0.5: log 2 / -log 0.5 = 1
    // layer 3 e2: p(e) = 0.75, p(e,m) = 0.5: log(4/3) / log 2
    // layer 3 e3: p(e) = 0.5, p(e,m) = 0.5: 1; every other pair never meets a marker: -1
    const ranked = npmi(A, [10]);
    expect(ranked.map((x) => [x.layer, x.expert, x.together])).toEqual([
      [0, 1, 2],
      [3, 3, 2],
      [3, 2, 2],
      [0, 0, 2],
      [0, 2, 0],
      [0, 3, 0],
      [3, 0, 0],
      [3, 1, 0],
    ]);
    const expected = [1, 1, Math.log2(4 / 3), 0, -1, -1, -1, -1];
    ranked.forEach((x, i) => {
      expect(x.npmi).toBeCloseTo(expected[i] as number, 12);
    });
  });

  it('markers 10 and 30 (p(m) = 0.75): a negative association short of -1', () => {
    const m = byPair(npmi(A, [10, 30]));
    // layer 3 e2: p(e) = 0.75, p(e,m) = 0.5 (t0, t2): log(0.5 / 0.5625) / -log 0.5 = log2(8/9)
    expect(m.get('3/2')?.npmi).toBeCloseTo(Math.log2(8 / 9), 12);
    expect(m.get('3/2')?.npmi).toBeCloseTo(-0.169925, 6);
    // layer 3 e1: p(e) = 0.25, p(e,m) = 0.25 (t3): log(0.25 / 0.1875) / -log 0.25 = log(4/3) / log 4
    expect(m.get('3/1')?.npmi).toBeCloseTo(Math.log(4 / 3) / Math.log(4), 12);
    // layer 0 e1: p(e) = 0.5, p(e,m) = 0.5: log(0.5 / 0.375) / log 2
    expect(m.get('0/1')?.npmi).toBeCloseTo(Math.log2(4 / 3), 12);
  });

  it('every token a marker: an always-selected expert scores 1, the others 0 (independent)', () => {
    const m = byPair(npmi(A, [10, 20, 30]));
    expect(m.get('0/0')?.npmi).toBe(1);
    expect(m.get('0/1')?.npmi).toBeCloseTo(0, 12);
    expect(m.get('3/2')?.npmi).toBeCloseTo(0, 12);
    expect(m.get('3/0')?.npmi).toBe(-1); // never selected
  });

  it('a marker never seen gives -1 and no co-occurrence everywhere', () => {
    const ranked = npmi(A, [99]);
    expect(ranked.every((x) => x.npmi === -1 && x.together === 0)).toBe(true);
    // all tied: layer then expert order
    expect(ranked.map((x) => [x.layer, x.expert])).toEqual(FREQ_A.map(([l, e]) => [l, e]));
  });

  it('a brute-force recount agrees on a random sample', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const N = 200;
    const E = 6;
    const tokens = Array.from({ length: N }, () => Math.floor(rnd() * 5));
    const rows = tokens.map(() => [[Math.floor(rnd() * E), Math.floor(rnd() * E)]]);
    const s = sample([1], E, 2, tokens, rows);
    const ranked = byPair(npmi(s, [0, 3]));
    for (let e = 0; e < E; e++) {
      const sel = rows.map((r) => (r[0] as number[]).includes(e));
      const mk = tokens.map((t) => t === 0 || t === 3);
      const pe = sel.filter(Boolean).length / N;
      const pm = mk.filter(Boolean).length / N;
      const pem = sel.filter((x, i) => x && mk[i]).length / N;
      expect(ranked.get(`1/${e}`)?.npmi).toBeCloseTo(Math.log(pem / (pe * pm)) / -Math.log(pem), 10);
    }
  });
});

describe('steering profiles', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-steering-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: unknown) => {
    const p = path.join(dir, name);
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };
  const VALID: SteeringProfile = {
    format: STEERING_FORMAT,
    version: 1,
    description: 'hand-made',
    ban: [{ layer: 0, expert: 3 }],
    force: [{ layer: 2, expert: 1 }],
    scale: [{ layer: 1, expert: 0, factor: 2.5 }],
  };

  it('round-trips through a file', () => {
    const p = path.join(dir, 'round.json');
    writeSteeringProfile(p, VALID);
    expect(readSteeringProfile(p)).toEqual(VALID);
  });

  const cases: [string, unknown, RegExp][] = [
    ['format', { ...VALID, format: 'other' }, /'format' must be "switchyard-steering"/],
    ['version', { ...VALID, version: 2 }, /'version' is 2/],
    ['description', { ...VALID, description: 5 }, /'description' must be a string/],
    ['ban', { ...VALID, ban: {} }, /'ban' must be an array/],
    ['force', { ...VALID, force: undefined }, /'force' must be an array/],
    ['scale', { ...VALID, scale: 'x' }, /'scale' must be an array/],
    ['ban[1]', { ...VALID, ban: [{ layer: 0, expert: 1 }, 7] }, /'ban\[1\]' must be/],
    ['ban[0].layer', { ...VALID, ban: [{ layer: -1, expert: 1 }] }, /'ban\[0\]\.layer' must be a whole number/],
    ['force[0].expert', { ...VALID, force: [{ layer: 0, expert: 1.5 }] }, /'force\[0\]\.expert' must be a whole number/],
    ['scale[0].factor', { ...VALID, scale: [{ layer: 0, expert: 1, factor: -1 }] }, /'scale\[0\]\.factor' must be a finite number >= 0/],
    ['scale[0].factor missing', { ...VALID, scale: [{ layer: 0, expert: 1 }] }, /'scale\[0\]\.factor'/],
    ['force[0] banned', { ...VALID, force: [{ layer: 0, expert: 3 }] }, /'force\[0\]' \(layer 0, expert 3\) is also in 'ban'/],
  ];
  it.each(cases)('a bad %s is refused, naming the file and the field', (name, content, message) => {
    const p = file(`${name.replace(/\W/g, '_')}.json`, content);
    let caught: unknown;
    try {
      readSteeringProfile(p);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(SteeringError);
    expect((caught as SteeringError).code).toBe('E_STEERING');
    expect((caught as Error).message).toContain(p);
    expect((caught as Error).message).toMatch(message);
  });

  it('a missing file and a non-JSON file are steering errors', () => {
    expect(() => readSteeringProfile(path.join(dir, 'absent.json'))).toThrow(/absent\.json: no such file/);
    expect(() => readSteeringProfile(file('bad.json', '{ban: ['))).toThrow(/not a JSON file/);
  });

  it('writing refuses an invalid profile', () => {
    const p = path.join(dir, 'never.json');
    expect(() => writeSteeringProfile(p, { ...VALID, ban: [{ layer: 0, expert: -2 }] })).toThrow(/'ban\[0\]\.expert'/);
  });

  it('makeSteeringProfile takes the top pairs of a ranking for one action', () => {
    const ranking = rankByFrequencyDifference(A, B);
    const ban = makeSteeringProfile(ranking, { action: 'ban', count: 2, description: 'A not B' });
    expect(ban).toEqual({
      format: STEERING_FORMAT,
      version: 1,
      description: 'A not B',
      ban: [
        { layer: 0, expert: 0 },
        { layer: 3, expert: 1 },
      ],
      force: [],
      scale: [],
    });
    const force = makeSteeringProfile(ranking, { action: 'force', count: 1 });
    expect(force.force).toEqual([{ layer: 0, expert: 0 }]);
    expect(force.ban).toEqual([]);
    expect('description' in force).toBe(false);
    const boost = makeSteeringProfile(ranking, { action: 'boost', count: 3, factor: 4 });
    expect(boost.scale).toEqual([
      { layer: 0, expert: 0, factor: 4 },
      { layer: 3, expert: 1, factor: 4 },
      { layer: 3, expert: 2, factor: 4 },
    ]);
    expect(makeSteeringProfile(ranking, { action: 'ban', count: 100 }).ban).toHaveLength(8);
    expect(makeSteeringProfile(ranking, { action: 'ban', count: 0 }).ban).toEqual([]);
    // what it makes, the reader accepts
    const p = path.join(dir, 'made.json');
    writeSteeringProfile(p, boost);
    expect(readSteeringProfile(p)).toEqual(boost);
  });

  it('makeSteeringProfile refuses a boost without a factor, a bad count or action', () => {
    expect(() => makeSteeringProfile([], { action: 'boost', count: 1 })).toThrow(/'factor'/);
    expect(() => makeSteeringProfile([], { action: 'ban', count: -1 })).toThrow(/'count'/);
    expect(() => makeSteeringProfile([], { action: 'mute' as 'ban', count: 1 })).toThrow(/'action'/);
  });
});
