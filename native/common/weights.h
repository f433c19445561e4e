// Weight tensors of a LLaMA-family model. Each TensorView points into storage that the Model owns
// (a read-only mapping of the file, or buffers converted at load time).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace chimera {

// A 2-D row-major weight matrix (rows, cols), or a vector (rows = 1). Rows are contiguous:
// row r starts at data + r * dtype_row_bytes(dtype, cols).
struct TensorView {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  const uint8_t* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + r * (int64_t)dtype_row_bytes(dtype, (size_t)cols);
  }
  size_t bytes() const { return (size_t)rows * dtype_row_bytes(dtype, (size_t)cols); }
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // (C)
  TensorView wq;                     // (NH*HS, C)
  TensorView wk;                     // (KVD, C)
  TensorView wv;                     // (KVD, C)
  TensorView wo;                     // (C, NH*HS)
  const float* ffn_norm = nullptr;   // (C)
  TensorView w_gate;                 // (HD, C)   W1
  TensorView w_up;                   // (HD, C)   W3
  TensorView w_down;                 // (C, HD)   W2
  // Optional parts (nullptr when the architecture has none; layer_tensors.h kLayerVectors).
  const float* bq = nullptr;         // (NH*HS) Q bias
  const float* bk = nullptr;         // (KVD)   K bias
  const float* bv = nullptr;         // (KVD)   V bias
  const float* q_norm = nullptr;     // (HS)    per-head RMSNorm gain of Q
  const float* k_norm = nullptr;     // (HS)    per-head RMSNorm gain of K
};

struct ModelWeights {
  TensorView tok_embd;                 // (V, C)
  std::vector<LayerWeights> layers;    // (L)
  const float* output_norm = nullptr;  // (C)
  TensorView output;                   // (V, C); equals tok_embd when tied
};

class MappedFile;

// Owns the bytes that TensorViews point into. Loaders keep mappings and converted buffers here.
struct WeightStorage {
  std::vector<std::shared_ptr<void>> holders;                   // owned buffers, other holders
  std::vector<std::shared_ptr<const MappedFile>> mapped_files;  // the files weights may point into
  size_t mapped_bytes = 0;                                      // bytes read straight from mapped files
  size_t owned_bytes = 0;                                       // bytes allocated at load time

  // Faults the mapped files in now (MappedFile::prefault) when weights point into them, so the first
  // forward does not pay a page fault per 4 KB.
  void prefault_mapped() const;
  // Drops this process's pages of [p, n bytes) when it lies in a mapped file (MappedFile::drop_pages): for
  // weights that a repacked copy replaced, so they stop counting twice in the resident memory.
  void drop_mapped_pages(const void* p, size_t n) const;

  // Allocates an owned float buffer of n elements (zeroed).
  float* alloc_f32(size_t n);
  // Allocates owned raw bytes.
  void* alloc_bytes(size_t n);
};

// One trainable tensor (training): owned F32 memory, row-major (rows, cols).
struct TrainableParam {
  std::string name;
  float* data;
  int64_t rows, cols;
  bool is_vector;  // biases and norm gains: no weight decay
  int64_t size() const { return rows * cols; }
};

}  // namespace chimera
