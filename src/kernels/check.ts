/**
 * Argument checks shared by every backend, so that each kernel's contract is enforced
 * once and in the same words: InvalidArgumentError names the kernel, the argument and
 * what was expected.
 */
import { GGMLType, dotRowBytes, dtypeInfo } from '../core/dtypes.js';
import { InvalidArgumentError, UnsupportedTypeError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { AdamWParams, AttentionParams, ExpertActivation, ExpertGroupArgs, ExpertWeights, GemmParams } from './backend.js';

export function fail(kernel: string, msg: string): never {
  throw new InvalidArgumentError(`${kernel}: ${msg}`);
}

export function expectType(kernel: string, name: string, t: Tensor, ...types: number[]): void {
  if (!types.includes(t.type)) {
    fail(kernel, `${name} must be ${types.map((x) => dtypeInfo(x).name).join(' or ')}, got ${t.info.name}`);
  }
}

export function expectF32(kernel: string, ...named: [string, Tensor][]): void {
  for (const [name, t] of named) expectType(kernel, name, t, GGMLType.F32);
}

/** `shape` entries of -1 match anything. */
export function expectShape(kernel: string, name: string, t: Tensor, shape: readonly number[]): void {
  const ok = t.shape.length === shape.length && shape.every((d, i) => d < 0 || d === t.shape[i]);
  if (!ok) fail(kernel, `${name} has shape [${t.shape.join(', ')}], expected [${shape.map((d) => (d < 0 ? '*' : d)).join(', ')}]`);
}

export function expectNumel(kernel: string, name: string, t: Tensor, n: number): void {
  if (t.numel !== n) fail(kernel, `${name} has ${t.numel} elements, expected ${n}`);
}

export function expectSameHeap(kernel: string, ...ts: (Tensor | null | undefined)[]): void {
  const heap = ts.find((t) => t)?.heap;
  for (const t of ts) if (t && t.heap !== heap) fail(kernel, `all tensors must live in one heap (${t} is in ${t.heap.name})`);
}

export function expectKernelType(kernel: string, name: string, t: Tensor): void {
  if (!t.info.kernels) throw new UnsupportedTypeError(`${kernel}: ${name} has type ${t.info.name}, which the kernels do not implement`);
}

/** Checks for out [T, R] = x [T, C] · W [R, C]ᵀ. Returns [T, R, C]. */
export function checkMatmul(out: Tensor, w: Tensor, x: Tensor): [number, number, number] {
  const k = 'matmul';
  expectKernelType(k, 'W', w);
  expectF32(k, ['out', out], ['x', x]);
  if (w.shape.length !== 2) fail(k, `W must be 2-D [rows, cols], got [${w.shape.join(', ')}]`);
  const [R, C] = w.shape;
  if (x.cols !== C) fail(k, `x rows have ${x.cols} elements but W rows have ${C}`);
  const T = x.rows;
  if (out.numel !== T * R) fail(k, `out has ${out.numel} elements, expected ${T} × ${R}`);
  expectSameHeap(k, out, w, x);
  return [T, R, C];
}

/** Checks for dequantize: out F32 with src's element count and row length. */
export function checkDequantize(out: Tensor, src: Tensor): void {
  expectKernelType('dequantize', 'src', src);
  expectF32('dequantize', ['out', out]);
  expectNumel('dequantize', 'out', out, src.numel);
  expectSameHeap('dequantize', out, src);
}

// ---- element-wise and row ops (ops.c) ----------------------------------------------

export function expectLike(k: string, name: string, t: Tensor, like: Tensor): void {
  expectShape(k, name, t, like.shape);
}

/** A weight/bias vector of C elements ([C], or any shape with C elements in one row). */
export function expectRowVector(k: string, name: string, t: Tensor, C: number): void {
  expectF32(k, [name, t]);
  if (t.numel !== C || t.cols !== C) fail(k, `${name} has shape [${t.shape.join(', ')}], expected [${C}]`);
}

export function expectNumber(k: string, name: string, v: number, what: 'finite' | 'nonneg'): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || (what === 'nonneg' && v < 0)) {
    fail(k, `${name} must be a ${what === 'nonneg' ? 'finite number >= 0' : 'finite number'}, got ${v}`);
  }
}

/** getRows: out [N, C] F32, table [V, C] (kernel type), ids [N] I32 with 0 <= id < V. Returns [N, C, V]. */
export function checkGetRows(out: Tensor, table: Tensor, ids: Tensor): [number, number, number] {
  const k = 'getRows';
  expectKernelType(k, 'table', table);
  expectF32(k, ['out', out]);
  expectType(k, 'ids', ids, GGMLType.I32);
  if (table.shape.length !== 2) fail(k, `table must be 2-D [V, C], got [${table.shape.join(', ')}]`);
  const [V, C] = table.shape;
  if (ids.shape.length !== 1) fail(k, `ids must be 1-D [N], got [${ids.shape.join(', ')}]`);
  const N = ids.numel;
  expectShape(k, 'out', out, [N, C]);
  expectSameHeap(k, out, table, ids);
  const id = ids.i32();
  for (let i = 0; i < N; i++) {
    if (!(id[i] >= 0 && id[i] < V)) fail(k, `ids[${i}] = ${id[i]} is outside the table's ${V} rows [0, ${V})`);
  }
  return [N, C, V];
}

/** rmsNorm / layerNorm: x F32, out like x, weight / bias [C]. Returns [R, C]. */
export function checkNorm(k: string, out: Tensor, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): [number, number] {
  expectF32(k, ['x', x], ['out', out]);
  expectLike(k, 'out', out, x);
  if (weight) expectRowVector(k, 'weight', weight, x.cols);
  if (bias) expectRowVector(k, 'bias', bias, x.cols);
  expectNumber(k, 'eps', eps, 'nonneg');
  expectSameHeap(k, out, x, weight, bias);
  return [x.rows, x.cols];
}

/** Unary element-wise ops: x F32, out like x. */
export function checkUnary(k: string, out: Tensor, x: Tensor, xName = 'x'): number {
  expectF32(k, [xName, x], ['out', out]);
  expectLike(k, 'out', out, x);
  expectSameHeap(k, out, x);
  return x.numel;
}

/** scale: a F32, out like a, s a finite number. */
export function checkScale(out: Tensor, a: Tensor, s: number): number {
  const n = checkUnary('scale', out, a, 'a');
  expectNumber('scale', 's', s, 'finite');
  return n;
}

/** softmax: x F32, out like x, scale a finite number. Returns [R, C]. */
export function checkSoftmax(out: Tensor, x: Tensor, scale: number): [number, number] {
  checkUnary('softmax', out, x);
  expectNumber('softmax', 'scale', scale, 'finite');
  return [x.rows, x.cols];
}

/** swigluOai: as swiglu, plus alpha finite and limit >= 0. */
export function checkSwigluOai(out: Tensor, gate: Tensor, up: Tensor, alpha: number, limit: number): number {
  const n = checkGlu('swigluOai', out, gate, up);
  expectNumber('swigluOai', 'alpha', alpha, 'finite');
  expectNumber('swigluOai', 'limit', limit, 'nonneg');
  return n;
}

/** swiglu / swigluOai: gate, up and out F32 of one shape. */
export function checkGlu(k: string, out: Tensor, gate: Tensor, up: Tensor): number {
  expectF32(k, ['gate', gate], ['up', up], ['out', out]);
  expectLike(k, 'up', up, gate);
  expectLike(k, 'out', out, gate);
  expectSameHeap(k, out, gate, up);
  return gate.numel;
}

/** add / mul: out like a; b like a, or one row of a's C elements. Returns [n, broadcast C or 0]. */
export function checkBinary(k: string, out: Tensor, a: Tensor, b: Tensor): [number, number] {
  expectF32(k, ['a', a], ['b', b], ['out', out]);
  expectLike(k, 'out', out, a);
  expectSameHeap(k, out, a, b);
  const same = b.shape.length === a.shape.length && b.shape.every((d, i) => d === a.shape[i]);
  if (same) return [a.numel, 0];
  if (b.numel === a.cols && b.cols === a.cols) return [a.numel, a.cols];
  return fail(k, `b has shape [${b.shape.join(', ')}]; expected a's shape [${a.shape.join(', ')}] or one row [${a.cols}]`);
}

/** topK: x [R, C] F32, indices [R, K] I32, values [R, K] F32, 0 <= k <= C. Returns [R, C]. */
export function checkTopK(indices: Tensor, values: Tensor, x: Tensor, kk: number): [number, number] {
  const k = 'topK';
  expectF32(k, ['x', x], ['values', values]);
  expectType(k, 'indices', indices, GGMLType.I32);
  const [R, C] = [x.rows, x.cols];
  if (!Number.isInteger(kk) || kk < 0 || kk > C) fail(k, `k must be an integer in [0, ${C}] (x has ${C} columns), got ${kk}`);
  expectShape(k, 'indices', indices, [R, kk]);
  expectShape(k, 'values', values, [R, kk]);
  expectSameHeap(k, indices, values, x);
  return [R, C];
}

// ---- attention (attention.c) -------------------------------------------------------

export interface AttentionDims {
  T: number;
  H: number;
  Hkv: number;
  Dk: number;
  Dv: number;
  S: number;
  qPos0: number;
  window: number;
  softcap: number;
}

/** Validates attention's arguments (see backend.ts) and returns the dimensions. */
export function checkAttention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): AttentionDims {
  const kn = 'attention';
  expectF32(kn, ['out', out], ['q', q]);
  expectType(kn, 'k', k, GGMLType.F32, GGMLType.F16);
  expectType(kn, 'v', v, GGMLType.F32, GGMLType.F16);
  if (q.shape.length !== 3) fail(kn, `q must be 3-D [T, H, Dk], got [${q.shape.join(', ')}]`);
  if (k.shape.length !== 3) fail(kn, `k must be 3-D [S, Hkv, Dk], got [${k.shape.join(', ')}]`);
  const [T, H, Dk] = q.shape;
  const [S, Hkv] = k.shape;
  expectShape(kn, 'k', k, [S, Hkv, Dk]);
  if (v.shape.length !== 3) fail(kn, `v must be 3-D [S, Hkv, Dv], got [${v.shape.join(', ')}]`);
  const Dv = v.shape[2];
  expectShape(kn, 'v', v, [S, Hkv, Dv]);
  expectShape(kn, 'out', out, [T, H, Dv]);
  if (H === 0 || Hkv === 0 || H % Hkv !== 0) fail(kn, `query heads H = ${H} must be a positive multiple of the key/value heads Hkv = ${Hkv}`);
  if (Dk === 0 || Dv === 0) fail(kn, `head dimensions must be positive, got Dk = ${Dk}, Dv = ${Dv}`);
  const { qPos0, scale } = p;
  const window = p.window ?? 0;
  const softcap = p.softcap ?? 0;
  if (!Number.isInteger(qPos0) || qPos0 < 0) fail(kn, `qPos0 must be a non-negative integer, got ${qPos0}`);
  if (qPos0 + T > S) fail(kn, `queries at positions ${qPos0}..${qPos0 + T - 1} need their keys in the cache, but k holds S = ${S} positions`);
  if (!Number.isInteger(window) || window < 0) fail(kn, `window must be a non-negative integer (0 = none), got ${window}`);
  if (!Number.isFinite(scale)) fail(kn, `scale must be a finite number, got ${scale}`);
  if (!Number.isFinite(softcap) || softcap < 0) fail(kn, `softcap must be a finite number >= 0 (0 = off), got ${softcap}`);
  if (p.sinks) {
    expectF32(kn, ['sinks', p.sinks]);
    expectShape(kn, 'sinks', p.sinks, [H]);
  }
  expectSameHeap(kn, out, q, k, v, p.sinks);
  return { T, H, Hkv, Dk, Dv, S, qPos0, window, softcap };
}

// ---- expertGroup (moe.c) ------------------------------------------------------------

export interface ExpertGroupDims {
  T: number;
  D: number;
  F: number;
  K: number;
  /** Weight types of the selected experts' gate, up and down matrices. */
  gateType: number;
  upType: number;
  downType: number;
  /** A copy of ids [T·K]. */
  ids: Int32Array;
  /** The distinct selected expert ids, ascending. */
  used: number[];
}

/**
 * Validates expertGroup's arguments (see backend.ts) and returns the dimensions. Only the
 * experts that some slot selects are checked (and read); all of them must agree on F and
 * on each matrix's type.
 */
export function checkExpertGroup(args: ExpertGroupArgs): ExpertGroupDims {
  const KN = 'expertGroup';
  const { out, x, ids, weights, experts, activation } = args;
  expectF32(KN, ['out', out], ['x', x], ['weights', weights]);
  expectType(KN, 'ids', ids, GGMLType.I32);
  if (x.shape.length !== 2) fail(KN, `x must be 2-D [T, D], got [${x.shape.join(', ')}]`);
  const [T, D] = x.shape;
  expectShape(KN, 'out', out, [T, D]);
  if (ids.shape.length !== 2 || ids.shape[0] !== T) fail(KN, `ids has shape [${ids.shape.join(', ')}], expected [${T}, K]`);
  const K = ids.shape[1];
  expectShape(KN, 'weights', weights, [T, K]);
  expectSameHeap(KN, out, x, ids, weights);
  if (activation.kind === 'swiglu_oai' && !(Number.isFinite(activation.alpha) && Number.isFinite(activation.limit) && activation.limit >= 0)) {
    fail(KN, `swiglu_oai needs a finite alpha and a finite limit >= 0, got alpha ${activation.alpha}, limit ${activation.limit}`);
  } else if (!['silu', 'gelu', 'swiglu_oai'].includes(activation.kind)) {
    fail(KN, `unknown activation '${(activation as ExpertActivation).kind}'`);
  }

  const idv = ids.i32().slice();
  const usedSet = new Set<number>();
  for (let i = 0; i < idv.length; i++) {
    const e = idv[i];
    if (e < 0) continue;
    if (!Number.isInteger(e) || e >= experts.length || !experts[e]) {
      fail(KN, `ids[${Math.floor(i / K)}, ${i % K}] = ${e}, but experts[${e}] is not given (${experts.length} experts)`);
    }
    usedSet.add(e);
  }
  const used = [...usedSet].sort((a, b) => a - b);
  let F = 0;
  let gateType = -1;
  let upType = -1;
  let downType = -1;
  for (const id of used) {
    const ex = experts[id] as ExpertWeights;
    const name = (m: string) => `experts[${id}].${m}`;
    for (const [m, t] of [['gate', ex.gate], ['up', ex.up], ['down', ex.down]] as const) {
      expectKernelType(KN, name(m), t);
      if (t.shape.length !== 2) fail(KN, `${name(m)} must be 2-D, got [${t.shape.join(', ')}]`);
    }
    if (gateType < 0) {
      F = ex.gate.shape[0];
      gateType = ex.gate.type;
      upType = ex.up.type;
      downType = ex.down.type;
    }
    expectShape(KN, name('gate'), ex.gate, [F, D]);
    expectShape(KN, name('up'), ex.up, [F, D]);
    expectShape(KN, name('down'), ex.down, [D, F]);
    const sameType = (m: string, t: Tensor, want: number) => {
      if (t.type !== want) fail(KN, `${name(m)} is ${t.info.name} but the other experts' ${m} matrices are ${dtypeInfo(want).name}`);
    };
    sameType('gate', ex.gate, gateType);
    sameType('up', ex.up, upType);
    sameType('down', ex.down, downType);
    for (const [m, b, n] of [['gateBias', ex.gateBias, F], ['upBias', ex.upBias, F], ['downBias', ex.downBias, D]] as const) {
      if (!b) continue;
      expectF32(KN, [name(m), b]);
      expectShape(KN, name(m), b, [n]);
    }
    expectSameHeap(KN, out, ex.gate, ex.up, ex.down, ex.gateBias, ex.upBias, ex.downBias);
  }
  if (used.length) {
    dotRowBytes(gateType, D); // whole blocks (the shapes above already imply it)
    dotRowBytes(downType, F);
  }
  return { T, D, F, K, gateType, upType, downType, ids: idv, used };
}

/**
 * Checks convert(out, x): x F32, out F32 / F16 / BF16 with x's element count (shapes may
 * differ, as ggml_cpy's), one heap, and no overlap unless out is x itself (an F32 no-op).
 * Returns the element count.
 */
export function checkConvert(out: Tensor, x: Tensor): number {
  const k = 'convert';
  expectF32(k, ['x', x]);
  expectType(k, 'out', out, GGMLType.F32, GGMLType.F16, GGMLType.BF16);
  expectNumel(k, 'out', out, x.numel);
  expectSameHeap(k, out, x);
  const n = x.numel;
  const outEnd = out.offset + n * (out.type === GGMLType.F32 ? 4 : 2);
  const overlap = n > 0 && out.offset < x.offset + 4 * n && x.offset < outEnd;
  if (overlap && !(out.type === GGMLType.F32 && out.offset === x.offset)) {
    fail(k, `out (bytes ${out.offset}..${outEnd}) overlaps x (bytes ${x.offset}..${x.offset + 4 * n}); convert does not work in place`);
  }
  return n;
}

// ---- training (train.c) -------------------------------------------------------------

/** Byte range [start, end) of a tensor's data. */
function byteRange(t: Tensor): [number, number] {
  return [t.offset, t.offset + t.byteLength];
}

/** Whether two tensors share any byte. */
export function overlaps(a: Tensor, b: Tensor): boolean {
  if (a.heap !== b.heap || a.byteLength === 0 || b.byteLength === 0) return false;
  const [a0, a1] = byteRange(a);
  const [b0, b1] = byteRange(b);
  return a0 < b1 && b0 < a1;
}

/** out must not share bytes with `other`; unless `mayAlias`, in which case exactly the same bytes are fine. */
export function expectNoOverlap(k: string, outName: string, out: Tensor, name: string, other: Tensor | null | undefined, mayAlias = false): void {
  if (!other || !overlaps(out, other)) return;
  if (mayAlias && out.offset === other.offset && out.byteLength === other.byteLength) return;
  fail(k, `${outName} (bytes ${out.offset}..${out.offset + out.byteLength}) overlaps ${name} (bytes ${other.offset}..${other.offset + other.byteLength})${mayAlias ? '; it may only be the very same tensor' : ''}`);
}

export interface GemmDims {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
}

/** gemm: out [M, N] = alpha · op(a) [M, K] · op(b) [K, N] + beta · out; leading dims fold into rows. */
export function checkGemm(out: Tensor, a: Tensor, b: Tensor, p: GemmParams = {}): GemmDims {
  const k = 'gemm';
  expectF32(k, ['out', out], ['a', a], ['b', b]);
  const transA = p.transA ?? false;
  const transB = p.transB ?? false;
  const alpha = p.alpha ?? 1;
  const beta = p.beta ?? 0;
  expectNumber(k, 'alpha', alpha, 'finite');
  expectNumber(k, 'beta', beta, 'finite');
  const [M, K] = transA ? [a.cols, a.rows] : [a.rows, a.cols];
  const [Kb, N] = transB ? [b.cols, b.rows] : [b.rows, b.cols];
  if (Kb !== K) {
    fail(k, `op(a) is [${M}, ${K}] but op(b) is [${Kb}, ${N}] (a [${a.shape.join(', ')}]${transA ? 'ᵀ' : ''}, b [${b.shape.join(', ')}]${transB ? 'ᵀ' : ''}): inner dimensions differ`);
  }
  if (out.rows !== M || out.cols !== N) fail(k, `out has shape [${out.shape.join(', ')}], expected [${M}, ${N}]`);
  expectSameHeap(k, out, a, b);
  expectNoOverlap(k, 'out', out, 'a', a);
  expectNoOverlap(k, 'out', out, 'b', b);
  return { M, N, K, transA, transB, alpha, beta };
}

/** rmsNormBackward: dx, dy, x [R, C] F32; weight, dweight [C]. dx may be dy. Returns [R, C]. */
export function checkRmsNormBackward(dx: Tensor, dy: Tensor, x: Tensor, weight: Tensor | null, eps: number, dweight: Tensor | null): [number, number] {
  const k = 'rmsNormBackward';
  expectF32(k, ['dx', dx], ['dy', dy], ['x', x]);
  expectLike(k, 'dy', dy, x);
  expectLike(k, 'dx', dx, x);
  const C = x.cols;
  if (weight) expectRowVector(k, 'weight', weight, C);
  if (dweight) expectRowVector(k, 'dweight', dweight, C);
  expectNumber(k, 'eps', eps, 'nonneg');
  expectSameHeap(k, dx, dy, x, weight, dweight);
  expectNoOverlap(k, 'dx', dx, 'dy', dy, true);
  expectNoOverlap(k, 'dx', dx, 'x', x);
  expectNoOverlap(k, 'dx', dx, 'weight', weight);
  expectNoOverlap(k, 'dx', dx, 'dweight', dweight);
  if (dweight) {
    for (const [n, t] of [['dy', dy], ['x', x], ['weight', weight]] as const) expectNoOverlap(k, 'dweight', dweight, n, t);
  }
  return [x.rows, C];
}

/** swigluBackward: every tensor F32 of gate's shape; dgate may be dout. Returns the element count. */
export function checkSwigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor): number {
  const k = 'swigluBackward';
  expectF32(k, ['dgate', dgate], ['dup', dup], ['dout', dout], ['gate', gate], ['up', up]);
  for (const [n, t] of [['up', up], ['dout', dout], ['dgate', dgate], ['dup', dup]] as const) expectLike(k, n, t, gate);
  expectSameHeap(k, dgate, dup, dout, gate, up);
  expectNoOverlap(k, 'dgate', dgate, 'dout', dout, true);
  expectNoOverlap(k, 'dgate', dgate, 'dup', dup);
  for (const [n, t] of [['gate', gate], ['up', up]] as const) {
    expectNoOverlap(k, 'dgate', dgate, n, t);
    expectNoOverlap(k, 'dup', dup, n, t);
  }
  expectNoOverlap(k, 'dup', dup, 'dout', dout);
  return gate.numel;
}

/** attentionBackward: as attention with F32 k, v and no sinks; dq, dk, dv shaped as q, k, v. */
export function checkAttentionBackward(dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): AttentionDims {
  const kn = 'attentionBackward';
  if (p.sinks) fail(kn, 'attention sinks are not supported in training (p.sinks must be unset)');
  expectF32(kn, ['dq', dq], ['dk', dk], ['dv', dv], ['dout', dout], ['k', k], ['v', v]);
  let d: AttentionDims;
  try {
    d = checkAttention(dout, q, k, v, p);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(e.message.replace(/^attention: out /, `${kn}: dout `).replace(/^attention:/, `${kn}:`));
    throw e;
  }
  expectLike(kn, 'dq', dq, q);
  expectLike(kn, 'dk', dk, k);
  expectLike(kn, 'dv', dv, v);
  expectSameHeap(kn, dq, dk, dv, dout, q, k, v);
  const outs = [['dq', dq], ['dk', dk], ['dv', dv]] as const;
  const ins = [['dout', dout], ['q', q], ['k', k], ['v', v]] as const;
  for (const [on, o] of outs) for (const [n, t] of ins) expectNoOverlap(kn, on, o, n, t);
  expectNoOverlap(kn, 'dq', dq, 'dk', dk);
  expectNoOverlap(kn, 'dq', dq, 'dv', dv);
  expectNoOverlap(kn, 'dk', dk, 'dv', dv);
  return d;
}

/** crossEntropy: logits [T, V] F32, targets [T] I32 (< V), loss [T], dlogits like logits (may alias). Returns [T, V]. */
export function checkCrossEntropy(loss: Tensor, dlogits: Tensor, logits: Tensor, targets: Tensor, gradScale: number): [number, number] {
  const k = 'crossEntropy';
  expectF32(k, ['loss', loss], ['dlogits', dlogits], ['logits', logits]);
  expectType(k, 'targets', targets, GGMLType.I32);
  if (logits.shape.length !== 2) fail(k, `logits must be 2-D [T, V], got [${logits.shape.join(', ')}]`);
  const [T, V] = logits.shape;
  expectShape(k, 'targets', targets, [T]);
  expectShape(k, 'loss', loss, [T]);
  expectLike(k, 'dlogits', dlogits, logits);
  expectNumber(k, 'gradScale', gradScale, 'finite');
  expectSameHeap(k, loss, dlogits, logits, targets);
  expectNoOverlap(k, 'dlogits', dlogits, 'logits', logits, true);
  expectNoOverlap(k, 'dlogits', dlogits, 'targets', targets);
  expectNoOverlap(k, 'dlogits', dlogits, 'loss', loss);
  expectNoOverlap(k, 'loss', loss, 'logits', logits);
  expectNoOverlap(k, 'loss', loss, 'targets', targets);
  const tg = targets.i32();
  for (let t = 0; t < T; t++) {
    if (tg[t] >= V) fail(k, `targets[${t}] = ${tg[t]} is outside the vocabulary [0, ${V}) (negative = ignored)`);
  }
  return [T, V];
}

/** scatterAddRows: out [N, C], x [T, C], ids [T] I32 (< N; negative = skip), weights [T] or null. Returns [T, C, N]. */
export function checkScatterAddRows(out: Tensor, x: Tensor, ids: Tensor, weights: Tensor | null): [number, number, number] {
  const k = 'scatterAddRows';
  expectF32(k, ['out', out], ['x', x]);
  expectType(k, 'ids', ids, GGMLType.I32);
  if (out.shape.length !== 2) fail(k, `out must be 2-D [N, C], got [${out.shape.join(', ')}]`);
  if (x.shape.length !== 2) fail(k, `x must be 2-D [T, C], got [${x.shape.join(', ')}]`);
  const [N, C] = out.shape;
  const T = x.shape[0];
  expectShape(k, 'x', x, [T, C]);
  expectShape(k, 'ids', ids, [T]);
  if (weights) {
    expectF32(k, ['weights', weights]);
    expectShape(k, 'weights', weights, [T]);
  }
  expectSameHeap(k, out, x, ids, weights);
  expectNoOverlap(k, 'out', out, 'x', x);
  expectNoOverlap(k, 'out', out, 'ids', ids);
  expectNoOverlap(k, 'out', out, 'weights', weights);
  const id = ids.i32();
  for (let t = 0; t < T; t++) {
    if (id[t] >= N) fail(k, `ids[${t}] = ${id[t]} is outside out's ${N} rows [0, ${N}) (negative = skip)`);
  }
  return [T, C, N];
}

/** rowDot: a, b [R, C] F32, out [R]. Returns [R, C]. */
export function checkRowDot(out: Tensor, a: Tensor, b: Tensor): [number, number] {
  const k = 'rowDot';
  expectF32(k, ['out', out], ['a', a], ['b', b]);
  expectLike(k, 'b', b, a);
  const [R, C] = [a.rows, a.cols];
  if (out.numel !== R || out.cols !== R) fail(k, `out has shape [${out.shape.join(', ')}], expected [${R}] (one value per row of a)`);
  expectSameHeap(k, out, a, b);
  expectNoOverlap(k, 'out', out, 'a', a);
  expectNoOverlap(k, 'out', out, 'b', b);
  return [R, C];
}

/** scaleRows: x [R, C] F32, s [R], out like x (may be x). Returns [R, C]. */
export function checkScaleRows(out: Tensor, x: Tensor, s: Tensor): [number, number] {
  const k = 'scaleRows';
  expectF32(k, ['out', out], ['x', x], ['s', s]);
  expectLike(k, 'out', out, x);
  const [R, C] = [x.rows, x.cols];
  if (s.numel !== R || s.cols !== R) fail(k, `s has shape [${s.shape.join(', ')}], expected [${R}] (one scale per row of x)`);
  expectSameHeap(k, out, x, s);
  expectNoOverlap(k, 'out', out, 'x', x, true);
  expectNoOverlap(k, 'out', out, 's', s);
  return [R, C];
}

/** adamw: param, grad, m, v F32 with one element count, pairwise disjoint; finite hyper-parameters. Returns the count. */
export function checkAdamW(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): number {
  const k = 'adamw';
  expectF32(k, ['param', param], ['grad', grad], ['m', m], ['v', v]);
  const n = param.numel;
  expectNumel(k, 'grad', grad, n);
  expectNumel(k, 'm', m, n);
  expectNumel(k, 'v', v, n);
  expectSameHeap(k, param, grad, m, v);
  const ts = [['param', param], ['grad', grad], ['m', m], ['v', v]] as const;
  for (let i = 0; i < ts.length; i++) for (let j = i + 1; j < ts.length; j++) expectNoOverlap(k, ts[i][0], ts[i][1], ts[j][0], ts[j][1]);
  for (const f of ['lr', 'eps', 'weightDecay'] as const) expectNumber(k, f, p[f], 'nonneg');
  for (const f of ['beta1', 'beta2'] as const) {
    if (!(p[f] >= 0 && p[f] < 1)) fail(k, `${f} must be in [0, 1), got ${p[f]}`);
  }
  if (!Number.isInteger(p.step) || p.step < 1) fail(k, `step must be an integer >= 1, got ${p.step}`);
  return n;
}

/** sumSquares: x F32 (any shape). Returns the element count. */
export function checkSumSquares(x: Tensor): number {
  expectF32('sumSquares', ['x', x]);
  return x.numel;
}
