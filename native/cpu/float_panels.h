// F32, F16 and BF16 weights repacked into panels for the AVX-512 path ("float panels"), at load time, by
// the CPU backend.
//
// The plain kernels take a dot product per (input row, weight row): each accumulator holds 16 partial
// sums of one row, so every 16 columns cost a vector load of each input row, and each chunk ends in
// horizontal sums. In a panel, one vector of weights holds column k of 16 weight rows, so a column is
// one multiply-add per input row with its element k broadcast: an accumulator holds 16 rows' sums, the
// input is read 4 bytes per column, and up to 14 input rows share one read of the weights from memory.
// Measured on Zen 5 (two threads, an FFN matrix of the 1.1B shape): 8 input rows cost what 1 row costs,
// where the plain kernels took 1.4x; 14 rows cost 1.25x.
//
//   rows are grouped by 16 into panels; panel g (rows 16g .. 16g + 15) is one contiguous run of 16 * K
//   elements where element (16g + r, k) is at 16 * k + r, starting where plain row 16g would start. The
//   last panel is padded with zero rows when N is not a multiple of 16 (float_panels_bytes).
//
// A row's result is one chain of fused multiply-adds over k in order, from zero: the same for every
// number of input rows, every split of K into blocks and every row range, which lossless verification
// needs (a tree row must equal the plain decode step).
//
// AVX-512 only: AVX2 tiles of this layout (a column as two YMM, up to 6 input rows by one panel) were
// faster up to 6 rows but 8-15% slower from 8 to 16 rows than the plain AVX2 tiles (measured on Zen 5
// with the path forced to avx2), and one matrix cannot mix the two (a row's sums must not depend on T).
#pragma once
#include <cstdint>

#include "common/weights.h"

namespace chimera {

// Whether this CPU runs the panel kernels (the AVX-512 path); whether the type is one of theirs.
bool float_panels_supported();
bool float_panels_dtype(DType dt);

// Bytes of the panel copy of a rows x cols matrix of type dt (rows rounded up to a multiple of 16).
size_t float_panels_bytes(DType dt, int64_t rows, int64_t cols);

// Writes rows [n0, n1) of W (F32, F16 or BF16) in the panel layout to dst, which holds
// float_panels_bytes(W.dtype, W.rows, W.cols) bytes; n0 and n1 are multiples of 16 or W.rows (so callers
// can split the work over threads).
void repack_float_panels(const TensorView& W, uint8_t* dst, int64_t n0, int64_t n1);

// Element (row, col) of a panel matrix of `rows` x `cols`, as a float (tests).
float float_panels_element(DType dt, const uint8_t* packed, int64_t rows, int64_t cols, int64_t row, int64_t col);

// out (T, N) rows [n0, n1) (row stride N) = x (T, K) times the panel matrix `packed` (N x K, type dt)
// transposed. Needs float_panels_supported(); any row range is allowed.
void matmul_float_panels_rows(DType dt, float* out, const float* x, const uint8_t* packed, int64_t N, int64_t K, int T,
                              int64_t n0, int64_t n1);

}  // namespace chimera
