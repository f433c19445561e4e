// Internal interface between the fast-kernel drivers (kernels_fast.cpp: blocking, threading-free loops
// over rows, heads and slots) and the inner loops, one set per instruction set: portable C++ in
// kernels_fast.cpp, AVX2/FMA/F16C in kernels_avx2.cpp. Not part of the core's API.
#pragma once
#include <cstdint>

#include "dtype.h"

// The AVX2 path needs x86-64 and GCC/Clang target attributes (no global -mavx2); elsewhere only the
// portable path is built.
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CHIMERA_HAVE_AVX2_PATH 1
#else
#define CHIMERA_HAVE_AVX2_PATH 0
#endif

namespace chimera {
namespace inner {

// One register tile of a matmul, nt input rows by nn weight rows (nt <= 4, nn in {1, 2, 4}):
//   out[t * ldo + n] (=, or += when accumulate) sum over k in [k0, k1) of x[t * ldx + k] * W_n[k]
// where W_n starts at w + n * ldw bytes. k0 is a multiple of 32 for Q8_0; k1 - k0 may have any tail.
struct MatmulTile {
  const float* x;
  int64_t ldx;
  const uint8_t* w;
  int64_t ldw;
  int64_t k0, k1;
  float* out;
  int64_t ldo;
  bool accumulate;
};

// G query heads (adjacent, HS floats each) that share one KV head, over the visible slots idx[0..nvis).
// Slot j's key is k + j * ld, its value v + j * ld.
struct AttentionGroup {
  const float* q;
  const float* k;
  const float* v;
  int64_t ld;
  const int32_t* idx;
  int nvis;
  int G;
  int HS;
  float scale;  // 1 / sqrt(HS)
};

void matmul_tile_portable(DType dt, int nt, int nn, const MatmulTile& a);
// scores (G, nvis) = scale * q_g . k_idx[j]
void attention_scores_portable(const AttentionGroup& g, float* scores);
// out (G, HS) = sum_j probs[g * nvis + j] * v_idx[j]
void attention_values_portable(const AttentionGroup& g, const float* probs, float* out);

#if CHIMERA_HAVE_AVX2_PATH
void matmul_tile_avx2(DType dt, int nt, int nn, const MatmulTile& a);
void attention_scores_avx2(const AttentionGroup& g, float* scores);
void attention_values_avx2(const AttentionGroup& g, const float* probs, float* out);
#endif

}  // namespace inner
}  // namespace chimera
