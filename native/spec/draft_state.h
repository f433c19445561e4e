// Per-session state of the Chimera draft: its one-layer KV cache and the trigram memo.
//
// Committed rows interleave the two kinds of entries of the accepted text, in position order:
//   row 2j   = K/V of the base hidden state h_j      (RoPE position j)
//   row 2j-1 = K/V of the trigram vector g_j, j >= 1 (RoPE position j)
// With m tokens in the base KV cache and the next token x_m known, rows [0, 2m) hold h_0..h_{m-1}
// and g_1..g_m. Rows after them are the scratch area of the chain being drafted (the chain's h^
// predictions and its predicted trigrams), discarded every step.
#pragma once
#include <cstdint>
#include <array>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/backend_buffer.h"
#include "model/decoder_layer.h"
#include "spec/draft_model.h"

namespace chimera {

class DraftState {
 public:
  DraftState(std::shared_ptr<const DraftModel> draft, const Model& base, Backend* backend, int context_size);
  ~DraftState();
  DraftState(const DraftState&) = delete;
  DraftState& operator=(const DraftState&) = delete;

  const DraftModel& draft() const { return *draft_; }

  // Forgets rows that depend on tokens at positions >= keep_tokens (the base cache was cut there).
  void truncate(int keep_tokens);
  // Appends committed rows until they describe history[0..m] with m base tokens cached;
  // hidden (backend memory, >= m rows of the base's width C) holds the base hidden states of positions
  // 0..m-1; they enter the draft's layer projected to its width D.
  void sync(const std::vector<int32_t>& history, int m, const float* hidden);

  // Drafts the chain from the anchor (last cached token m-1, with base hidden h_anchor, backend memory) and root
  // x_m = history[m]: for depth d < depth, head d's top_k[d] guesses (best first) in out_topk[d].
  void draft_chain(const std::vector<int32_t>& history, int m, const float* h_anchor, int depth,
                   const std::vector<int>& top_k, std::vector<std::vector<int32_t>>& out_topk);

  int committed_rows() const { return committed_; }

 private:
  // memoised T(a,b,c) (C), backend memory; valid until the next memoise_trigrams
  const float* trigram(int32_t a, int32_t b, int32_t c);
  // g_j = T(x_{j-2}, x_{j-1}, x_j), positions 0 and 1 padded by repetition: [e0;e0;e0], [e0;e1;e1].
  template <typename TokenAt>
  const float* trigram_at(int j, const TokenAt& x) {
    if (j == 0) return trigram(x(0), x(0), x(0));
    if (j == 1) return trigram(x(0), x(1), x(1));
    return trigram(x(j - 2), x(j - 1), x(j));
  }
  // The triple g_j stands for (positions 0 and 1 padded by repetition).
  template <typename TokenAt>
  static std::array<int32_t, 3> triple_at(int j, const TokenAt& x) {
    if (j == 0) return {x(0), x(0), x(0)};
    if (j == 1) return {x(0), x(1), x(1)};
    return {x(j - 2), x(j - 1), x(j)};
  }
  // Memoises the triples not memoised yet, all in one batch (the encoder's weights stream once).
  void memoise_trigrams(const std::vector<std::array<int32_t, 3>>& triples);
  void push_kv(const float* x, int pos);  // appends K/V of a row at a position
  // The full decoder layer on one query row; its K/V is appended unless it is the newest row already.
  void layer_query(const float* x, int pos, bool kv_cached, float* out);
  LayerScratch scratch();

  std::shared_ptr<const DraftModel> draft_;
  const Model& base_;
  Backend* be_;
  LayerShape shape_;
  int capacity_;           // rows
  float* k_ = nullptr;     // (capacity, KVD)
  float* v_ = nullptr;     // (capacity, KVD)
  int committed_ = 0;      // committed rows
  int rows_ = 0;           // committed + scratch rows
  const int32_t* pos(int p) const { return iota_.data() + p; }  // position p as backend memory

  // scratch activations (backend memory)
  BackendArray<float> xn_, q_, att_, hb_, hb2_, o_, hhat_, cat_, logits_, query_;
  BackendArray<int32_t> iota_;  // 0, 1, 2, ... (positions)
  // sync(): rows appended in batches of up to kSyncRows (inputs, positions)
  BackendArray<float> sync_x_, sync_xn_, sync_h_;
  BackendArray<int32_t> sync_pos_;
  // memoise_trigrams(): a batch's token ids and encoder activations
  BackendArray<float> tri_emb_, tri_e3_, tri_r3_;
  BackendArray<int32_t> tri_ids_;
  BackendArray<int32_t> topk_ids_;  // a head's top-k on a device backend
  BackendArray<float> topk_vals_;
  // Memoised trigram vectors: memo_slots_ rows of D in memo_, found by key.
  BackendArray<float> memo_;
  int memo_slots_ = 0;
  std::unordered_map<uint64_t, int> memo_index_;
};

}  // namespace chimera
