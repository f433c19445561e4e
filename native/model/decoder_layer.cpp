// The decoder layer, top to bottom.
#include "model/decoder_layer.h"

#include <vector>

namespace chimera {

LayerShape layer_shape(const ModelConfig& c) {
  const float* freqs = c.rope_freq_factors.empty() ? nullptr : c.rope_freq_factors.data();
  return LayerShape{c.C, c.NH, c.NKV, c.HS, c.HD, c.rope_dims, c.rms_eps, c.rope_theta, c.rope_layout, freqs};
}

namespace {

// Projected Q (n_heads = NH, bias bq, norm q_norm) or K rows (T, n_heads * HS) into what attention
// reads: + bias (qwen2), per-head RMSNorm (qwen3, before RoPE as both llama.cpp and transformers do),
// then RoPE.
void finish_heads(Backend& be, const LayerShape& s, float* x, int T, int n_heads, const int32_t* pos,
                  const float* bias, const float* norm) {
  if (bias) be.add_bias(x, bias, T, n_heads * s.HS);
  if (norm) be.rmsnorm(x, x, norm, T * n_heads, s.HS, s.rms_eps);
  be.rope(x, pos, T, n_heads, s.HS, s.rope_dims, s.rope_theta, s.rope_layout, s.rope_freqs);
}

}  // namespace

void decoder_layer_kv(Backend& be, const LayerWeights& lw, const LayerShape& s, const LayerScratch& sc,
                      const float* x, int T, const int32_t* pos, float* k_out, float* v_out) {
  be.rmsnorm(sc.xb, x, lw.attn_norm, T, s.C, s.rms_eps);
  float* outs[2] = {k_out, v_out};  // (T, KVD) each
  const TensorView* Ws[2] = {&lw.wk, &lw.wv};
  be.matmul_group(outs, Ws, 2, sc.xb, T);
  if (lw.bv) be.add_bias(v_out, lw.bv, T, s.KVD());
  finish_heads(be, s, k_out, T, s.NKV, pos, lw.bk, lw.k_norm);
}

// The attention block's inputs: the normed rows (s.xb), Q (scratch.q, rotated) and, when k_new is
// given, the rows' K (rotated) and V into k_new / v_new (T, KVD).
static void attention_inputs(Backend& be, const LayerWeights& lw, const LayerShape& s, const LayerScratch& sc,
                             const float* x, int T, const int32_t* pos, float* k_new, float* v_new) {
  be.rmsnorm(sc.xb, x, lw.attn_norm, T, s.C, s.rms_eps);
  float* outs[3] = {sc.q, k_new, v_new};  // (T, NH*HS), (T, KVD), (T, KVD)
  const TensorView* Ws[3] = {&lw.wq, &lw.wk, &lw.wv};
  be.matmul_group(outs, Ws, k_new ? 3 : 1, sc.xb, T);
  if (k_new) {
    if (lw.bv) be.add_bias(v_new, lw.bv, T, s.KVD());
    finish_heads(be, s, k_new, T, s.NKV, pos, lw.bk, lw.k_norm);
  }
  finish_heads(be, s, sc.q, T, s.NH, pos, lw.bq, lw.q_norm);
}

// Attention's output projection (x += att @ Wo^T), then the SwiGLU block, both residual.
static void attention_output_and_ffn(Backend& be, const LayerWeights& lw, const LayerShape& s,
                                     const LayerScratch& sc, float* x, int T) {
  be.matmul_add(x, sc.att, lw.wo, T, sc.xb2);
  be.rmsnorm(sc.xb, x, lw.ffn_norm, T, s.C, s.rms_eps);
  float* ffn_outs[2] = {sc.hb, sc.hb2};  // (T, HD) each
  const TensorView* ffn_Ws[2] = {&lw.w_gate, &lw.w_up};
  be.matmul_group(ffn_outs, ffn_Ws, 2, sc.xb, T);
  be.swiglu(sc.hb, sc.hb, sc.hb2, (int64_t)T * s.HD);
  be.matmul_add(x, sc.hb, lw.w_down, T, sc.xb2);  // x += h @ Wdown^T
}

void decoder_layer_forward(Backend& be, const LayerWeights& lw, const LayerShape& s, const LayerScratch& sc,
                           float* x, int T, const int32_t* pos, float* k_cache, float* v_cache, int n_past,
                           const uint8_t* mask, bool kv_cached, const DeviceSlots* slots) {
  float* k_new = nullptr;
  float* v_new = nullptr;
  if (!kv_cached) {
    k_new = slots ? sc.k_new : k_cache + (size_t)n_past * s.KVD();  // with slots: stored at *n_past below
    v_new = slots ? sc.v_new : v_cache + (size_t)n_past * s.KVD();
  }
  attention_inputs(be, lw, s, sc, x, T, pos, k_new, v_new);
  if (k_new && slots) {
    be.store_rows(k_cache, k_new, T, s.KVD(), n_past, slots);
    be.store_rows(v_cache, v_new, T, s.KVD(), n_past, slots);
  }
  be.attention(sc.att, sc.q, k_cache, v_cache, mask, T, n_past, s.NH, s.NKV, s.HS, slots);
  attention_output_and_ffn(be, lw, s, sc, x, T);
}

void decoder_layer_forward_sequences(Backend& be, const LayerWeights& lw, const LayerShape& s,
                                     const LayerScratch& sc, float* x, int T, const int32_t* pos,
                                     const LayerSequence* seqs, int n_seqs) {
  attention_inputs(be, lw, s, sc, x, T, pos, sc.k_new, sc.v_new);
  const size_t QD = (size_t)s.NH * s.HS, KVD = s.KVD();
  thread_local std::vector<Backend::AttentionSequence> att;
  att.clear();
  for (int i = 0; i < n_seqs; i++) {
    const LayerSequence& q = seqs[i];
    be.store_rows(q.k_cache, sc.k_new + q.row0 * KVD, q.T, s.KVD(), q.n_past);
    be.store_rows(q.v_cache, sc.v_new + q.row0 * KVD, q.T, s.KVD(), q.n_past);
    att.push_back({sc.att + q.row0 * QD, sc.q + q.row0 * QD, q.k_cache, q.v_cache, q.mask, q.T, q.n_past});
  }
  be.attention_sequences(att.data(), (int)att.size(), s.NH, s.NKV, s.HS);
  attention_output_and_ffn(be, lw, s, sc, x, T);
}

}  // namespace chimera
