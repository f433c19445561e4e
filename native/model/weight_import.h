// Turning tensors as a file describes them (RawTensor) into the TensorViews and F32 norm vectors of
// ModelWeights. Shared by the GGUF and Hugging Face loaders, which differ only in tensor names.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/model_config.h"
#include "common/weights.h"

namespace chimera {

// One tensor inside a mapped file, already bounds-checked by its container parser.
struct RawTensor {
  std::string name;
  bool supported = false;        // dtype is one chimera computes with
  DType dtype = DType::F32;      // meaningful only when supported
  std::string type_name;         // the file's own name for the element type, for messages
  std::vector<int64_t> shape;    // row-major, outermost dimension first: a matrix is {rows, cols}
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
};

std::string shape_string(const std::vector<int64_t>& shape);  // "64x512"

// A matrix (rows, cols). Points into the mapping when the dtype is computable and the data aligned for
// it; otherwise copies into owned storage. Throws E_TENSOR on a shape mismatch, E_UNSUPPORTED on dtype.
TensorView import_matrix(WeightStorage& storage, const RawTensor& t, int64_t rows, int64_t cols);

// A vector of n elements, always converted to an owned F32 buffer (norms are tiny and read often).
const float* import_vector_f32(WeightStorage& storage, const RawTensor& t, int64_t n);

// Where the loaders' tensor names differ: `layer_prefix + N + suffix`.
struct WeightNames {
  std::string tok_embd, output_norm, output;
  std::string layer_prefix;
  // Suffixes in kLayerTensors' order (layer_tensors.h).
  std::string layer_suffix[9];
  // kLayerVectors' suffixes, and the fused matrices of ModelConfig::fused_qkv / fused_gate_up.
  std::string vector_suffix[5];
  std::string fused_qkv, fused_gate_up;
};

WeightNames gguf_weight_names();
WeightNames hf_weight_names();

// Looks a tensor up by name; nullptr when the file lacks it.
using TensorLookup = std::function<const RawTensor*(const std::string& name)>;

// Rows [r0, r0 + n) of t, as a view of the same bytes (rows are contiguous in every dtype).
TensorView row_slice(const TensorView& t, int64_t r0, int64_t n);

// Imports every weight of a LLaMA model with the shapes `cfg` requires. The output projection is tied
// to the embedding when `force_tied` or when the file has no output tensor; cfg.tied_output records it.
// `file` names the model in messages.
void import_weights(ModelConfig& cfg, const WeightNames& names, const TensorLookup& lookup, bool force_tied,
                    const std::string& file, WeightStorage& storage, ModelWeights& w);

}  // namespace chimera
