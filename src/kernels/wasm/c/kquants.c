// placeholder, replaced by the kquants implementation
#include "types.h"
#define STUB(t) void sy_dequant_##t(const uint8_t *x, float *y, int32_t n) { __builtin_trap(); } \
  float sy_vec_dot_##t(int32_t n, const uint8_t *w, const uint8_t *xq) { __builtin_trap(); }
STUB(q2_k) STUB(q3_k) STUB(q4_k) STUB(q5_k) STUB(q6_k) STUB(iq4_xs) STUB(tq1_0) STUB(tq2_0)
void sy_quantize_q8_k(const float *x, uint8_t *y, int32_t n) { __builtin_trap(); }
