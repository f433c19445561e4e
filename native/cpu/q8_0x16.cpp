// The Q8_0x16 layout (q8_0x16.h): repacking, element access and the matmul driver over row groups.
#include "cpu/q8_0x16.h"

#include <algorithm>
#include <cstring>

#include "common/dtype.h"
#include "common/error.h"
#include "cpu/kernels_inner.h"
#include "cpu/q8_groups.h"

namespace chimera {

namespace {

constexpr int kQuads = kQ8BlockSize / 4;  // groups of 4 values per block

}  // namespace

bool q8_0x16_supported() { return inner::q8x16_vnni_supported(); }

void repack_q8_0x16(const TensorView& W, uint8_t* dst) {
  CHIMERA_CHECK(W.dtype == DType::Q8_0 && W.cols % kQ8BlockSize == 0 && W.rows >= 0, ErrorCode::Internal,
                "repack_q8_0x16 needs a Q8_0 matrix with whole blocks, got ", dtype_name(W.dtype), " (", W.rows,
                ", ", W.cols, ")");
  const int64_t nb = W.cols / kQ8BlockSize, ldw = q8_row_bytes(W.cols);
  const int64_t full = W.rows / kQ8x16Rows * kQ8x16Rows;
  for (int64_t g = 0; g < full; g += kQ8x16Rows) {
    uint8_t* group = dst + g * ldw;
    for (int64_t b0 = 0; b0 < nb; b0 += kQ8x16ChunkBlocks) {
      const Q8ChunkAt c = q8_chunk_at<kQ8x16Rows, kQ8x16ChunkBlocks>(nb, b0);
      uint8_t* scales = group + c.offset;
      uint8_t* quants = scales + 2 * kQ8x16Rows * c.blocks;
      for (int r = 0; r < kQ8x16Rows; r++) {
        const uint8_t* src_row = W.row(g + r);
        for (int j = 0; j < c.blocks; j++) {
          const uint8_t* blk = src_row + (b0 + j) * kQ8BlockBytes;
          std::memcpy(scales + 2 * (j * kQ8x16Rows + r), blk, 2);
          for (int q = 0; q < kQuads; q++)
            for (int e = 0; e < 4; e++)
              quants[((j * kQuads + q) * kQ8x16Rows + r) * 4 + e] = (uint8_t)(blk[2 + 4 * q + e] ^ 0x80);
        }
      }
    }
  }
  if (W.rows > full) std::memcpy(dst + full * ldw, W.row(full), (size_t)((W.rows - full) * ldw));
}

float q8_0x16_element(const uint8_t* packed, int64_t rows, int64_t cols, int64_t row, int64_t col) {
  const int64_t nb = cols / kQ8BlockSize, ldw = q8_row_bytes(cols), block = col / kQ8BlockSize;
  const int64_t full = rows / kQ8x16Rows * kQ8x16Rows;
  uint16_t h;
  if (row >= full) {
    const uint8_t* blk = packed + row * ldw + block * kQ8BlockBytes;
    std::memcpy(&h, blk, 2);
    return fp16_to_f32(h) * (float)(int8_t)blk[2 + col % kQ8BlockSize];
  }
  const int r = (int)(row % kQ8x16Rows);
  const Q8ChunkAt c = q8_chunk_at<kQ8x16Rows, kQ8x16ChunkBlocks>(nb, block);
  const uint8_t* scales = packed + (row - r) * ldw + c.offset;
  const uint8_t* quants = scales + 2 * kQ8x16Rows * c.blocks;
  std::memcpy(&h, scales + 2 * (c.index * kQ8x16Rows + r), 2);
  const int i = (int)(col % kQ8BlockSize);
  const uint8_t u = quants[((c.index * kQuads + i / 4) * kQ8x16Rows + r) * 4 + i % 4];
  return fp16_to_f32(h) * (float)((int)u - 128);
}

void matmul_q8_0x16_rows(float* out, const float* x, const Q8Activations& xq, const uint8_t* packed, int64_t N,
                         int64_t K, int T, int64_t n0, int64_t n1) {
  CHIMERA_CHECK(q8_0x16_supported() && xq.q && xq.sum && K % kQ8BlockSize == 0, ErrorCode::Internal,
                "matmul_q8_0x16_rows needs AVX-512 VNNI, Q8 activations with block sums and whole blocks");
  n0 = std::max<int64_t>(n0, 0);
  n1 = std::min<int64_t>(n1, N);
  if (T <= 0 || n0 >= n1) return;
  const int64_t ldw = q8_row_bytes(K), full = N / kQ8x16Rows * kQ8x16Rows, nb = K / kQ8BlockSize;
  for (int64_t g = n0 / kQ8x16Rows * kQ8x16Rows; g < std::min(n1, full); g += kQ8x16Rows) {
    inner::Q8x16Group a;
    a.w = packed + g * ldw;
    a.blocks = nb;
    a.r0 = (int)std::max<int64_t>(n0 - g, 0);
    a.r1 = (int)std::min<int64_t>(n1 - g, kQ8x16Rows);
    a.ldo = N;
    a.ldx = K;
    // The group's first pass streams it from memory; meanwhile the next group is asked into L2.
    // (One input row keeps up with memory without it, and runs a little slower with it.)
    a.prefetch = T > 1 && g + kQ8x16Rows < std::min(n1, full) ? kQ8x16Rows * ldw : 0;
    for (int t0 = 0; t0 < T; t0 += inner::kQ8x16MaxRows) {
      a.nt = std::min(inner::kQ8x16MaxRows, T - t0);
      a.xq = xq.q + (int64_t)t0 * K;
      a.xs = xq.s + (int64_t)t0 * nb;
      a.xsum = xq.sum + (int64_t)t0 * nb;
      a.out = out + (int64_t)t0 * N + g;
      inner::matmul_q8x16_group_vnni(a);
      a.prefetch = 0;
    }
  }
  // The tail rows are plain Q8_0 rows at their plain offsets.
  if (n1 > full)
    matmul_rows(KernelPath::Avx2, out, x, TensorView{DType::Q8_0, packed, N, K}, T, std::max(n0, full), n1, &xq);
}

}  // namespace chimera
