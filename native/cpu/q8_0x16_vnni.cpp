// The Q8_0x16 group kernel with AVX-512 VNNI (q8_0x16.h has the layout). Per block: 8 VPDPBUSD per
// input row, each multiplying 4 values of 16 rows (one ZMM of weights, unsigned: value + 128) by the
// input's 4 values broadcast to every lane, starting from -128 * (the input block's sum); so lane r
// holds row r's exact integer dot product with the block. It is converted once and added times
// d_w(r) * d_x in F32, blocks in order. A row's result depends only on its weights and its input row.
#include <cstring>

#include "cpu/kernels_cpu.h"
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

bool q8x16_vnni_supported() {
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

constexpr int kRows = 16, kQuads = kQ8BlockSize / 4, kChunk = 2;
constexpr int64_t kBlockBytes = (int64_t)kRows * kQ8BlockBytes;  // one block of the 16 rows

// Block b (its scales at `scales`, its values at `quants`) for NT input rows.
template <int NT>
CHIMERA_VNNI_INLINE void block(const uint8_t* scales, const uint8_t* quants, const Q8x16Group& a, int64_t b,
                               __m512 (&acc)[NT]) {
  const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
  // Few input rows leave one dependency chain of 8 VPDPBUSD per row: split it in two (even, odd q).
  constexpr int kSplit = NT <= 2 ? 2 : 1;
  __m512i dot[kSplit][NT];
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
    dot[0][t] = _mm512_set1_epi32(-128 * a.xsum[t * a.blocks + b]);  // what the stored + 128 adds
    if constexpr (kSplit == 2) dot[1][t] = _mm512_setzero_si512();
  }
  CHIMERA_UNROLL for (int q = 0; q < kQuads; q++) {
    const __m512i w = _mm512_loadu_si512(quants + q * 64);
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
      int32_t x4;
      std::memcpy(&x4, a.xq + t * a.ldx + b * kQ8BlockSize + 4 * q, 4);
      dot[q % kSplit][t] = _mm512_dpbusd_epi32(dot[q % kSplit][t], w, _mm512_set1_epi32(x4));
    }
  }
  if constexpr (kSplit == 2)
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) dot[0][t] = _mm512_add_epi32(dot[0][t], dot[1][t]);
  CHIMERA_UNROLL for (int t = 0; t < NT; t++)
    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[0][t]), _mm512_mul_ps(dw, _mm512_set1_ps(a.xs[t * a.blocks + b])),
                             acc[t]);
}

template <int NT>
CHIMERA_VNNI void group(const Q8x16Group& a) {
  __m512 acc[NT];
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
  const int64_t full = a.blocks / kChunk * kChunk;
  for (int64_t b0 = 0; b0 < full; b0 += kChunk) {
    const uint8_t* c = a.w + b0 * kBlockBytes;
    if (a.prefetch)
      for (int64_t off = 0; off < kChunk * kBlockBytes; off += 64) prefetch_l2(c + a.prefetch + off);
    const uint8_t* quants = c + 2 * kRows * kChunk;
    block<NT>(c, quants, a, b0, acc);
    block<NT>(c + 2 * kRows, quants + kQuads * 64, a, b0 + 1, acc);
  }
  if (full < a.blocks) {  // a last chunk of one block
    const uint8_t* c = a.w + full * kBlockBytes;
    block<NT>(c, c + 2 * kRows, a, full, acc);
  }
  for (int t = 0; t < NT; t++) {
    alignas(64) float rows[kRows];
    _mm512_store_ps(rows, acc[t]);
    for (int r = a.r0; r < a.r1; r++) a.out[t * a.ldo + r] = rows[r];
  }
}

}  // namespace

void matmul_q8x16_group_vnni(const Q8x16Group& a) {
  switch (a.nt) {
    case 1: return group<1>(a);
    case 2: return group<2>(a);
    case 3: return group<3>(a);
    case 4: return group<4>(a);
    case 5: return group<5>(a);
    case 6: return group<6>(a);
    case 7: return group<7>(a);
    default: return group<8>(a);
  }
}
#else
void matmul_q8x16_group_vnni(const Q8x16Group&) {}
#endif

}  // namespace inner
}  // namespace chimera
