// One LLaMA-family decoder layer over a KV cache: pre-RMSNorm attention with RoPE and GQA, then a
// pre-RMSNorm SwiGLU FFN, both residual. The optional parts of the other families (Q/K/V biases, per-head
// Q/K norms, RoPE frequency factors) run when the layer's weights have them (model_config.h). Shared by the base model's forward pass and the Chimera draft's
// full-context encoder, so the two can never drift apart.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "common/model_config.h"
#include "common/weights.h"

namespace chimera {

struct LayerShape {
  int C, NH, NKV, HS, HD, rope_dims;
  float rms_eps, rope_theta;
  RopeLayout rope_layout;
  const float* rope_freqs = nullptr;  // (rope_dims / 2) angle divisors (host; the config's), or none
  int KVD() const { return NKV * HS; }
};

LayerShape layer_shape(const ModelConfig& cfg);

// Activation buffers for T rows (backend memory).
struct LayerScratch {
  float* xb;   // (T, C)
  float* xb2;  // (T, C)
  float* q;    // (T, NH*HS)
  float* att;  // (T, NH*HS)   (NH*HS may differ from C: qwen3)
  float* hb;   // (T, HD)
  float* hb2;  // (T, HD)
  float* k_new = nullptr;  // (T, KVD) new keys/values before they are stored (with DeviceSlots)
  float* v_new = nullptr;
};

// K/V of T input rows x (T, C) at positions pos (T), written to k_out, v_out (T, KVD). Uses s.xb.
void decoder_layer_kv(Backend& be, const LayerWeights& lw, const LayerShape& s, const LayerScratch& scratch,
                      const float* x, int T, const int32_t* pos, float* k_out, float* v_out);

// Runs the layer on x (T, C) in place. The rows' K/V go to cache slots [n_past, n_past + T) unless
// `kv_cached` says they are there already; attention sees slots per `mask` (T, n_past + T) or causally.
// With `slots` (device backends) n_past is also device-side data, so the ops can be recorded once and
// replayed at any n_past; the scratch's k_new / v_new are then needed.
void decoder_layer_forward(Backend& be, const LayerWeights& lw, const LayerShape& s, const LayerScratch& scratch,
                           float* x, int T, const int32_t* pos, float* k_cache, float* v_cache, int n_past,
                           const uint8_t* mask, bool kv_cached = false, const DeviceSlots* slots = nullptr);

// One sequence's rows [row0, row0 + T) of a multi-sequence batch, with its own cache (n_past slots
// filled) and mask (T, n_past + T) or nullptr (causal).
struct LayerSequence {
  int row0 = 0, T = 0;
  float* k_cache = nullptr;
  float* v_cache = nullptr;
  int n_past = 0;
  const uint8_t* mask = nullptr;
};

// The layer over the rows of several sequences at once (continuous batching): the projections and the
// FFN run once over all T rows (every op is row-wise, so each row equals what the sequence's own
// forward gives, bit for bit), attention per sequence over its own cache. The new K/V go through the
// scratch's k_new / v_new into each cache at its n_past. Host n_past (no DeviceSlots).
void decoder_layer_forward_sequences(Backend& be, const LayerWeights& lw, const LayerShape& s,
                                     const LayerScratch& scratch, float* x, int T, const int32_t* pos,
                                     const LayerSequence* seqs, int n_seqs);

}  // namespace chimera
