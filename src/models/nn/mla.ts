/**
 * Multi-head latent attention (MLA), DeepSeek-V2/V3, in llama.cpp's "absorbed" form: the KV
 * cache holds one latent row per position, [c, k_pe] (kv_lora + rope floats, one KV head), and
 * the per-head key/value up-projections are folded into the query and the output instead.
 * Reference: llama.cpp src/models/deepseek2.cpp (the `is_mla` branch), build_attn_mha in
 * src/llama-graph.cpp (`v_mla`), YaRN constants in src/llama-context.cpp; DeepSeek-AI,
 * "DeepSeek-V2" (2024) §2.1.
 *
 * Per token (L = kv_lora, R = rope dims, N = nope dims = Dk - R, Dv = v head dim):
 *   q          = W_q x  |  W_qb rmsnorm(W_qa x)                         [H, N + R]
 *   c, k_pe    = W_kva x (rows [0, L) and [L, L + R));  c = rmsnorm(c)   [L], [R] (shared by all heads)
 *   q_pe, k_pe = rope(q_pe), rope(k_pe)                                   NORM + YaRN, rope parts only
 *   k_nope_h(j) = c_j Kb_h, so  q_nope_h · k_nope_h(j) = (Kb_h q_nope_h) · c_j   (the absorbed query, [L])
 *   score_h(j) = (Kb_h q_nope_h) · c_j + q_pe_h · k_pe_j
 *   o_h        = Vb_h Σ_j softmax(scale · score_h)_j c_j                  [Dv]
 *   out        = W_o [o_1 .. o_H]
 * with Kb = attn_k_b [H, L, N] and Vb = attn_v_b [H, Dv, L] (GGUF ne reversed). So attention
 * itself is multi-query attention with keys [c, k_pe] and values c, one cache row per position.
 *
 * The kernels have no strided views, so the head-major <-> token-major moves and the column
 * splits/concatenations are exact copies through `getRows` on F32 pieces (`assemble`).
 */
import { i32Tensor, type Tensor } from '../../core/tensor.js';
import { GGUFMetadataError } from '../../formats/gguf/index.js';
import type { ModelConfig } from '../config.js';
import { ModelWeights } from '../weights.js';
import { dense, matmulInto, newF32, ropeParams, rmsNorm, type Step, yarnAttnFactor } from './layers.js';

const f = Math.fround;
const logf = (x: number): number => f(Math.log(x));


/**
 * The score scale of deepseek2.cpp:
 *   attn_factor_org = attn_factor * (1.0f + 0.1f * logf(1.0f / freq_scale));
 *   mscale   = attn_factor_org * (1.0f + 0.1f * hparams.rope_yarn_log_mul * logf(1.0f / freq_scale));
 *   kq_scale = 1.0f * mscale * mscale / sqrtf(float(n_embd_head_k));   (n_embd_head_k = key_length_mla)
 */
export function mlaScoreScale(c: ModelConfig): number {
  const mla = c.mla as NonNullable<ModelConfig['mla']>;
  const freqScale = f(ropeParams(c).freqScale ?? 1); // cparams.rope_freq_scale
  const lnInv = logf(f(1 / freqScale));
  const org = f(yarnAttnFactor(c) * f(1 + f(f(0.1) * lnInv)));
  const mscale = f(org * f(1 + f(f(f(0.1) * c.rope.yarnLogMultiplier) * lnInv)));
  return f(f(mscale * mscale) / f(Math.sqrt(mla.keyLength)));
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** One column block of every output row: `width` floats read at float offset `at(row)` of the source. */
interface Part {
  readonly width: number;
  readonly at: (row: number) => number;
}

/**
 * out [N, Σ widths] = for each row n the parts' blocks side by side, copied from `src` (any
 * F32 tensor, read as a flat array). One getRows over pieces of g floats, g the gcd of every
 * width and offset, so the copy is exact; it replaces strided views the kernels do not have.
 */
function assemble(s: Step, out: Tensor, src: Tensor, parts: readonly Part[]): void {
  const N = out.rows;
  let g = 0;
  for (const p of parts) {
    g = gcd(g, p.width);
    for (let n = 0; n < N && g > 1; n++) g = gcd(g, p.at(n));
  }
  const ids = i32Tensor(s.arena, [out.numel / g]);
  const id = ids.i32();
  let k = 0;
  for (let n = 0; n < N; n++) {
    for (const p of parts) for (let i = 0, o = p.at(n) / g; i < p.width / g; i++) id[k++] = o + i;
  }
  const table = span(src, 0, [Math.floor(src.numel / g), g]); // every block lies in whole pieces
  s.backend.getRows(out.reshape([out.numel / g, g]), table, ids);
}

/** Floats [start, start + count) of t, shaped `shape`. */
function span(t: Tensor, start: number, shape: readonly number[]): Tensor {
  return t.reshape([t.numel]).slice(start, shape.reduce((a, b) => a * b, 1)).reshape(shape);
}

/** x [A, B, C] -> [B, A, C] (tokens <-> heads); a reshape when A or B is 1 (one-token decode). */
function swapOuter(s: Step, x: Tensor): Tensor {
  const [A, B, C] = x.shape as [number, number, number];
  if (A === 1 || B === 1) return x.reshape([B, A, C]);
  const y = newF32(s, [B, A, C]);
  assemble(s, y.reshape([B * A, C]), x, [{ width: C, at: (n) => ((n % A) * B + Math.floor(n / A)) * C }]);
  return y;
}

/** Checks that the KV cache has the absorbed MLA shape llama.cpp's deepseek2 metadata describes. */
function checkCacheShape(s: Step, il: number, L: number, R: number): void {
  const a = s.config.attention;
  const key = (name: string) => `deepseek2.attention.${name}`;
  if (a.headCountKV[il] !== 1) {
    throw new GGUFMetadataError(s.weights.file, key('head_count_kv'), `is ${a.headCountKV[il]}; MLA caches one latent head (1)`);
  }
  if (a.keyLength !== L + R || a.valueLength !== L) {
    throw new GGUFMetadataError(
      s.weights.file,
      key('key_length'),
      `is ${a.keyLength} (value_length ${a.valueLength}); the MLA cache row is [c, k_pe]: key_length = kv_lora_rank + ` +
        `rope.dimension_count = ${L + R}, value_length = kv_lora_rank = ${L} (older GGUFs with attn_kv_b need re-conversion)`,
    );
  }
}

/** MLA self-attention of block il on x [T, D] -> [T, D]; writes this step's [c, k_pe] rows into the cache. */
export function mlaAttention(s: Step, il: number, x: Tensor): Tensor {
  const c = s.config;
  const mla = c.mla;
  if (!mla) throw new Error('mlaAttention: the model has no MLA configuration');
  const { T, backend, weights } = s;
  const H = c.attention.headCount[il] as number;
  const Dk = mla.keyLength; // N + R
  const N = mla.nopeLength;
  const R = c.rope.dimensionCount;
  const L = mla.kvLoraRank;
  const Dv = mla.valueLength;
  const p = `blk.${il}.`;
  checkCacheShape(s, il, L, R);

  // q: plain (V2-Lite, q_lora_rank 0) or low-rank with a norm (V2, V3).
  const q = (
    mla.qLoraRank > 0 ? dense(s, rmsNorm(s, dense(s, x, `${p}attn_q_a`), `${p}attn_q_a_norm`), `${p}attn_q_b`) : dense(s, x, `${p}attn_q`)
  ).reshape([T, H, Dk]); // [T, H, N + R]

  // Staging: q_nope head-major [H, T, N]; then [q_absorbed [H, T, L] | q_pe [T, H, R]] side by side.
  const qNope = newF32(s, [H, T, N]);
  assemble(s, qNope.reshape([H * T, N]), q, [{ width: N, at: (n) => ((n % T) * H + Math.floor(n / T)) * Dk }]);
  const stage = newF32(s, [H * T * L + T * H * R]);
  const qAbs = span(stage, 0, [H, T, L]);
  const qPe = span(stage, H * T * L, [T, H, R]);
  assemble(s, qPe.reshape([T * H, R]), q, [{ width: R, at: (n) => n * Dk + N }]);

  // The latent c and the shared k_pe: row blocks of attn_kv_a_mqa [L + R, D] (the same dot products).
  const wkv = weights.get(`${p}attn_kv_a_mqa.weight`, [L + R, x.cols]);
  const kv = newF32(s, [T * L + T * R]);
  const latent = span(kv, 0, [T, L]);
  const kPe = span(kv, T * L, [T, 1, R]);
  matmulInto(s, latent, wkv.slice(0, L), x);
  matmulInto(s, kPe.reshape([T, R]), wkv.slice(L, R), x);
  backend.rmsNorm(latent, latent, weights.get(`${p}attn_kv_a_norm.weight`, [L]), c.normEpsilon);

  // RoPE NORM on the rope parts only; cos/sin scaled by llama.cpp's yarn_attn_factor (net 1).
  const rope = ropeParams(c);
  backend.rope(qPe, qPe, s.positions, rope);
  backend.rope(kPe, kPe, s.positions, rope);

  // Absorb Kb into the query: q_abs_h = Kb_h q_nope_h ([L, N] · [N]) for every token.
  const kb = weights.get(`${p}attn_k_b.weight`, [H, L, N]);
  for (let h = 0; h < H; h++) matmulInto(s, qAbs.slice(h, 1).reshape([T, L]), ModelWeights.expertView(kb, h), qNope.slice(h, 1).reshape([T, N]));

  // Q = [q_abs, q_pe] per head (llama.cpp: ggml_concat(q_nope_absorbed, q_pe)); cache rows = [c, k_pe], c.
  const Q = newF32(s, [T, H, L + R]);
  assemble(s, Q.reshape([T * H, L + R]), stage, [
    { width: L, at: (n) => ((n % H) * T + Math.floor(n / H)) * L },
    { width: R, at: (n) => H * T * L + n * R },
  ]);
  const rows = s.cache.staging(s.arena, il, s.pos, T); // F32 k [T, 1, L + R], v [T, 1, L]
  assemble(s, rows.k.reshape([T, L + R]), kv, [
    { width: L, at: (t) => t * L },
    { width: R, at: (t) => T * L + t * R },
  ]);
  assemble(s, rows.v.reshape([T, L]), kv, [{ width: L, at: (t) => t * L }]);
  s.cache.write(backend, il, s.pos, rows); // an F16 cache rounds them (ggml_set_rows)

  // Multi-query attention over the latent rows: o [T, H, L].
  const cached = s.cache.upTo(il, s.pos + T);
  const o = newF32(s, [T, H, L]);
  backend.attention(o, Q, cached.k, cached.v, { scale: mlaScoreScale(c), qPos0: s.pos });

  // Decompress per head: o_h = Vb_h o_h ([Dv, L] · [L]), then back to token-major [T, H·Dv].
  const vb = weights.get(`${p}attn_v_b.weight`, [H, Dv, L]);
  const oHeads = swapOuter(s, o); // [H, T, L]
  const ov = newF32(s, [H, T, Dv]);
  for (let h = 0; h < H; h++) matmulInto(s, ov.slice(h, 1).reshape([T, Dv]), ModelWeights.expertView(vb, h), oHeads.slice(h, 1).reshape([T, L]));
  const out = swapOuter(s, ov).reshape([T, H * Dv]); // [T, H·Dv]
  return dense(s, out, `${p}attn_output`); // [T, D]
}
