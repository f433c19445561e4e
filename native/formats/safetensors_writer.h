// Writes a safetensors file: 8-byte header length, JSON header (dtype, shape, data_offsets per tensor,
// plus string `__metadata__`), then the tensor bytes. Written to a temporary file and renamed, so a
// crash never leaves a half-written file under the final name.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/dtype.h"

namespace chimera {

struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;  // F32, F16 or BF16
  std::vector<int64_t> shape;
  const void* data = nullptr;
  bool int32 = false;        // the data are int32 values (safetensors "I32"); dtype is then ignored
};

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata);

}  // namespace chimera
