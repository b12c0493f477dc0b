// The type table: which functions serve each GGML type (see types.h).
#include "types.h"

#define T(id, be, bb, dot, name) [id] = {be, bb, dot, sy_dequant_##name, sy_vec_dot_##name, 0}
// Types with a multi-row dot product.
#define TN(id, be, bb, dot, name) \
  [id] = {be, bb, dot, sy_dequant_##name, sy_vec_dot_##name, sy_vec_dot_n_##name}
static const sy_type_traits traits[SY_TYPE_COUNT] = {
    T(SY_F32, 1, 4, SY_F32, f32),
    TN(SY_F16, 1, 2, SY_F16, f16),
    T(SY_BF16, 1, 2, SY_BF16, bf16),
    TN(SY_Q4_0, 32, 18, SY_Q8_0, q4_0),
    TN(SY_Q4_1, 32, 20, SY_Q8_1, q4_1),
    TN(SY_Q5_0, 32, 22, SY_Q8_0, q5_0),
    TN(SY_Q5_1, 32, 24, SY_Q8_1, q5_1),
    TN(SY_Q8_0, 32, 34, SY_Q8_0, q8_0),
    TN(SY_IQ4_NL, 32, 18, SY_Q8_0, iq4_nl),
    TN(SY_MXFP4, 32, 17, SY_Q8_0, mxfp4),
    T(SY_Q2_K, 256, 84, SY_Q8_K, q2_k),
    T(SY_Q3_K, 256, 110, SY_Q8_K, q3_k),
    TN(SY_Q4_K, 256, 144, SY_Q8_K, q4_k),
    TN(SY_Q5_K, 256, 176, SY_Q8_K, q5_k),
    TN(SY_Q6_K, 256, 210, SY_Q8_K, q6_k),
    T(SY_IQ4_XS, 256, 136, SY_Q8_K, iq4_xs),
    T(SY_TQ1_0, 256, 54, SY_Q8_K, tq1_0),
    T(SY_TQ2_0, 256, 66, SY_Q8_K, tq2_0),
};
#undef T
#undef TN

const sy_type_traits *sy_traits(int32_t type) {
  if (type < 0 || type >= SY_TYPE_COUNT || traits[type].block_elems == 0) return 0;
  return &traits[type];
}

sy_quantize_fn sy_quantizer(int32_t dot_type) {
  switch (dot_type) {
    case SY_F32: return sy_quantize_f32;
    case SY_F16: return sy_quantize_f16;
    case SY_BF16: return sy_quantize_bf16;
    case SY_Q8_0: return sy_quantize_q8_0;
    case SY_Q8_1: return sy_quantize_q8_1;
    case SY_Q8_K: return sy_quantize_q8_k;
    default: return 0;
  }
}

static int32_t dot_block_elems(int32_t t) { return t == SY_Q8_K ? QK_K : (t == SY_Q8_0 || t == SY_Q8_1) ? QK8_0 : 1; }
static int32_t dot_block_bytes(int32_t t) {
  switch (t) {
    case SY_F32: return 4;
    case SY_F16: case SY_BF16: return 2;
    case SY_Q8_0: return Q8_0_BYTES;
    case SY_Q8_1: return Q8_1_BYTES;
    case SY_Q8_K: return Q8_K_BYTES;
    default: return 0;
  }
}

void sy_quantize_rows(int ith, int nth, int32_t dot_type, const float *x, uint8_t *q, int32_t rows, int32_t cols) {
  sy_quantize_fn quant = sy_quantizer(dot_type);
  int32_t qrow = sy_dot_row_bytes(dot_type, cols);
  int lo, hi;
  sy_range(rows, ith, nth, &lo, &hi);
  for (int r = lo; r < hi; r++) quant(x + (size_t)r * cols, q + (size_t)r * qrow, cols);
}

int32_t sy_dot_row_bytes(int32_t dot_type, int32_t n) {
  // F16/BF16 activations are kept as float32 values rounded to that precision (float.c).
  if (dot_type == SY_F32 || dot_type == SY_F16 || dot_type == SY_BF16) return 4 * n;
  // Q8_0 / Q8_1: ggml blocks, then the per-block float scales and sums (types.h).
  if (dot_type == SY_Q8_0 || dot_type == SY_Q8_1) {
    int32_t nb = n / QK8_0;
    return SY_Q8_SIDE(nb, dot_block_bytes(dot_type)) + 8 * SY_Q8_NB4(nb);
  }
  return n / dot_block_elems(dot_type) * dot_block_bytes(dot_type);
}

int32_t sy_row_bytes(int32_t type, int32_t n) {
  if (type == SY_Q8_1 || type == SY_Q8_K) return n / dot_block_elems(type) * dot_block_bytes(type);
  const sy_type_traits *t = sy_traits(type);
  return t ? n / t->block_elems * t->block_bytes : 0;
}

// For JS: block geometry of a type (0 = elements, 1 = bytes, 2 = dot type), -1 if unsupported.
// Lets a test check that this table and src/core/dtypes.ts agree.
SY_EXPORT(sy_type_info) int32_t sy_type_info(int32_t type, int32_t field) {
  if (type == SY_Q8_1 || type == SY_Q8_K) {
    return field == 0 ? dot_block_elems(type) : field == 1 ? dot_block_bytes(type) : type;
  }
  const sy_type_traits *t = sy_traits(type);
  if (!t) return -1;
  return field == 0 ? t->block_elems : field == 1 ? t->block_bytes : t->dot_type;
}
