// The Chimera draft model (spec Part A): a trigram encoder T(a,b,c) = W_p R([E a; E b; E c]) with
// R(x) = x + SiLU(W_r x + b_r), one LLaMA decoder layer (the full-context encoder) whose keys/values
// are the base model's last hidden states and trigram vectors, and K residual heads
// logits_k = W_k [h_n ; h^_k], W_k (V, 2C). Stored as safetensors with JSON metadata naming the base.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace chimera {

constexpr int kDraftFormatVersion = 1;

struct DraftConfig {
  int K = 5;  // heads
  int C = 0, V = 0, NH = 0, NKV = 0, HS = 0, HD = 0;
  float rms_eps = 1e-5f, rope_theta = 10000.f;
  int rope_dims = 0;
  RopeLayout rope_layout = RopeLayout::Interleaved;
  int base_layers = 0;
  std::vector<float> base_fingerprint;  // sampled base embedding/output values (see base_fingerprint())
  int KVD() const { return NKV * HS; }
};

struct DraftWeights {
  TensorView tri_res;           // (3C, 3C)  W_r
  const float* tri_res_bias;    // (3C)      b_r
  TensorView tri_proj;          // (C, 3C)   W_p
  LayerWeights layer;           // the full-context encoder (shapes of a base layer)
  std::vector<TensorView> heads;  // (K) x (V, 2C)
};

struct DraftModel {
  DraftConfig config;
  DraftWeights weights;
  WeightStorage storage;
  size_t weight_bytes() const;
};

// One trainable tensor of a draft (see make_trainable).
using DraftParam = TrainableParam;

// Copies every weight into owned F32 buffers (drafts loaded from a file point into its read-only
// mapping) and returns the parameter table in file order.
std::vector<DraftParam> make_trainable(DraftModel& draft);

// A few dozen base embedding and output values at fixed positions: identifies the base model across
// dtypes (compared with a tolerance), so a draft made for another model is refused.
std::vector<float> base_fingerprint(const Model& base);

// An untrained draft with the paper's initialisation: heads [W_out, W_out], ResBlock weight zero,
// other linears small seeded random values, norms one.
std::unique_ptr<DraftModel> create_draft(const Model& base, int heads, uint64_t seed);

// Stores the draft's matrices as `dt` (F32, F16, BF16 or Q8_0; vectors stay F32): a smaller draft
// reads fewer bytes per drafted token. Training still works (make_trainable widens to F32). Under
// Q8_0, a matrix whose columns are not a multiple of 32 becomes F16.
void convert_draft_weights(DraftModel& draft, DType dt);
// The type of the draft's matrices (the heads').
DType draft_matrix_dtype(const DraftModel& draft);

// Loads a draft and checks it was made for `base` (E_FORMAT / E_INVALID_ARG on mismatch).
std::unique_ptr<DraftModel> load_draft(const std::string& path, const Model& base);

// Throws E_INVALID_ARG unless `draft` was made for `base`: the same shapes (width, vocabulary, heads,
// layers) and the same fingerprint. Every place a draft meets a base (sessions, the bench, tests) passes
// through DraftState, which calls this before sizing anything from the draft.
void check_draft_fits_base(const DraftModel& draft, const Model& base);

// Writes the draft; matrices are stored as `matrix_dtype` (F32, F16 or BF16; vectors stay F32).
void save_draft(const DraftModel& draft, const std::string& path, DType matrix_dtype = DType::F32);

// Metadata of a draft file without a base model (for `chimera info --draft`); key/value strings.
std::vector<std::pair<std::string, std::string>> read_draft_metadata(const std::string& path);

}  // namespace chimera
