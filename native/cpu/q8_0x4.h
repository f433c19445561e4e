// Q8_0 weights repacked for the AVX2 decode kernels ("Q8_0x4"), at load time, by the CPU backend
// (a CPU with AVX-512 VNNI gets Q8_0x16 instead, q8_0x16.h).
//
// Plain Q8_0 (ggml) stores each row as 34-byte blocks: an F16 scale, then 32 int8 values. A decode
// step reads many rows at once, and four short rows read side by side (2 KB apart, not page aligned)
// stream from DRAM at about half the speed of one long run; the scales, one 2-byte load per block,
// also cost more instructions than the integer dot product itself. Q8_0x4 fixes both:
//
//   rows are grouped by four; a group of 4 rows x K columns is one contiguous run of 4 * K / 32 * 34
//   bytes, cut into chunks of up to 8 blocks (256 columns). A chunk of m blocks holds
//     [ 4 x m F16 scales, row by row ][ m x 4 x 32 int8 values: block j of row r at (j * 4 + r) * 32 ]
//   The last N % 4 rows follow the groups in plain Q8_0 layout.
//
// The repacked matrix has the same size as the plain one, so every row, group or tail, starts where
// plain row n would start. Every row is summed in the same order whatever the number of input rows
// or the row range of the call, so a token tree's rows equal the plain decode step bit for bit.
#pragma once
#include <cstdint>

#include "common/weights.h"
#include "cpu/kernels_cpu.h"

namespace chimera {

constexpr int kQ8x4Rows = 4;        // rows per group
constexpr int kQ8x4ChunkBlocks = 8;  // blocks per chunk

// Writes W (Q8_0, cols a multiple of 32) in Q8_0x4 layout to dst (W.bytes() bytes).
void repack_q8_0x4(const TensorView& W, uint8_t* dst);

// Element (row, col) of a Q8_0x4 matrix of `rows` x `cols`, decoded to float (tests, tails).
float q8_0x4_element(const uint8_t* packed, int64_t rows, int64_t cols, int64_t row, int64_t col);

// out (T, N) rows [n0, n1) (row stride N) = x (T, K) times the Q8_0x4 matrix `packed` (N x K)
// transposed, with x quantised to Q8 blocks in xq (quantize_q8_activations). Needs the AVX2 path
// (cpu_supports(KernelPath::Avx2)); any row range is allowed.
void matmul_q8_0x4_rows(float* out, const float* x, const Q8Activations& xq, const uint8_t* packed, int64_t N,
                        int64_t K, int T, int64_t n0, int64_t n1);

}  // namespace chimera
