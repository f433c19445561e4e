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
      mode_(mode) {
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
  const TreeAcceptance acc = verify_tree(tree, base, history, sampling, rng);
  std::vector<int32_t> out = keep_path(acc, base);
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
  tokens_.resize(T);
  positions_.resize(T);
  rows_.resize(T);
  tokens_[0] = history[m];
  for (int n = 0; n < T; n++) {
    if (n > 0) tokens_[n] = topk_[tree.node_depth[n] - 1][tree.node_rank[n]];
    positions_[n] = m + tree.node_depth[n];
    rows_[n] = n;
  }
  // Tree mask over (cached + tree) slots: the whole prefix, then self and ancestors.
  mask_.assign((size_t)T * (m + T), 1);
  for (int n = 0; n < T; n++)
    std::memcpy(mask_.data() + (size_t)n * (m + T) + m, tree.mask.data() + (size_t)n * T, T);
}

TreeAcceptance Speculator::verify_tree(const CompiledTree& tree, const BaseSide& base,
                                       const std::vector<int32_t>& history, const SamplingParams& sampling,
                                       Rng& rng) {
  const int T = tree.size, V = base.model.config.V;
  Backend& be = base.be;
  logits_.ensure(&be, (size_t)T * V);
  Batch b;
  b.tokens = tokens_.data();
  b.positions = positions_.data();
  b.T = T;
  b.mask = mask_.data();
  b.out_rows = rows_.data();
  b.R = T;
  forward(base.model, be, base.ws, base.kv, b, logits_.data(), nullptr, base.hidden);  // hidden rows m.. written
  if (plain_greedy(sampling) && !be.host_memory() && mode_ == VerifyMode::Exact) {
    // T ints cross to the host instead of T x V logits.
    argmax_.ensure(&be, (size_t)T);
    argmax_host_.resize(T);
    be.argmax_rows(argmax_.data(), logits_.data(), T, V);
    be.copy_to_host(argmax_host_.data(), argmax_.data(), sizeof(int32_t) * T);
    return accept_tree_greedy(tree, tokens_.data(), argmax_host_.data());
  }
  // Each node's penalty window, so the backend can select every row's candidates itself.
  int W = 0;
  const std::vector<int32_t> windows = plain_greedy(sampling)
                                           ? std::vector<int32_t>()
                                           : node_penalty_windows(tree, tokens_.data(), sampling, history, &W);
  if (!plain_greedy(sampling) && candidates_.select(be, logits_.data(), T, V, sampling, windows.data(), W)) {
    return accept_tree(
        tree, tokens_.data(),
        [&](int u, const std::vector<int32_t>&, TokenDistribution& p) { candidates_.distribution(u, sampling, p); },
        sampling, history, rng, mode_);
  }
  const float* logits = host_view(be, logits_.data(), (size_t)T * V, logits_host_);
  return accept_tree(tree, tokens_.data(), logits, V, sampling, history, rng, mode_);
}

std::vector<int32_t> Speculator::keep_path(const TreeAcceptance& acc, const BaseSide& base) {
  const int m = base.kv.size() - (int)tokens_.size();  // the verify forward appended the tree's rows
  const int C = base.model.config.C, n_acc = (int)acc.path.size();
  slots_.resize(n_acc);
  for (int i = 0; i < n_acc; i++) slots_[i] = m + acc.path[i];
  base.kv.compact(m, slots_.data(), n_acc);
  base.be.compact_rows(base.hidden, 0, 1, C, slots_.data(), m, n_acc);
  std::vector<int32_t> out;
  for (int i = 1; i < n_acc; i++) out.push_back(tokens_[acc.path[i]]);
  out.push_back(acc.bonus);
  return out;
}

}  // namespace chimera
