/**
 * Wasm wrapper of src/kernels/wasm/c/attention.c: queries against a KV cache (see
 * backend.ts `attention`). Validation is checkAttention (src/kernels/check.ts), shared with
 * the reference twin (src/kernels/ref/attention.ts), so both backends reject the same arguments.
 */
import type { Tensor } from '../../core/tensor.js';
import type { AttentionParams } from '../backend.js';
import { checkAttention } from '../check.js';
import type { WasmContext } from './context.js';

const up4 = (n: number): number => (n + 3) & ~3;

export function attention(c: WasmContext, out: Tensor, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): void {
  const { T, H, Hkv, Dk, Dv, S, qPos0, window, softcap } = checkAttention(out, q, k, v, p);
  if (T === 0) return;
  // Multiply-adds of the call, roughly (every query against its visible keys).
  const keys = window > 0 ? Math.min(window, qPos0 + T) : qPos0 + T;
  const nth = Math.min(c.threadsFor(T * H * keys * (Dk + Dv), 32 * 1024), T * H);
  // Heads sharing a KV head are processed in runs of up to R (each K/V block is read once
  // per run); per thread R rows of S floats (scores) and R rows of Dk floats (q in F16).
  const R = Math.min(H / Hkv, 8);
  const perThread = R * (up4(S) + up4(Dk));
  const scratch = c.scratch(nth * perThread * 4);
  c.run(
    'attention',
    [out.offset, q.offset, k.offset, v.offset, p.sinks?.offset ?? 0, scratch, perThread, T, H, Hkv, Dk, Dv, S, qPos0, window, k.type, v.type, 0, 0, R],
    { 17: p.scale, 18: softcap },
    nth,
  );
}
