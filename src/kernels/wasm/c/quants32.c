// placeholder, replaced by the quants32 implementation
#include "types.h"
#define STUB(t) void sy_dequant_##t(const uint8_t *x, float *y, int32_t n) { __builtin_trap(); } \
  float sy_vec_dot_##t(int32_t n, const uint8_t *w, const uint8_t *xq) { __builtin_trap(); }
STUB(q4_0) STUB(q4_1) STUB(q5_0) STUB(q5_1) STUB(q8_0) STUB(iq4_nl) STUB(mxfp4)
void sy_quantize_q8_0(const float *x, uint8_t *y, int32_t n) { __builtin_trap(); }
void sy_quantize_q8_1(const float *x, uint8_t *y, int32_t n) { __builtin_trap(); }
