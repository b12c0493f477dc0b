// Routing traces (src/router/trace.ts): the recorder's padding, top logits and entropy against
// values worked out here from hand-made logits (softmax entropy from the probabilities, -sum p ln p);
// its errors for incomplete or malformed steps; exact round trips through JSONL and the binary form
// (8-byte aligned little-endian arrays); and typed errors, never crashes, for truncated, corrupted
// or malformed files.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeTraceBinary,
  encodeTraceBinary,
  type RoutingTrace,
  RoutingTraceError,
  readTrace,
  readTraceJSONL,
  TraceRecorder,
  writeTrace,
  writeTraceJSONL,
} from '../../src/router/trace.js';
import { randomBytes } from '../helpers/random.js';

const meta = { model: 'tiny.gguf', architecture: 'qwen3moe', layers: [1, 3], experts: 4, used: 2 };
const P = [0.1, 0.2, 0.3, 0.4];
const hOf = (p: number[]) => -p.reduce((a, x) => a + (x > 0 ? x * Math.log(x) : 0), 0);

/** Two steps (3 + 2 tokens), two layers; layer 3 of step 0 selects one expert per token (padded). */
function sample(): RoutingTrace {
  const r = new TraceRecorder(meta);
  const lnP = P.map(Math.log);
  r.beginStep([5, 6, 7], ['Hello', ' "world"\n', '<script>alert(1)</script>']);
  // token 0: logits ln p (softmax = p); token 1: uniform; token 2: two experts at -Infinity.
  const logits0 = Float32Array.from([...lnP, 0, 0, 0, 0, 0, Number.NEGATIVE_INFINITY, 0, Number.NEGATIVE_INFINITY]);
  r.record(1, Int32Array.from([3, 2, 0, 1, 2, 0]), Float32Array.from([0.6, 0.4, 0.5, 0.5, 0.7, 0.3]), logits0);
  r.record(3, Int32Array.from([1, 2, 3]), Float32Array.from([1, 1, 1]), new Float32Array(12).fill(1));
  r.beginStep([8, 9], ['é', '∑']);
  r.record(3, Int32Array.from([0, 1, 2, 3]), Float32Array.from([0.9, 0.1, 0.8, 0.2]), Float32Array.from([2, 1, 0, -1, -1, 0, 1, 2]));
  r.record(1, Int32Array.from([1, 0, 3, 2]), Float32Array.from([0.5, 0.5, 0.5, 0.5]), new Float32Array(8));
  r.recordPeaks(1, [1, -5, 2, 0]);
  r.recordPeaks(1, [3, 1, -1, 0.5]);
  return r.finish();
}

function expectSameTrace(a: RoutingTrace, b: RoutingTrace): void {
  expect({ ...b }).toEqual({ ...a });
  for (const k of ['tokens', 'ids', 'weights', 'topIds', 'topValues', 'entropy', 'peaks'] as const) {
    expect(b[k]?.constructor).toBe(a[k]?.constructor);
    expect(Array.from(b[k] ?? [])).toEqual(Array.from(a[k] ?? []));
  }
}

describe('TraceRecorder', () => {
  const t = sample();
  const L = 2;
  const K = 2;
  const M = 4;

  it('stores [N, L, K] ids and weights, padding narrower routings with -1 and weight 0', () => {
    expect(t.tokens).toEqual(Int32Array.from([5, 6, 7, 8, 9]));
    expect(t.topLogits).toBe(4); // min(8, E)
    const idsAt = (n: number, l: number) => Array.from(t.ids.subarray((n * L + l) * K, (n * L + l + 1) * K));
    expect(idsAt(0, 0)).toEqual([3, 2]);
    expect(idsAt(2, 0)).toEqual([2, 0]);
    expect(idsAt(0, 1)).toEqual([1, -1]);
    expect(idsAt(2, 1)).toEqual([3, -1]);
    expect(t.weights[(0 * L + 1) * K + 1]).toBe(0);
    expect(idsAt(3, 1)).toEqual([0, 1]); // step 1 recorded layer 3 first: order does not matter
    expect(idsAt(4, 0)).toEqual([3, 2]);
    expect(t.weights[(3 * L + 1) * K]).toBeCloseTo(0.9, 6);
  });

  it('keeps the M largest logits, descending, with their experts (ties: lower expert first)', () => {
    const top = (n: number, l: number) => Array.from(t.topIds.subarray((n * L + l) * M, (n * L + l + 1) * M));
    const val = (n: number, l: number) => Array.from(t.topValues.subarray((n * L + l) * M, (n * L + l + 1) * M));
    expect(top(0, 0)).toEqual([3, 2, 1, 0]);
    expect(val(0, 0)).toEqual([0.4, 0.3, 0.2, 0.1].map((p) => Math.fround(Math.log(p))));
    expect(top(1, 0)).toEqual([0, 1, 2, 3]);
    expect(top(2, 0)).toEqual([0, 2, 1, 3]);
    expect(val(2, 0)).toEqual([0, 0, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    expect(top(3, 1)).toEqual([0, 1, 2, 3]);
    expect(top(4, 1)).toEqual([3, 2, 1, 0]);
  });

  it('computes the entropy of softmax over all logits in nats', () => {
    const H = (n: number, l: number) => t.entropy[n * L + l] as number;
    expect(H(0, 0)).toBeCloseTo(hOf(P), 6);
    expect(H(1, 0)).toBeCloseTo(Math.log(4), 6);
    expect(H(2, 0)).toBeCloseTo(Math.log(2), 6); // -Infinity logits carry no probability
    expect(H(0, 1)).toBeCloseTo(Math.log(4), 6);
    const e = [2, 1, 0, -1].map(Math.exp);
    const s = e.reduce((a, b) => a + b, 0);
    expect(H(3, 1)).toBeCloseTo(hOf(e.map((x) => x / s)), 6);
  });

  it('merges peaks by the max of |value|', () => {
    expect(Array.from(t.peaks ?? [])).toEqual([3, 5, 2, 0.5, 0, 0, 0, 0]);
  });

  it('rejects malformed steps with errors that say what is wrong', () => {
    const r = new TraceRecorder(meta);
    expect(() => r.record(1, new Int32Array(2), new Float32Array(2), new Float32Array(4))).toThrow(/no step begun/);
    r.beginStep([1, 2], ['a', 'b']);
    expect(() => r.record(2, new Int32Array(4), new Float32Array(4), new Float32Array(8))).toThrow(/not one of the trace's MoE layers/);
    expect(() => r.record(1, new Int32Array(6), new Float32Array(6), new Float32Array(8))).toThrow(/3 experts per token, more than .* used = 2/);
    expect(() => r.record(1, new Int32Array(4), new Float32Array(4), new Float32Array(7))).toThrow(/logits has 7 values/);
    expect(() => r.record(1, Int32Array.from([0, 4, 1, 2]), new Float32Array(4), new Float32Array(8))).toThrow(/expert 4, outside/);
    r.record(1, new Int32Array(4), new Float32Array(4), new Float32Array(8));
    expect(() => r.record(1, new Int32Array(4), new Float32Array(4), new Float32Array(8))).toThrow(/recorded twice/);
    expect(() => r.finish()).toThrow(RoutingTraceError);
    expect(() => r.finish()).toThrow(/step 0 .* no routing for layer\(s\) 3/);
    expect(() => r.beginStep([3], ['c'])).toThrow(/layer\(s\) 3/);
    expect(() => new TraceRecorder(meta).beginStep([3], [])).toThrow(/1 tokens but 0 pieces/);
    expect(() => new TraceRecorder({ ...meta, layers: [3, 1] })).toThrow(/ascending/);
    expect(() => new TraceRecorder({ ...meta, used: 5 })).toThrow(/'used'/);
  });

  it('finishes an empty trace', () => {
    const t0 = new TraceRecorder(meta).finish();
    expect(t0.tokens.length).toBe(0);
    expectSameTrace(t0, readTraceJSONL(writeTraceJSONL(t0)));
    expectSameTrace(t0, decodeTraceBinary(encodeTraceBinary(t0)));
  });
});

describe('JSONL', () => {
  const t = sample();

  it('round-trips exactly (float32 values, -Infinity, escaped pieces)', () => {
    const text = writeTraceJSONL(t);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 5);
    const head = JSON.parse(lines[0] as string);
    expect(head).toMatchObject({ format: 'switchyard-trace', version: 1, layers: [1, 3], experts: 4, used: 2, topLogits: 4 });
    const line3 = JSON.parse(lines[3] as string);
    expect(line3).toMatchObject({ t: 2, token: 7, piece: '<script>alert(1)</script>' });
    expect(line3.layers[0].top[3]).toEqual([3, '-Infinity']);
    expectSameTrace(t, readTraceJSONL(text));
  });

  it('names the line and the field of what is wrong', () => {
    const lines = writeTraceJSONL(t).trimEnd().split('\n');
    const withLine = (n: number, edit: (o: Record<string, unknown>) => void) => {
      const copy = [...lines];
      const o = JSON.parse(copy[n] as string);
      edit(o);
      copy[n] = JSON.stringify(o);
      return copy.join('\n');
    };
    const err = (text: string) => {
      try {
        readTraceJSONL(text, 'x.jsonl');
      } catch (e) {
        expect(e).toBeInstanceOf(RoutingTraceError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err(lines.slice(0, -1).join('\n'))).toMatch(/x\.jsonl: line 1 'tokens' says 5 tokens but the file has 4/);
    expect(err(withLine(3, (o) => ((o.layers as { ids: number[] }[])[1]!.ids = [9, -1])))).toMatch(/line 4 'layers\[1\]\.ids\[0\]'/);
    expect(err(withLine(2, (o) => (o.t = 7)))).toMatch(/line 3 't'/);
    expect(err(withLine(1, (o) => ((o.layers as { w: number[] }[])[0]!.w = [1])))).toMatch(/line 2 'layers\[0\]\.w' must be 2 weights/);
    expect(err(withLine(0, (o) => (o.format = 'other')))).toMatch(/line 1 'format'/);
    expect(err(withLine(0, (o) => (o.experts = 0)))).toMatch(/'experts'/);
    expect(err([lines[0], '{not json', ...lines.slice(2)].join('\n'))).toMatch(/line 2 is not a JSON object/);
    expect(err('')).toMatch(/empty file/);
  });
});

describe('binary form', () => {
  const t = sample();

  it('round-trips exactly, with the magic and 8-byte aligned little-endian arrays', () => {
    const bytes = encodeTraceBinary(t);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('SYTRACE1');
    expect(bytes.length % 8).toBe(0);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const headLength = view.getUint32(8, true);
    const head = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headLength)));
    expect(head.pieces).toEqual(t.pieces);
    const tokensAt = Math.ceil((12 + headLength) / 8) * 8;
    expect([0, 1, 2, 3, 4].map((i) => view.getInt32(tokensAt + 4 * i, true))).toEqual([5, 6, 7, 8, 9]);
    // ids follow: 5 x 4 bytes of tokens, rounded up to 8.
    const idsAt = tokensAt + 24;
    expect([0, 1, 2, 3].map((i) => view.getInt16(idsAt + 2 * i, true))).toEqual([3, 2, 1, -1]);
    expectSameTrace(t, decodeTraceBinary(bytes));
  });

  it('reports every truncation as a RoutingTraceError', () => {
    const bytes = encodeTraceBinary(t);
    for (let n = 0; n < bytes.length; n++) {
      expect(() => decodeTraceBinary(bytes.subarray(0, n), 'cut.bin'), `${n} bytes`).toThrow(RoutingTraceError);
    }
    expect(() => decodeTraceBinary(bytes.subarray(0, bytes.length - 3), 'cut.bin')).toThrow(/cut\.bin: truncated: 'peaks'/);
    const longer = new Uint8Array(bytes.length + 8);
    longer.set(bytes);
    expect(() => decodeTraceBinary(longer)).toThrow(/unexpected bytes/);
  });

  it('reports corrupted content as a RoutingTraceError or reads a valid trace, never crashes', () => {
    const bytes = encodeTraceBinary(t);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const headLength = view.getUint32(8, true);
    const idsAt = Math.ceil((12 + headLength) / 8) * 8 + 24;
    const bad = bytes.slice();
    new DataView(bad.buffer).setInt16(idsAt + 2, 99, true);
    expect(() => decodeTraceBinary(bad, 'c.bin')).toThrow(/c\.bin: 'ids' token 0 selects expert 99/);
    const huge = bytes.slice();
    new DataView(huge.buffer).setUint32(8, 0xffffffff, true);
    expect(() => decodeTraceBinary(huge)).toThrow(/truncated: the header needs/);
    const noise = randomBytes(4000, 7);
    for (let trial = 0; trial < 300; trial++) {
      const c = bytes.slice();
      for (let k = 0; k < 1 + (trial % 4); k++) {
        const at = 8 + ((noise[(trial * 4 + k) % noise.length] as number) * 131 + trial * 17) % (c.length - 8);
        c[at] = noise[(trial * 7 + k) % noise.length] as number;
      }
      try {
        decodeTraceBinary(c);
      } catch (e) {
        expect(e, `trial ${trial}`).toBeInstanceOf(RoutingTraceError);
      }
    }
  });
});

describe('files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-trace-'));
  const t = sample();

  it('writes by extension and reads by content', () => {
    writeTrace(join(dir, 'a.jsonl'), t);
    writeTrace(join(dir, 'a.bin'), t);
    expectSameTrace(t, readTrace(join(dir, 'a.jsonl')));
    expectSameTrace(t, readTrace(join(dir, 'a.bin')));
    writeFileSync(join(dir, 'binary-named.jsonl'), encodeTraceBinary(t));
    expectSameTrace(t, readTrace(join(dir, 'binary-named.jsonl')));
  });

  it('refuses unknown extensions and missing files with typed errors', () => {
    expect(() => writeTrace(join(dir, 'a.json'), t)).toThrow(/must end in \.jsonl .* or \.bin/);
    expect(() => readTrace(join(dir, 'missing.bin'))).toThrow(RoutingTraceError);
    expect(() => readTrace(join(dir, 'missing.bin'))).toThrow(/missing\.bin: no such file/);
    writeFileSync(join(dir, 'junk.jsonl'), 'hello\n');
    expect(() => readTrace(join(dir, 'junk.jsonl'))).toThrow(/junk\.jsonl: line 1 is not a JSON object/);
  });
});
