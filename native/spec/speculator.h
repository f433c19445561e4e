// One Chimera speculative decoding step over a session's caches: draft the chain, fill the tree from
// each head's top-k, verify every node in one base forward with the tree mask and per-node positions,
// accept a path losslessly, compact the base KV cache (and hidden states) to it, and return the
// accepted tokens plus the bonus token.
#pragma once
#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "spec/draft_state.h"
#include "spec/lookup_source.h"
#include "spec/speculative_config.h"
#include "spec/step_decoder.h"
#include "spec/tree_step.h"

namespace chimera {

class Speculator {
 public:
  // One tree, or several that the caller chooses between step by step (tree: 'auto').
  Speculator(std::shared_ptr<const DraftModel> draft, std::vector<CompiledTree> trees, const Model& base,
             Backend* backend, int context_size, VerifyMode mode, int reserve_nodes = 0);

  int n_trees() const { return (int)trees_.size(); }
  const CompiledTree& tree(int i) const { return trees_[i]; }
  // Replaces tree i (a fitted tree); it must fit max_tree_size().
  void set_tree(int i, CompiledTree tree);
  // Rows any tree of this speculator may have (at least `reserve_nodes` given at construction).
  int max_tree_size() const;
  // Drafting for a fitted tree: one head deeper than the tree and at least `min_top_k` guesses per
  // head, so the acceptance model also learns what the tree does not use yet.
  void set_learning(int extra_depth, int min_top_k) {
    extra_depth_ = extra_depth;
    min_top_k_ = min_top_k;
  }
  // Rows the last step verified (its tree, with any lookup nodes).
  int last_rows() const { return last_rows_; }
  // The forward pass the last step's verification ran in.
  const PassInfo& last_pass() const { return step_.last_pass(); }
  // The guesses of the last step, per drafted depth (best first).
  const std::vector<std::vector<int32_t>>& last_guesses() const { return topk_; }
  DraftState& draft_state() { return draft_; }
  // Lookup candidates in the same tree (lookup_source.h): after the draft fills its tree, lookup nodes
  // whose modelled acceptance is at least kMinLookupP join it (merged where they agree with the draft),
  // at most config.max_nodes of them.
  static constexpr float kMinLookupP = 0.3f;
  void set_lookup(const LookupConfig& config);
  bool uses_lookup() const { return lookup_ != nullptr; }
  // Replaces the kMinLookupP rule: gate(rows, p) says whether a lookup node of modelled acceptance p
  // is worth one more row on a tree of `rows` rows (tree 'auto': by the measured costs).
  void set_lookup_gate(std::function<bool(int rows, double p)> gate) { lookup_gate_ = std::move(gate); }
  // Rows the draft's own trees may have (max_tree_size() less the lookup nodes' reserve).
  int max_draft_tree_size() const { return max_tree_size() - (lookup_ ? lookup_config_.max_nodes : 0); }
  // Context positions (of m cached) the draft has not caught up with yet.
  int pending_positions(int m) const { return std::max(0, m - draft_.committed_rows() / 2); }

  // Preconditions: history = cached tokens (m = base.kv.size()) + the root token; base.hidden has room
  // for m + tree.size rows and holds the states of cached positions. Returns accepted tokens + bonus;
  // afterwards the cache holds the root and the accepted tokens, hidden their states.
  std::vector<int32_t> step(int tree_index, BaseSide base, const std::vector<int32_t>& history,
                            const SamplingParams& sampling, Rng& rng, SpeculativeStats& stats);

 private:
  // Drafts the tree's nodes into step_.tokens().
  void draft_tree(const CompiledTree& tree, const BaseSide& base, const std::vector<int32_t>& history,
                  SpeculativeStats& stats);

  // Adds lookup nodes to the drafted tree (at most `room`); merged_ then holds the tree to verify and
  // step_.tokens() its tokens. Returns false when nothing was added (the drafted tree runs as it is).
  bool merge_lookup(const CompiledTree& tree, const std::vector<int32_t>& history, int room);

  std::vector<CompiledTree> trees_;
  int reserve_nodes_ = 0;
  int last_rows_ = 0;
  std::unique_ptr<LookupSource> lookup_;
  std::function<bool(int, double)> lookup_gate_;
  LookupConfig lookup_config_;
  LookupTree lookup_tree_;
  CompiledTree merged_;
  std::vector<int> merged_of_lookup_;   // (lookup nodes) merged node, -1 when left out
  std::vector<uint8_t> merged_origin_;  // (compiled merged nodes) sources, as count_sources() reads them
  int extra_depth_ = 0, min_top_k_ = 0;
  std::vector<int> top_k_;  // guesses to draft per depth (the tree's, or more when learning)
  DraftState draft_;
  std::vector<std::vector<int32_t>> topk_;
  TreeStep step_;
};

}  // namespace chimera
