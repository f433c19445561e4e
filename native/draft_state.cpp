// Draft KV cache maintenance and the top-1 chain of K single-row draft steps.
#include "draft_state.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "error.h"

namespace chimera {

DraftState::DraftState(std::shared_ptr<const DraftModel> draft, const Model& base, Backend* backend, int context_size)
    : draft_(std::move(draft)), base_(base), be_(backend) {
  const DraftConfig& c = draft_->config;
  capacity_ = 2 * context_size + 2 * c.K + 4;
  const size_t bytes = (size_t)capacity_ * c.KVD() * sizeof(float);
  k_ = static_cast<float*>(be_->alloc(bytes));
  v_ = static_cast<float*>(be_->alloc(bytes));
  const size_t C = c.C, C3 = 3 * C, QD = (size_t)c.NH * c.HS;
  shape_ = LayerShape{c.C, c.NH, c.NKV, c.HS, c.HD, c.rope_dims, c.rms_eps, c.rope_theta, c.rope_layout};
  Backend* be = be_;
  e3_.reset(be, C3); r3_.reset(be, C3); xn_.reset(be, C); q_.reset(be, QD); att_.reset(be, QD);
  hb_.reset(be, c.HD); hb2_.reset(be, c.HD); o_.reset(be, C); hhat_.reset(be, C); cat_.reset(be, 2 * C);
  logits_.reset(be, c.V); query_.reset(be, C); ids_.reset(be, 3);
  std::vector<int32_t> iota((size_t)capacity_);
  for (int i = 0; i < capacity_; i++) iota[i] = i;
  iota_.reset(be, iota.size());
  be_->copy_to_device(iota_.data(), iota.data(), iota.size() * sizeof(int32_t));
  // About 16 MiB of memoised trigram vectors (texts reuse few triples; a full memo starts over).
  memo_slots_ = (int)std::max<size_t>(256, std::min<size_t>(65536, (16u << 20) / (C * sizeof(float))));
  memo_.reset(be, (size_t)memo_slots_ * C);
}

DraftState::~DraftState() {
  be_->free(k_);
  be_->free(v_);
}

const float* DraftState::trigram(int32_t a, int32_t b, int32_t c) {
  const uint64_t key = (uint64_t)(uint32_t)a | ((uint64_t)(uint32_t)b << 21) | ((uint64_t)(uint32_t)c << 42);
  const int C = draft_->config.C;
  auto it = memo_index_.find(key);
  if (it != memo_index_.end()) return memo_.data() + (size_t)it->second * C;
  if ((int)memo_index_.size() >= memo_slots_) memo_index_.clear();  // bounded; a rare restart is cheap
  const int slot = (int)memo_index_.size();
  const DraftWeights& w = draft_->weights;
  const TensorView& E = base_.weights.tok_embd;
  const int32_t ids[3] = {a, b, c};
  const int32_t* d_ids = ids;
  if (!be_->host_memory()) {
    be_->copy_to_device(ids_.data(), ids, sizeof(ids));
    d_ids = ids_.data();
  }
  be_->embed(e3_.data(), E, d_ids, 3);                  // [e_a; e_b; e_c] (3C)
  be_->matmul(r3_.data(), e3_.data(), w.tri_res, 1);   // (3C)
  be_->bias_silu_residual(r3_.data(), e3_.data(), r3_.data(), w.tri_res_bias, 3 * (int64_t)C);  // R(x)
  float* g = memo_.data() + (size_t)slot * C;
  be_->matmul(g, r3_.data(), w.tri_proj, 1);  // (C)
  memo_index_[key] = slot;
  return g;
}

LayerScratch DraftState::scratch() {
  return LayerScratch{xn_.data(), o_.data(), q_.data(), att_.data(), hb_.data(), hb2_.data()};
}

void DraftState::push_kv(const float* x, int pos) {
  CHIMERA_CHECK(rows_ < capacity_, ErrorCode::Internal, "draft cache overflow");
  const size_t at = (size_t)rows_ * shape_.KVD();
  decoder_layer_kv(*be_, draft_->weights.layer, shape_, scratch(), x, 1, this->pos(pos), k_ + at, v_ + at);
  rows_++;
}

void DraftState::layer_query(const float* x, int pos, bool kv_cached, float* out) {
  CHIMERA_CHECK(kv_cached || rows_ < capacity_, ErrorCode::Internal, "draft cache overflow");
  be_->copy_device(out, x, sizeof(float) * shape_.C);
  // Every row in the cache (committed and scratch) is visible to the newest query.
  const int n_past = kv_cached ? rows_ - 1 : rows_;
  decoder_layer_forward(*be_, draft_->weights.layer, shape_, scratch(), out, 1, this->pos(pos), k_, v_, n_past,
                        nullptr, kv_cached);
  if (!kv_cached) rows_++;
}

void DraftState::truncate(int keep_tokens) {
  committed_ = std::min(committed_, std::max(0, 2 * keep_tokens - 1));
  rows_ = committed_;
}

void DraftState::sync(const std::vector<int32_t>& history, int m, const float* hidden) {
  CHIMERA_CHECK((int)history.size() > m, ErrorCode::Internal, "draft sync: history too short");
  rows_ = committed_;
  const int C = draft_->config.C;
  while (committed_ < 2 * m) {
    const int r = committed_;
    if (r % 2 == 0) {
      push_kv(hidden + (size_t)(r / 2) * C, r / 2);  // h_j
    } else {
      const int j = (r + 1) / 2;  // g_j
      push_kv(trigram_at(j, [&](int p) { return history[p]; }), j);
    }
    committed_ = rows_;
  }
}

static void top_k_ids(const float* logits, int V, int k, std::vector<int32_t>& out) {
  out.resize(V);
  for (int i = 0; i < V; i++) out[i] = i;
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  k = std::min(std::max(k, 1), V);
  std::partial_sort(out.begin(), out.begin() + k, out.end(), better);
  out.resize(k);
}

void DraftState::draft_chain(const std::vector<int32_t>& history, int m, const float* h_anchor, int depth,
                             const std::vector<int>& top_k, std::vector<std::vector<int32_t>>& out) {
  const DraftConfig& c = draft_->config;
  CHIMERA_CHECK(committed_ == 2 * m && depth <= c.K, ErrorCode::Internal, "draft chain: cache out of sync");
  rows_ = committed_;
  out.resize(depth);
  std::vector<int32_t> chain = {history[m]};  // tokens at positions m, m+1, ...
  auto tok = [&](int p) { return p <= m ? history[p] : chain[p - m]; };
  be_->copy_device(cat_.data(), h_anchor, sizeof(float) * c.C);
  be_->copy_device(query_.data(), trigram_at(m, tok), sizeof(float) * c.C);
  for (int d = 0; d < depth; d++) {
    const int pos = m + d;
    layer_query(query_.data(), pos, /*kv_cached=*/d == 0, hhat_.data());  // the root's g_m is committed
    be_->copy_device(cat_.data() + c.C, hhat_.data(), sizeof(float) * c.C);
    be_->matmul(logits_.data(), cat_.data(), draft_->weights.heads[d], 1);  // (V) guesses for position pos+1
    top_k_ids(host_view(*be_, logits_.data(), (size_t)c.V, logits_host_), c.V, top_k[d], out[d]);
    if (d + 1 == depth) break;
    chain.push_back(out[d][0]);
    push_kv(hhat_.data(), pos);  // the chain's own prediction, visible to deeper queries
    be_->copy_device(query_.data(), trigram_at(pos + 1, tok), sizeof(float) * c.C);
  }
  rows_ = committed_;
}

}  // namespace chimera
