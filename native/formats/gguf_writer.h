// Writes a LLaMA model as GGUF v3 (alignment 32) in the layout llama.cpp's converters produce and
// load_gguf reads: general.* and llama.* hyper-parameters, the SentencePiece tokenizer under
// tokenizer.ggml.* (spaces as U+2581), and F32 / F16 / BF16 tensors. Written to a temporary file and
// renamed, so a crash never leaves a half-written file under the final name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/model_config.h"
#include "common/weights.h"
#include "tokenizer/tokenizer.h"

namespace chimera {

struct GgufTensorOut {
  std::string name;
  DType dtype = DType::F32;     // the file's element type (converted from `data`; block types need whole blocks per row)
  int64_t rows = 1;             // 1 for a vector, which is written 1-D
  int64_t cols = 0;             // ggml ne[0], the contiguous dimension
  const float* data = nullptr;  // rows * cols F32 values, row-major
};

// Throws E_INVALID_ARG for an inconsistent config / tokenizer / tensor list, E_UNSUPPORTED for a model
// GGUF `llama` cannot describe (non-llama architecture, half-split RoPE: permute Q/K first), and
// E_NOT_FOUND when the file cannot be written. A tokenizer with explicit merge ranks (tokenizer.json)
// is written with scores derived from them (-rank of the first merge producing each piece).
void write_gguf(const std::string& path, const ModelConfig& cfg, const TokenizerData& tok,
                const std::vector<GgufTensorOut>& tensors);

// The tensors of `w` (whose matrices must be F32) under the standard GGUF names: token_embd.weight,
// blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight,
// output_norm.weight, and output.weight only when !cfg.tied_output. Matrices are written as
// `matrix_dtype`; norms always as F32 (as llama.cpp's converters do). The result points into `w`.
std::vector<GgufTensorOut> model_tensors_for_gguf(const ModelWeights& w, const ModelConfig& cfg,
                                                  DType matrix_dtype = DType::F32);

}  // namespace chimera
