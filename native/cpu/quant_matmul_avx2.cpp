// AVX2 build of the Q4_0 / k-quant dot kernels (quant_dot_kernels.inc); also the path of AVX-512 CPUs
// without VNNI.
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/quant_blocks.h"
#include "cpu/quant_matmul.h"
#include "cpu/simd_avx2.h"

#if CHIMERA_HAVE_AVX2_PATH

#define QDOT_TARGET __attribute__((target("avx2,fma,f16c")))
#define QDOT_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline
#define QDOT_NAMESPACE avx2_dot
#define QDOT_ENTRY low_bit_dot_avx2
#define QDOT_VNNI 0
#include "cpu/quant_dot_kernels.inc"

#else

namespace chimera {
namespace inner {
void quantize_q8k_block_avx2(const float*, int8_t*, float*, int16_t*) {
  throw_error(ErrorCode::Internal, "quantize_q8k_block_avx2 without the AVX2 path");
}
void low_bit_dot_avx2(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, int nt, float* res) {
  low_bit_dot_portable(dt, row, K, xq, t0, nt, res);
}
}  // namespace inner
}  // namespace chimera

#endif  // CHIMERA_HAVE_AVX2_PATH

#if CHIMERA_HAVE_AVX2_PATH
namespace chimera {
namespace inner {

// One 256-value Q8_K block as quantize_q8k_activations makes it (the same values bit for bit: the first
// value of largest magnitude picks the scale, products and round-to-nearest-even are the same), with
// the rounding, packing and sums in AVX2.
__attribute__((target("avx2,fma,f16c"))) void quantize_q8k_block_avx2(const float* x, int8_t* q, float* d,
                                                                        int16_t* bsum16) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 vmax = _mm256_setzero_ps();
  for (int i = 0; i < kKBlockSize; i += 8) vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float amax = _mm_cvtss_f32(m4);
  if (!(amax > 0.f)) {
    std::memset(q, 0, kKBlockSize);
    std::memset(bsum16, 0, 16 * sizeof(int16_t));
    *d = 0.f;
    return;
  }
  float max = 0.f;
  for (int i = 0; i < kKBlockSize; i++) {
    if (std::fabs(x[i]) == amax) {
      max = x[i];
      break;
    }
  }
  const float iscale = -127.f / max;
  *d = 1.f / iscale;
  const __m256 vs = _mm256_set1_ps(iscale);
  const __m256i cap = _mm256_set1_epi32(127), ones = _mm256_set1_epi16(1);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int i = 0; i < kKBlockSize; i += 32) {
    __m256i v[4];
    for (int k = 0; k < 4; k++)
      v[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + i + 8 * k))), cap);
    const __m256i w01 = _mm256_packs_epi32(v[0], v[1]), w23 = _mm256_packs_epi32(v[2], v[3]);
    // Sums of 16: the two words of each pair lane-crossed back into order by the pack, summed by VPMADDWD.
    const __m256i s01 = _mm256_madd_epi16(_mm256_permute4x64_epi64(w01, 0xd8), ones);
    const __m256i s23 = _mm256_madd_epi16(_mm256_permute4x64_epi64(w23, 0xd8), ones);
    const __m256i h = _mm256_hadd_epi32(s01, s23);  // [a0+a1, a2+a3, c0+c1, c2+c3 | b.., d..]
    const __m256i h2 = _mm256_hadd_epi32(h, h);
    // h2: lane 0 holds x[0..8) and lane 4 x[8..16); lanes 1 and 5 the same for x[16..32).
    bsum16[i / 16] = (int16_t)(_mm256_extract_epi32(h2, 0) + _mm256_extract_epi32(h2, 4));
    bsum16[i / 16 + 1] = (int16_t)(_mm256_extract_epi32(h2, 1) + _mm256_extract_epi32(h2, 5));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), bytes);
  }
}

}  // namespace inner
}  // namespace chimera
#endif
