// One Chimera speculative decoding step over a session's caches: draft the chain, fill the tree from
// each head's top-k, verify every node in one base forward with the tree mask and per-node positions,
// accept a path losslessly, compact the base KV cache (and hidden states) to it, and return the
// accepted tokens plus the bonus token.
#pragma once
#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "model/forward.h"
#include "sampling/candidates.h"
#include "spec/draft_state.h"
#include "spec/tree_verify.h"

namespace chimera {

struct SpeculativeStats {
  int steps = 0;
  int drafted_tokens = 0;                 // tokens emitted by speculative steps (accepted + bonus)
  std::vector<int64_t> accepted_by_depth;  // (depth) steps whose accepted path reached depth d+1
  std::vector<int64_t> steps_by_tree;      // (trees) steps that used each tree
  double ms_draft = 0, ms_verify = 0;
  double ms_sync = 0;            // the part of ms_draft spent catching the draft up with the context
  int64_t synced_positions = 0;  // positions caught up
};

// The base model's side of a step: the model, its backend, and the session's workspace, KV cache and
// final hidden states of cached positions (backend memory, rows of C).
struct BaseSide {
  const Model& model;
  Backend& be;
  Workspace& ws;
  KVCache& kv;
  float* hidden;
};

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
  // The guesses of the last step, per drafted depth (best first).
  const std::vector<std::vector<int32_t>>& last_guesses() const { return topk_; }
  DraftState& draft_state() { return draft_; }
  // Context positions (of m cached) the draft has not caught up with yet.
  int pending_positions(int m) const { return std::max(0, m - draft_.committed_rows() / 2); }

  // Preconditions: history = cached tokens (m = base.kv.size()) + the root token; base.hidden has room
  // for m + tree.size rows and holds the states of cached positions. Returns accepted tokens + bonus;
  // afterwards the cache holds the root and the accepted tokens, hidden their states.
  std::vector<int32_t> step(int tree_index, BaseSide base, const std::vector<int32_t>& history,
                            const SamplingParams& sampling, Rng& rng, SpeculativeStats& stats);

 private:
  // Drafts the tree's nodes: tokens_, positions_ and rows_ (T), and the tree mask over cached + tree slots.
  void draft_tree(const CompiledTree& tree, const BaseSide& base, const std::vector<int32_t>& history,
                  SpeculativeStats& stats);
  // One base forward over every node, then the lossless acceptance of a path.
  TreeAcceptance verify_tree(const CompiledTree& tree, const BaseSide& base, const std::vector<int32_t>& history,
                             const SamplingParams& sampling, Rng& rng);
  // Compacts the base cache and hidden states to the accepted path; returns its tokens plus the bonus.
  std::vector<int32_t> keep_path(const TreeAcceptance& acc, const BaseSide& base);

  std::vector<CompiledTree> trees_;
  int reserve_nodes_ = 0;
  int extra_depth_ = 0, min_top_k_ = 0;
  std::vector<int> top_k_;  // guesses to draft per depth (the tree's, or more when learning)
  DraftState draft_;
  VerifyMode mode_;
  std::vector<std::vector<int32_t>> topk_;
  std::vector<int32_t> tokens_, positions_, rows_, slots_;
  std::vector<uint8_t> mask_;
  BackendArray<float> logits_;      // (T, V) backend memory
  std::vector<float> logits_host_;  // its host copy, on a device backend
  BackendArray<int32_t> argmax_;    // greedy on a device backend: each node's argmax (T)
  CandidateRows candidates_;        // sampling: each node's top-k candidates
  std::vector<int32_t> argmax_host_;
};

}  // namespace chimera
