// Internal interface between the fast-kernel drivers (kernels_fast.cpp: blocking, threading-free loops
// over rows, heads and slots) and the inner loops, one set per instruction set: portable C++ in
// kernels_fast.cpp, AVX2/FMA/F16C in kernels_avx2.cpp, AVX-512F tiles in kernels_avx512.cpp (AMX tiles
// are kernels_amx.cpp, behind their own header). Not part of the core's API.
#pragma once
#include <cstdint>
#include <cstring>

#include "common/dtype.h"

// The AVX2 path needs x86-64 and GCC/Clang target attributes (no global -mavx2); elsewhere only the
// portable path is built.
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CHIMERA_HAVE_AVX2_PATH 1
#else
#define CHIMERA_HAVE_AVX2_PATH 0
#endif

namespace chimera {
namespace inner {

// One register tile of a matmul, nt input rows by nn weight rows (nt <= 4, nn <= 4):
//   out[t * ldo + n] (=, or += when accumulate) sum over k in [k0, k1) of x[t * ldx + k] * W_n[k]
// where W_n starts at w + n * ldw bytes. k0 is a multiple of 32 for Q8_0; k1 - k0 may have any tail.
// For Q8_0 on the AVX2 path, xq / xs carry x quantised to Q8 blocks (quantize_q8_activations): int8
// values (row stride ldx) and one float scale per 32 (row stride ldx / 32); k0 and k1 are then
// multiples of 32.
struct MatmulTile {
  const float* x;
  int64_t ldx;
  const uint8_t* w;
  int64_t ldw;
  int64_t k0, k1;
  float* out;
  int64_t ldo;
  bool accumulate;
  const int8_t* xq = nullptr;
  const float* xs = nullptr;
  // When nonzero, the loop also asks for the weights this many bytes past each row's current position to
  // be brought into L2 (the same columns of the next tile's rows): a loop busy with several input rows
  // leaves the hardware prefetchers too few outstanding misses to keep memory busy.
  int64_t prefetch = 0;
};

// One L2 prefetch hint per 64-byte line (a no-op where the compiler has no builtin).
inline void prefetch_l2(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 2);
#else
  (void)p;
#endif
}

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

// ---- helpers shared by the tile loops of every instruction set ----

// The inner loops walk K in steps: 8 elements, or one 32-element block for Q8_0 (one scale per step).
template <DType DT>
constexpr int step_elems() {
  return DT == DType::Q8_0 ? kQ8BlockSize : 8;
}

// Address of the step that starts at element k (a multiple of step_elems) of a row.
template <DType DT>
inline const uint8_t* step_ptr(const uint8_t* row, int64_t k) {
  if constexpr (DT == DType::F32) return row + k * 4;
  else if constexpr (DT == DType::Q8_0) return row + (k / kQ8BlockSize) * kQ8BlockBytes;
  else return row + k * 2;
}

// Element k of a row of any dtype (for tails and the scalar paths).
template <DType DT>
inline float element(const uint8_t* row, int64_t k) {
  uint16_t h;
  if constexpr (DT == DType::F32) {
    float f;
    std::memcpy(&f, row + k * 4, 4);
    return f;
  } else if constexpr (DT == DType::Q8_0) {
    const uint8_t* blk = step_ptr<DT>(row, k);
    std::memcpy(&h, blk, 2);
    return fp16_to_f32(h) * (float)(int8_t)blk[2 + k % kQ8BlockSize];
  } else {
    std::memcpy(&h, row + k * 2, 2);
    return DT == DType::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
  }
}

// Adds the elements [kmain, k1) that did not fill a step to the tile's sums, then stores them.
template <DType DT, int NT, int NN>
inline void finish_tile(const MatmulTile& a, float (&sums)[NT][NN], int64_t kmain) {
  for (int t = 0; t < NT; t++) {
    for (int n = 0; n < NN; n++) {
      float s = sums[t][n];
      for (int64_t k = kmain; k < a.k1; k++) s += element<DT>(a.w + n * a.ldw, k) * a.x[t * a.ldx + k];
      float& o = a.out[t * a.ldo + n];
      o = a.accumulate ? o + s : s;
    }
  }
}

// Calls Kernels::tile<DT, NT, NN>(a) for run-time dt, nt (1..4) and nn (1..4).
template <typename Kernels, DType DT, int NT>
inline void dispatch_tile_nn(int nn, const MatmulTile& a) {
  if (nn >= 4) Kernels::template tile<DT, NT, 4>(a);
  else if (nn == 3) Kernels::template tile<DT, NT, 3>(a);
  else if (nn == 2) Kernels::template tile<DT, NT, 2>(a);
  else Kernels::template tile<DT, NT, 1>(a);
}

template <typename Kernels, DType DT>
inline void dispatch_tile_nt(int nt, int nn, const MatmulTile& a) {
  switch (nt) {
    case 1: dispatch_tile_nn<Kernels, DT, 1>(nn, a); return;
    case 2: dispatch_tile_nn<Kernels, DT, 2>(nn, a); return;
    case 3: dispatch_tile_nn<Kernels, DT, 3>(nn, a); return;
    default: dispatch_tile_nn<Kernels, DT, 4>(nn, a); return;
  }
}

template <typename Kernels>
inline void dispatch_tile(DType dt, int nt, int nn, const MatmulTile& a) {
  switch (dt) {
    case DType::F32: dispatch_tile_nt<Kernels, DType::F32>(nt, nn, a); return;
    case DType::F16: dispatch_tile_nt<Kernels, DType::F16>(nt, nn, a); return;
    case DType::BF16: dispatch_tile_nt<Kernels, DType::BF16>(nt, nn, a); return;
    case DType::Q8_0: dispatch_tile_nt<Kernels, DType::Q8_0>(nt, nn, a); return;
    default: return;  // the low-bit types have their own kernels (quant_matmul.h)
  }
}

// One group of 4 Q8_0x4 rows (q8_0x4.h) against nt (1 or 2) input rows quantised to Q8 blocks:
//   out[t * ldo + r] = row r of the group . x_t, for r in [r0, r1) (the other rows are not written).
struct Q8x4Group {
  const uint8_t* w;  // the group's first byte
  int64_t blocks;    // K / 32
  const int8_t* xq;  // (nt, ldx) int8
  const float* xs;   // (nt, ldx / 32) scales
  int64_t ldx;
  float* out;
  int64_t ldo;
  int nt;
  int r0, r1;
};

// One group of 16 Q8_0x16 rows (q8_0x16.h) against nt (1 to kQ8x16MaxRows) input rows quantised to Q8
// blocks: out[t * ldo + r] = row r of the group . x_t, for r in [r0, r1) (the other rows are not written).
constexpr int kQ8x16MaxRows = 8;
struct Q8x16Group {
  const uint8_t* w;       // the group's first byte
  int64_t blocks;         // K / 32
  const int8_t* xq;       // (nt, ldx) int8
  const float* xs;        // (nt, blocks) scales
  const int32_t* xsum;    // (nt, blocks): each input block's sum of xq
  int64_t ldx;
  float* out;
  int64_t ldo;
  int nt;
  int r0, r1;
  int64_t prefetch = 0;   // as MatmulTile::prefetch: the next group's bytes, into L2
};

// A tile of a matmul over float panels (float_panels.h: 16 weight rows per panel, column-major inside,
// so column k of the panel's rows is 16 consecutive elements) is a MatmulTile whose w is the first of
// nv panels and ldw the bytes from one panel to the next (xq and xs unused) against nt input rows:
//   out[t * ldo + 16 * v + r] = sum over k in [k0, k1) of x[t * ldx + k] * W(v, r)[k] (+ out's value when accumulate)
// Each sum is one chain of multiply-adds in k order, continued from out when accumulate: a row's result
// is the same for any tile, split of K, T or row range.
constexpr int kPanelRows = 16;
constexpr int kPanelMaxTileRows = 14;  // input rows per sweep of the weights
// Panels per tile for nt input rows: up to 24 accumulators (28 for 13 or 14 rows) of the 32 ZMM
// registers, with the panels' weight vectors and one broadcast input.
constexpr int panel_tile_width(int nt) { return nt <= 3 ? 8 : nt <= 4 ? 6 : nt <= 6 ? 4 : nt <= 8 ? 3 : 2; }

// ---- the inner loops ----

void matmul_tile_portable(DType dt, int nt, int nn, const MatmulTile& a);
// scores (G, nvis) = scale * q_g . k_idx[j]
void attention_scores_portable(const AttentionGroup& g, float* scores);
// out (G, HS) = sum_j probs[g * nvis + j] * v_idx[j]
void attention_values_portable(const AttentionGroup& g, const float* probs, float* out);

#if CHIMERA_HAVE_AVX2_PATH
void matmul_tile_avx2(DType dt, int nt, int nn, const MatmulTile& a);
constexpr int kAvx512TileRows = 6;
void attention_scores_avx2(const AttentionGroup& g, float* scores);
void attention_values_avx2(const AttentionGroup& g, const float* probs, float* out);
void matmul_q8x4_group_avx2(const Q8x4Group& a);
// AVX-512 VNNI (q8_0x16_vnni.cpp); only where q8x16_vnni_supported().
bool q8x16_vnni_supported();
void matmul_q8x16_group_vnni(const Q8x16Group& a);
namespace native {
// F32, F16, BF16; nt 1 to kAvx512TileRows input rows.
void matmul_tile_avx512(DType dt, int nt, int nn, const MatmulTile& a);
// F32, F16, BF16 panels; nt 1 to kPanelMaxTileRows input rows, nv panel_tile_width(nt) or 1 panel.
void matmul_panel_tile_avx512(DType dt, int nt, int nv, const MatmulTile& a);
}
#endif

}  // namespace inner
}  // namespace chimera
