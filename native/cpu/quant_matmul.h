// Matmuls over Q4_0 and k-quant (Q4_K, Q5_K, Q6_K) weights, the types of the GGUFs people download.
// As in llama.cpp, x is quantised too (Q8 blocks of 32 for Q4_0, Q8_K for the k-quants) and each block's
// dot product is exact integer arithmetic, scaled once by the weight and x scales. Two kernels share
// that arithmetic: a portable one (plain C++) and an AVX2 one (with VPDPWSSD on AVX-512 VNNI CPUs). Each row's
// result is computed the same way whatever T, the row range or the group of input rows it is in, so a
// token tree's rows equal the plain decode step bit for bit.
#pragma once
#include <cstdint>

#include "common/weights.h"
#include "cpu/kernels_cpu.h"

namespace chimera {

// out (T, N) for W rows [n0, n1) (row stride N = W.rows), x given quantised (quantize_activations_for).
// W.cols must be a multiple of W's block (32 for Q4_0, 256 for the k-quants). Path Portable or above.
void matmul_low_bit_rows(KernelPath path, float* out, const TensorView& W, int T, int64_t n0, int64_t n1,
                         const Q8Activations& xq);

namespace inner {
// res[i] = row . x row (t0 + i) for i < nt (nt <= kLowBitMaxRows), K values of one weight row of type dt.
constexpr int kLowBitMaxRows = 8;
void low_bit_dot_portable(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, int nt,
                          float* res);
void low_bit_dot_avx2(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, int nt, float* res);
// The same with AVX-512 VNNI (when low_bit_vnni_supported()).
void low_bit_dot_vnni(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, int nt, float* res);
bool low_bit_vnni_supported();
// One 256-value block of quantize_q8k_activations (q, its scale d, its 16 sums of 16): the plain loop,
// and the same bytes with AVX2.
void quantize_q8k_block_portable(const float* x, int8_t* q, float* d, int16_t* bsum16);
void quantize_q8k_block_avx2(const float* x, int8_t* q, float* d, int16_t* bsum16);
}  // namespace inner

}  // namespace chimera
