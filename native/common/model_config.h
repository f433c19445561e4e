// Hyper-parameters of a LLaMA-family decoder, as read from a model file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace chimera {

// How RoPE pairs the dimensions of a head.
enum class RopeLayout {
  Interleaved,  // pairs (2i, 2i+1): GGUF `llama` and llama2.c checkpoints
  HalfSplit,    // pairs (i, i + HS/2): Hugging Face checkpoints and GGUF qwen2/qwen3/phi3 (NeoX style)
};

// The decoder families chimera runs. They share one layer (decoder_layer.h); what differs is a few
// optional parts, recorded as flags of ModelConfig so that the forward pass asks about features, not names.
//   llama: the plain layer (Llama 1-3, Mistral, SmolLM, TinyLlama); Llama 3.x adds rope_freq_factors.
//   qwen2: Q/K/V biases, NeoX RoPE.     qwen3: per-head RMSNorm of Q and K before RoPE, explicit HS.
//   phi3:  Q|K|V in one matrix and gate|up in one matrix in the file (split into views at load), NeoX RoPE.
bool is_known_architecture(const std::string& arch);

struct ModelConfig {
  std::string architecture = "llama";
  std::string name;         // general.name or the file's stem
  int C = 0;                // model width
  int L = 0;                // decoder layers
  int NH = 0;               // query heads
  int NKV = 0;              // key/value heads
  int HS = 0;               // head size (C / NH unless the file says otherwise, e.g. qwen3)
  int HD = 0;               // FFN hidden width
  int V = 0;                // vocabulary size
  int max_context = 0;      // context length the model was trained with
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  int rope_dims = 0;        // dimensions of each head that RoPE rotates (usually HS)
  RopeLayout rope_layout = RopeLayout::Interleaved;
  bool tied_output = false; // output projection shares the token embedding
  bool attn_bias = false;   // Q, K and V projections have biases (qwen2)
  bool qk_norm = false;     // per-head RMSNorm (gain of HS) on Q and K before RoPE (qwen3)
  bool fused_qkv = false;   // the file stores Q|K|V as one (QD + 2 KVD, C) matrix (phi3)
  bool fused_gate_up = false;  // the file stores gate|up as one (2 HD, C) matrix, gate first (phi3)
  // Per rotated pair i < rope_dims/2: the angle pos * theta^(-2i/rope_dims) is divided by factor i
  // (llama.cpp's rope_freqs; Llama 3.x "llama3" scaling, linear scaling). Empty: no scaling.
  std::vector<float> rope_freq_factors;
  std::string format;       // "gguf", "llama2c" or "hf"

  int KVD() const { return NKV * HS; }
};

// Throws E_FORMAT / E_UNSUPPORTED when the values cannot describe a model we can run.
void validate_config(const ModelConfig& cfg);

}  // namespace chimera
