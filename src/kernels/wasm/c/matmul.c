// Matrix-vector and matrix-matrix products for every weight type, plus row
// dequantization and activation quantization as kernels of their own.
//
// out[t, r] = dot(W[r, :], x[t, :]) with W in any supported type: the activations
// are first converted to the weight type's dot format (types.h), once per call, then
// each thread takes a contiguous range of weight rows. A weight row stays in cache
// while it meets every token of the batch, SY_DOT_N tokens per vec_dot_n call (types.h),
// so its blocks are unpacked once per group. Reference: ggml-cpu ggml_compute_forward_mul_mat.
#include "types.h"

// args: 0 out f32 [T, R], 1 W [R, C] (type 5), 2 x f32 [T, C], 3 scratch, 4 R, 5 C, 6 T, 7 type,
//       8 out row stride in floats (0 = R)
SY_KERNEL(matmul) {
  float *out = ARG_P(float, 0);
  const uint8_t *w = ARG_P(const uint8_t, 1);
  const float *x = ARG_P(const float, 2);
  uint8_t *q = ARG_P(uint8_t, 3);
  int32_t rows = ARG_I(4), cols = ARG_I(5), tokens = ARG_I(6), type = ARG_I(7);
  int32_t ostride = ARG_I(8) ? ARG_I(8) : rows;
  const sy_type_traits *tt = sy_traits(type);
  sy_quantize_rows(ith, nth, tt->dot_type, x, q, tokens, cols);
  sy_barrier(ith, nth);
  int32_t wrow = sy_row_bytes(type, cols), qrow = sy_dot_row_bytes(tt->dot_type, cols);
  int lo, hi;
  sy_range(rows, ith, nth, &lo, &hi);
  if (tokens == 1) {  // decoding: one plain vec_dot per row (no row-pointer arrays)
    for (int r = lo; r < hi; r++) out[r] = tt->vec_dot(cols, w + (size_t)r * wrow, q);
    return;
  }
  for (int r = lo; r < hi; r++) {
    const uint8_t *wr = w + (size_t)r * wrow;
    // Up to SY_DOT_N tokens per call: the weight row's blocks are unpacked once for them.
    for (int t0 = 0; t0 < tokens; t0 += SY_DOT_N) {
      int count = tokens - t0 < SY_DOT_N ? tokens - t0 : SY_DOT_N;
      const uint8_t *xr[SY_DOT_N];
      float v[SY_DOT_N];
      for (int j = 0; j < count; j++) xr[j] = q + (size_t)(t0 + j) * qrow;
      sy_dot_rows(tt, cols, wr, xr, count, v);
      for (int j = 0; j < count; j++) out[(size_t)(t0 + j) * ostride + r] = v[j];
    }
  }
}

// args: 0 out f32 [R, C], 1 src [R, C] (type 2), 2 type, 3 R, 4 C
SY_KERNEL(dequantize) {
  float *out = ARG_P(float, 0);
  const uint8_t *src = ARG_P(const uint8_t, 1);
  int32_t type = ARG_I(2), rows = ARG_I(3), cols = ARG_I(4);
  const sy_type_traits *tt = sy_traits(type);
  int32_t rb = sy_row_bytes(type, cols);
  int lo, hi;
  sy_range(rows, ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) tt->dequant(src + (size_t)r * rb, out + (size_t)r * cols, cols);
}

// Convert rows of activations to a dot format (for tests and for callers that reuse them).
// args: 0 out bytes, 1 x f32 [T, C], 2 dot type, 3 T, 4 C
SY_KERNEL(quantize) {
  sy_quantize_rows(ith, nth, ARG_I(2), ARG_P(const float, 1), ARG_P(uint8_t, 0), ARG_I(3), ARG_I(4));
}

// One dot product of a weight row with pre-converted activations (for tests).
// args: 0 out f32 [1], 1 w row, 2 xq row, 3 type, 4 n
SY_KERNEL(vec_dot) {
  if (ith != 0) return;
  *ARG_P(float, 0) = sy_traits(ARG_I(3))->vec_dot(ARG_I(4), ARG_P(const uint8_t, 1), ARG_P(const uint8_t, 2));
}
