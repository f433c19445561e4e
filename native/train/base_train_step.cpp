// Whole-model forward with saved activations, then the backward pass, layer by layer in reverse.
#include "train/base_train_step.h"

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "model/layer_tensors.h"
#include "sampling/sampler.h"
#include "train/train_blocks.h"

namespace chimera {

namespace {

using Buf = std::vector<float>;

// Activations of one layer kept for its backward.
struct LayerActs {
  Buf x, xn1, q, k, v, probs, att, xmid;
  FfnActs ffn;
};

}  // namespace

std::vector<BaseParam> init_base_weights(const ModelConfig& c, uint64_t seed, WeightStorage& st, ModelWeights& w) {
  std::vector<BaseParam> out;
  Rng rng(seed ^ 0xBA5Eull);
  auto normal = [&](float std) {
    const double u1 = rng.uniform() + 1e-12, u2 = rng.uniform();
    return (float)(std * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  };
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, float std) {
    float* p = st.alloc_f32((size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) p[i] = normal(std);
    out.push_back({name, p, rows, cols, false});
    return TensorView{DType::F32, p, rows, cols};
  };
  auto gain = [&](const std::string& name, int64_t n) {
    float* p = st.alloc_f32((size_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = 1.0f;
    out.push_back({name, p, 1, n, true});
    return (const float*)p;
  };
  const int64_t C = c.C;
  const LayerDims dims = layer_dims(c);
  // Residual projections (attn_output, ffn_down: the ones reading QD or HD) are scaled by 1/sqrt(2L).
  const float std = 0.02f, proj = 0.02f / std::sqrt(2.0f * c.L);
  w.tok_embd = matrix("token_embd.weight", c.V, C, std);
  w.layers.resize(c.L);
  for (int l = 0; l < c.L; l++) {
    LayerWeights& lw = w.layers[l];
    for (const LayerTensor& lt : kLayerTensors) {
      const std::string name = "blk." + std::to_string(l) + "." + lt.gguf + ".weight";
      if (lt.is_norm()) lw.*lt.norm = gain(name, C);
      else lw.*lt.matrix = matrix(name, dims(lt.rows), dims(lt.cols), lt.cols == LayerDim::C ? std : proj);
    }
  }
  w.output_norm = gain("output_norm.weight", C);
  w.output = c.tied_output ? w.tok_embd : matrix("output.weight", c.V, C, std);
  return out;
}

void base_sequence_grads(const ModelConfig& c, const ModelWeights& w, const std::vector<BaseParam>& params,
                         std::vector<std::vector<float>>& grads, CpuBackend& be, const int32_t* tokens, int T,
                         float ce_scale, BaseLossStats& stats) {
  const int C = c.C, QD = c.NH * c.HS, KVD = c.KVD(), HD = c.HD, V = c.V;
  // The table's order (init_base_weights): token_embd, 9 tensors per layer, output_norm, [output].
  auto grad_of = [&](size_t at, const char* name) {
    CHIMERA_CHECK(at < params.size() && params[at].name == name, ErrorCode::Internal, "parameter table: expected ",
                  name, " at ", at);
    return grads[at].data();
  };
  float* const demb = grad_of(0, "token_embd.weight");
  std::vector<LayerGrads> lg;
  for (int l = 0; l < c.L; l++)
    lg.push_back(layer_grads_at(params, grads, 1 + (size_t)l * kLayerTensorCount, "blk." + std::to_string(l) + "."));
  const size_t tail = 1 + (size_t)c.L * kLayerTensorCount;
  float* const dout_norm = grad_of(tail, "output_norm.weight");
  float* const dout = c.tied_output ? demb : grad_of(tail + 1, "output.weight");
  std::vector<int32_t> pos(T);
  for (int t = 0; t < T; t++) pos[t] = t;

  // ---- forward ----
  Buf x((size_t)T * C);
  be.embed(x.data(), w.tok_embd, tokens, T);
  std::vector<LayerActs> acts(c.L);
  for (int l = 0; l < c.L; l++) {
    const LayerWeights& lw = w.layers[l];
    LayerActs& A = acts[l];
    A.x = x;
    A.xn1.resize((size_t)T * C);
    A.q.resize((size_t)T * QD);
    A.k.resize((size_t)T * KVD);
    A.v.resize((size_t)T * KVD);
    A.probs.resize((size_t)c.NH * T * T);
    A.att.resize((size_t)T * QD);
    be.rmsnorm(A.xn1.data(), x.data(), lw.attn_norm, T, C, c.rms_eps);
    be.matmul(A.q.data(), A.xn1.data(), lw.wq, T);
    be.matmul(A.k.data(), A.xn1.data(), lw.wk, T);
    be.matmul(A.v.data(), A.xn1.data(), lw.wv, T);
    be.rope(A.q.data(), pos.data(), T, c.NH, c.HS, c.rope_dims, c.rope_theta, c.rope_layout);
    be.rope(A.k.data(), pos.data(), T, c.NKV, c.HS, c.rope_dims, c.rope_theta, c.rope_layout);
    be.attention_forward_train(A.att.data(), A.probs.data(), A.q.data(), A.k.data(), A.v.data(), nullptr, T, T,
                               c.NH, c.NKV, c.HS);
    A.xmid.resize((size_t)T * C);
    be.matmul(A.xmid.data(), A.att.data(), lw.wo, T);
    be.add(A.xmid.data(), x.data(), (int64_t)T * C);
    ffn_forward_train(be, lw, C, HD, c.rms_eps, A.xmid.data(), T, x.data(), A.ffn);
  }
  Buf xf((size_t)T * C), logits((size_t)T * V);
  be.rmsnorm(xf.data(), x.data(), w.output_norm, T, C, c.rms_eps);
  be.matmul(logits.data(), xf.data(), w.output, T);

  // ---- loss and backward ----
  be.softmax_cross_entropy(logits.data(), logits.data(), tokens + 1, T, V, ce_scale, &stats.ce_sum, &stats.counted,
                           &stats.correct);  // logits now hold dlogits
  Buf dxf((size_t)T * C), dx((size_t)T * C);
  be.linear_backward(dxf.data(), dout, logits.data(), xf.data(), w.output, T);
  be.rmsnorm_backward(dx.data(), dout_norm, dxf.data(), x.data(), w.output_norm, T, C, c.rms_eps);
  Buf dn((size_t)T * C), tmp((size_t)T * C);
  Buf datt((size_t)T * QD), dq((size_t)T * QD), dk((size_t)T * KVD), dv((size_t)T * KVD);
  for (int l = c.L - 1; l >= 0; l--) {
    const LayerWeights& lw = w.layers[l];
    LayerActs& A = acts[l];
    const LayerGrads& g = lg[(size_t)l];
    // SwiGLU block: dx is d(x_out); x_out = xmid + ffn(xmid). Afterwards dx is d(xmid).
    ffn_backward_train(be, lw, C, HD, c.rms_eps, A.xmid.data(), T, A.ffn, dx.data(), g, dx.data());
    // Attention block: xmid = x + attn(x).
    be.linear_backward(datt.data(), g[kAttnOut], dx.data(), A.att.data(), lw.wo, T);
    std::fill(dk.begin(), dk.end(), 0.f);
    std::fill(dv.begin(), dv.end(), 0.f);
    be.attention_backward(dq.data(), dk.data(), dv.data(), datt.data(), A.probs.data(), A.q.data(), A.k.data(),
                          A.v.data(), T, T, c.NH, c.NKV, c.HS);
    be.rope_backward(dq.data(), pos.data(), T, c.NH, c.HS, c.rope_dims, c.rope_theta, c.rope_layout);
    be.rope_backward(dk.data(), pos.data(), T, c.NKV, c.HS, c.rope_dims, c.rope_theta, c.rope_layout);
    be.linear_backward(dn.data(), g[kAttnQ], dq.data(), A.xn1.data(), lw.wq, T);
    be.linear_backward(tmp.data(), g[kAttnK], dk.data(), A.xn1.data(), lw.wk, T);
    be.add(dn.data(), tmp.data(), (int64_t)T * C);
    be.linear_backward(tmp.data(), g[kAttnV], dv.data(), A.xn1.data(), lw.wv, T);
    be.add(dn.data(), tmp.data(), (int64_t)T * C);
    be.rmsnorm_backward(tmp.data(), g[kAttnNorm], dn.data(), A.x.data(), lw.attn_norm, T, C, c.rms_eps);
    be.add(dx.data(), tmp.data(), (int64_t)T * C);  // dx is now d(x) of this layer
  }
  // Embedding: scatter-add the input gradient into the rows of the tokens.
  for (int t = 0; t < T; t++) be.add(demb + (size_t)tokens[t] * C, dx.data() + (size_t)t * C, C);
}

}  // namespace chimera
