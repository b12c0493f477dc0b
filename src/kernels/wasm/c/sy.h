// Switchyard kernels: the shared header of every C file compiled to wasm32.
//
// The JS <-> wasm contract (exports, memory layout, argument slots, ownership) is
// documented in one place: src/kernels/wasm/abi.ts. This header is its C side.
//
// Every kernel has the signature `void k(int ith, int nth, const sy_args *a)`:
// thread `ith` of `nth` does its share of the work described by the argument
// slots `a`. Kernels are declared with SY_KERNEL(name), which also exports
// `sy_kfn_<name>()` returning the kernel's function-table index; JS passes that
// index to `sy_run(fn, nth)` (pool.c), which runs it on the thread pool.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#define SY_EXPORT(name) __attribute__((export_name(#name), visibility("default")))
#define SY_INLINE static inline __attribute__((always_inline))

// Argument slots: 32 little-endian 32-bit words written by JS before a call.
// A slot holds a pointer (byte offset into linear memory), an int32 or a float32.
#define SY_ARG_SLOTS 32
typedef union {
  int32_t i;
  uint32_t u;
  float f;
} sy_slot;
typedef struct {
  sy_slot s[SY_ARG_SLOTS];
} sy_args;

#define ARG_I(n) (a->s[(n)].i)
#define ARG_F(n) (a->s[(n)].f)
#define ARG_P(T, n) ((T *)(uintptr_t)a->s[(n)].u)

typedef void (*sy_kernel)(int ith, int nth, const sy_args *a);

#define SY_KERNEL(name)                                                   \
  static void name(int ith, int nth, const sy_args *a);                   \
  SY_EXPORT(sy_kfn_##name) uint32_t sy_kfn_##name(void) {                  \
    return (uint32_t)(uintptr_t)&name;                                     \
  }                                                                        \
  static void name(int ith, int nth, const sy_args *a)

// Split `n` items into `nth` contiguous ranges; thread `ith` gets [*lo, *hi).
SY_INLINE void sy_range(int n, int ith, int nth, int *lo, int *hi) {
  int per = (n + nth - 1) / nth;
  int l = ith * per;
  int h = l + per;
  *lo = l < n ? l : n;
  *hi = h < n ? h : n;
}

// sy_range over four-element units, so that each thread's share of an element-wise op
// starts on a whole vector (how many threads run is the wrapper's choice).
SY_INLINE void quad_range(int n, int ith, int nth, int *lo, int *hi) {
  int qlo, qhi;
  sy_range((n + 3) / 4, ith, nth, &qlo, &qhi);
  *lo = qlo * 4 < n ? qlo * 4 : n;
  *hi = qhi * 4 < n ? qhi * 4 : n;
}

// Threads of the current sy_run wait here for each other (pool.c).
void sy_barrier(int ith, int nth);

// ---- number formats --------------------------------------------------------

// The bits of a float32 and back.
SY_INLINE uint32_t sy_f32_bits(float f) {
  union {
    float f;
    uint32_t u;
  } v = {f};
  return v.u;
}
SY_INLINE float sy_bits_f32(uint32_t u) {
  union {
    uint32_t u;
    float f;
  } v = {u};
  return v.f;
}

// IEEE binary16 -> binary32, exact, subnormals included.
SY_INLINE float sy_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        man <<= 1;
        e++;
      } while ((man & 0x400) == 0);
      man &= 0x3ff;
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + (127 - 15)) << 23) | (man << 13);
  }
  return sy_bits_f32(bits);
}

// binary32 -> binary16, round to nearest even (as ggml's GGML_FP32_TO_FP16 on x86 F16C).
SY_INLINE uint16_t sy_f32_to_f16(float f) {
  uint32_t x = sy_f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  // rounds to inf
  if (ax < 0x38800000u) {                                      // subnormal or zero in f16
    if (ax < 0x33000000u) return (uint16_t)sign;              // < half the smallest subnormal
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 14 - (e - 127) + 13 - 1 ... bits to drop
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ((ax >> 13) - ((127 - 15) << 10));
  uint32_t rem = ax & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
  return (uint16_t)(sign | r);
}

SY_INLINE float sy_bf16_to_f32(uint16_t h) {
  return sy_bits_f32((uint32_t)h << 16);
}

// binary32 -> bfloat16, round to nearest even; NaN stays NaN (ggml_compute_fp32_to_bf16).
SY_INLINE uint16_t sy_f32_to_bf16(float f) {
  uint32_t u = sy_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
  return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

SY_INLINE uint16_t sy_load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
// Little-endian loads from any byte address (wasm is little-endian; memcpy compiles to one load).
SY_INLINE uint32_t sy_load_u32(const uint8_t *p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
SY_INLINE int32_t sy_load_i32(const uint8_t *p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
SY_INLINE float sy_load_f32(const uint8_t *p) {
  float v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

// ---- SIMD helpers shared by the kernel files --------------------------------

// Horizontal sum of four float lanes, in the fixed order ((l0 + l1) + (l2 + l3)).
SY_INLINE float sy_hsum_f32x4(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

SY_INLINE int32_t sy_hsum_i32x4(v128_t v) {
  return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) +
         wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

// Four binary16 values (in the low halves of four 32-bit lanes, high halves zero) ->
// four float32, exactly: subnormals, inf and NaN included.
SY_INLINE v128_t sy_f16x4_to_f32x4(v128_t h32) {
  v128_t sign = wasm_i32x4_shl(wasm_v128_and(h32, wasm_i32x4_splat(0x8000)), 16);
  v128_t em = wasm_i32x4_shl(wasm_v128_and(h32, wasm_i32x4_splat(0x7fff)), 13);
  // Re-bias the exponent by a multiplication with 2^112: exact, and it normalises subnormals.
  v128_t f = wasm_f32x4_mul(em, wasm_i32x4_splat(0x77800000));
  v128_t infnan = wasm_i32x4_eq(wasm_v128_and(h32, wasm_i32x4_splat(0x7c00)), wasm_i32x4_splat(0x7c00));
  f = wasm_v128_bitselect(wasm_v128_or(em, wasm_i32x4_splat(0x7f800000)), f, infnan);
  return wasm_v128_or(f, sign);
}

// a * b + c on four float lanes: fused in the relaxed build, separate otherwise.
SY_INLINE v128_t sy_madd_f32x4(v128_t a, v128_t b, v128_t c) {
#ifdef SY_RELAXED
  return wasm_f32x4_relaxed_madd(a, b, c);
#else
  return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
#endif
}

// Dot product of 16 signed bytes: adds the 16 products a[i] * b[i] to the four
// int32 lanes of acc (how they spread over the lanes differs between builds;
// only the lanes' total is meaningful). Exact in both builds.
// `b` must be in [0, 127] ("i7") so that the relaxed instruction is deterministic.
SY_INLINE v128_t sy_dot_i8_u7(v128_t a, v128_t b, v128_t acc) {
#ifdef SY_RELAXED
  // i16x8.relaxed_dot_i8x16_i7x16_s is exact for b in [0,127]; the i32x4 "add"
  // form is not used: V8 11.3 returns twice the spec value (measured).
  v128_t p = wasm_i16x8_relaxed_dot_i8x16_i7x16(a, b);
  return wasm_i32x4_add(acc, wasm_i32x4_extadd_pairwise_i16x8(p));
#else
  v128_t lo = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b));
  v128_t hi = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b));
  // lanes: lo = (p0+p1, p2+p3, p4+p5, p6+p7), hi = (p8+p9, ...). Only the total is used.
  return wasm_i32x4_add(acc, wasm_i32x4_add(lo, hi));
#endif
}

// Signed x signed byte dot product (both in [-127, 127]); lanes as sy_dot_i8_u7.
SY_INLINE v128_t sy_dot_i8_i8(v128_t a, v128_t b, v128_t acc) {
#ifdef SY_RELAXED
  // Move b's sign onto a so the second operand is |b| <= 127.
  v128_t sb = wasm_i8x16_shr(b, 7);  // 0 or -1
  v128_t as = wasm_i8x16_sub(wasm_v128_xor(a, sb), sb);
  v128_t ab = wasm_i8x16_abs(b);
  return sy_dot_i8_u7(as, ab, acc);
#else
  return sy_dot_i8_u7(a, b, acc);
#endif
}
