// AVX2/FMA/F16C inner loops of the CPU matmul and attention. Each function carries
// __attribute__((target(...))) instead of the file being built with -mavx2: the one binary runs on any
// x86-64, and these are only reached after cpu_supports(KernelPath::Avx2) said yes. Other targets
// compile this file to nothing.
#include <algorithm>
#include <cstring>

#include "cpu/simd_avx2.h"

#if CHIMERA_HAVE_AVX2_PATH

namespace chimera {
namespace inner {
namespace {


// The Q8_0 block scale of the step at p, broadcast (unused for the other dtypes).
template <DType DT>
CHIMERA_AVX2_INLINE __m256 step_scale8(const uint8_t* p) {
  if constexpr (DT != DType::Q8_0) return _mm256_setzero_ps();
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _mm256_set1_ps(_cvtsh_ss(h));
}

// Eight weights of group g (0..step/8) of the step at p, converted to F32 in a register.
template <DType DT>
CHIMERA_AVX2_INLINE __m256 load8(const uint8_t* p, int g, __m256 d) {
  (void)d;
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p) + 8 * g);
  } else if constexpr (DT == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * g)));
  } else if constexpr (DT == DType::BF16) {
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * g)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
  } else {
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + 8 * g));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
  }
}

// One step (8 columns, or one Q8_0 block): NN weight rows converted once, FMA'd with NT input rows.
template <DType DT, int NT, int NN>
CHIMERA_AVX2_INLINE void step(const float* x, int64_t ldx, const uint8_t* w, int64_t ldw, int64_t k,
                              __m256 (&acc)[NT][NN]) {
  constexpr int kStep = step_elems<DT>();
  const uint8_t* p[NN];
  __m256 d[NN];
  CHIMERA_UNROLL for (int n = 0; n < NN; n++) {
    p[n] = step_ptr<DT>(w + n * ldw, k);
    d[n] = step_scale8<DT>(p[n]);
  }
  CHIMERA_UNROLL for (int g = 0; g < kStep / 8; g++) {
    __m256 wv[NN];
    CHIMERA_UNROLL for (int n = 0; n < NN; n++) wv[n] = load8<DT>(p[n], g, d[n]);
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
      const __m256 xv = _mm256_loadu_ps(x + t * ldx + k + 8 * g);
      CHIMERA_UNROLL for (int n = 0; n < NN; n++) acc[t][n] = _mm256_fmadd_ps(wv[n], xv, acc[t][n]);
    }
  }
}

// Steps per 64-byte line of a weight row (a Q8_0 block is 34 bytes: two per prefetch).
template <DType DT>
constexpr int steps_per_line() {
  return DT == DType::Q8_0 ? 2 : DT == DType::F32 ? 2 : 4;
}

struct Avx2Kernels {
  // Each step converts the weights of NN rows once and FMAs them into NT x NN accumulators. The fields of
  // `a` are copied to locals so the compiler keeps the tile in registers across the loop.
  template <DType DT, int NT, int NN>
  CHIMERA_AVX2 static void tile(const MatmulTile& a) {
    constexpr int kStep = step_elems<DT>();
    const float* const x = a.x;
    const uint8_t* const w = a.w;
    const int64_t ldx = a.ldx, ldw = a.ldw, k0 = a.k0;
    const int64_t kmain = k0 + (a.k1 - k0) / kStep * kStep;
    __m256 acc[NT][NN];
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
      CHIMERA_UNROLL for (int n = 0; n < NN; n++) acc[t][n] = _mm256_setzero_ps();
    }
    int64_t k = k0;
    if (a.prefetch) {
      constexpr int64_t kLine = (int64_t)steps_per_line<DT>() * kStep;
      for (; k + kLine <= kmain; k += kLine) {
        CHIMERA_UNROLL for (int n = 0; n < NN; n++) prefetch_l2(step_ptr<DT>(w + n * ldw, k) + a.prefetch);
        CHIMERA_UNROLL for (int64_t s = 0; s < kLine; s += kStep) step<DT>(x, ldx, w, ldw, k + s, acc);
      }
    }
    for (; k < kmain; k += kStep) step<DT>(x, ldx, w, ldw, k, acc);
    float sums[NT][NN];
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
      CHIMERA_UNROLL for (int n = 0; n < NN; n++) sums[t][n] = hsum8(acc[t][n]);
    }
    finish_tile<DT, NT, NN>(a, sums, kmain);
  }
};

// Q8_0 weights times x quantised to Q8 blocks: per 32-element block an exact integer dot product
// (|w| as unsigned bytes times x with w's sign, pairwise into 16 then 32 bits; |w| <= 128 and
// |x| <= 127 cannot saturate), scaled by d_w * d_x into F32 accumulators.
template <int NT, int NN>
CHIMERA_AVX2 void tile_q8q8(const MatmulTile& a) {
  const int64_t b0 = a.k0 / kQ8BlockSize, b1 = a.k1 / kQ8BlockSize, ldq = a.ldx, lds = a.ldx / kQ8BlockSize;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[NT][NN];
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
    CHIMERA_UNROLL for (int n = 0; n < NN; n++) acc[t][n] = _mm256_setzero_ps();
  }
  for (int64_t b = b0; b < b1; b++) {
    if (a.prefetch && ((b - b0) & 1) == 0) {
      CHIMERA_UNROLL for (int n = 0; n < NN; n++) prefetch_l2(a.w + n * a.ldw + b * kQ8BlockBytes + a.prefetch);
    }
    __m256i xv[NT];
    float xd[NT];
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
      xv[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.xq + t * ldq + b * kQ8BlockSize));
      xd[t] = a.xs[t * lds + b];
    }
    CHIMERA_UNROLL for (int n = 0; n < NN; n++) {
      const uint8_t* blk = a.w + n * a.ldw + b * kQ8BlockBytes;
      uint16_t h;
      std::memcpy(&h, blk, 2);
      const float dw = _cvtsh_ss(h);
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m256i aw = _mm256_sign_epi8(wq, wq);
      CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
        const __m256i sx = _mm256_sign_epi8(xv[t], wq);
        const __m256i p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), ones);
        acc[t][n] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xd[t]), _mm256_cvtepi32_ps(p32), acc[t][n]);
      }
    }
  }
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
    CHIMERA_UNROLL for (int n = 0; n < NN; n++) {
      const float sum = hsum8(acc[t][n]);
      float& o = a.out[t * a.ldo + n];
      o = a.accumulate ? o + sum : sum;
    }
  }
}

struct Avx2Q8Kernels {
  template <DType DT, int NT, int NN>
  static void tile(const MatmulTile& a) {
    tile_q8q8<NT, NN>(a);
  }
};

CHIMERA_AVX2_INLINE float dot(const float* a, const float* b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  if (i + 8 <= n) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    i += 8;
  }
  float s = hsum8(_mm256_add_ps(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// o (n) += p * v (n)
CHIMERA_AVX2_INLINE void axpy(float* o, float p, const float* v, int n) {
  const __m256 pv = _mm256_set1_ps(p);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(o + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(o + i)));
  for (; i < n; i++) o[i] += p * v[i];
}

// A Q8_0x4 group (q8_0x4.h) against NT input rows. Per chunk of up to 8 blocks, the 4 x 8 weight
// scales are converted in 4 instructions and multiplied by the 8 x scales at once; each block then
// broadcasts its product from memory (a plain load) into the same integer dot product as tile_q8q8.
// Each (t, r) sums its blocks in order in one accumulator, whatever NT, r0 and r1 are.
template <int NT, int M>
CHIMERA_AVX2_INLINE void q8x4_chunk(const uint8_t* chunk, int m, const int8_t* xq, const float* xs, int64_t ldx,
                                    int64_t b0, __m256 (&acc)[NT][4]) {
  constexpr int kR = 4;
  const int blocks = M > 0 ? M : m;
  const __m256i ones = _mm256_set1_epi16(1);
  alignas(32) float dd[NT][kR][8];
  __m256 xsv[NT];
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
    if constexpr (M == 8) {
      xsv[t] = _mm256_loadu_ps(xs + t * (ldx / kQ8BlockSize) + b0);
    } else {
      alignas(32) float tmp[8] = {};
      std::memcpy(tmp, xs + t * (ldx / kQ8BlockSize) + b0, sizeof(float) * blocks);
      xsv[t] = _mm256_load_ps(tmp);
    }
  }
  CHIMERA_UNROLL for (int r = 0; r < kR; r++) {
    __m256 dw;
    if constexpr (M == 8) {
      dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk + 16 * r)));
    } else {
      alignas(16) uint16_t tmp[8] = {};
      std::memcpy(tmp, chunk + 2 * r * blocks, 2 * blocks);
      dw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
    }
    CHIMERA_UNROLL for (int t = 0; t < NT; t++) _mm256_store_ps(dd[t][r], _mm256_mul_ps(dw, xsv[t]));
  }
  const uint8_t* quants = chunk + 2 * kR * blocks;
  for (int j = 0; j < blocks; j++) {
    __m256i xv[NT];
    CHIMERA_UNROLL for (int t = 0; t < NT; t++)
      xv[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * ldx + (b0 + j) * kQ8BlockSize));
    CHIMERA_UNROLL for (int r = 0; r < kR; r++) {
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants + (j * kR + r) * kQ8BlockSize));
      const __m256i aw = _mm256_sign_epi8(wq, wq);
      CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
        const __m256i p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv[t], wq)), ones);
        acc[t][r] = _mm256_fmadd_ps(_mm256_broadcast_ss(&dd[t][r][j]), _mm256_cvtepi32_ps(p32), acc[t][r]);
      }
    }
  }
}

template <int NT>
CHIMERA_AVX2 void q8x4_group(const Q8x4Group& a) {
  constexpr int kR = 4, kChunk = 8;
  __m256 acc[NT][kR];
  CHIMERA_UNROLL for (int t = 0; t < NT; t++) {
    CHIMERA_UNROLL for (int r = 0; r < kR; r++) acc[t][r] = _mm256_setzero_ps();
  }
  const int64_t full = a.blocks / kChunk * kChunk;
  for (int64_t b0 = 0; b0 < full; b0 += kChunk)
    q8x4_chunk<NT, kChunk>(a.w + b0 * kR * kQ8BlockBytes, kChunk, a.xq, a.xs, a.ldx, b0, acc);
  if (full < a.blocks)
    q8x4_chunk<NT, 0>(a.w + full * kR * kQ8BlockBytes, (int)(a.blocks - full), a.xq, a.xs, a.ldx, full, acc);
  for (int t = 0; t < NT; t++)
    for (int r = a.r0; r < a.r1; r++) a.out[t * a.ldo + r] = hsum8(acc[t][r]);
}

}  // namespace

void matmul_q8x4_group_avx2(const Q8x4Group& a) {
  if (a.nt >= 2) q8x4_group<2>(a);
  else q8x4_group<1>(a);
}

void matmul_tile_avx2(DType dt, int nt, int nn, const MatmulTile& a) {
  if (dt == DType::Q8_0 && a.xq) return dispatch_tile_nt<Avx2Q8Kernels, DType::Q8_0>(nt, nn, a);
  dispatch_tile<Avx2Kernels>(dt, nt, nn, a);
}

// Lane i = the sum of v[i]'s lanes, all eight summed by the same tree: ((0+1)+(2+3)) + ((4+5)+(6+7)).
CHIMERA_AVX2_INLINE __m256 hsum8x8(const __m256 (&v)[8]) {
  const __m256 b0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 b1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(b0, b1, 0x20), _mm256_permute2f128_ps(b0, b1, 0x31));
}

// Scores eight keys at a time per head: eight accumulators, one reduction tree for the eight (a dot
// product's horizontal sum each cost as much as its multiply-adds at HS = 64). A short last block
// repeats its last key, so every score is computed the same way wherever its key falls: a tree row's
// scores equal the decode step's bit for bit.
CHIMERA_AVX2 void attention_scores_avx2(const AttentionGroup& g, float* scores) {
  if (g.HS % 8 != 0) {
    for (int j = 0; j < g.nvis; j++) {
      const float* k = g.k + (int64_t)g.idx[j] * g.ld;
      for (int h = 0; h < g.G; h++) scores[(int64_t)h * g.nvis + j] = g.scale * dot(g.q + (int64_t)h * g.HS, k, g.HS);
    }
    return;
  }
  const __m256 scale = _mm256_set1_ps(g.scale);
  for (int j0 = 0; j0 < g.nvis; j0 += 8) {
    const int n = std::min(8, g.nvis - j0);
    const float* k[8];
    for (int i = 0; i < 8; i++) k[i] = g.k + (int64_t)g.idx[j0 + std::min(i, n - 1)] * g.ld;
    for (int h = 0; h < g.G; h++) {
      const float* q = g.q + (int64_t)h * g.HS;
      __m256 acc[8];
      for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
      for (int c = 0; c < g.HS; c += 8) {
        const __m256 qv = _mm256_loadu_ps(q + c);
        for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[i] + c), acc[i]);
      }
      float out[8];
      _mm256_storeu_ps(out, _mm256_mul_ps(scale, hsum8x8(acc)));
      std::memcpy(scores + (int64_t)h * g.nvis + j0, out, sizeof(float) * n);
    }
  }
}

CHIMERA_AVX2 void attention_values_avx2(const AttentionGroup& g, const float* probs, float* out) {
  for (int64_t i = 0; i < (int64_t)g.G * g.HS; i++) out[i] = 0.f;
  for (int j = 0; j < g.nvis; j++) {
    const float* v = g.v + (int64_t)g.idx[j] * g.ld;
    for (int h = 0; h < g.G; h++) axpy(out + (int64_t)h * g.HS, probs[(int64_t)h * g.nvis + j], v, g.HS);
  }
}

}  // namespace inner
}  // namespace chimera

#endif  // CHIMERA_HAVE_AVX2_PATH
