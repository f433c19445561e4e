// AMX-BF16 matmul (Intel Sapphire Rapids and later): the tile unit multiplies 16 x 32 bf16 inputs by
// 32 x 16 bf16 weights into 16 x 16 FP32 sums per instruction, 16x the work of an AVX-512 FMA, which
// makes verifying a whole token tree cost about one weight stream.
//
// Weights are repacked at load time into "panels": 16 weight rows by all of K (K padded to a multiple
// of 32, rows to a multiple of 16, with zeros), one 1 KB tile per 32 columns, in the tile unit's pair
// layout (tile row kk holds, for each of the 16 weight rows, elements 2kk and 2kk + 1 of its 32-column
// chunk). The input rows are rounded to bf16 once per call, so on this path a BF16 model computes as on
// the GPU (x rounded to the weight type); F16 and F32 weights are rounded to bf16 too when asked for
// (CHIMERA_CPU_AMX=all), since that changes the model's numbers.
//
// Every output row is one sequence of tile multiply-adds over K whatever the number of input rows,
// so a tree row equals the plain decode step bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/weights.h"

namespace chimera {

// Whether the CPU has AMX-TILE and AMX-BF16 and the OS lets this process use the tile data (on Linux
// the permission is requested once, here).
bool amx_bf16_available();

// A small matmul through the tile unit against the reference (bf16-rounded inputs, 1e-3 relative):
// the backend uses AMX only when this passes (false without AMX).
bool amx_self_check();

// Padded sizes and the bytes of W's panels.
inline int64_t amx_padded_rows(int64_t N) { return (N + 15) / 16 * 16; }
inline int64_t amx_padded_cols(int64_t K) { return (K + 31) / 32 * 32; }
inline size_t amx_panels_bytes(int64_t N, int64_t K) { return (size_t)amx_padded_rows(N) * amx_padded_cols(K) * 2; }

// W (F32, F16 or BF16) rounded to bf16 into panels (amx_panels_bytes bytes at dst).
void repack_amx_panels(const TensorView& W, uint8_t* dst);

// x (T, K) rounded to bf16 into xb: amx_padded_rows(T) rows of amx_padded_cols(K), zero padded.
void round_rows_bf16(const float* x, int T, int64_t K, std::vector<uint16_t>& xb);

// out (T, N) rows [n0, n1) (row stride N) = xb (from round_rows_bf16) times the panels transposed.
// Needs amx_bf16_available(); any row range is allowed.
void matmul_amx_rows(float* out, const uint16_t* xb, const uint8_t* panels, int64_t N, int64_t K, int T, int64_t n0,
                     int64_t n1);

// The same loop on a software model of the tile unit (tests on CPUs without AMX; defined by
// tests_native/test_kernels_amx_emulated.cpp's build of kernels_amx.cpp).
namespace emulated {
void matmul_amx_rows(float* out, const uint16_t* xb, const uint8_t* panels, int64_t N, int64_t K, int T, int64_t n0,
                     int64_t n1);
}

}  // namespace chimera
