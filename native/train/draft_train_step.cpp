// Forward and backward of the draft on one sequence (see draft_train_step.h for the layout).
// Buffers are host vectors: the CPU backend computes in host memory.
#include "train/draft_train_step.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "model/layer_tensors.h"
#include "train/train_blocks.h"

namespace chimera {

void DraftLossStats::reset(int K) {
  ce_sum.assign(K, 0);
  counted.assign(K, 0);
  correct.assign(K, 0);
  mse_sum = 0;
  mse_count = 0;
}

void DraftLossStats::add(const DraftLossStats& o) {
  for (size_t k = 0; k < ce_sum.size(); k++) {
    ce_sum[k] += o.ce_sum[k];
    counted[k] += o.counted[k];
    correct[k] += o.correct[k];
  }
  mse_sum += o.mse_sum;
  mse_count += o.mse_count;
}

namespace {

using Buf = std::vector<float>;


// The draft's gradient arrays, typed. The parameter table is the draft file's order (draft_model.cpp):
// trigram.embed_proj, trigram.res.weight, trigram.res.bias, trigram.proj.weight, context.proj, the
// layer's nine tensors, heads.0..K-1.
struct DraftGrads {
  float *embed_proj, *tri_res, *tri_res_bias, *tri_proj, *context_proj;
  LayerGrads layer;
  std::vector<float*> heads;
};

DraftGrads draft_grads(const std::vector<DraftParam>& params, std::vector<std::vector<float>>& grads, int K) {
  auto at = [&](size_t i, const std::string& name) {
    CHIMERA_CHECK(i < params.size() && params[i].name == name, ErrorCode::Internal, "draft parameter table: expected ",
                  name, " at ", i);
    return grads[i].data();
  };
  DraftGrads g;
  g.embed_proj = at(0, "trigram.embed_proj.weight");
  g.tri_res = at(1, "trigram.res.weight");
  g.tri_res_bias = at(2, "trigram.res.bias");
  g.tri_proj = at(3, "trigram.proj.weight");
  g.context_proj = at(4, "context.proj.weight");
  g.layer = layer_grads_at(params, grads, 5, "layer.");
  for (int k = 0; k < K; k++)
    g.heads.push_back(at(5 + kLayerTensorCount + (size_t)k, "heads." + std::to_string(k) + ".weight"));
  return g;
}

// K/V rows of a block of inputs x (n, D) at positions pos: normed inputs kept for backward.
struct KVBlock {
  int n = 0;
  Buf xn, k, v, dk, dv;  // (n, D), (n, KVD) x4
  std::vector<int32_t> pos;
};

void kv_forward(CpuBackend& be, const LayerWeights& lw, const DraftConfig& c, const float* x, KVBlock& b) {
  const int KVD = c.KVD();
  b.xn.resize((size_t)b.n * c.D);
  b.k.resize((size_t)b.n * KVD);
  b.v.resize((size_t)b.n * KVD);
  b.dk.assign((size_t)b.n * KVD, 0.f);
  b.dv.assign((size_t)b.n * KVD, 0.f);
  be.rmsnorm(b.xn.data(), x, lw.attn_norm, b.n, c.D, c.rms_eps);
  be.matmul(b.k.data(), b.xn.data(), lw.wk, b.n);
  be.matmul(b.v.data(), b.xn.data(), lw.wv, b.n);
  be.rope(b.k.data(), b.pos.data(), b.n, c.NKV, c.HS, c.rope_dims, c.rope_theta, c.rope_layout);
}

// Back through K/V of a block: weight and norm-gain gradients; dxn_extra (n, D) adds other users of
// the normed input (the queries); dx (n, D) receives the input gradient when non-null.
void kv_backward(CpuBackend& be, const LayerWeights& lw, const DraftConfig& c, const LayerGrads& g, const float* x,
                 KVBlock& b, const float* dxn_extra, float* dx) {
  const int KVD = c.KVD();
  be.rope_backward(b.dk.data(), b.pos.data(), b.n, c.NKV, c.HS, c.rope_dims, c.rope_theta, c.rope_layout);
  Buf dxn((size_t)b.n * c.D), tmp((size_t)b.n * c.D);
  be.linear_backward(dxn.data(), g[kAttnK], b.dk.data(), b.xn.data(), lw.wk, b.n);
  be.linear_backward(tmp.data(), g[kAttnV], b.dv.data(), b.xn.data(), lw.wv, b.n);
  be.add(dxn.data(), tmp.data(), (int64_t)b.n * c.D);
  if (dxn_extra) be.add(dxn.data(), dxn_extra, (int64_t)b.n * c.D);
  Buf dx_local;
  if (!dx) {
    dx_local.resize((size_t)b.n * c.D);
    dx = dx_local.data();
  }
  be.rmsnorm_backward(dx, g[kAttnNorm], dxn.data(), x, lw.attn_norm, b.n, c.D, c.rms_eps);
  (void)KVD;
}

// Activations of one depth, kept for its backward.
struct DepthPass {
  int d = 0, nq = 0, S = 0;
  std::vector<int32_t> qrow;  // (nq) G-row index of each query (position - 1)
  std::vector<int32_t> qpos;  // (nq)
  Buf q, kall, vall, probs, att, x1, hhat, cat, logits;
  FfnActs ffn;
  std::vector<uint8_t> mask;
};

// One training example through the draft: the forward keeps every depth's activations, the backward
// adds every parameter's gradient. Phases in order: trigram encoder, key/value blocks, each depth's
// forward, each depth's backward, the key/value blocks and queries back, the trigram encoder back.
class DraftExampleStep {
 public:
  DraftExampleStep(const Model& base, const DraftModel& draft, const DraftGrads& g, CpuBackend& be,
                   const DraftExample& ex)
      : base(base), c(draft.config), w(draft.weights), lw(draft.weights.layer), g(g), be(be), ex(ex), L(ex.L), C(c.C),
        D(c.D), D3(3 * c.D), QD(c.NH * c.HS), KVD(c.KVD()), HD(c.HD), Vh(c.Vh), NG(ex.L - 1), passes(c.K), Hh(c.K),
        hh_rows(c.K), head_row(c.V, -1) {
    for (int i = 0; i < Vh; i++) head_row[(size_t)c.head_tokens[(size_t)i]] = i;
  }

  void run(float ce_scale, float mse_scale, DraftLossStats& stats) {
    trigram_forward();
    kv_blocks_forward();
    for (int d = 0; d < c.K; d++) depth_forward(d);
    dg.assign((size_t)NG * D, 0.f);
    dqG.assign((size_t)NG * QD, 0.f);
    for (int d = 0; d < c.K; d++) depth_backward(d, ce_scale, mse_scale, stats);
    kv_blocks_backward();
    trigram_backward();
  }

 private:
  // ---- trigram encoder: g_p for p = 1..L-1 (row p-1), position 1 padded as [e0; e1; e1] ----
  void trigram_forward() {
    emb.assign((size_t)NG * 3 * C, 0.f);
    e3.assign((size_t)NG * D3, 0.f);
    z.assign((size_t)NG * D3, 0.f);
    r3.assign((size_t)NG * D3, 0.f);
    gv.assign((size_t)NG * D, 0.f);
    const TensorView& E = base.weights.tok_embd;
    for (int p = 1; p < L; p++) {
      const int32_t ids[3] = {ex.tokens[p >= 2 ? p - 2 : 0], ex.tokens[p - 1 + (p == 1)], ex.tokens[p]};
      for (int i = 0; i < 3; i++)
        row_to_f32(E.dtype, E.row(ids[i]), &emb[((size_t)(p - 1) * 3 + i) * C], (size_t)C);
    }
    be.matmul(e3.data(), emb.data(), w.embed_proj, 3 * NG);  // [P_e e_a; P_e e_b; P_e e_c] per row
    be.matmul(z.data(), e3.data(), w.tri_res, NG);
    for (int r = 0; r < NG; r++)
      for (int i = 0; i < D3; i++) {
        float& zz = z[(size_t)r * D3 + i];
        zz += w.tri_res_bias[i];
        r3[(size_t)r * D3 + i] = e3[(size_t)r * D3 + i] + zz / (1.0f + std::exp(-zz));
      }
    be.matmul(gv.data(), r3.data(), w.tri_proj, NG);
  }

  // ---- key/value blocks: base hidden states and trigram vectors; the trigram rows' queries ----
  void kv_blocks_forward() {
  H.n = L;
  G.n = NG;
  for (int j = 0; j < L; j++) H.pos.push_back(j);
  for (int p = 1; p < L; p++) G.pos.push_back(p);
  hp.assign((size_t)L * D, 0.f);
  be.matmul(hp.data(), ex.hidden, w.context_proj, L);  // P_c h_j: the base states at the draft's width
  kv_forward(be, lw, c, hp.data(), H);
  kv_forward(be, lw, c, gv.data(), G);
  qG.assign((size_t)NG * QD, 0.f);
  be.matmul(qG.data(), G.xn.data(), lw.wq, NG);
  be.rope(qG.data(), G.pos.data(), NG, c.NH, c.HS, c.rope_dims, c.rope_theta, c.rope_layout);
  }

  // ---- depth d's forward: its queries attend to the base states, the trigram vectors and earlier
  // depths' outputs; its head reads [h_{m-1} ; h^] ----
  void depth_forward(int d) {
  DepthPass& P = passes[d];
  P.d = d;
  for (int p = d + 1; p <= L - 2; p++) {
    P.qrow.push_back(p - 1);
    P.qpos.push_back(p);
  }
  P.nq = (int)P.qrow.size();
  if (P.nq == 0) return;
  const int nq = P.nq;
  P.S = L + NG + d * NG;
  const int S = P.S;
  P.kall.resize((size_t)S * KVD);
  P.vall.resize((size_t)S * KVD);
  std::memcpy(P.kall.data(), H.k.data(), sizeof(float) * L * KVD);
  std::memcpy(P.vall.data(), H.v.data(), sizeof(float) * L * KVD);
  std::memcpy(P.kall.data() + (size_t)L * KVD, G.k.data(), sizeof(float) * NG * KVD);
  std::memcpy(P.vall.data() + (size_t)L * KVD, G.v.data(), sizeof(float) * NG * KVD);
  for (int k = 0; k < d; k++) {
    std::memcpy(P.kall.data() + (size_t)(L + (k + 1) * NG) * KVD, Hh[k].k.data(), sizeof(float) * NG * KVD);
    std::memcpy(P.vall.data() + (size_t)(L + (k + 1) * NG) * KVD, Hh[k].v.data(), sizeof(float) * NG * KVD);
  }
  P.mask.assign((size_t)nq * S, 0);
  P.q.resize((size_t)nq * QD);
  for (int i = 0; i < nq; i++) {
    const int p = P.qpos[i], m = p - d;
    uint8_t* row = &P.mask[(size_t)i * S];
    for (int j = 0; j <= m - 1; j++) row[j] = 1;            // h_0..h_{m-1}
    for (int j = 1; j <= p; j++) row[L + j - 1] = 1;        // g_1..g_p
    for (int k = 0; k < d; k++) row[L + (k + 1) * NG + (m + k) - 1] = 1;  // h^(k) at position m+k
    std::memcpy(&P.q[(size_t)i * QD], &qG[(size_t)P.qrow[i] * QD], sizeof(float) * QD);
  }
  P.probs.resize((size_t)c.NH * nq * S);
  P.att.resize((size_t)nq * QD);
  be.attention_forward_train(P.att.data(), P.probs.data(), P.q.data(), P.kall.data(), P.vall.data(),
                             P.mask.data(), nq, S, c.NH, c.NKV, c.HS);
  P.x1.resize((size_t)nq * D);
  be.matmul(P.x1.data(), P.att.data(), lw.wo, nq);
  for (int i = 0; i < nq; i++)
    for (int j = 0; j < D; j++) P.x1[(size_t)i * D + j] += gv[(size_t)P.qrow[i] * D + j];  // residual: g_p
  P.hhat.resize((size_t)nq * D);
  ffn_forward_train(be, lw, D, HD, c.rms_eps, P.x1.data(), nq, P.hhat.data(), P.ffn);
  // Head d on [h_{m-1} ; h^]: the base's choice at position p + 1.
  const int CD = C + D;
  P.cat.resize((size_t)nq * CD);
  for (int i = 0; i < nq; i++) {
    std::memcpy(&P.cat[(size_t)i * CD], ex.hidden + (size_t)(P.qpos[i] - d - 1) * C, sizeof(float) * C);
    std::memcpy(&P.cat[(size_t)i * CD + C], &P.hhat[(size_t)i * D], sizeof(float) * D);
  }
  P.logits.resize((size_t)nq * Vh);
  be.matmul(P.logits.data(), P.cat.data(), w.heads[d], nq);
  // This depth's outputs become keys of deeper depths (detached).
  if (d + 1 < c.K) {
    hh_rows[d].assign((size_t)NG * D, 0.f);
    for (int i = 0; i < nq; i++)
      std::memcpy(&hh_rows[d][(size_t)P.qrow[i] * D], &P.hhat[(size_t)i * D], sizeof(float) * D);
    Hh[d].n = NG;
    Hh[d].pos = G.pos;
    kv_forward(be, lw, c, hh_rows[d].data(), Hh[d]);
  }
  }

  // ---- depth d's backward (deeper depths only read detached outputs of earlier ones) ----
  void depth_backward(int d, float ce_scale, float mse_scale, DraftLossStats& stats) {
  DepthPass& P = passes[d];
  if (P.nq == 0) return;
  const int nq = P.nq, S = P.S;
  // Targets are head rows; a base choice outside the head vocabulary is not counted (-1).
  std::vector<int32_t> targets(nq);
  for (int i = 0; i < nq; i++) {
    const int32_t t = ex.labels[P.qpos[i] + 1];
    targets[i] = t >= 0 && t < c.V ? head_row[(size_t)t] : -1;
  }
  Buf dlogits((size_t)nq * Vh);
  if (ex.teacher_logits) {  // soft targets: the base's distribution at position p + 1 over the head tokens
    Buf teacher((size_t)nq * Vh);
    for (int i = 0; i < nq; i++) {
      const float* row = ex.teacher_logits + (size_t)P.qpos[i] * c.V;
      for (int j = 0; j < Vh; j++) teacher[(size_t)i * Vh + j] = row[c.head_tokens[(size_t)j]];
    }
    be.kl_to_teacher(dlogits.data(), P.logits.data(), teacher.data(), nullptr, nq, Vh, ex.soft_temperature, ce_scale,
                     &stats.ce_sum[d]);
    double unused = 0;  // agreement with the base's choice is still what predicts acceptance
    be.softmax_cross_entropy(nullptr, P.logits.data(), targets.data(), nq, Vh, 0.0f, &unused, &stats.counted[d],
                             &stats.correct[d]);
  } else {
    be.softmax_cross_entropy(dlogits.data(), P.logits.data(), targets.data(), nq, Vh, ce_scale, &stats.ce_sum[d],
                             &stats.counted[d], &stats.correct[d]);
  }
  const int CD = C + D;
  Buf dcat((size_t)nq * CD);
  be.linear_backward(dcat.data(), g.heads[(size_t)d], dlogits.data(), P.cat.data(), w.heads[d], nq);
  // MSE toward the base's state at p, projected to the draft's width (the target is detached).
  Buf dh((size_t)nq * D), target((size_t)nq * D), dmse((size_t)nq * D);
  for (int i = 0; i < nq; i++) {
    std::memcpy(&dh[(size_t)i * D], &dcat[(size_t)i * CD + C], sizeof(float) * D);
    std::memcpy(&target[(size_t)i * D], &hp[(size_t)P.qpos[i] * D], sizeof(float) * D);
  }
  be.mse(dmse.data(), P.hhat.data(), target.data(), (int64_t)nq * D, mse_scale, &stats.mse_sum);
  stats.mse_count += (int64_t)nq * D;
  be.add(dh.data(), dmse.data(), (int64_t)nq * D);
  // SwiGLU block (residual: dx1 = dh + through the FFN).
  Buf dx1((size_t)nq * D);
  ffn_backward_train(be, lw, D, HD, c.rms_eps, P.x1.data(), nq, P.ffn, dh.data(), g.layer, dx1.data());
  // Attention block: the residual reaches the query input g_p.
  for (int i = 0; i < nq; i++)
    for (int j = 0; j < D; j++) dg[(size_t)P.qrow[i] * D + j] += dx1[(size_t)i * D + j];
  Buf datt((size_t)nq * QD), dq((size_t)nq * QD), dkall((size_t)S * KVD, 0.f), dvall((size_t)S * KVD, 0.f);
  be.linear_backward(datt.data(), g.layer[kAttnOut], dx1.data(), P.att.data(), lw.wo, nq);
  be.attention_backward(dq.data(), dkall.data(), dvall.data(), datt.data(), P.probs.data(), P.q.data(),
                        P.kall.data(), P.vall.data(), nq, S, c.NH, c.NKV, c.HS);
  for (int i = 0; i < nq; i++)
    for (int j = 0; j < QD; j++) dqG[(size_t)P.qrow[i] * QD + j] += dq[(size_t)i * QD + j];
  be.add(H.dk.data(), dkall.data(), (int64_t)L * KVD);
  be.add(H.dv.data(), dvall.data(), (int64_t)L * KVD);
  be.add(G.dk.data(), dkall.data() + (size_t)L * KVD, (int64_t)NG * KVD);
  be.add(G.dv.data(), dvall.data() + (size_t)L * KVD, (int64_t)NG * KVD);
  for (int k = 0; k < d; k++) {
    be.add(Hh[k].dk.data(), dkall.data() + (size_t)(L + (k + 1) * NG) * KVD, (int64_t)NG * KVD);
    be.add(Hh[k].dv.data(), dvall.data() + (size_t)(L + (k + 1) * NG) * KVD, (int64_t)NG * KVD);
  }
  }

  // ---- key/value blocks and queries back to their inputs ----
  void kv_blocks_backward() {
  // The base states are frozen; their projection P_c learns.
  Buf dhp((size_t)L * D);
  kv_backward(be, lw, c, g.layer, hp.data(), H, nullptr, dhp.data());
  be.linear_backward(nullptr, g.context_proj, dhp.data(), ex.hidden, w.context_proj, L);
  for (int k = 0; k + 1 < c.K; k++)
    if (Hh[k].n) kv_backward(be, lw, c, g.layer, hh_rows[k].data(), Hh[k], nullptr, nullptr);  // detached
  be.rope_backward(dqG.data(), G.pos.data(), NG, c.NH, c.HS, c.rope_dims, c.rope_theta, c.rope_layout);
  Buf dgn_q((size_t)NG * D), dg_in((size_t)NG * D);
  be.linear_backward(dgn_q.data(), g.layer[kAttnQ], dqG.data(), G.xn.data(), lw.wq, NG);
  kv_backward(be, lw, c, g.layer, gv.data(), G, dgn_q.data(), dg_in.data());
  be.add(dg.data(), dg_in.data(), (int64_t)NG * D);
  }

  // ---- trigram encoder ----
  void trigram_backward() {
    Buf dr3((size_t)NG * D3), dzs((size_t)NG * D3), de3((size_t)NG * D3);
    be.linear_backward(dr3.data(), g.tri_proj, dg.data(), r3.data(), w.tri_proj, NG);
    float* dbias = g.tri_res_bias;
    for (int r = 0; r < NG; r++)
      for (int i = 0; i < D3; i++) {
        const size_t at = (size_t)r * D3 + i;
        const float zz = z[at], sg = 1.0f / (1.0f + std::exp(-zz));
        dzs[at] = dr3[at] * sg * (1.0f + zz * (1.0f - sg));  // silu'(z)
        dbias[i] += dzs[at];
      }
    be.linear_backward(de3.data(), g.tri_res, dzs.data(), e3.data(), w.tri_res, NG);
    be.add(de3.data(), dr3.data(), (int64_t)NG * D3);  // R's residual path
    // The base embeddings are frozen; their projection P_e learns (3 rows of D per trigram row).
    be.linear_backward(nullptr, g.embed_proj, de3.data(), emb.data(), w.embed_proj, 3 * NG);
  }

  const Model& base;
  const DraftConfig& c;
  const DraftWeights& w;
  const LayerWeights& lw;
  const DraftGrads& g;
  CpuBackend& be;
  const DraftExample& ex;
  const int L, C, D, D3, QD, KVD, HD, Vh, NG;  // NG trigram rows: positions 1..L-1
  Buf emb, e3, z, r3, gv;  // trigram encoder: base embeddings, projected inputs, pre-activation, R out, g_p
  Buf hp;                  // (L, D) the base hidden states projected by P_c
  KVBlock H, G;                            // K/V of the base hidden states and of the trigram vectors
  Buf qG;                                  // queries of every trigram row (the same for every depth)
  std::vector<DepthPass> passes;
  std::vector<KVBlock> Hh;                 // K/V of each depth's outputs, keys for deeper depths (row p-1)
  std::vector<Buf> hh_rows;                // (NG, C) outputs by row, detached inputs of Hh
  Buf dg, dqG;                             // gradients of g_p and of the trigram rows' queries
  std::vector<int32_t> head_row;           // (V) head row of each vocabulary id, -1 when not a head token
};

}  // namespace

void draft_example_grads(const Model& base, const DraftModel& draft, const std::vector<DraftParam>& params,
                         std::vector<std::vector<float>>& grads, CpuBackend& be, const DraftExample& ex,
                         float ce_scale, float mse_scale, DraftLossStats& stats) {
  CHIMERA_CHECK(ex.L >= 4, ErrorCode::InvalidArg, "training sequences need at least 4 tokens");
  const DraftGrads g = draft_grads(params, grads, draft.config.K);
  DraftExampleStep(base, draft, g, be, ex).run(ce_scale, mse_scale, stats);
}

}  // namespace chimera
