// The Chimera draft model (spec Part A) at its own width D, which may be narrower than the base's C:
//   trigram encoder  T(a,b,c) = W_p R([P_e E a; P_e E b; P_e E c]),  R(x) = x + SiLU(W_r x + b_r)
//   full-context encoder: one LLaMA decoder layer of width D whose keys/values are the base model's
//                    last hidden states projected by P_c (D, C), and the trigram vectors;
//   K residual heads logits_k = W_k [h_n ; h^_k], W_k (Vh, C + D), over Vh head tokens (the most
//                    frequent ones, mapped back to vocabulary ids by head_tokens).
// With D = C, P_e = P_c = I and Vh = V this is the paper's design. A narrow width and a frequent-token
// vocabulary are what make a draft cheap next to a big base (FR-Spec, EAGLE-3): on the 1.1B shape,
// D = 256 and Vh = 8192 read about 5% of the base's bytes per drafted step.
// Stored as safetensors with JSON metadata naming the base.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace chimera {

// Version 2 added the width D, the projections and the head vocabulary; version 1 files load as
// D = C, identity projections and heads over the whole vocabulary.
constexpr int kDraftFormatVersion = 2;

struct DraftConfig {
  int K = 5;       // heads
  int C = 0;       // the base's width (inputs: embeddings and hidden states)
  int V = 0;       // the base's vocabulary
  int D = 0;       // the draft's own width (trigram vectors, the encoder layer, h^)
  int NH = 0, NKV = 0, HS = 0, HD = 0;  // the encoder layer's heads, KV heads, head size, FFN width
  int Vh = 0;      // head vocabulary size
  std::vector<int32_t> head_tokens;     // (Vh) vocabulary id of each head row, increasing
  float rms_eps = 1e-5f, rope_theta = 10000.f;
  int rope_dims = 0;
  RopeLayout rope_layout = RopeLayout::Interleaved;
  int base_layers = 0;
  std::string base_architecture = "llama";  // the base's ModelConfig::architecture (files before it: llama)
  std::vector<float> base_fingerprint;  // sampled base embedding/output values (see base_fingerprint())
  int KVD() const { return NKV * HS; }
  int head_in() const { return C + D; }  // a head's input width: [h_n ; h^]
};

struct DraftWeights {
  TensorView embed_proj;        // (D, C)    P_e
  TensorView tri_res;           // (3D, 3D)  W_r
  const float* tri_res_bias;    // (3D)      b_r
  TensorView tri_proj;          // (D, 3D)   W_p
  TensorView context_proj;      // (D, C)    P_c
  LayerWeights layer;           // the full-context encoder (width D)
  std::vector<TensorView> heads;  // (K) x (Vh, C + D)
};

struct DraftModel {
  DraftConfig config;
  DraftWeights weights;
  WeightStorage storage;
  size_t weight_bytes() const;
};

// The shape of a new draft. Zero fields take the defaults: width D = clamp(C / 8, 256, C) (C when C is
// at most 256), the layer's head size that of the base (at most D), heads D / head size, KV heads in
// the base's ratio, FFN width the base's ratio; head vocabulary min(V, max(8192, V / 4)).
struct DraftShape {
  int heads = 5;
  int width = 0;
  int head_vocab = 0;
  // Ids the heads cover (empty: the first head_vocab ids). train-draft passes the most frequent ones.
  std::vector<int32_t> head_tokens;
};

// One trainable tensor of a draft (see make_trainable).
using DraftParam = TrainableParam;

// Copies every weight into owned F32 buffers (drafts loaded from a file point into its read-only
// mapping) and returns the parameter table in file order.
std::vector<DraftParam> make_trainable(DraftModel& draft);

// A few dozen base embedding and output values at fixed positions: identifies the base model across
// dtypes (compared with a tolerance), so a draft made for another model is refused.
std::vector<float> base_fingerprint(const Model& base);

// An untrained draft with the paper's initialisation: heads [W_out, W_out] (rows of the head tokens;
// the h^ half zero when D != C), ResBlock weight zero, projections the identity when D = C (else
// seeded random), other linears small seeded random values, norms one.
std::unique_ptr<DraftModel> create_draft(const Model& base, const DraftShape& shape, uint64_t seed);
// The shape create_draft gives for `base` and `shape` (defaults filled in, checked: E_INVALID_ARG).
DraftConfig draft_config_for(const Model& base, const DraftShape& shape);

// Stores the draft's matrices as `dt` (F32, F16, BF16 or Q8_0; vectors stay F32): a smaller draft
// reads fewer bytes per drafted token. Training still works (make_trainable widens to F32). Under
// Q8_0, a matrix whose columns are not a multiple of 32 becomes F16.
void convert_draft_weights(DraftModel& draft, DType dt);
// The type of the draft's matrices (the heads').
DType draft_matrix_dtype(const DraftModel& draft);

// Loads a draft and checks it was made for `base` (E_FORMAT / E_INVALID_ARG on mismatch).
std::unique_ptr<DraftModel> load_draft(const std::string& path, const Model& base);

// Throws E_INVALID_ARG unless `draft` was made for `base`: the same architecture, shapes (width,
// vocabulary, heads, layers) and fingerprint (two models of different architectures may share their
// embedding and output values, but never their hidden states). Every place a draft meets a base (sessions, the bench, tests) passes
// through DraftState, which calls this before sizing anything from the draft.
void check_draft_fits_base(const DraftModel& draft, const Model& base);

// Writes the draft; matrices are stored as `matrix_dtype` (F32, F16 or BF16; vectors stay F32).
void save_draft(const DraftModel& draft, const std::string& path, DType matrix_dtype = DType::F32);

// Metadata of a draft file without a base model (for `chimera info --draft`); key/value strings.
std::vector<std::pair<std::string, std::string>> read_draft_metadata(const std::string& path);

}  // namespace chimera
