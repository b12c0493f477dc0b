/**
 * Wasm wrapper of src/kernels/wasm/c/moe.c: one layer's routed experts in one kernel
 * dispatch (see backend.ts `expertGroup`). The JS side routes: it groups the (token, slot)
 * pairs by expert and writes, with per-expert weight pointers, a table the kernel walks.
 * Validation is checkExpertGroup (src/kernels/check.ts), shared with the reference twin
 * (src/kernels/ref/moe.ts).
 *
 * Scratch layout (byte offsets from the scratch base, each region 64-byte aligned):
 *   table  U × 8 int32   per selected expert, ascending id: gate, up, down, gate bias,
 *                        up bias, down bias (byte offsets, 0 = no bias), first pair, pairs
 *   pairs  P int32       slot indices t·K + k, grouped by expert, ascending within one
 *   xg     T rows        x in the gate dot format (absent when that is F32: x itself)
 *   xu     T rows        x in the up dot format (absent when it is the gate's, or F32)
 *   h      T·K × F f32   the activations of each slot (rows of skipped slots unused); once
 *                        converted to hq, the kernel reuses it for per-thread tiles of output values
 *   hq     T·K rows      h in the down dot format (absent when that is F32: h itself)
 *   vals   nth × T·K f32 per thread: one output column's expert values, before weighting
 *                        (used only when the down weights' dot format is F32)
 */
import { dotRowBytes, dtypeInfo, GGMLType } from '../../core/dtypes.js';
import type { ExpertGroupArgs, ExpertWeights } from '../backend.js';
import { checkExpertGroup } from '../check.js';
import type { WasmContext } from './context.js';

const ACTIVATIONS = { silu: 0, gelu: 1, swiglu_oai: 2 } as const;
const TABLE_WORDS = 8;
const align64 = (n: number): number => Math.ceil(n / 64) * 64;

export function expertGroup(c: WasmContext, args: ExpertGroupArgs): void {
  const { T, D, F, K, gateType, upType, downType, ids, used } = checkExpertGroup(args);
  const { out, x, experts, activation } = args;
  if (T === 0) return;
  if (used.length === 0) {
    out.f32().fill(0);
    return;
  }

  // Routing: the slots of each selected expert, in ascending slot order.
  const slotsOf = new Map<number, number[]>(used.map((e) => [e, []]));
  for (let s = 0; s < T * K; s++) if (ids[s] >= 0) slotsOf.get(ids[s])!.push(s);
  const P = [...slotsOf.values()].reduce((n, l) => n + l.length, 0);

  // Threads: about 64 KiB of weight streaming or dot products per thread at least.
  let work = 0;
  for (const e of used) {
    const ex = experts[e] as ExpertWeights;
    work += (ex.gate.byteLength + ex.up.byteLength + ex.down.byteLength) * (1 + slotsOf.get(e)!.length);
  }
  const nth = c.threadsFor(work, 64 * 1024);

  const isF32Dot = (t: number) => dtypeInfo(t).dotType === GGMLType.F32;
  const sameDot = dtypeInfo(gateType).dotType === dtypeInfo(upType).dotType;
  let size = 0;
  const region = (bytes: number): number => {
    const at = size;
    size += align64(bytes);
    return at;
  };
  const tableAt = region(used.length * TABLE_WORDS * 4);
  const pairsAt = region(P * 4);
  const xgAt = isF32Dot(gateType) ? -1 : region(T * dotRowBytes(gateType, D));
  const xuAt = isF32Dot(upType) || sameDot ? -1 : region(T * dotRowBytes(upType, D));
  const hAt = region(T * K * F * 4);
  const hqAt = isF32Dot(downType) ? -1 : region(T * K * dotRowBytes(downType, F));
  const valsAt = region(nth * T * K * 4);

  const base = c.scratch(size); // may grow the memory: make views after this
  const words = new Int32Array(c.heap.memory.buffer, base, (pairsAt + P * 4) / 4);
  let p = pairsAt / 4;
  used.forEach((e, u) => {
    const ex = experts[e] as ExpertWeights;
    const slots = slotsOf.get(e)!;
    words.set(
      [ex.gate.offset, ex.up.offset, ex.down.offset, ex.gateBias?.offset ?? 0, ex.upBias?.offset ?? 0, ex.downBias?.offset ?? 0, p - pairsAt / 4, slots.length],
      tableAt / 4 + u * TABLE_WORDS,
    );
    words.set(slots, p);
    p += slots.length;
  });

  const xg = xgAt < 0 ? x.offset : base + xgAt;
  const xu = isF32Dot(upType) ? x.offset : sameDot ? xg : base + xuAt;
  const h = base + hAt;
  const hq = hqAt < 0 ? h : base + hqAt;
  const alpha = activation.kind === 'swiglu_oai' ? activation.alpha : 0;
  const limit = activation.kind === 'swiglu_oai' ? activation.limit : 0;
  c.run(
    'expert_group',
    [out.offset, x.offset, args.ids.offset, args.weights.offset, base + tableAt, used.length, base + pairsAt, xg, xu, h, hq, base + valsAt, T, K, D, F, gateType, upType, downType, ACTIVATIONS[activation.kind]],
    { 20: alpha, 21: limit },
    nth,
  );
}
