// The decoder layer, top to bottom.
#include "decoder_layer.h"

namespace chimera {

LayerShape layer_shape(const ModelConfig& c) {
  return LayerShape{c.C, c.NH, c.NKV, c.HS, c.HD, c.rope_dims, c.rms_eps, c.rope_theta, c.rope_layout};
}

void decoder_layer_kv(Backend& be, const LayerWeights& lw, const LayerShape& s, const LayerScratch& sc,
                      const float* x, int T, const int32_t* pos, float* k_out, float* v_out) {
  be.rmsnorm(sc.xb, x, lw.attn_norm, T, s.C, s.rms_eps);
  be.matmul(k_out, sc.xb, lw.wk, T);  // (T, KVD)
  be.matmul(v_out, sc.xb, lw.wv, T);
  be.rope(k_out, pos, T, s.NKV, s.HS, s.rope_dims, s.rope_theta, s.rope_layout);
}

void decoder_layer_forward(Backend& be, const LayerWeights& lw, const LayerShape& s, const LayerScratch& sc,
                           float* x, int T, const int32_t* pos, float* k_cache, float* v_cache, int n_past,
                           const uint8_t* mask, bool kv_cached, const DeviceSlots* slots) {
  const int64_t TC = (int64_t)T * s.C;
  // attention block
  if (kv_cached) {
    be.rmsnorm(sc.xb, x, lw.attn_norm, T, s.C, s.rms_eps);
  } else if (slots) {  // the cache offset is device-side: compute, then store at *slots->n_past
    decoder_layer_kv(be, lw, s, sc, x, T, pos, sc.k_new, sc.v_new);
    be.store_rows(k_cache, sc.k_new, T, s.KVD(), n_past, slots);
    be.store_rows(v_cache, sc.v_new, T, s.KVD(), n_past, slots);
  } else {
    decoder_layer_kv(be, lw, s, sc, x, T, pos, k_cache + (size_t)n_past * s.KVD(), v_cache + (size_t)n_past * s.KVD());
  }
  be.matmul(sc.q, sc.xb, lw.wq, T);  // (T, NH*HS)
  be.rope(sc.q, pos, T, s.NH, s.HS, s.rope_dims, s.rope_theta, s.rope_layout);
  be.attention(sc.att, sc.q, k_cache, v_cache, mask, T, n_past, s.NH, s.NKV, s.HS, slots);
  be.matmul(sc.xb2, sc.att, lw.wo, T);  // (T, C)
  be.add(x, sc.xb2, TC);

  // SwiGLU block
  be.rmsnorm(sc.xb, x, lw.ffn_norm, T, s.C, s.rms_eps);
  be.matmul(sc.hb, sc.xb, lw.w_gate, T);  // (T, HD)
  be.matmul(sc.hb2, sc.xb, lw.w_up, T);
  be.swiglu(sc.hb, sc.hb, sc.hb2, (int64_t)T * s.HD);
  be.matmul(sc.xb2, sc.hb, lw.w_down, T);  // (T, C)
  be.add(x, sc.xb2, TC);
}

}  // namespace chimera
