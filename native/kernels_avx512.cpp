// AVX-512 inner loops of the CPU matmul for F32, F16 and BF16 weights: the AVX2 register tile
// (kernels_avx2.cpp) at 16 floats per step, with up to 4 x 4 accumulators in the 32 ZMM registers.
// Q8_0 weights and attention keep their AVX2 loops on this path (kernels_fast.cpp routes them).
//
// Like the AVX2 file, the functions carry target attributes and are reached only after
// cpu_supports(KernelPath::Avx512). The same source also builds, with CHIMERA_AVX512_EMULATED, against
// SIMDe's portable AVX-512 (tests_native/test_kernels_avx512_emulated.cpp), so its arithmetic is
// checked against the reference on CPUs without AVX-512 too.
#include "kernels_inner.h"

#if defined(CHIMERA_AVX512_EMULATED)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#define CHIMERA_AVX512
#define CHIMERA_AVX512_INLINE inline
#define CHIMERA_AVX512_NAMESPACE emulated
#define CHIMERA_BUILD_AVX512 1
#elif CHIMERA_HAVE_AVX2_PATH
#include <immintrin.h>
#define CHIMERA_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define CHIMERA_AVX512_INLINE __attribute__((target("avx512f,avx2,fma,f16c"), always_inline)) inline
#define CHIMERA_AVX512_NAMESPACE native
#define CHIMERA_BUILD_AVX512 1
#else
#define CHIMERA_BUILD_AVX512 0
#endif

#if CHIMERA_BUILD_AVX512
#if defined(__clang__)
#define CHIMERA_UNROLL512 _Pragma("unroll")
#else
#define CHIMERA_UNROLL512 _Pragma("GCC unroll 16")
#endif

namespace chimera {
namespace inner {
namespace CHIMERA_AVX512_NAMESPACE {
namespace {

// Sixteen weights from p (element offset 0) converted to F32. F16 and BF16 go through two 256-bit
// halves, which SIMDe also provides.
template <DType DT>
CHIMERA_AVX512_INLINE __m512 load16(const uint8_t* p) {
  if constexpr (DT == DType::F32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(p));
  } else {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
    __m256 a, b;
    if constexpr (DT == DType::F16) {
      a = _mm256_cvtph_ps(lo);
      b = _mm256_cvtph_ps(hi);
    } else {
      a = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(lo), 16));
      b = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(hi), 16));
    }
    // (AVX512F's 64x4 insert: the 32x8 one needs AVX512DQ)
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(a)), _mm256_castps_pd(b), 1));
  }
}

// The 16 lanes summed in a fixed order: halves, then the AVX2 pattern.
CHIMERA_AVX512_INLINE float hsum16(__m512 v) {
  const __m256 h =
      _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

constexpr int64_t elem_bytes(DType dt) { return dt == DType::F32 ? 4 : 2; }

struct Avx512Kernels {
  template <DType DT, int NT, int NN>
  CHIMERA_AVX512 static void tile(const MatmulTile& a) {
    static_assert(DT != DType::Q8_0, "Q8_0 runs the AVX2 integer kernels");
    constexpr int64_t kStep = 16, kBytes = elem_bytes(DT);
    const float* const x = a.x;
    const uint8_t* const w = a.w;
    const int64_t ldx = a.ldx, ldw = a.ldw, k0 = a.k0;
    const int64_t kmain = k0 + (a.k1 - k0) / kStep * kStep;
    __m512 acc[NT][NN];
    CHIMERA_UNROLL512 for (int t = 0; t < NT; t++) {
      CHIMERA_UNROLL512 for (int n = 0; n < NN; n++) acc[t][n] = _mm512_setzero_ps();
    }
    for (int64_t k = k0; k < kmain; k += kStep) {
      __m512 wv[NN];
      CHIMERA_UNROLL512 for (int n = 0; n < NN; n++) wv[n] = load16<DT>(w + n * ldw + k * kBytes);
      CHIMERA_UNROLL512 for (int t = 0; t < NT; t++) {
        const __m512 xv = _mm512_loadu_ps(x + t * ldx + k);
        CHIMERA_UNROLL512 for (int n = 0; n < NN; n++) acc[t][n] = _mm512_fmadd_ps(wv[n], xv, acc[t][n]);
      }
    }
    float sums[NT][NN];
    CHIMERA_UNROLL512 for (int t = 0; t < NT; t++) {
      CHIMERA_UNROLL512 for (int n = 0; n < NN; n++) sums[t][n] = hsum16(acc[t][n]);
    }
    finish_tile<DT, NT, NN>(a, sums, kmain);
  }
};

template <DType DT>
void dispatch_float(int nt, int nn, const MatmulTile& a) {
  dispatch_tile_nt<Avx512Kernels, DT>(nt, nn, a);
}

}  // namespace

// F32, F16 and BF16 only (the caller routes Q8_0 to the AVX2 kernels).
void matmul_tile_avx512(DType dt, int nt, int nn, const MatmulTile& a) {
  switch (dt) {
    case DType::F32: return dispatch_float<DType::F32>(nt, nn, a);
    case DType::F16: return dispatch_float<DType::F16>(nt, nn, a);
    case DType::BF16: return dispatch_float<DType::BF16>(nt, nn, a);
    case DType::Q8_0: break;
  }
}

}  // namespace CHIMERA_AVX512_NAMESPACE
}  // namespace inner
}  // namespace chimera

#endif  // CHIMERA_BUILD_AVX512
