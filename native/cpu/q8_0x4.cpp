// The Q8_0x4 layout (q8_0x4.h): repacking, element access and the matmul driver over row groups.
#include "cpu/q8_0x4.h"

#include <algorithm>
#include <cstring>

#include "common/dtype.h"
#include "common/error.h"
#include "cpu/kernels_inner.h"
#include "cpu/q8_groups.h"

namespace chimera {

void repack_q8_0x4(const TensorView& W, uint8_t* dst) {
  CHIMERA_CHECK(W.dtype == DType::Q8_0 && W.cols % kQ8BlockSize == 0 && W.rows >= 0, ErrorCode::Internal,
                "repack_q8_0x4 needs a Q8_0 matrix with whole blocks, got ", dtype_name(W.dtype), " (", W.rows, ", ",
                W.cols, ")");
  const int64_t nb = W.cols / kQ8BlockSize, ldw = q8_row_bytes(W.cols);
  const int64_t full = W.rows / kQ8x4Rows * kQ8x4Rows;
  for (int64_t g = 0; g < full; g += kQ8x4Rows) {
    uint8_t* group = dst + g * ldw;
    for (int64_t b0 = 0; b0 < nb; b0 += kQ8x4ChunkBlocks) {
      const Q8ChunkAt c = q8_chunk_at<kQ8x4Rows, kQ8x4ChunkBlocks>(nb, b0);
      uint8_t* scales = group + c.offset;
      uint8_t* quants = scales + 2 * kQ8x4Rows * c.blocks;
      for (int r = 0; r < kQ8x4Rows; r++) {
        const uint8_t* src_row = W.row(g + r);
        for (int j = 0; j < c.blocks; j++) {
          const uint8_t* blk = src_row + (b0 + j) * kQ8BlockBytes;
          std::memcpy(scales + 2 * (r * c.blocks + j), blk, 2);
          std::memcpy(quants + (int64_t)(j * kQ8x4Rows + r) * kQ8BlockSize, blk + 2, kQ8BlockSize);
        }
      }
    }
  }
  if (W.rows > full) std::memcpy(dst + full * ldw, W.row(full), (size_t)((W.rows - full) * ldw));
}

float q8_0x4_element(const uint8_t* packed, int64_t rows, int64_t cols, int64_t row, int64_t col) {
  const int64_t nb = cols / kQ8BlockSize, ldw = q8_row_bytes(cols), block = col / kQ8BlockSize;
  const int64_t full = rows / kQ8x4Rows * kQ8x4Rows;
  uint16_t h;
  if (row >= full) {
    const uint8_t* blk = packed + row * ldw + block * kQ8BlockBytes;
    std::memcpy(&h, blk, 2);
    return fp16_to_f32(h) * (float)(int8_t)blk[2 + col % kQ8BlockSize];
  }
  const int r = (int)(row % kQ8x4Rows);
  const Q8ChunkAt c = q8_chunk_at<kQ8x4Rows, kQ8x4ChunkBlocks>(nb, block);
  const uint8_t* scales = packed + (row - r) * ldw + c.offset;
  const uint8_t* quants = scales + 2 * kQ8x4Rows * c.blocks;
  std::memcpy(&h, scales + 2 * (r * c.blocks + c.index), 2);
  return fp16_to_f32(h) * (float)(int8_t)quants[(int64_t)(c.index * kQ8x4Rows + r) * kQ8BlockSize + col % kQ8BlockSize];
}

void matmul_q8_0x4_rows(float* out, const float* x, const Q8Activations& xq, const uint8_t* packed, int64_t N,
                        int64_t K, int T, int64_t n0, int64_t n1) {
  CHIMERA_CHECK(cpu_supports(KernelPath::Avx2) && xq.q && K % kQ8BlockSize == 0, ErrorCode::Internal,
                "matmul_q8_0x4_rows needs the AVX2 path, Q8 activations and whole blocks");
  n0 = std::max<int64_t>(n0, 0);
  n1 = std::min<int64_t>(n1, N);
  if (T <= 0 || n0 >= n1) return;
  const int64_t ldw = q8_row_bytes(K), full = N / kQ8x4Rows * kQ8x4Rows;
#if CHIMERA_HAVE_AVX2_PATH
  // Each group's 4 rows (at most K / 32 * 136 bytes, in L1/L2) are swept by every pair of input rows.
  for (int64_t g = n0 / kQ8x4Rows * kQ8x4Rows; g < std::min(n1, full); g += kQ8x4Rows) {
    inner::Q8x4Group a;
    a.w = packed + g * ldw;
    a.blocks = K / kQ8BlockSize;
    a.r0 = (int)std::max<int64_t>(n0 - g, 0);
    a.r1 = (int)std::min<int64_t>(n1 - g, kQ8x4Rows);
    a.ldo = N;
    for (int t0 = 0; t0 < T; t0 += 2) {
      a.nt = std::min(2, T - t0);
      a.xq = xq.q + (int64_t)t0 * K;
      a.xs = xq.s + (int64_t)t0 * a.blocks;
      a.ldx = K;
      a.out = out + (int64_t)t0 * N + g;
      inner::matmul_q8x4_group_avx2(a);
    }
  }
#endif
  // The tail rows are plain Q8_0 rows at their plain offsets.
  if (n1 > full)
    matmul_rows(KernelPath::Avx2, out, x, TensorView{DType::Q8_0, packed, N, K}, T, std::max(n0, full), n1, &xq);
}

}  // namespace chimera
