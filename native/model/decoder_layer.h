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

}  // namespace chimera
