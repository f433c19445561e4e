// Hyper-parameters of a LLaMA-family decoder, as read from a model file.
#pragma once
#include <cstdint>
#include <string>

namespace chimera {

// How RoPE pairs the dimensions of a head.
enum class RopeLayout {
  Interleaved,  // pairs (2i, 2i+1): GGUF `llama` and llama2.c checkpoints
  HalfSplit,    // pairs (i, i + HS/2): Hugging Face checkpoints (NeoX style)
};

struct ModelConfig {
  std::string architecture = "llama";
  std::string name;         // general.name or the file's stem
  int C = 0;                // model width
  int L = 0;                // decoder layers
  int NH = 0;               // query heads
  int NKV = 0;              // key/value heads
  int HS = 0;               // head size (C / NH)
  int HD = 0;               // FFN hidden width
  int V = 0;                // vocabulary size
  int max_context = 0;      // context length the model was trained with
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  int rope_dims = 0;        // dimensions of each head that RoPE rotates (usually HS)
  RopeLayout rope_layout = RopeLayout::Interleaved;
  bool tied_output = false; // output projection shares the token embedding
  std::string format;       // "gguf", "llama2c" or "hf"

  int KVD() const { return NKV * HS; }
};

// Throws E_FORMAT / E_UNSUPPORTED when the values cannot describe a model we can run.
void validate_config(const ModelConfig& cfg);

}  // namespace chimera
