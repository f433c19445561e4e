// A loaded model: configuration, weights (pointing into storage it owns) and tokenizer.
#pragma once
#include <memory>
#include <string>

#include "common/model_config.h"
#include "common/weights.h"
#include "tokenizer/tokenizer.h"

namespace chimera {

struct Model {
  ModelConfig config;
  ModelWeights weights;
  WeightStorage storage;
  Tokenizer tokenizer;
  std::string path;

  size_t weight_bytes() const;  // bytes of all weight tensors (what one decode step streams)
};

struct LoadOptions {
  std::string tokenizer_path;  // llama2.c tokenizer.bin (required for llama2.c checkpoints)
  bool check_tensors = false;  // read every weight once and refuse non-finite values (E_NUMERIC)
};

// Decodes every weight of `m` and throws E_NUMERIC naming the first tensor with a NaN or infinity
// (as llama.cpp's --check-tensors): catches corrupt files and F32 bytes labelled F16.
void check_tensor_values(const Model& m);

// Detects the format (GGUF file, llama2.c checkpoint, or Hugging Face directory) and loads it.
// Every offset and size in the file is checked before use.
std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& opts);

// The individual loaders (also used by tests).
std::unique_ptr<Model> load_gguf(const std::string& path);
std::unique_ptr<Model> load_llama2c(const std::string& path, const std::string& tokenizer_path);
std::unique_ptr<Model> load_hf_dir(const std::string& dir);

// Tokenizer readers for the separate tokenizer files.
TokenizerData read_llama2c_tokenizer(const std::string& path, int vocab_size);
TokenizerData read_hf_tokenizer_json(const std::string& path);

// Checks that every tensor and norm pointer is set and has the shape the config says; throws E_TENSOR.
void validate_weights(const ModelConfig& cfg, const ModelWeights& w);

}  // namespace chimera
