// The speculative step.
#include "spec/speculator.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace chimera {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
}  // namespace

Speculator::Speculator(std::shared_ptr<const DraftModel> draft, std::vector<CompiledTree> trees, const Model& base,
                       Backend* backend, int context_size, VerifyMode mode, int reserve_nodes)
    : trees_(std::move(trees)), reserve_nodes_(reserve_nodes), draft_(std::move(draft), base, backend, context_size),
      step_(mode) {
  CHIMERA_CHECK(!trees_.empty(), ErrorCode::InvalidArg, "speculation needs a tree");
  for (const CompiledTree& t : trees_)
    CHIMERA_CHECK(t.depth <= draft_.draft().config.K, ErrorCode::InvalidArg, "tree is ", t.depth,
                  " deep but the draft has ", draft_.draft().config.K, " heads");
}

void Speculator::set_tree(int i, CompiledTree tree) {
  CHIMERA_CHECK(i >= 0 && i < n_trees() && tree.size <= max_tree_size() && tree.depth <= draft_.draft().config.K,
                ErrorCode::Internal, "set_tree: the tree does not fit");
  trees_[(size_t)i] = std::move(tree);
}

int Speculator::max_tree_size() const {
  int n = reserve_nodes_;
  for (const CompiledTree& t : trees_) n = std::max(n, t.size);
  return n;
}

std::vector<int32_t> Speculator::step(int tree_index, BaseSide base, const std::vector<int32_t>& history,
                                      const SamplingParams& sampling, Rng& rng, SpeculativeStats& stats) {
  const CompiledTree& tree = trees_.at(tree_index);
  const int m = base.kv.size();
  CHIMERA_CHECK((int)history.size() == m + 1 && m >= 1, ErrorCode::Internal, "speculative step: bad state");
  CHIMERA_CHECK(m + tree.size <= base.kv.capacity() && tree.size <= base.ws.max_T(), ErrorCode::Internal,
                "speculative step: no room");
  const auto t0 = Clock::now();
  draft_tree(tree, base, history, stats);
  const auto t1 = Clock::now();
  stats.ms_draft += std::chrono::duration<double, std::milli>(t1 - t0).count();
  TreeAcceptance acc;
  std::vector<int32_t> out = step_.run(tree, base, history, sampling, rng, acc);
  stats.ms_verify += ms_since(t1);

  stats.steps++;
  stats.drafted_tokens += (int)out.size();
  if (stats.accepted_by_depth.size() < (size_t)tree.depth) stats.accepted_by_depth.resize(tree.depth, 0);
  if (stats.steps_by_tree.size() < trees_.size()) stats.steps_by_tree.resize(trees_.size(), 0);
  stats.steps_by_tree[tree_index]++;
  for (size_t d = 0; d + 1 < acc.path.size(); d++) stats.accepted_by_depth[d]++;
  return out;
}

void Speculator::draft_tree(const CompiledTree& tree, const BaseSide& base, const std::vector<int32_t>& history,
                            SpeculativeStats& stats) {
  const int m = base.kv.size(), T = tree.size, C = base.model.config.C;
  // The draft catches up with the context, then drafts the top-1 chain and each head's top-k.
  const auto t0 = Clock::now();
  const int synced_rows = draft_.committed_rows();
  draft_.sync(history, m, base.hidden);
  stats.ms_sync += ms_since(t0);
  stats.synced_positions += (draft_.committed_rows() - synced_rows) / 2;
  const int depth = std::min(tree.depth + extra_depth_, draft_.draft().config.K);
  top_k_.assign((size_t)depth, min_top_k_);
  for (int d = 0; d < tree.depth; d++) top_k_[(size_t)d] = std::max(tree.top_k[(size_t)d], min_top_k_);
  draft_.draft_chain(history, m, base.hidden + (size_t)(m - 1) * C, depth, top_k_, topk_);
  std::vector<int32_t>& tokens = step_.tokens();
  tokens.resize(T);
  tokens[0] = history[m];
  for (int n = 1; n < T; n++) tokens[n] = topk_[tree.node_depth[n] - 1][tree.node_rank[n]];
}

}  // namespace chimera
