// AVX2 kernels of the Q4_0 / k-quant matmuls (quant_matmul.h): one weight row against up to 4 input
// rows, each block's weights unpacked to bytes once and multiplied with every row by VPMADDUBSW (weights
// as unsigned bytes, x as signed) and VPMADDWD (the sub-block scales), so the sums are exact integers as
// in the portable kernels; only the float accumulation order differs from them.
#include <cstring>

#include "common/error.h"
#include "common/quant_blocks.h"
#include "cpu/quant_matmul.h"
#include "cpu/simd_avx2.h"

#if CHIMERA_HAVE_AVX2_PATH

namespace chimera {
namespace inner {
namespace {

// Bytes of weights ahead of the current block that each block asks L2 for (several rows ahead: a row of
// a 2048-wide Q4_K matrix is 1152 bytes).
constexpr int64_t kPrefetchAhead = 4096;

CHIMERA_AVX2_INLINE float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

CHIMERA_AVX2_INLINE __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

CHIMERA_AVX2_INLINE void prefetch_block(const uint8_t* p, int bytes) {
  for (int o = 0; o < bytes; o += 64) prefetch_l2(p + kPrefetchAhead + o);
}

// The 8 6-bit scales (bytes 0..7 of the result) and 8 mins (bytes 8..15) of a Q4_K / Q5_K block, unpacked
// with 32-bit masks and shifts (the packing of quant_blocks.h: j < 4 in the low 6 bits of bytes j and
// j + 4; j >= 4 in a nibble of byte j + 4 and the top 2 bits of bytes j - 4 and j).
CHIMERA_AVX2_INLINE __m128i kquant_scales_mins(const uint8_t* packed) {
  uint32_t u[4];
  std::memcpy(u, packed, 12);
  const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
  const uint32_t mins_lo = u[1] & m6;
  const uint32_t mins_hi = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
  const uint32_t scales_hi = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
  const uint32_t scales_lo = u[0] & m6;
  return _mm_setr_epi32((int)scales_lo, (int)scales_hi, (int)mins_lo, (int)mins_hi);
}

// Shuffle masks that broadcast int16 word w of each 128-bit lane to all of that lane's words.
CHIMERA_AVX2_INLINE __m256i word_broadcast_mask(int lo_word, int hi_word) {
  const char a = (char)(2 * lo_word), b = (char)(2 * hi_word);
  return _mm256_setr_epi8(a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1,
                          b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1);
}

CHIMERA_AVX2_INLINE float hsum4(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int NT>
CHIMERA_AVX2 void dot_q4_0(const uint8_t* w, int64_t K, const Q8Activations& xq, int t0, float* res) {
  const __m256i m4 = _mm256_set1_epi8(0xF), eight = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
  __m256 acc[NT];
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
  const int64_t nb = K / 32;
  for (int64_t b = 0; b < nb; b++, w += kQ4_0BlockBytes) {
    if ((b & 3) == 0) prefetch_block(w, 4 * kQ4_0BlockBytes);
    const __m128i q16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2));
    const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q16, 4), q16), m4);
    const __m256i wq = _mm256_sub_epi8(q, eight);
    const __m256i aw = _mm256_sign_epi8(wq, wq);
    const float dw = load_f16(w);
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
      const __m256i xv = load32(xq.q + (t0 + t) * K + b * 32);
      const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wq)), ones);
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xq.s[(t0 + t) * nb + b]), _mm256_cvtepi32_ps(p), acc[t]);
    }
  }
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) res[t] = hsum8(acc[t]);
}

// Q4_K and Q5_K: per 64 values, the low nibbles (sub-block 2j) and high nibbles (2j + 1), with the fifth
// bits of Q5_K from qh bit 2j and 2j + 1.
template <int NT, bool kFifthBit>
CHIMERA_AVX2 void dot_q45_k(const uint8_t* w, int64_t K, const Q8Activations& xq, int t0, float* res) {
  constexpr int kBytes = kFifthBit ? kQ5KBlockBytes : kQ4KBlockBytes;
  constexpr int kScales = kFifthBit ? kQ5KScales : kQ4KScales;
  constexpr int kQs = kFifthBit ? kQ5KQs : kQ4KQs;
  const __m256i m4 = _mm256_set1_epi8(0xF), m1 = _mm256_set1_epi8(1);
  const int64_t nb = K / kKBlockSize;
  __m256 acc[NT];
  __m128 accm[NT];  // the mins' part, per 4 pairs of sub-blocks
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
    acc[t] = _mm256_setzero_ps();
    accm[t] = _mm_setzero_ps();
  }
  for (int64_t b = 0; b < nb; b++, w += kBytes) {
    prefetch_block(w, kBytes);
    const __m128i sm = kquant_scales_mins(w + kScales);
    const __m128i mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    __m256i sumi[NT];
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) sumi[t] = _mm256_setzero_si256();
    __m256i qh = kFifthBit ? load32(w + kQ5KQh) : _mm256_setzero_si256();
    CHIMERA_UNROLL for (int j = 0; j < 4; j++) {
      const __m256i bytes = load32(w + kQs + 32 * j);
      __m256i lo = _mm256_and_si256(bytes, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
      if (kFifthBit) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, m1), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), m1), 4));
        qh = _mm256_srli_epi16(qh, 2);
      }
      const __m256i s_lo = _mm256_shuffle_epi8(sc16, word_broadcast_mask(2 * j, 2 * j));
      const __m256i s_hi = _mm256_shuffle_epi8(sc16, word_broadcast_mask(2 * j + 1, 2 * j + 1));
      CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
        const int8_t* x = xq.q + (t0 + t) * K + b * kKBlockSize + 64 * j;
        const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(x)), s_lo);
        const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(x + 32)), s_hi);
        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p_lo, p_hi));
      }
    }
    const float d = load_f16(w), dmin = load_f16(w + 2);
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
      const int64_t tb = (t0 + t) * nb + b;
      const __m128i pairs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xq.bsum32 + tb * 8));
      const float xd = xq.d256[tb];
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * xd), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
      accm[t] = _mm_fmadd_ps(_mm_set1_ps(dmin * xd), _mm_cvtepi32_ps(_mm_madd_epi16(mins16, pairs)), accm[t]);
    }
  }
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) res[t] = hsum8(acc[t]) - hsum4(accm[t]);
}

// Q6_K: each half of 128 values is four runs of 32 (ql low/high nibbles, qh bit pairs), each run two
// sub-blocks of 16 with their own int8 scales; the -32 offset is taken off through the x sums per 16.
template <int NT>
CHIMERA_AVX2 void dot_q6_k(const uint8_t* w, int64_t K, const Q8Activations& xq, int t0, float* res) {
  const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
  const int64_t nb = K / kKBlockSize;
  __m256 acc[NT];
  __m128 accb[NT];  // the scales against the x sums per 16, times 32 at the end (the -32 offset)
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
    acc[t] = _mm256_setzero_ps();
    accb[t] = _mm_setzero_ps();
  }
  for (int64_t b = 0; b < nb; b++, w += kQ6KBlockBytes) {
    prefetch_block(w, kQ6KBlockBytes);
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + kQ6KScales);
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc));
    const __m128i sc16_lo = _mm_cvtepi8_epi16(sc8), sc16_hi = _mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8));
    __m256i sumi[NT];
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) sumi[t] = _mm256_setzero_si256();
    CHIMERA_UNROLL for (int half = 0; half < 2; half++) {
      const __m256i ql0 = load32(w + kQ6KQl + 64 * half), ql1 = load32(w + kQ6KQl + 64 * half + 32);
      const __m256i qh = load32(w + kQ6KQh + 32 * half);
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
      const __m256i sc16 = _mm256_broadcastsi128_si256(half ? sc16_hi : sc16_lo);
      CHIMERA_UNROLL for (int k = 0; k < 4; k++) {
        const __m256i scv = _mm256_shuffle_epi8(sc16, word_broadcast_mask(2 * k, 2 * k + 1));
        CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
          const int8_t* x = xq.q + (t0 + t) * K + b * kKBlockSize + 128 * half + 32 * k;
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], load32(x)), scv));
        }
      }
    }
    const float d = load_f16(w + kQ6KD);
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
      const int16_t* bs = xq.bsum16 + ((t0 + t) * nb + b) * 16;
      const __m128i sb = _mm_add_epi32(_mm_madd_epi16(sc16_lo, _mm_loadu_si128(reinterpret_cast<const __m128i*>(bs))),
                                       _mm_madd_epi16(sc16_hi, _mm_loadu_si128(reinterpret_cast<const __m128i*>(bs + 8))));
      const __m128 dx = _mm_set1_ps(d * xq.d256[(t0 + t) * nb + b]);
      acc[t] = _mm256_fmadd_ps(_mm256_set_m128(dx, dx), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
      accb[t] = _mm_fmadd_ps(dx, _mm_cvtepi32_ps(sb), accb[t]);
    }
  }
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) res[t] = hsum8(acc[t]) - 32.f * hsum4(accb[t]);
}

template <int NT>
void dot_nt(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, float* res) {
  switch (dt) {
    case DType::Q4_0: return dot_q4_0<NT>(row, K, xq, t0, res);
    case DType::Q4_K: return dot_q45_k<NT, false>(row, K, xq, t0, res);
    case DType::Q5_K: return dot_q45_k<NT, true>(row, K, xq, t0, res);
    case DType::Q6_K: return dot_q6_k<NT>(row, K, xq, t0, res);
    default: throw_error(ErrorCode::Internal, "low-bit matmul over ", dtype_name(dt));
  }
}

}  // namespace

void low_bit_dot_avx2(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, int nt, float* res) {
  switch (nt) {
    case 1: return dot_nt<1>(dt, row, K, xq, t0, res);
    case 2: return dot_nt<2>(dt, row, K, xq, t0, res);
    case 3: return dot_nt<3>(dt, row, K, xq, t0, res);
    case 4: return dot_nt<4>(dt, row, K, xq, t0, res);
    case 5: return dot_nt<5>(dt, row, K, xq, t0, res);
    case 6: return dot_nt<6>(dt, row, K, xq, t0, res);
    case 7: return dot_nt<7>(dt, row, K, xq, t0, res);
    default: return dot_nt<8>(dt, row, K, xq, t0, res);
  }
}

}  // namespace inner
}  // namespace chimera

#else

namespace chimera {
namespace inner {
void low_bit_dot_avx2(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, int nt, float* res) {
  low_bit_dot_portable(dt, row, K, xq, t0, nt, res);
}
}  // namespace inner
}  // namespace chimera

#endif  // CHIMERA_HAVE_AVX2_PATH
