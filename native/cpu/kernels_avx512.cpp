// AVX-512 inner loops of the CPU matmul for F32, F16 and BF16 weights: the AVX2 register tile
// (kernels_avx2.cpp) at 16 floats per step, with up to 6 x 4 accumulators in the 32 ZMM registers.
// Q8_0 weights and attention keep their AVX2 loops on this path (kernels_fast.cpp routes them).
//
// Like the AVX2 file, the functions carry target attributes and are reached only after
// cpu_supports(KernelPath::Avx512). The same source also builds, with CHIMERA_AVX512_EMULATED, against
// SIMDe's portable AVX-512 (tests_native/test_kernels_avx512_emulated.cpp), so its arithmetic is
// checked against the reference on CPUs without AVX-512 too.
#include "cpu/kernels_inner.h"

#include <utility>

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
// GCC 12's AVX-512 intrinsics pass an "undefined" vector as the unused merge operand, which its own
// uninitialised-use analysis then reports once inlined (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define CHIMERA_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define CHIMERA_AVX512_INLINE __attribute__((target("avx512f,avx2,fma,f16c"), always_inline)) inline
#define CHIMERA_AVX512_NAMESPACE native
#define CHIMERA_BUILD_AVX512 1
#else
#define CHIMERA_BUILD_AVX512 0
#endif

#if CHIMERA_BUILD_AVX512
#if defined(CHIMERA_AVX512_EMULATED)
// SIMDe's vectors are structs of 16 lanes: unrolled register tiles would only make the test's functions
// huge (minutes to compile under the sanitizers); the loops do the same arithmetic in the same order.
#define CHIMERA_UNROLL512
#elif defined(__clang__)
#define CHIMERA_UNROLL512 _Pragma("unroll")
#else
#define CHIMERA_UNROLL512 _Pragma("GCC unroll 16")
#endif

namespace chimera {
namespace inner {
namespace CHIMERA_AVX512_NAMESPACE {
namespace {

#if defined(CHIMERA_AVX512_EMULATED)
// SIMDe 0.7 has no 512-bit F16 or u16 widening: the same conversions from its 256-bit halves.
inline __m512 emulated_cvtph_ps(__m256i h) {
  const __m256 lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h)), hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}
inline __m512i emulated_cvtepu16_epi32(__m256i h) {
  const __m256i lo = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(h));
  const __m256i hi = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
#define _mm512_cvtph_ps emulated_cvtph_ps
#define _mm512_cvtepu16_epi32 emulated_cvtepu16_epi32
#endif

// Sixteen weights from p converted to F32 (one widening instruction for F16 and BF16).
template <DType DT>
CHIMERA_AVX512_INLINE __m512 load16(const uint8_t* p) {
  if constexpr (DT == DType::F32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(p));
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    if constexpr (DT == DType::F16) return _mm512_cvtph_ps(h);
    else return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// The 16 lanes summed in a fixed order, pairwise: lane i + lane i + 8, then + 4, + 2, + 1 (each step one
// permute and one add; the same additions, in the same order, as summing an array that way).
CHIMERA_AVX512_INLINE float hsum16(__m512 v) {
  const __m512i swap8 = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  const __m512i swap4 = _mm512_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  v = _mm512_add_ps(v, _mm512_permutexvar_ps(swap8, v));  // lane i < 8: l[i] + l[i + 8]
  v = _mm512_add_ps(v, _mm512_permutexvar_ps(swap4, v));  // lane i < 4: + lane i + 4
  v = _mm512_add_ps(v, _mm512_shuffle_ps(v, v, 0x4E));     // lane i < 2: + lane i + 2
  v = _mm512_add_ps(v, _mm512_shuffle_ps(v, v, 0xB1));     // lane 0: + lane 1
  return _mm_cvtss_f32(_mm512_castps512_ps128(v));
}

constexpr int64_t elem_bytes(DType dt) { return dt == DType::F32 ? 4 : 2; }

// One step of 16 columns: NN weight rows converted once, FMA'd with NT input rows.
template <DType DT, int NT, int NN>
CHIMERA_AVX512_INLINE void step(const float* x, int64_t ldx, const uint8_t* w, int64_t ldw, int64_t k,
                                __m512 (&acc)[NT][NN]) {
  __m512 wv[NN];
  CHIMERA_UNROLL512 for (int n = 0; n < NN; n++) wv[n] = load16<DT>(w + n * ldw + k * elem_bytes(DT));
  CHIMERA_UNROLL512 for (int t = 0; t < NT; t++) {
    const __m512 xv = _mm512_loadu_ps(x + t * ldx + k);
    CHIMERA_UNROLL512 for (int n = 0; n < NN; n++) acc[t][n] = _mm512_fmadd_ps(wv[n], xv, acc[t][n]);
  }
}

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
    int64_t k = k0;
    if (a.prefetch) {
      // The steps of one 64-byte line of every row, after one prefetch per row for a line further on.
      constexpr int64_t kLine = 64 / (kStep * kBytes) > 0 ? 64 / (kStep * kBytes) * kStep : kStep;
      for (; k + kLine <= kmain; k += kLine) {
        CHIMERA_UNROLL512 for (int n = 0; n < NN; n++) prefetch_l2(w + n * ldw + k * kBytes + a.prefetch);
        CHIMERA_UNROLL512 for (int64_t s = 0; s < kLine; s += kStep) step<DT>(x, ldx, w, ldw, k + s, acc);
      }
    }
    for (; k < kmain; k += kStep) step<DT>(x, ldx, w, ldw, k, acc);
    float sums[NT][NN];
    CHIMERA_UNROLL512 for (int t = 0; t < NT; t++) {
      CHIMERA_UNROLL512 for (int n = 0; n < NN; n++) sums[t][n] = hsum16(acc[t][n]);
    }
    finish_tile<DT, NT, NN>(a, sums, kmain);
  }
};

// Float panels (float_panels.h): each accumulator holds one input row's sums for the 16 rows of a panel,
// and each column k is one multiply-add of the panel's 16 weights by the input's element k broadcast:
// no horizontal sums, and the input rows are read 4 bytes per column instead of a vector per weight row.

// Column k of NV panels (pb bytes apart), FMA'd with element k of NT input rows.
template <DType DT, int NT, int NV>
CHIMERA_AVX512_INLINE void column(const float* x, int64_t ldx, const uint8_t* w, int64_t pb, int64_t k,
                                  __m512 (&acc)[NT][NV]) {
  constexpr int64_t kColumn = kPanelRows * elem_bytes(DT);
  __m512 wv[NV];
  CHIMERA_UNROLL512 for (int v = 0; v < NV; v++) wv[v] = load16<DT>(w + v * pb + k * kColumn);
  CHIMERA_UNROLL512 for (int t = 0; t < NT; t++) {
    const __m512 xb = _mm512_set1_ps(x[t * ldx + k]);
    CHIMERA_UNROLL512 for (int v = 0; v < NV; v++) acc[t][v] = _mm512_fmadd_ps(wv[v], xb, acc[t][v]);
  }
}

struct Avx512PanelKernels {
  // nv is panel_tile_width(nt) or 1.
  template <DType DT, int NT, int NV>
  CHIMERA_AVX512 static void tile(const MatmulTile& a) {
    static_assert(DT != DType::Q8_0, "panels hold float weights");
    constexpr int64_t kBytes = elem_bytes(DT), kColumn = kPanelRows * kBytes;
    const float* const x = a.x;
    const uint8_t* const w = a.w;
    const int64_t ldx = a.ldx, pb = a.ldw, ldo = a.ldo;
    __m512 acc[NT][NV];
    CHIMERA_UNROLL512 for (int t = 0; t < NT; t++) {
      CHIMERA_UNROLL512 for (int v = 0; v < NV; v++) {
        acc[t][v] = a.accumulate ? _mm512_loadu_ps(a.out + t * ldo + v * kPanelRows) : _mm512_setzero_ps();
      }
    }
    int64_t k = a.k0;
    if (a.prefetch) {
      // One prefetch per panel per 64-byte line of its columns.
      constexpr int64_t kLineCols = 64 / kColumn > 0 ? 64 / kColumn : 1;
      for (; k + kLineCols <= a.k1; k += kLineCols) {
        CHIMERA_UNROLL512 for (int v = 0; v < NV; v++) prefetch_l2(w + v * pb + k * kColumn + a.prefetch);
        CHIMERA_UNROLL512 for (int64_t c = 0; c < kLineCols; c++) column<DT>(x, ldx, w, pb, k + c, acc);
      }
    }
    for (; k < a.k1; k++) column<DT>(x, ldx, w, pb, k, acc);
    CHIMERA_UNROLL512 for (int t = 0; t < NT; t++) {
      CHIMERA_UNROLL512 for (int v = 0; v < NV; v++) _mm512_storeu_ps(a.out + t * ldo + v * kPanelRows, acc[t][v]);
    }
  }
};

// A tile of nt rows is either panel_tile_width(nt) panels wide or one (the last panels of a range).
template <DType DT, int NT>
void dispatch_panel_nv(int nv, const MatmulTile& a) {
  if (nv >= panel_tile_width(NT)) return Avx512PanelKernels::tile<DT, NT, panel_tile_width(NT)>(a);
  Avx512PanelKernels::tile<DT, NT, 1>(a);
}

template <DType DT, int... NT>
void dispatch_panel(int nt, int nv, const MatmulTile& a, std::integer_sequence<int, NT...>) {
  (void)((nt == NT + 1 ? (dispatch_panel_nv<DT, NT + 1>(nv, a), true) : false) || ...);
}

// Up to kAvx512TileRows input rows in one register tile: 6 x 4 accumulators, 4 weight vectors and one
// input vector fill 29 of the 32 ZMM registers. Five or six rows in one sweep of the weights, instead of
// a tile of 4 and a second sweep for the rest, made a 5-row matmul about 15% faster.
template <DType DT>
void dispatch_float(int nt, int nn, const MatmulTile& a) {
  if (nt == 6) return dispatch_tile_nn<Avx512Kernels, DT, 6>(nn, a);
  if (nt == 5) return dispatch_tile_nn<Avx512Kernels, DT, 5>(nn, a);
  dispatch_tile_nt<Avx512Kernels, DT>(nt, nn, a);
}

}  // namespace

void matmul_panel_tile_avx512(DType dt, int nt, int nv, const MatmulTile& a) {
  using Rows = std::make_integer_sequence<int, kPanelMaxTileRows>;
  switch (dt) {
    case DType::F32: return dispatch_panel<DType::F32>(nt, nv, a, Rows{});
    case DType::F16: return dispatch_panel<DType::F16>(nt, nv, a, Rows{});
    case DType::BF16: return dispatch_panel<DType::BF16>(nt, nv, a, Rows{});
    default: break;
  }
}

// F32, F16 and BF16 only (the caller routes Q8_0 to the AVX2 kernels).
void matmul_tile_avx512(DType dt, int nt, int nn, const MatmulTile& a) {
  switch (dt) {
    case DType::F32: return dispatch_float<DType::F32>(nt, nn, a);
    case DType::F16: return dispatch_float<DType::F16>(nt, nn, a);
    case DType::BF16: return dispatch_float<DType::BF16>(nt, nn, a);
    default: break;
  }
}

}  // namespace CHIMERA_AVX512_NAMESPACE
}  // namespace inner
}  // namespace chimera

#endif  // CHIMERA_BUILD_AVX512
