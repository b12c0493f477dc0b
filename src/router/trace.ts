/**
 * Routing traces: for every token and every MoE layer of a model run, the selected experts and
 * their weights, the router's M largest logits (with their experts) and the entropy of the
 * router's softmax over all E logits. TraceRecorder builds one from the routing observer
 * (src/models/nn/layers.ts, RoutingObserver); analysis.ts and report.ts read it.
 *
 * Two files, both validated field by field on read (a RoutingTraceError names file and field):
 *   .jsonl  line 1: a header object; then one object per token:
 *           {"t":i,"token":id,"piece":"...","layers":[{"ids":[..K],"w":[..K],"top":[[id,logit],..M],"H":h}, ..L]}
 *           (non-finite numbers are written as the strings "Infinity", "-Infinity", "NaN").
 *   .bin    "SYTRACE1", u32 LE header length, header JSON (with pieces), then the arrays in the
 *           order tokens i32 [N], ids i16 [N,L,K], weights f32 [N,L,K], topIds i16 [N,L,M],
 *           topValues f32 [N,L,M], entropy f32 [N,L], peaks f32 [L,E] (if any), little-endian,
 *           each starting at a multiple of 8 bytes from the file start (zero padding between).
 * Float32 values round-trip exactly through both (JSON numbers are written in shortest form).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { SwitchyardError } from '../core/errors.js';
import { topK } from './route.js';

export const TRACE_FORMAT = 'switchyard-trace';
/** The binary form's first 8 bytes. */
export const TRACE_MAGIC = 'SYTRACE1';
/** Router logits kept per (token, layer): M = min(TOP_LOGITS, E). */
export const TOP_LOGITS = 8;

export interface RoutingTrace {
  readonly format: typeof TRACE_FORMAT;
  readonly version: 1;
  readonly model: string;
  readonly architecture: string;
  /** Block indices of the MoE layers, ascending (L of them). */
  readonly layers: readonly number[];
  /** E: routed experts per layer. */
  readonly experts: number;
  /** K: width of ids/weights (max over tokens; -1 padded). */
  readonly used: number;
  /** M: router logits kept per (token, layer). */
  readonly topLogits: number;
  /** [N] token ids. */
  readonly tokens: Int32Array;
  /** [N] token texts (for display). */
  readonly pieces: readonly string[];
  /** [N, L, K] selected experts (-1 = none). */
  readonly ids: Int16Array;
  /** [N, L, K] their routing weights. */
  readonly weights: Float32Array;
  /** [N, L, M] experts of the largest router logits. */
  readonly topIds: Int16Array;
  /** [N, L, M] those logits, descending. */
  readonly topValues: Float32Array;
  /** [N, L] entropy (nats) of softmax over the full router logits. */
  readonly entropy: Float32Array;
  /** Optional: per layer, each expert's largest |unweighted output| seen ([L, E]); for super experts. */
  readonly peaks?: Float32Array;
}

/** A trace that cannot be made, written or read: names the file (or the recorder) and the field. */
export class RoutingTraceError extends SwitchyardError {
  constructor(message: string) {
    super('E_ROUTING_TRACE', message);
  }
}

export interface TraceMeta {
  readonly model: string;
  readonly architecture: string;
  readonly layers: readonly number[];
  readonly experts: number;
  readonly used: number;
  readonly topLogits?: number;
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

/** Checks the shape fields shared by the recorder and the readers; returns M. */
function checkMeta(m: TraceMeta, bad: (field: string, why: string) => never): number {
  if (typeof m.model !== 'string') bad('model', 'must be a string');
  if (typeof m.architecture !== 'string') bad('architecture', 'must be a string');
  if (!isCount(m.experts) || m.experts < 1 || m.experts > 32767) bad('experts', `must be a whole number in 1..32767, got ${JSON.stringify(m.experts)}`);
  if (!isCount(m.used) || m.used < 1 || m.used > m.experts) bad('used', `must be a whole number in 1..${m.experts}, got ${JSON.stringify(m.used)}`);
  if (!Array.isArray(m.layers) || m.layers.length === 0 || !m.layers.every(isCount)) bad('layers', 'must be a non-empty array of block indices');
  for (let i = 1; i < m.layers.length; i++) if ((m.layers[i] as number) <= (m.layers[i - 1] as number)) bad('layers', 'must be strictly ascending');
  const M = m.topLogits ?? Math.min(TOP_LOGITS, m.experts);
  if (!isCount(M) || M < 1 || M > m.experts) bad('topLogits', `must be a whole number in 1..${m.experts}, got ${JSON.stringify(M)}`);
  return M;
}

/** Entropy (nats) of softmax(row), in float64: H = log S - sum_e (x_e - max) exp(x_e - max) / S. */
export function softmaxEntropy(row: ArrayLike<number>): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let e = 0; e < row.length; e++) max = Math.max(max, row[e] as number);
  if (!Number.isFinite(max)) return 0;
  let s = 0;
  let sx = 0;
  for (let e = 0; e < row.length; e++) {
    const d = (row[e] as number) - max;
    const ex = Math.exp(d);
    if (ex === 0) continue; // -Infinity logits carry no mass (and d * 0 would be NaN)
    s += ex;
    sx += d * ex;
  }
  return Math.log(s) - sx / s;
}

interface PendingStep {
  readonly tokens: readonly number[];
  readonly pieces: readonly string[];
  readonly ids: Int16Array;
  readonly weights: Float32Array;
  readonly topIds: Int16Array;
  readonly topValues: Float32Array;
  readonly entropy: Float32Array;
  readonly recorded: boolean[];
}

/** Builds a RoutingTrace from the routing observer, one step (a batch of tokens) at a time. */
export class TraceRecorder {
  private readonly meta: TraceMeta;
  private readonly M: number;
  private readonly layerIndex = new Map<number, number>();
  private readonly steps: PendingStep[] = [];
  private peaks: Float32Array | undefined;

  constructor(meta: TraceMeta) {
    this.M = checkMeta(meta, (field, why) => {
      throw new RoutingTraceError(`TraceRecorder: '${field}' ${why}`);
    });
    this.meta = { ...meta, layers: [...meta.layers] };
    meta.layers.forEach((layer, l) => void this.layerIndex.set(layer, l));
  }

  /** Starts a step of T tokens (ids and their texts); the next record() calls belong to it. */
  beginStep(tokens: readonly number[], pieces: readonly string[]): void {
    this.checkComplete();
    if (tokens.length !== pieces.length) {
      throw new RoutingTraceError(`TraceRecorder.beginStep: ${tokens.length} tokens but ${pieces.length} pieces`);
    }
    const T = tokens.length;
    const L = this.meta.layers.length;
    const { used: K } = this.meta;
    this.steps.push({
      tokens: [...tokens],
      pieces: [...pieces],
      ids: new Int16Array(T * L * K).fill(-1),
      weights: new Float32Array(T * L * K),
      topIds: new Int16Array(T * L * this.M),
      topValues: new Float32Array(T * L * this.M),
      entropy: new Float32Array(T * L),
      recorded: new Array<boolean>(L).fill(false),
    });
  }

  /** One MoE layer of the current step: ids/weights [T, K'] (padded with -1 to K; K' > K is an error), logits [T, E]. */
  record(layer: number, ids: Int32Array, weights: Float32Array, logits: Float32Array): void {
    const where = `TraceRecorder.record(layer ${layer})`;
    const step = this.steps[this.steps.length - 1];
    if (!step) throw new RoutingTraceError(`${where}: no step begun (call beginStep first)`);
    const l = this.layerIndex.get(layer);
    if (l === undefined) throw new RoutingTraceError(`${where}: not one of the trace's MoE layers (${this.meta.layers.join(', ')})`);
    if (step.recorded[l]) throw new RoutingTraceError(`${where}: recorded twice in one step`);
    const { experts: E, used: K } = this.meta;
    const L = this.meta.layers.length;
    const M = this.M;
    const T = step.tokens.length;
    if (logits.length !== T * E) throw new RoutingTraceError(`${where}: logits has ${logits.length} values, expected T x E = ${T} x ${E}`);
    if (weights.length !== ids.length) throw new RoutingTraceError(`${where}: ${ids.length} ids but ${weights.length} weights`);
    if (T > 0 && ids.length % T !== 0) throw new RoutingTraceError(`${where}: ${ids.length} ids is not a multiple of the step's ${T} tokens`);
    const k2 = T > 0 ? ids.length / T : 0;
    if (k2 > K) throw new RoutingTraceError(`${where}: ${k2} experts per token, more than the trace's width used = ${K}`);
    for (let t = 0; t < T; t++) {
      const at = (t * L + l) * K;
      for (let k = 0; k < k2; k++) {
        const e = ids[t * k2 + k] as number;
        if (e < -1 || e >= E) throw new RoutingTraceError(`${where}: token ${t} selects expert ${e}, outside 0..${E - 1}`);
        step.ids[at + k] = e;
        step.weights[at + k] = e < 0 ? 0 : (weights[t * k2 + k] as number);
      }
      const row = logits.subarray(t * E, (t + 1) * E);
      const top = topK(row, M);
      for (let m = 0; m < M; m++) {
        step.topIds[(t * L + l) * M + m] = top[m] as number;
        step.topValues[(t * L + l) * M + m] = row[top[m] as number] as number;
      }
      step.entropy[t * L + l] = softmaxEntropy(row);
    }
    step.recorded[l] = true;
  }

  /** Peaks of one layer's experts (max |output|), merged by max with those seen before. */
  recordPeaks(layer: number, peaks: ArrayLike<number>): void {
    const l = this.layerIndex.get(layer);
    const E = this.meta.experts;
    if (l === undefined) throw new RoutingTraceError(`TraceRecorder.recordPeaks(layer ${layer}): not one of the trace's MoE layers`);
    if (peaks.length !== E) throw new RoutingTraceError(`TraceRecorder.recordPeaks(layer ${layer}): ${peaks.length} peaks, expected E = ${E}`);
    this.peaks ??= new Float32Array(this.meta.layers.length * E);
    for (let e = 0; e < E; e++) {
      const p = Math.abs(peaks[e] as number);
      if (p > (this.peaks[l * E + e] as number)) this.peaks[l * E + e] = p;
    }
  }

  finish(): RoutingTrace {
    this.checkComplete();
    const cat = <A extends Int16Array | Float32Array>(make: (n: number) => A, part: (s: PendingStep) => A): A => {
      const out = make(this.steps.reduce((n, s) => n + part(s).length, 0));
      let at = 0;
      for (const s of this.steps) {
        out.set(part(s), at);
        at += part(s).length;
      }
      return out;
    };
    return {
      format: TRACE_FORMAT,
      version: 1,
      model: this.meta.model,
      architecture: this.meta.architecture,
      layers: [...this.meta.layers],
      experts: this.meta.experts,
      used: this.meta.used,
      topLogits: this.M,
      tokens: Int32Array.from(this.steps.flatMap((s) => s.tokens)),
      pieces: this.steps.flatMap((s) => s.pieces),
      ids: cat((n) => new Int16Array(n), (s) => s.ids),
      weights: cat((n) => new Float32Array(n), (s) => s.weights),
      topIds: cat((n) => new Int16Array(n), (s) => s.topIds),
      topValues: cat((n) => new Float32Array(n), (s) => s.topValues),
      entropy: cat((n) => new Float32Array(n), (s) => s.entropy),
      ...(this.peaks ? { peaks: this.peaks.slice() } : {}),
    };
  }

  private checkComplete(): void {
    const i = this.steps.length - 1;
    const step = this.steps[i];
    if (!step) return;
    const missing = this.meta.layers.filter((_, l) => !step.recorded[l]);
    if (missing.length > 0) {
      throw new RoutingTraceError(`TraceRecorder: step ${i} (${step.tokens.length} tokens) has no routing for layer(s) ${missing.join(', ')}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Validation shared by both readers

/** Checks every count, array length and index range of a trace; throws naming `file` and the field. */
export function checkTrace(t: RoutingTrace, file = '<trace>'): RoutingTrace {
  const bad = (field: string, why: string): never => {
    throw new RoutingTraceError(`${file}: '${field}' ${why}`);
  };
  if (t.format !== TRACE_FORMAT) bad('format', `must be "${TRACE_FORMAT}" (make one with switchyard trace)`);
  if (t.version !== 1) bad('version', `is ${JSON.stringify(t.version)}; this Switchyard reads version 1`);
  const M = checkMeta(t, bad);
  if (M !== t.topLogits) bad('topLogits', 'is missing');
  const N = t.tokens.length;
  const L = t.layers.length;
  const K = t.used;
  const E = t.experts;
  if (t.pieces.length !== N || !t.pieces.every((p) => typeof p === 'string')) bad('pieces', `must be ${N} strings`);
  const sized = (field: string, a: { length: number }, n: number, dims: string) => {
    if (a.length !== n) bad(field, `has ${a.length} values, expected ${dims} = ${n}`);
  };
  sized('ids', t.ids, N * L * K, `N x L x K (${N} x ${L} x ${K})`);
  sized('weights', t.weights, N * L * K, `N x L x K (${N} x ${L} x ${K})`);
  sized('topIds', t.topIds, N * L * M, `N x L x M (${N} x ${L} x ${M})`);
  sized('topValues', t.topValues, N * L * M, `N x L x M (${N} x ${L} x ${M})`);
  sized('entropy', t.entropy, N * L, `N x L (${N} x ${L})`);
  if (t.peaks !== undefined) sized('peaks', t.peaks, L * E, `L x E (${L} x ${E})`);
  for (let i = 0; i < t.ids.length; i++) {
    const e = t.ids[i] as number;
    if (e < -1 || e >= E) bad('ids', `token ${Math.floor(i / (L * K))} selects expert ${e}, outside -1..${E - 1}`);
  }
  for (let i = 0; i < t.topIds.length; i++) {
    const e = t.topIds[i] as number;
    if (e < 0 || e >= E) bad('topIds', `token ${Math.floor(i / (L * M))} names expert ${e}, outside 0..${E - 1}`);
  }
  for (let i = 0; i < N; i++) if ((t.tokens[i] as number) < 0) bad('tokens', `token ${i} has id ${t.tokens[i]}`);
  return t;
}

// ---------------------------------------------------------------------------------------------
// JSONL

const jsonNumber = (x: number): number | string => (Number.isFinite(x) ? x : String(x));
const NON_FINITE: Record<string, number> = { Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY, NaN: Number.NaN };
const fromJsonNumber = (x: unknown): number | undefined => (typeof x === 'number' ? x : typeof x === 'string' ? NON_FINITE[x] : undefined);

function header(t: RoutingTrace): Record<string, unknown> {
  return {
    format: t.format,
    version: t.version,
    model: t.model,
    architecture: t.architecture,
    layers: t.layers,
    experts: t.experts,
    used: t.used,
    topLogits: t.topLogits,
    tokens: t.tokens.length,
  };
}

export function writeTraceJSONL(t: RoutingTrace): string {
  const L = t.layers.length;
  const { used: K, topLogits: M, experts: E } = t;
  const head = header(t);
  if (t.peaks) head.peaks = t.layers.map((_, l) => Array.from(t.peaks!.subarray(l * E, (l + 1) * E), jsonNumber));
  const lines = [JSON.stringify(head)];
  for (let i = 0; i < t.tokens.length; i++) {
    const layers = t.layers.map((_, l) => {
      const a = (i * L + l) * K;
      const b = (i * L + l) * M;
      return {
        ids: Array.from(t.ids.subarray(a, a + K)),
        w: Array.from(t.weights.subarray(a, a + K), jsonNumber),
        top: Array.from({ length: M }, (_, m) => [t.topIds[b + m], jsonNumber(t.topValues[b + m] as number)]),
        H: jsonNumber(t.entropy[i * L + l] as number),
      };
    });
    lines.push(JSON.stringify({ t: i, token: t.tokens[i], piece: t.pieces[i], layers }));
  }
  return `${lines.join('\n')}\n`;
}

export function readTraceJSONL(text: string, file = '<trace>'): RoutingTrace {
  const lines = text.split('\n');
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === '') lines.pop();
  const parse = (n: number): Record<string, unknown> => {
    try {
      const v = JSON.parse(lines[n] as string) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new RoutingTraceError(`${file}: line ${n + 1} is not a JSON object`);
  };
  if (lines.length === 0) throw new RoutingTraceError(`${file}: empty file (not a routing trace)`);
  const h = parse(0);
  const bad = (field: string, why: string): never => {
    throw new RoutingTraceError(`${file}: line 1 '${field}' ${why}`);
  };
  if (h.format !== TRACE_FORMAT) bad('format', `must be "${TRACE_FORMAT}" (make one with switchyard trace)`);
  if (h.version !== 1) bad('version', `is ${JSON.stringify(h.version)}; this Switchyard reads version 1`);
  const meta = h as unknown as TraceMeta;
  const M = checkMeta(meta, bad);
  const N = h.tokens;
  if (!isCount(N)) bad('tokens', 'must be a whole number');
  if (lines.length - 1 !== N) bad('tokens', `says ${N} tokens but the file has ${lines.length - 1} token lines`);
  const L = meta.layers.length;
  const { used: K, experts: E } = meta;
  let peaks: Float32Array | undefined;
  if (h.peaks !== undefined) {
    const p = h.peaks as unknown[];
    if (!Array.isArray(p) || p.length !== L) bad('peaks', `must be ${L} arrays of ${E} numbers`);
    peaks = new Float32Array(L * E);
    p.forEach((row, l) => {
      if (!Array.isArray(row) || row.length !== E) bad(`peaks[${l}]`, `must be ${E} numbers`);
      (row as unknown[]).forEach((x, e) => {
        const v = fromJsonNumber(x);
        if (v === undefined) bad(`peaks[${l}][${e}]`, 'must be a number');
        peaks![l * E + e] = v as number;
      });
    });
  }
  const n = N as number;
  const tokens = new Int32Array(n);
  const pieces: string[] = [];
  const ids = new Int16Array(n * L * K);
  const weights = new Float32Array(n * L * K);
  const topIds = new Int16Array(n * L * M);
  const topValues = new Float32Array(n * L * M);
  const entropy = new Float32Array(n * L);
  for (let i = 0; i < n; i++) {
    const o = parse(i + 1);
    const at = (field: string, why: string): never => {
      throw new RoutingTraceError(`${file}: line ${i + 2} '${field}' ${why}`);
    };
    const num = (x: unknown, field: string): number => {
      const v = fromJsonNumber(x);
      return v === undefined ? at(field, 'must be a number') : v;
    };
    if (o.t !== i) at('t', `is ${JSON.stringify(o.t)}, expected ${i}`);
    if (!isCount(o.token) || o.token > 0x7fffffff) at('token', 'must be a token id');
    if (typeof o.piece !== 'string') at('piece', 'must be a string');
    tokens[i] = o.token as number;
    pieces.push(o.piece as string);
    const ls = o.layers as unknown[];
    if (!Array.isArray(ls) || ls.length !== L) at('layers', `must be an array of ${L} layer objects`);
    ls.forEach((x, l) => {
      const r = x as Record<string, unknown>;
      const f = `layers[${l}]`;
      if (typeof r !== 'object' || r === null) at(f, 'must be an object');
      if (!Array.isArray(r.ids) || r.ids.length !== K) at(`${f}.ids`, `must be ${K} expert ids (-1 = none)`);
      if (!Array.isArray(r.w) || r.w.length !== K) at(`${f}.w`, `must be ${K} weights`);
      if (!Array.isArray(r.top) || r.top.length !== M) at(`${f}.top`, `must be ${M} [expert, logit] pairs`);
      const base = (i * L + l) * K;
      (r.ids as unknown[]).forEach((e, k) => {
        if (typeof e !== 'number' || !Number.isInteger(e) || e < -1 || e >= E) at(`${f}.ids[${k}]`, `must be an expert in -1..${E - 1}`);
        ids[base + k] = e as number;
        weights[base + k] = num((r.w as unknown[])[k], `${f}.w[${k}]`);
      });
      const tb = (i * L + l) * M;
      (r.top as unknown[]).forEach((pair, m) => {
        const p = pair as unknown[];
        if (!Array.isArray(p) || p.length !== 2 || !isCount(p[0]) || (p[0] as number) >= E) at(`${f}.top[${m}]`, `must be [expert in 0..${E - 1}, logit]`);
        topIds[tb + m] = p[0] as number;
        topValues[tb + m] = num(p[1], `${f}.top[${m}]`);
      });
      entropy[i * L + l] = num(r.H, `${f}.H`);
    });
  }
  return checkTrace(
    {
      format: TRACE_FORMAT,
      version: 1,
      model: meta.model,
      architecture: meta.architecture,
      layers: [...meta.layers],
      experts: E,
      used: K,
      topLogits: M,
      tokens,
      pieces,
      ids,
      weights,
      topIds,
      topValues,
      entropy,
      ...(peaks ? { peaks } : {}),
    },
    file,
  );
}

// ---------------------------------------------------------------------------------------------
// Binary

type Kind = 'i32' | 'i16' | 'f32';
const BYTES: Record<Kind, number> = { i32: 4, i16: 2, f32: 4 };
const align8 = (n: number) => Math.ceil(n / 8) * 8;

/** The arrays of the binary form, in file order, with their element kinds and lengths. */
function sections(N: number, L: number, K: number, M: number, E: number, peaks: boolean): { field: string; kind: Kind; length: number }[] {
  return [
    { field: 'tokens', kind: 'i32' as Kind, length: N },
    { field: 'ids', kind: 'i16' as Kind, length: N * L * K },
    { field: 'weights', kind: 'f32' as Kind, length: N * L * K },
    { field: 'topIds', kind: 'i16' as Kind, length: N * L * M },
    { field: 'topValues', kind: 'f32' as Kind, length: N * L * M },
    { field: 'entropy', kind: 'f32' as Kind, length: N * L },
    ...(peaks ? [{ field: 'peaks', kind: 'f32' as Kind, length: L * E }] : []),
  ];
}

export function encodeTraceBinary(t: RoutingTrace): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify({ ...header(t), pieces: t.pieces, peaks: t.peaks !== undefined }));
  const parts = sections(t.tokens.length, t.layers.length, t.used, t.topLogits, t.experts, t.peaks !== undefined);
  let size = align8(12 + head.length);
  const offsets = parts.map((p) => {
    const at = size;
    size = align8(size + p.length * BYTES[p.kind]);
    return at;
  });
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = TRACE_MAGIC.charCodeAt(i);
  view.setUint32(8, head.length, true);
  out.set(head, 12);
  parts.forEach((p, s) => {
    const a = (t as unknown as Record<string, ArrayLike<number>>)[p.field] as ArrayLike<number>;
    const at = offsets[s] as number;
    for (let i = 0; i < p.length; i++) {
      const x = a[i] as number;
      if (p.kind === 'i32') view.setInt32(at + 4 * i, x, true);
      else if (p.kind === 'i16') view.setInt16(at + 2 * i, x, true);
      else view.setFloat32(at + 4 * i, x, true);
    }
  });
  return out;
}

/** True when bytes start with the binary form's magic. */
export function isTraceBinary(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  for (let i = 0; i < 8; i++) if (bytes[i] !== TRACE_MAGIC.charCodeAt(i)) return false;
  return true;
}

export function decodeTraceBinary(bytes: Uint8Array, file = '<trace>'): RoutingTrace {
  const fail = (why: string): never => {
    throw new RoutingTraceError(`${file}: ${why}`);
  };
  if (!isTraceBinary(bytes)) fail(`not a binary routing trace (no "${TRACE_MAGIC}" magic)`);
  if (bytes.length < 12) fail('truncated: the header length is missing');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLength = view.getUint32(8, true);
  if (12 + headLength > bytes.length) fail(`truncated: the header needs ${headLength} bytes, ${bytes.length - 12} are left`);
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + headLength))) as Record<string, unknown>;
  } catch (e) {
    return fail(`the header is not JSON (${(e as Error).message})`);
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) fail('the header is not a JSON object');
  const bad = (field: string, why: string): never => fail(`header '${field}' ${why}`);
  if (h.format !== TRACE_FORMAT) bad('format', `must be "${TRACE_FORMAT}"`);
  if (h.version !== 1) bad('version', `is ${JSON.stringify(h.version)}; this Switchyard reads version 1`);
  const meta = h as unknown as TraceMeta;
  const M = checkMeta(meta, bad);
  const N = h.tokens;
  if (!isCount(N)) bad('tokens', 'must be a whole number');
  if (!Array.isArray(h.pieces) || h.pieces.length !== N) bad('pieces', `must be ${N} strings`);
  if (typeof h.peaks !== 'boolean') bad('peaks', 'must be true or false');
  const L = meta.layers.length;
  const parts = sections(N as number, L, meta.used, M, meta.experts, h.peaks as boolean);
  let at = align8(12 + headLength);
  const arrays: Record<string, Int32Array | Int16Array | Float32Array> = {};
  for (const p of parts) {
    const end = at + p.length * BYTES[p.kind];
    if (end > bytes.length) fail(`truncated: '${p.field}' needs bytes ${at}..${end}, the file has ${bytes.length}`);
    const a = p.kind === 'i32' ? new Int32Array(p.length) : p.kind === 'i16' ? new Int16Array(p.length) : new Float32Array(p.length);
    for (let i = 0; i < p.length; i++) {
      a[i] = p.kind === 'i32' ? view.getInt32(at + 4 * i, true) : p.kind === 'i16' ? view.getInt16(at + 2 * i, true) : view.getFloat32(at + 4 * i, true);
    }
    arrays[p.field] = a;
    at = align8(end);
  }
  if (at < bytes.length) fail(`${bytes.length - at} unexpected bytes after the last array (corrupted or not written by this Switchyard)`);
  return checkTrace(
    {
      format: TRACE_FORMAT,
      version: 1,
      model: meta.model,
      architecture: meta.architecture,
      layers: [...meta.layers],
      experts: meta.experts,
      used: meta.used,
      topLogits: M,
      tokens: arrays.tokens as Int32Array,
      pieces: h.pieces as string[],
      ids: arrays.ids as Int16Array,
      weights: arrays.weights as Float32Array,
      topIds: arrays.topIds as Int16Array,
      topValues: arrays.topValues as Float32Array,
      entropy: arrays.entropy as Float32Array,
      ...(arrays.peaks ? { peaks: arrays.peaks as Float32Array } : {}),
    },
    file,
  );
}

// ---------------------------------------------------------------------------------------------
// Files

/** Writes `.jsonl` or `.bin` by the path's extension. */
export function writeTrace(path: string, trace: RoutingTrace): void {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl')) writeFileSync(path, writeTraceJSONL(trace));
  else if (lower.endsWith('.bin')) writeFileSync(path, encodeTraceBinary(trace));
  else throw new RoutingTraceError(`${path}: a routing trace file must end in .jsonl (text) or .bin (compact binary)`);
}

/** Reads either form, told apart by content (the binary magic), not by name. */
export function readTrace(path: string): RoutingTrace {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RoutingTraceError(`${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (isTraceBinary(bytes)) return decodeTraceBinary(bytes, path);
  return readTraceJSONL(new TextDecoder().decode(bytes), path);
}
