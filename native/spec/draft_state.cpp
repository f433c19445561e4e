// Draft KV cache maintenance and the top-1 chain of K single-row draft steps.
#include "spec/draft_state.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"

namespace chimera {

namespace {
uint64_t triple_key(int32_t a, int32_t b, int32_t c) {
  return (uint64_t)(uint32_t)a | ((uint64_t)(uint32_t)b << 21) | ((uint64_t)(uint32_t)c << 42);
}
}  // namespace

DraftState::DraftState(std::shared_ptr<const DraftModel> draft, const Model& base, Backend* backend, int context_size)
    : draft_(std::move(draft)), base_(base), be_(backend) {
  CHIMERA_CHECK(draft_ != nullptr, ErrorCode::InvalidArg, "speculation needs a draft");
  check_draft_fits_base(*draft_, base_);
  const DraftConfig& c = draft_->config;
  capacity_ = 2 * context_size + 2 * c.K + 4;
  const size_t bytes = (size_t)capacity_ * c.KVD() * sizeof(float);
  k_ = static_cast<float*>(be_->alloc(bytes));
  v_ = static_cast<float*>(be_->alloc(bytes));
  const size_t D = c.D, QD = (size_t)c.NH * c.HS;
  shape_ = LayerShape{c.D, c.NH, c.NKV, c.HS, c.HD, c.rope_dims, c.rms_eps, c.rope_theta, c.rope_layout};
  Backend* be = be_;
  xn_.reset(be, D); q_.reset(be, QD); att_.reset(be, QD);
  hb_.reset(be, c.HD); hb2_.reset(be, c.HD); o_.reset(be, D); hhat_.reset(be, D); cat_.reset(be, c.head_in());
  logits_.reset(be, c.Vh); query_.reset(be, D);
  std::vector<int32_t> iota((size_t)capacity_);
  for (int i = 0; i < capacity_; i++) iota[i] = i;
  iota_.reset(be, iota.size());
  be_->copy_to_device(iota_.data(), iota.data(), iota.size() * sizeof(int32_t));
  // About 16 MiB of memoised trigram vectors (texts reuse few triples; a full memo starts over).
  memo_slots_ = (int)std::max<size_t>(256, std::min<size_t>(65536, (16u << 20) / (D * sizeof(float))));
  memo_.reset(be, (size_t)memo_slots_ * D);
}

DraftState::~DraftState() {
  be_->free(k_);
  be_->free(v_);
}

const float* DraftState::trigram(int32_t a, int32_t b, int32_t c) {
  memoise_trigrams({{a, b, c}});
  return memo_.data() + (size_t)memo_index_.at(triple_key(a, b, c)) * draft_->config.D;
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
  be_->copy_device(out, x, sizeof(float) * shape_.C);  // shape_.C is the draft's width D
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

namespace {
// Rows a sync appends per batch: each batch streams the layer's K/V weights and the trigram encoder
// once (row by row, a long prompt would stream them once per row).
constexpr int kSyncRows = 64;
}  // namespace

void DraftState::memoise_trigrams(const std::vector<std::array<int32_t, 3>>& triples) {
  const int C = draft_->config.C, D = draft_->config.D;
  size_t missing = 0;
  for (const auto& t : triples) missing += memo_index_.count(triple_key(t[0], t[1], t[2])) == 0;
  if (missing == 0) return;
  if (memo_index_.size() + missing > (size_t)memo_slots_) memo_index_.clear();  // bounded; a rare restart
  std::vector<int32_t> ids;
  const int slot0 = (int)memo_index_.size();
  for (const auto& t : triples) {
    const uint64_t key = triple_key(t[0], t[1], t[2]);
    if (memo_index_.count(key)) continue;
    memo_index_[key] = slot0 + (int)ids.size() / 3;  // new slots are consecutive
    ids.insert(ids.end(), t.begin(), t.end());
  }
  const int U = (int)ids.size() / 3;
  if (U == 0) return;
  const DraftWeights& w = draft_->weights;
  tri_ids_.ensure(be_, ids.size());
  tri_emb_.ensure(be_, (size_t)U * 3 * C);
  tri_e3_.ensure(be_, (size_t)U * 3 * D);
  tri_r3_.ensure(be_, (size_t)U * 3 * D);
  be_->copy_to_device(tri_ids_.data(), ids.data(), sizeof(int32_t) * ids.size());
  be_->embed(tri_emb_.data(), base_.weights.tok_embd, tri_ids_.data(), 3 * U);  // 3U base embeddings
  be_->matmul(tri_e3_.data(), tri_emb_.data(), w.embed_proj, 3 * U);            // U rows of [e_a; e_b; e_c]
  be_->matmul(tri_r3_.data(), tri_e3_.data(), w.tri_res, U);
  for (int u = 0; u < U; u++) {
    const size_t at = (size_t)u * 3 * D;
    be_->bias_silu_residual(tri_r3_.data() + at, tri_e3_.data() + at, tri_r3_.data() + at, w.tri_res_bias,
                            3 * (int64_t)D);
  }
  be_->matmul(memo_.data() + (size_t)slot0 * D, tri_r3_.data(), w.tri_proj, U);
}

void DraftState::sync(const std::vector<int32_t>& history, int m, const float* hidden) {
  CHIMERA_CHECK((int)history.size() > m, ErrorCode::Internal, "draft sync: history too short");
  rows_ = committed_;
  const int C = draft_->config.C, D = draft_->config.D, KVD = shape_.KVD();
  auto tok = [&](int p) { return history[p]; };
  std::vector<std::array<int32_t, 3>> triples;
  std::vector<int32_t> positions;
  while (committed_ < 2 * m) {
    // Rows r0.. alternate h_j (even r, j = r / 2) and g_j (odd r, j = (r + 1) / 2).
    const int r0 = committed_, n = std::min(2 * m - r0, kSyncRows);
    triples.clear();
    positions.resize(n);
    int first_h = -1, n_h = 0;  // the batch's base states are consecutive positions
    for (int i = 0; i < n; i++) {
      const int r = r0 + i;
      positions[i] = r % 2 == 0 ? r / 2 : (r + 1) / 2;
      if (r % 2) triples.push_back(triple_at(positions[i], tok));
      else if (n_h++ == 0) first_h = positions[i];
    }
    memoise_trigrams(triples);
    sync_x_.ensure(be_, (size_t)n * D);
    sync_xn_.ensure(be_, (size_t)n * D);
    sync_h_.ensure(be_, (size_t)std::max(1, n_h) * D);
    sync_pos_.ensure(be_, (size_t)n);
    // P_c h_j for the batch's base states, in one pass over the projection.
    if (n_h) be_->matmul(sync_h_.data(), hidden + (size_t)first_h * C, draft_->weights.context_proj, n_h);
    for (int i = 0, g = 0, h = 0; i < n; i++) {
      const bool is_h = (r0 + i) % 2 == 0;
      const float* src = is_h ? sync_h_.data() + (size_t)(h++) * D
                              : trigram(triples[g][0], triples[g][1], triples[g][2]);  // memoised
      if (!is_h) g++;
      be_->copy_device(sync_x_.data() + (size_t)i * D, src, sizeof(float) * D);
    }
    be_->copy_to_device(sync_pos_.data(), positions.data(), sizeof(int32_t) * n);
    CHIMERA_CHECK(rows_ + n <= capacity_, ErrorCode::Internal, "draft cache overflow");
    LayerScratch sc = scratch();
    sc.xb = sync_xn_.data();
    decoder_layer_kv(*be_, draft_->weights.layer, shape_, sc, sync_x_.data(), n, sync_pos_.data(),
                     k_ + (size_t)rows_ * KVD, v_ + (size_t)rows_ * KVD);
    rows_ += n;
    committed_ = rows_;
  }
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
  be_->copy_device(query_.data(), trigram_at(m, tok), sizeof(float) * c.D);
  for (int d = 0; d < depth; d++) {
    const int pos = m + d;
    layer_query(query_.data(), pos, /*kv_cached=*/d == 0, hhat_.data());  // the root's g_m is committed
    be_->copy_device(cat_.data() + c.C, hhat_.data(), sizeof(float) * c.D);
    be_->matmul(logits_.data(), cat_.data(), draft_->weights.heads[d], 1);  // (Vh) guesses for position pos+1
    // The head's best k guesses, found by the backend: k ids cross to the host, not Vh logits.
    const int k = std::min(std::max(top_k[d], 1), c.Vh);
    topk_ids_.ensure(be_, (size_t)k);
    topk_vals_.ensure(be_, (size_t)k);
    be_->top_k_rows(topk_ids_.data(), topk_vals_.data(), logits_.data(), 1, c.Vh, k, 1.0f, nullptr, 0);
    out[d].resize(k);
    be_->copy_to_host(out[d].data(), topk_ids_.data(), sizeof(int32_t) * k);
    for (int32_t& id : out[d]) id = c.head_tokens[(size_t)id];  // head rows to vocabulary ids
    if (d + 1 == depth) break;
    chain.push_back(out[d][0]);
    push_kv(hhat_.data(), pos);  // the chain's own prediction, visible to deeper queries
    be_->copy_device(query_.data(), trigram_at(pos + 1, tok), sizeof(float) * c.D);
  }
  rows_ = committed_;
}

}  // namespace chimera
