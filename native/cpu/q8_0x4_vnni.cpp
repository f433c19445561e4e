// The Q8_0x4 group kernel with AVX-512 VNNI (q8_0x4.h has the layout). One ZMM holds block j of two
// rows (64 bytes); VPDPBUSD multiplies |w| (unsigned) by x with w's sign and sums groups of four bytes
// into 32-bit lanes, half the instructions of the AVX2 kernel's VPMADDUBSW + VPMADDWD on twice the
// width. Lanes 0..7 belong to the pair's first row, 8..15 to its second; each lane accumulates its
// blocks in order in F32 (scaled by d_w * d_x), and a row's 8 lanes are summed pairwise at the end. So
// a row's result depends only on its weights and its input row: the same for every number of input
// rows (1 to 4 per pass) and every row range, as lossless tree verification needs.
#include "cpu/q8_0x4.h"

#include <cstring>

#include "cpu/simd_avx2.h"

#if CHIMERA_HAVE_AVX2_PATH
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define CHIMERA_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c")))
#define CHIMERA_VNNI_INLINE __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c"), always_inline)) inline
#endif

namespace chimera {
namespace inner {

bool q8x4_vnni_supported() {
#if CHIMERA_HAVE_AVX2_PATH && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = cpu_supports(KernelPath::Avx512) && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vnni");
  return ok;
#else
  return false;
#endif
}

#if CHIMERA_HAVE_AVX2_PATH
namespace {

// Lanes 0..7 of v summed (into lo) and lanes 8..15 (into hi), each pairwise as hsum8 (simd_avx2.h).
CHIMERA_VNNI_INLINE void hsum_halves(__m512 v, float* lo, float* hi) {
  *lo = hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 0)));
  *hi = hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

// One chunk of up to 8 blocks (M = 8, or 0 for a shorter last chunk of m blocks).
template <int NT, int M>
CHIMERA_VNNI_INLINE void chunk(const uint8_t* c, int m, const int8_t* xq, const float* xs, int64_t ldx, int64_t b0,
                               __m512 (&acc)[NT][2]) {
  constexpr int kR = 4;
  const int blocks = M > 0 ? M : m;
  // D[t][p]: lanes 0..7 = d_w(row 2p, block b0 + j) * d_x(t, b0 + j), lanes 8..15 the same for row 2p + 1.
  __m512 D[NT][2];
  __m512 xs2[NT];
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
    alignas(32) float tmp[8] = {};
    std::memcpy(tmp, xs + t * (ldx / kQ8BlockSize) + b0, sizeof(float) * blocks);
    xs2[t] = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_load_ps(tmp))));
  }
  CHIMERA_UNROLL for (int p = 0; p < 2; p++) {
    alignas(32) uint16_t h[16] = {};
    std::memcpy(h, c + 2 * (2 * p) * blocks, 2 * blocks);
    std::memcpy(h + 8, c + 2 * (2 * p + 1) * blocks, 2 * blocks);
    const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h)));
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) D[t][p] = _mm512_mul_ps(dw, xs2[t]);
  }
  const uint8_t* quants = c + 2 * kR * blocks;
  const __m512i zero = _mm512_setzero_si512();
  for (int j = 0; j < blocks; j++) {
    // Lane i takes scale j of its half: index j for lanes 0..7, 8 + j for lanes 8..15.
    const __m512i pick = _mm512_add_epi32(_mm512_set1_epi32(j),
                                          _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8));
    __m512i xb[NT];
    CHIMERA_UNROLL for (int t = 0; t < NT; t++)
      xb[t] = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * ldx + (b0 + j) * kQ8BlockSize)));
    CHIMERA_UNROLL for (int p = 0; p < 2; p++) {
      const __m512i w = _mm512_loadu_si512(quants + (j * kR + 2 * p) * kQ8BlockSize);
      const __m512i aw = _mm512_abs_epi8(w);
      const __mmask64 neg = _mm512_movepi8_mask(w);
      CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
        const __m512i sx = _mm512_mask_sub_epi8(xb[t], neg, zero, xb[t]);
        const __m512i dot = _mm512_dpbusd_epi32(zero, aw, sx);
        acc[t][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pick, D[t][p]), acc[t][p]);
      }
    }
  }
}

template <int NT>
CHIMERA_VNNI void group(const Q8x4Group& a) {
  constexpr int kR = 4, kChunk = 8;
  __m512 acc[NT][2];
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
    acc[t][0] = _mm512_setzero_ps();
    acc[t][1] = _mm512_setzero_ps();
  }
  const int64_t full = a.blocks / kChunk * kChunk;
  for (int64_t b0 = 0; b0 < full; b0 += kChunk)
    chunk<NT, kChunk>(a.w + b0 * kR * kQ8BlockBytes, kChunk, a.xq, a.xs, a.ldx, b0, acc);
  if (full < a.blocks)
    chunk<NT, 0>(a.w + full * kR * kQ8BlockBytes, (int)(a.blocks - full), a.xq, a.xs, a.ldx, full, acc);
  for (int t = 0; t < NT; t++) {
    float rows[kR];
    hsum_halves(acc[t][0], &rows[0], &rows[1]);
    hsum_halves(acc[t][1], &rows[2], &rows[3]);
    for (int r = a.r0; r < a.r1; r++) a.out[t * a.ldo + r] = rows[r];
  }
}

}  // namespace

void matmul_q8x4_group_vnni(const Q8x4Group& a) {
  switch (a.nt) {
    case 1: return group<1>(a);
    case 2: return group<2>(a);
    case 3: return group<3>(a);
    default: return group<4>(a);
  }
}
#else
void matmul_q8x4_group_vnni(const Q8x4Group&) {}
#endif

}  // namespace inner
}  // namespace chimera
