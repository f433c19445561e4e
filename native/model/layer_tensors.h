// The nine tensors of a LLaMA decoder layer, listed once: their GGUF and Hugging Face names, the
// LayerWeights member that holds each, and its shape in the layer's dimensions. Import, validation,
// export, base training and the draft's file layout all walk this table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/model_config.h"
#include "common/weights.h"

namespace chimera {

// A dimension of a layer tensor (shapes.h letters): C width, QD = NH*HS, KVD = NKV*HS, HD FFN width.
enum class LayerDim { C, QD, KVD, HD };

struct LayerDims {
  int64_t C, QD, KVD, HD;
  int64_t operator()(LayerDim d) const {
    switch (d) {
      case LayerDim::C: return C;
      case LayerDim::QD: return QD;
      case LayerDim::KVD: return KVD;
      case LayerDim::HD: return HD;
    }
    return 0;
  }
};

struct LayerTensor {
  const char* gguf;                      // "attn_q": blk.N.attn_q.weight
  const char* hf;                        // "self_attn.q_proj": model.layers.N.self_attn.q_proj.weight
  TensorView LayerWeights::*matrix;      // set for matrices
  const float* LayerWeights::*norm;      // set for norm gains (vectors of C)
  LayerDim rows, cols;                   // matrices: (rows, cols); norms: (C)
  bool is_norm() const { return norm != nullptr; }
};

// The dimensions of a base model's or a draft's layer (any config with C, NH, HS, NKV, HD).
template <typename Config>
LayerDims layer_dims(const Config& c) {
  return {c.C, (int64_t)c.NH * c.HS, (int64_t)c.NKV * c.HS, c.HD};
}

// Norms are (C); a matrix (rows, cols).
inline int64_t layer_tensor_rows(const LayerTensor& t, const LayerDims& d) { return t.is_norm() ? 1 : d(t.rows); }
inline int64_t layer_tensor_cols(const LayerTensor& t, const LayerDims& d) { return t.is_norm() ? d.C : d(t.cols); }

constexpr int kLayerTensorCount = 9;
// In file order: attn_norm, q, k, v, o, ffn_norm, gate, up, down.
extern const LayerTensor kLayerTensors[kLayerTensorCount];
enum LayerTensorId { kAttnNorm, kAttnQ, kAttnK, kAttnV, kAttnOut, kFfnNorm, kFfnGate, kFfnUp, kFfnDown };

// A layer's optional vectors (biases, per-head norm gains): full name suffixes, since biases end in
// ".bias". Which of them an architecture has: ModelConfig::attn_bias and qk_norm (layer_vector_used).
enum class LayerVecDim { QD, KVD, HS };
struct LayerVector {
  const char* gguf;                  // "attn_q.bias": blk.N.attn_q.bias
  const char* hf;                    // "self_attn.q_proj.bias": model.layers.N.self_attn.q_proj.bias
  const float* LayerWeights::*vec;
  LayerVecDim dim;
  bool qk_norm;                      // a norm gain (qk_norm) rather than a bias (attn_bias)
};
constexpr int kLayerVectorCount = 5;
extern const LayerVector kLayerVectors[kLayerVectorCount];
inline bool layer_vector_used(const LayerVector& v, const ModelConfig& c) { return v.qk_norm ? c.qk_norm : c.attn_bias; }
inline int64_t layer_vector_size(const LayerVector& v, const ModelConfig& c) {
  return v.dim == LayerVecDim::HS ? c.HS : v.dim == LayerVecDim::QD ? (int64_t)c.NH * c.HS : (int64_t)c.KVD();
}

// Gradient arrays of one layer's tensors (training), indexed like kLayerTensors.
struct LayerGrads {
  float* of[kLayerTensorCount] = {};
  float* operator[](LayerTensorId id) const { return of[id]; }
};

// The layer gradients within a trainer's parameter table: the nine tensors named `prefix` + gguf name
// + ".weight" must stand in table order from `first`. Throws E_INTERNAL when they do not.
template <typename Param>
LayerGrads layer_grads_at(const std::vector<Param>& params, std::vector<std::vector<float>>& grads, size_t first,
                          const std::string& prefix);

template <typename Param>
LayerGrads layer_grads_at(const std::vector<Param>& params, std::vector<std::vector<float>>& grads, size_t first,
                          const std::string& prefix) {
  LayerGrads g;
  for (int i = 0; i < kLayerTensorCount; i++) {
    const size_t at = first + (size_t)i;
    const std::string want = prefix + kLayerTensors[i].gguf + ".weight";
    CHIMERA_CHECK(at < params.size() && params[at].name == want, ErrorCode::Internal, "parameter table: expected ",
                  want, " at ", at);
    g.of[i] = grads[at].data();
  }
  return g;
}

}  // namespace chimera
