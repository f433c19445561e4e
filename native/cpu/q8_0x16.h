// Q8_0 weights repacked for the AVX-512 VNNI kernels ("Q8_0x16"), at load time, by the CPU backend,
// where the CPU has AVX-512 VNNI (the AVX2 path keeps Q8_0x4, q8_0x4.h).
//
// VPDPBUSD multiplies 64 unsigned bytes by 64 signed bytes and sums each group of four into one of 16
// 32-bit lanes. Give each lane a different weight row and broadcast four input values to every lane:
// eight such instructions then hold 16 rows' whole integer dot products with one 32-value block, with
// no shuffles, and each (row, block) is converted and scaled once (the Q8_0x4 kernels scale partial
// sums of 4 values: several times the float work per multiply-add). So:
//
//   rows are grouped by 16; a group of 16 rows x K columns is one contiguous run of 16 * K / 32 * 34
//   bytes, cut into chunks of up to 2 blocks (64 columns). A chunk of m blocks holds
//     [ m x 16 F16 scales: block j of row r at (j * 16 + r) * 2 ]
//     [ m x 8 x 16 x 4 bytes: values 4q..4q+3 of block j of row r at ((j * 8 + q) * 16 + r) * 4 ]
//   Values are stored plus 128, as unsigned bytes (VPDPBUSD's unsigned operand); the kernel subtracts
//   128 * (sum of the input block) to get the exact signed dot product. The last N % 16 rows follow the
//   groups in plain Q8_0 layout.
//
// A chunk of 2 blocks is 1088 bytes = 17 cache lines (loads stay aligned where K is a multiple of 64
// and the copy is aligned). The repacked matrix has the same size as the plain one, and every row, group or tail, starts
// where plain row n would start. A row's result is its blocks' exact integer dot products, each times
// d_w * d_x, summed in order in F32: the same for every number of input rows and every row range.
#pragma once
#include <cstdint>

#include "common/weights.h"
#include "cpu/kernels_cpu.h"

namespace chimera {

constexpr int kQ8x16Rows = 16;        // rows per group
constexpr int kQ8x16ChunkBlocks = 2;  // blocks per chunk

// Whether this CPU runs the Q8_0x16 kernels (AVX-512F/BW and VNNI).
bool q8_0x16_supported();

// Writes W (Q8_0, cols a multiple of 32) in Q8_0x16 layout to dst (W.bytes() bytes).
void repack_q8_0x16(const TensorView& W, uint8_t* dst);

// Element (row, col) of a Q8_0x16 matrix of `rows` x `cols`, decoded to float (tests).
float q8_0x16_element(const uint8_t* packed, int64_t rows, int64_t cols, int64_t row, int64_t col);

// out (T, N) rows [n0, n1) (row stride N) = x (T, K) times the Q8_0x16 matrix `packed` (N x K)
// transposed, with x quantised to Q8 blocks in xq (quantize_q8_activations, with its block sums). Needs
// q8_0x16_supported(); any row range is allowed.
void matmul_q8_0x16_rows(float* out, const float* x, const Q8Activations& xq, const uint8_t* packed, int64_t N,
                         int64_t K, int T, int64_t n0, int64_t n1);

}  // namespace chimera
