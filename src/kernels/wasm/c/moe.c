// The fused routed-expert layer (the MoE hot path) in one dispatch:
//   out[t] = sum_k weights[t, k] * down_e(act(gate_e x[t] + bg, up_e x[t] + bu)) + bd),
//   e = ids[t, k], the k terms added in slot order k = 0, 1, ... in float32.
// Reference: llama.cpp build_moe_ffn (mul_mat_id for gate/up/down, add_id for the biases,
// the activation, ggml_mul by the weights, then the K expert outputs summed in order) and
// ggml-cpu ggml_compute_forward_mul_mat_id; the activations are sy_math.h's (ggml-cpu
// vec.h/ops.cpp ggml_silu_f32, ggml_gelu_f32 without the F16 table, swiglu_oai). The
// reference twin is src/kernels/ref/moe.ts: for integer-dot weight types it gives the same bits.
//
// Phases, separated by barriers only (no per-expert synchronisation):
//   1. x rows -> the gate (and up) dot format, once for all experts;
//   2. work items (expert, gate/up row) spread over threads by cost: h[slot, f] =
//      act(gate row f . x[t], up row f . x[t]) for every slot (t, k) routed to the expert
//      (up to SY_DOT_N of them per vec_dot_n call, so each weight block is unpacked once);
//   3. h rows -> the down dot format;
//   4. each thread owns a range of output columns d, done in tiles: for every expert, the
//      tile's down rows meet every routed h row (SY_DOT_N at a time); then per column and
//      token the K values are weighted and summed in order.
#include "types.h"
#include "sy_math.h"

enum { ACT_SILU = 0, ACT_GELU = 1, ACT_SWIGLU_OAI = 2 };

// The gated activation of one element; g and u already include their biases. The element
// functions are sy_math.h's, so each equals the element-wise op (op_swiglu, op_gelu times
// up, op_swiglu_oai) bit for bit.
SY_INLINE float activate(int kind, float g, float u, float alpha, float limit) {
  if (kind == ACT_SILU) return sy_swigluf(g, u);
  if (kind == ACT_GELU) return sy_geluf(g) * u;
  return sy_swiglu_oaif(g, u, alpha, limit);
}

// One row of the expert table the JS side writes (int32 words; pointers are byte offsets).
typedef struct {
  const uint8_t *gate, *up, *down;
  const float *gate_bias, *up_bias, *down_bias;  // 0 = none
  int32_t pair_start, pair_count;                // into the pair list
} expert_entry;

// args: 0 out f32 [T, D], 1 x f32 [T, D], 2 ids i32 [T, K], 3 weights f32 [T, K],
//       4 expert table (U entries of 8 int32: gate, up, down, gate bias, up bias, down bias,
//         first pair, pair count), 5 U, 6 pairs i32 (slot t*K + k, grouped by expert,
//         ascending slots), 7 xg: x in the gate dot format [T rows] (== x when that is F32),
//       8 xu: x in the up dot format (== xg when gate and up share it), 9 h f32 [T*K, F],
//       10 hq: h in the down dot format [T*K rows] (== h when that is F32),
//       11 vals f32 [nth, T*K], 12 T, 13 K, 14 D, 15 F, 16 gate type, 17 up type,
//       18 down type, 19 activation (0 silu, 1 gelu, 2 swiglu_oai), 20 alpha (f32), 21 limit (f32)
SY_KERNEL(expert_group) {
  float *out = ARG_P(float, 0);
  const float *x = ARG_P(const float, 1);
  const int32_t *ids = ARG_P(const int32_t, 2);
  const float *wts = ARG_P(const float, 3);
  const expert_entry *table = ARG_P(const expert_entry, 4);
  int U = ARG_I(5);
  const int32_t *pairs = ARG_P(const int32_t, 6);
  uint8_t *xg = ARG_P(uint8_t, 7), *xu = ARG_P(uint8_t, 8);
  float *h = ARG_P(float, 9);
  uint8_t *hq = ARG_P(uint8_t, 10);
  int T = ARG_I(12), K = ARG_I(13), D = ARG_I(14), F = ARG_I(15);
  float *vals = ARG_P(float, 11) + (size_t)ith * T * K;
  int32_t tg = ARG_I(16), tu = ARG_I(17), td = ARG_I(18), act = ARG_I(19);
  float alpha = ARG_F(20), limit = ARG_F(21);
  const sy_type_traits *trg = sy_traits(tg), *tru = sy_traits(tu), *trd = sy_traits(td);

  // Phase 1: x -> dot formats (nothing to do for F32 weights: xg points at x).
  if (xg != (const uint8_t *)x) sy_quantize_rows(ith, nth, trg->dot_type, x, xg, T, D);
  if (xu != xg && xu != (const uint8_t *)x) sy_quantize_rows(ith, nth, tru->dot_type, x, xu, T, D);
  sy_barrier(ith, nth);

  // Phase 2: a row of expert u costs (routed tokens + 1) units (the +1 for streaming the
  // two weight rows); thread ith takes the rows whose first unit falls in its equal share.
  int32_t gbytes = sy_row_bytes(tg, D), ubytes = sy_row_bytes(tu, D);
  int32_t qg = sy_dot_row_bytes(trg->dot_type, D), qu = sy_dot_row_bytes(tru->dot_type, D);
  int64_t total = 0;
  for (int u = 0; u < U; u++) total += (int64_t)F * (table[u].pair_count + 1);
  int64_t lo = total * ith / nth, hi = total * (ith + 1) / nth, acc = 0;
  for (int u = 0; u < U && acc < hi; u++) {
    const expert_entry *e = &table[u];
    int64_t c = e->pair_count + 1, span = (int64_t)F * c;
    if (acc + span > lo && e->pair_count > 0) {
      int64_t r0 = lo > acc ? (lo - acc + c - 1) / c : 0;
      int64_t r1 = (hi - acc + c - 1) / c;
      if (r1 > F) r1 = F;
      const int32_t *pl = pairs + e->pair_start;
      for (int f = (int)r0; f < (int)r1; f++) {
        const uint8_t *grow = e->gate + (size_t)f * gbytes, *urow = e->up + (size_t)f * ubytes;
        // The expert's tokens SY_DOT_N at a time: each row's blocks are unpacked once for them.
        for (int i0 = 0; i0 < e->pair_count; i0 += SY_DOT_N) {
          int count = e->pair_count - i0 < SY_DOT_N ? e->pair_count - i0 : SY_DOT_N;
          const uint8_t *xgr[SY_DOT_N], *xur[SY_DOT_N];
          float g[SY_DOT_N], v[SY_DOT_N];
          for (int j = 0; j < count; j++) {
            int t = pl[i0 + j] / K;
            xgr[j] = xg + (size_t)t * qg;
            xur[j] = xu + (size_t)t * qu;
          }
          sy_dot_rows(trg, D, grow, xgr, count, g);
          sy_dot_rows(tru, D, urow, xur, count, v);
          for (int j = 0; j < count; j++) {
            if (e->gate_bias) g[j] = g[j] + e->gate_bias[f];
            if (e->up_bias) v[j] = v[j] + e->up_bias[f];
            h[(size_t)pl[i0 + j] * F + f] = activate(act, g[j], v[j], alpha, limit);
          }
        }
      }
    }
    acc += span;
  }
  sy_barrier(ith, nth);

  // Phase 3: h rows of routed slots -> the down dot format.
  int32_t qd = sy_dot_row_bytes(trd->dot_type, F);
  if (hq != (uint8_t *)h) {
    sy_quantize_fn quant = sy_quantizer(trd->dot_type);
    int s0, s1;
    sy_range(T * K, ith, nth, &s0, &s1);
    for (int s = s0; s < s1; s++) {
      if (ids[s] >= 0) quant(h + (size_t)s * F, hq + (size_t)s * qd, F);
    }
  }
  sy_barrier(ith, nth);

  // Phase 4: output columns [d0, d1) of every token; no two threads write the same element.
  // Columns go in tiles: an expert's routed hq rows stay in cache while they meet the down
  // rows of the tile's columns (column by column, the hq rows of every expert would be read
  // again for each column). A tile's values [tile, T*K] go to h, free once phase 3 has
  // converted it (each thread its own part); with F32 down weights h is hq, and a tile is one
  // column, in vals. The values and their weighted sums are the same in either order.
  int32_t dbytes = sy_row_bytes(td, F);
  int TK = T * K;
  int tile = 1;
  float *tv = vals;
  if (hq != (uint8_t *)h && F >= nth) {
    tile = F / nth < 64 ? F / nth : 64;
    tv = h + (size_t)ith * tile * TK;
  }
  int d0, d1;
  sy_range(D, ith, nth, &d0, &d1);
  for (int dt = d0; dt < d1; dt += tile) {
    int nd = d1 - dt < tile ? d1 - dt : tile;
    for (int u = 0; u < U; u++) {
      const expert_entry *e = &table[u];
      const int32_t *pl = pairs + e->pair_start;
      for (int dd = 0; dd < nd; dd++) {
        const uint8_t *drow = e->down + (size_t)(dt + dd) * dbytes;
        float *vd = tv + (size_t)dd * TK;
        for (int i0 = 0; i0 < e->pair_count; i0 += SY_DOT_N) {
          int count = e->pair_count - i0 < SY_DOT_N ? e->pair_count - i0 : SY_DOT_N;
          const uint8_t *hr[SY_DOT_N];
          float v[SY_DOT_N];
          for (int j = 0; j < count; j++) hr[j] = hq + (size_t)pl[i0 + j] * qd;
          sy_dot_rows(trd, F, drow, hr, count, v);
          for (int j = 0; j < count; j++) {
            if (e->down_bias) v[j] = v[j] + e->down_bias[dt + dd];
            vd[pl[i0 + j]] = v[j];
          }
        }
      }
    }
    for (int dd = 0; dd < nd; dd++) {
      const float *vd = tv + (size_t)dd * TK;
      for (int t = 0; t < T; t++) {
        float sum = 0.0f;
        for (int k = 0; k < K; k++) {
          int slot = t * K + k;
          if (ids[slot] >= 0) sum = sum + wts[slot] * vd[slot];
        }
        out[(size_t)t * D + dt + dd] = sum;
      }
    }
  }
}
