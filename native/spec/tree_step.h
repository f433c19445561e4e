// The base model's half of a speculative step, whatever proposed the tree (a draft's heads, lookup):
// one forward over every node with the tree mask and per-node positions, the lossless acceptance of a
// path (tree_verify.h), and the compaction of the KV cache (and hidden states) to it.
#pragma once
#include <cstdint>
#include <vector>

#include "model/batch_scheduler.h"
#include "model/forward.h"
#include "sampling/candidates.h"
#include "spec/token_tree.h"
#include "spec/tree_verify.h"

namespace chimera {

// The base model's side of a step: the model, its backend, and the session's workspace, KV cache and
// final hidden states of cached positions (backend memory, rows of C; null when nothing needs them),
// and the scheduler its forward passes share with other sessions (null: they run alone).
struct BaseSide {
  const Model& model;
  Backend& be;
  Workspace& ws;
  KVCache& kv;
  float* hidden;
  BatchScheduler* batcher = nullptr;

  // forward() of this side's sequence, through the scheduler when there is one.
  PassInfo forward(const Batch& b, float* logits, float* hidden_out, float* hidden_all) const {
    if (batcher) return batcher->run(ws, kv, b, logits, hidden_out, hidden_all);
    chimera::forward(model, be, ws, kv, b, logits, hidden_out, hidden_all);
    return PassInfo{};
  }
};

class TreeStep {
 public:
  explicit TreeStep(VerifyMode mode = VerifyMode::Exact) : mode_(mode) {}

  // The tree's node tokens (node 0 = the root, the last token of history, not yet cached).
  std::vector<int32_t>& tokens() { return tokens_; }
  // Verifies the tree whose node tokens were set (the cache holds m = history.size() - 1 positions),
  // keeps the accepted path in the cache and returns its tokens plus the bonus token. acc gets the
  // accepted nodes.
  std::vector<int32_t> run(const CompiledTree& tree, const BaseSide& base, const std::vector<int32_t>& history,
                           const SamplingParams& sampling, Rng& rng, TreeAcceptance& acc);
  // The forward pass the last verification ran in (shared with other sessions when batched).
  const PassInfo& last_pass() const { return last_pass_; }

 private:
  TreeAcceptance verify(const CompiledTree& tree, const BaseSide& base, const std::vector<int32_t>& history,
                        const SamplingParams& sampling, Rng& rng);
  std::vector<int32_t> keep_path(const TreeAcceptance& acc, const BaseSide& base);

  VerifyMode mode_;
  std::vector<int32_t> tokens_, positions_, rows_, slots_;
  std::vector<uint8_t> mask_;
  BackendArray<float> logits_;      // (T, V) backend memory
  std::vector<float> logits_host_;  // its host copy, on a device backend
  BackendArray<int32_t> argmax_;    // greedy on a device backend: each node's argmax (T)
  CandidateRows candidates_;        // sampling: each node's top-k candidates
  std::vector<int32_t> argmax_host_;
  PassInfo last_pass_;
};

}  // namespace chimera
