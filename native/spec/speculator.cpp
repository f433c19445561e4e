// The speculative step.
#include "spec/speculator.h"

#include <algorithm>

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
  return n + (lookup_ ? lookup_config_.max_nodes : 0);
}

void Speculator::set_lookup(const LookupConfig& config) {
  lookup_config_ = config;
  lookup_ = std::make_unique<LookupSource>(config.corpus);
}

bool Speculator::merge_lookup(const CompiledTree& tree, const std::vector<int32_t>& history, int room) {
  room = std::min(room, lookup_config_.max_nodes);
  merged_origin_.assign((size_t)tree.size, kDraftOriginBit);
  lookup_tree_.clear();
  merged_of_lookup_.clear();
  if (room <= 0) return false;
  lookup_->sync(history);
  lookup_->build(history, room + 1, lookup_config_.max_depth, lookup_tree_);
  const LookupTree& lt = lookup_tree_;
  // The merged trie: the drafted nodes, then lookup nodes (parents first in both).
  const std::vector<int32_t>& drafted = step_.tokens();
  std::vector<int32_t> token(drafted.begin(), drafted.end());
  std::vector<int> parent(tree.node_parent.begin(), tree.node_parent.end());
  std::vector<uint8_t> origin((size_t)tree.size, kDraftOriginBit);
  std::vector<std::vector<int>> children((size_t)tree.size);
  for (int n = 1; n < tree.size; n++) children[(size_t)tree.node_parent[n]].push_back(n);
  merged_of_lookup_.assign((size_t)lt.size(), -1);
  merged_of_lookup_[0] = 0;
  int added = 0;
  for (int u = 1; u < lt.size(); u++) {
    const int pm = merged_of_lookup_[(size_t)lt.parent[u]];
    if (pm < 0) continue;  // its parent was left out
    int v = -1;
    for (int c : children[(size_t)pm])
      if (token[(size_t)c] == lt.token[u]) v = c;
    if (v < 0) {
      const bool worth = lookup_gate_ ? lookup_gate_((int)token.size(), lt.p[u]) : lt.p[u] >= kMinLookupP;
      if (added >= room || !worth) continue;
      v = (int)token.size();
      token.push_back(lt.token[u]);
      parent.push_back(pm);
      origin.push_back(0);
      children[(size_t)pm].push_back(v);
      children.emplace_back();
      added++;
    }
    origin[(size_t)v] |= lt.origins[u];
    merged_of_lookup_[(size_t)u] = v;
  }
  if (added == 0) {
    merged_origin_.assign(origin.begin(), origin.end());  // drafted nodes only, some confirmed by lookup
    return false;
  }
  // Compiled (children ranked drafted first, then lookup's); the compiled order maps back to merged nodes.
  const int n = (int)token.size();
  std::vector<int> order;
  merged_ = compile_parents(parent.data(), n, std::max(tree.depth, lookup_config_.max_depth), max_tree_size(), "merged",
                            order);
  std::vector<int32_t>& out = step_.tokens();
  out.assign((size_t)n, 0);
  merged_origin_.assign((size_t)n, 0);
  std::vector<int> compiled_of((size_t)n, 0);
  for (int i = 0; i < n; i++) {
    out[(size_t)i] = token[(size_t)order[(size_t)i]];
    merged_origin_[(size_t)i] = origin[(size_t)order[(size_t)i]];
    compiled_of[(size_t)order[(size_t)i]] = i;
  }
  for (int& m : merged_of_lookup_)
    if (m >= 0) m = compiled_of[(size_t)m];
  return true;
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
  const int room = std::min(base.kv.capacity() - m, base.ws.max_T()) - tree.size;
  const bool merged = lookup_ && merge_lookup(tree, history, room);
  const CompiledTree& run = merged ? merged_ : tree;
  last_rows_ = run.size;
  const auto t1 = Clock::now();
  stats.ms_draft += std::chrono::duration<double, std::milli>(t1 - t0).count();
  TreeAcceptance acc;
  std::vector<int32_t> out = step_.run(run, base, history, sampling, rng, acc);
  stats.ms_verify += ms_since(t1);

  count_step(stats, tree_index, (int)trees_.size(), run.depth, acc, out.size());
  if (lookup_) {
    // Accepted tokens by source, and the lookup model's outcome (its nodes on the accepted path).
    std::vector<uint8_t> on_path((size_t)run.size, 0);
    for (int u : acc.path) on_path[(size_t)u] = 1;
    for (size_t i = 1; i < acc.path.size(); i++) count_sources(stats, merged_origin_[(size_t)acc.path[i]]);
    std::vector<int> lookup_path{0};
    for (int u = 1; u < lookup_tree_.size(); u++) {
      const int v = merged_of_lookup_[(size_t)u];
      if (v >= 0 && on_path[(size_t)v]) lookup_path.push_back(u);
    }
    lookup_->observe(lookup_tree_, lookup_path);
  }
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
