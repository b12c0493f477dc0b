// GGML tensor types as the kernels see them: block geometry, the activation format
// each weight type's dot product takes, and the per-type functions.
// Ids and layouts: ggml/include/ggml.h (enum ggml_type) and ggml-common.h (block_*).
#pragma once
#include "sy.h"

enum {
  SY_F32 = 0, SY_F16 = 1, SY_Q4_0 = 2, SY_Q4_1 = 3, SY_Q5_0 = 6, SY_Q5_1 = 7, SY_Q8_0 = 8,
  SY_Q8_1 = 9, SY_Q2_K = 10, SY_Q3_K = 11, SY_Q4_K = 12, SY_Q5_K = 13, SY_Q6_K = 14,
  SY_Q8_K = 15, SY_IQ4_NL = 20, SY_IQ4_XS = 23, SY_BF16 = 30, SY_TQ1_0 = 34, SY_TQ2_0 = 35,
  SY_MXFP4 = 39, SY_TYPE_COUNT = 40
};

// Activation block formats (ggml-common.h).
#define QK8_0 32
#define Q8_0_BYTES 34  // fp16 d, int8 qs[32]
#define Q8_1_BYTES 36  // fp16 d, fp16 s = d * sum(qs), int8 qs[32]
// Our Q8_0 / Q8_1 activation rows (sy_dot_row_bytes) hold, after the nb ggml blocks and
// zero padding to SY_Q8_SIDE(nb, block bytes), two arrays of SY_Q8_NB4(nb) four-byte values
// (tails zero): the block scales d as float32, then (Q8_0) the int32 sums of the stored
// codes or (Q8_1) the s values as float32. Work the same for every weight row, done once.
#define SY_Q8_SIDE(nb, bb) ((((nb) * (bb)) + 15) & ~15)
#define SY_Q8_NB4(nb) (((nb) + 3) & ~3)
#define QK_K 256
#define Q8_K_BYTES 292  // float d, int8 qs[256], int16 bsums[16]

typedef void (*sy_dequant_fn)(const uint8_t *x, float *y, int32_t n);
// Dot product of one weight row of n elements with the activation row xq, already
// converted to this type's dot format.
typedef float (*sy_vec_dot_fn)(int32_t n, const uint8_t *w, const uint8_t *xq);
// Convert n floats into a dot format (n a multiple of its block size).
typedef void (*sy_quantize_fn)(const float *x, uint8_t *y, int32_t n);
// Dot products of one weight row with `count` (2..SY_DOT_N) activation rows xq[0..count-1]
// (prompt processing: several tokens meet each weight row), unpacking each weight block
// once. out[j] equals vec_dot(n, w, xq[j]) bit for bit: per dot the same integer sums and
// the same float operations in the same order.
#define SY_DOT_N 4
typedef void (*sy_vec_dot_n_fn)(int32_t n, const uint8_t *w, const uint8_t *const *xq, int32_t count, float *out);

typedef struct {
  int32_t block_elems;
  int32_t block_bytes;
  int32_t dot_type;  // SY_F32, SY_F16, SY_BF16, SY_Q8_0, SY_Q8_1 or SY_Q8_K
  sy_dequant_fn dequant;
  sy_vec_dot_fn vec_dot;
  sy_vec_dot_n_fn vec_dot_n;  // 0: the type has none (sy_dot_rows loops over vec_dot)
} sy_type_traits;

const sy_type_traits *sy_traits(int32_t type);  // NULL for unsupported types
sy_quantize_fn sy_quantizer(int32_t dot_type);
int32_t sy_row_bytes(int32_t type, int32_t n);
// Bytes of n activations in a dot format (F16/BF16 ones are stored as float32).
int32_t sy_dot_row_bytes(int32_t dot_type, int32_t n);
// Thread ith's share of converting `rows` rows of x [rows, cols] to a dot format at q
// (rows of sy_dot_row_bytes each). Callers put a sy_barrier after it before reading q.
void sy_quantize_rows(int ith, int nth, int32_t dot_type, const float *x, uint8_t *q, int32_t rows, int32_t cols);
// out[j] = vec_dot(n, w, xq[j]) for j < count (any count): vec_dot_n on groups of up to
// SY_DOT_N rows where the type has one, vec_dot for a single row (decoding). Inline, so
// that a single row costs no more than the plain vec_dot call it was before.
SY_INLINE void sy_dot_rows(const sy_type_traits *tt, int32_t n, const uint8_t *w, const uint8_t *const *xq,
                           int32_t count, float *out) {
  while (count > 0) {
    int32_t c = count < SY_DOT_N ? count : SY_DOT_N;
    if (c == 1 || !tt->vec_dot_n) {
      for (int32_t j = 0; j < c; j++) out[j] = tt->vec_dot(n, w, xq[j]);
    } else {
      tt->vec_dot_n(n, w, xq, c, out);
    }
    xq += c, out += c, count -= c;
  }
}

// Per-type functions, defined in float.c, quants32.c and kquants.c.
#define SY_DECLARE_TYPE(t)                                          \
  void sy_dequant_##t(const uint8_t *x, float *y, int32_t n);       \
  float sy_vec_dot_##t(int32_t n, const uint8_t *w, const uint8_t *xq);
SY_DECLARE_TYPE(f32)
SY_DECLARE_TYPE(f16)
SY_DECLARE_TYPE(bf16)
SY_DECLARE_TYPE(q4_0)
SY_DECLARE_TYPE(q4_1)
SY_DECLARE_TYPE(q5_0)
SY_DECLARE_TYPE(q5_1)
SY_DECLARE_TYPE(q8_0)
SY_DECLARE_TYPE(iq4_nl)
SY_DECLARE_TYPE(mxfp4)
SY_DECLARE_TYPE(q2_k)
SY_DECLARE_TYPE(q3_k)
SY_DECLARE_TYPE(q4_k)
SY_DECLARE_TYPE(q5_k)
SY_DECLARE_TYPE(q6_k)
SY_DECLARE_TYPE(iq4_xs)
SY_DECLARE_TYPE(tq1_0)
SY_DECLARE_TYPE(tq2_0)

#define SY_DECLARE_DOT_N(t) \
  void sy_vec_dot_n_##t(int32_t n, const uint8_t *w, const uint8_t *const *xq, int32_t count, float *out);
SY_DECLARE_DOT_N(f16)
SY_DECLARE_DOT_N(q4_k)
SY_DECLARE_DOT_N(q5_k)
SY_DECLARE_DOT_N(q6_k)
SY_DECLARE_DOT_N(q4_0)
SY_DECLARE_DOT_N(q4_1)
SY_DECLARE_DOT_N(q5_0)
SY_DECLARE_DOT_N(q5_1)
SY_DECLARE_DOT_N(q8_0)
SY_DECLARE_DOT_N(iq4_nl)
SY_DECLARE_DOT_N(mxfp4)

void sy_quantize_f32(const float *x, uint8_t *y, int32_t n);
void sy_quantize_f16(const float *x, uint8_t *y, int32_t n);
void sy_quantize_bf16(const float *x, uint8_t *y, int32_t n);
void sy_quantize_q8_0(const float *x, uint8_t *y, int32_t n);
void sy_quantize_q8_1(const float *x, uint8_t *y, int32_t n);
void sy_quantize_q8_k(const float *x, uint8_t *y, int32_t n);
