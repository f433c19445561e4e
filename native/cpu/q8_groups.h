// What the repacked Q8_0 layouts (q8_0x4.h, q8_0x16.h) share: rows in groups of R, each group one
// contiguous run cut into chunks of up to C blocks, every row starting where plain row n would.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/dtype.h"

namespace chimera {

inline int64_t q8_row_bytes(int64_t cols) { return (int64_t)dtype_row_bytes(DType::Q8_0, (size_t)cols); }

// Inside the group that holds a row: the chunk holding `block` and the block's place in it.
struct Q8ChunkAt {
  int64_t offset;  // chunk start, from the group start
  int blocks;      // blocks in this chunk (C, or fewer in the last one)
  int index;       // block index inside the chunk
};

template <int R, int C>
Q8ChunkAt q8_chunk_at(int64_t blocks_per_row, int64_t block) {
  const int64_t b0 = block / C * C;
  return {b0 * R * (int64_t)kQ8BlockBytes, (int)std::min<int64_t>(C, blocks_per_row - b0), (int)(block - b0)};
}

}  // namespace chimera
