// Shared pieces of the AVX2-family inner loops (kernels_avx2.cpp, q8_0x16_vnni.cpp): the target
// attributes, the unroll pragma, and the fixed-order horizontal sum of eight lanes. Functions carry
// target attributes instead of the files being built with -mavx2, so one binary runs on any x86-64.
#pragma once
#include "cpu/kernels_inner.h"

#if CHIMERA_HAVE_AVX2_PATH
#include <immintrin.h>

#define CHIMERA_AVX2 __attribute__((target("avx2,fma,f16c")))
#define CHIMERA_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline
// Register tiles only stay in registers when their little loops are fully unrolled.
#if defined(__clang__)
#define CHIMERA_UNROLL _Pragma("unroll")
#else
#define CHIMERA_UNROLL _Pragma("GCC unroll 16")
#endif

namespace chimera {
namespace inner {

// The 8 lanes summed pairwise in a fixed order: (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1.
CHIMERA_AVX2_INLINE float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace inner
}  // namespace chimera
#endif  // CHIMERA_HAVE_AVX2_PATH
