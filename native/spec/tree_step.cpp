// Verification of a token tree and compaction to the accepted path.
#include "spec/tree_step.h"

#include <cstring>

#include "common/error.h"

namespace chimera {

std::vector<int32_t> TreeStep::run(const CompiledTree& tree, const BaseSide& base, const std::vector<int32_t>& history,
                                   const SamplingParams& sampling, Rng& rng, TreeAcceptance& acc) {
  const int m = base.kv.size(), T = tree.size;
  CHIMERA_CHECK((int)history.size() == m + 1 && m >= 1 && (int)tokens_.size() == T, ErrorCode::Internal,
                "tree step: bad state");
  CHIMERA_CHECK(m + T <= base.kv.capacity() && T <= base.ws.max_T(), ErrorCode::Internal, "tree step: no room");
  positions_.resize(T);
  rows_.resize(T);
  for (int n = 0; n < T; n++) {
    positions_[n] = m + tree.node_depth[n];
    rows_[n] = n;
  }
  // Tree mask over (cached + tree) slots: the whole prefix, then self and ancestors.
  mask_.assign((size_t)T * (m + T), 1);
  for (int n = 0; n < T; n++) std::memcpy(mask_.data() + (size_t)n * (m + T) + m, tree.mask.data() + (size_t)n * T, T);
  acc = verify(tree, base, history, sampling, rng);
  return keep_path(acc, base);
}

TreeAcceptance TreeStep::verify(const CompiledTree& tree, const BaseSide& base, const std::vector<int32_t>& history,
                                const SamplingParams& sampling, Rng& rng) {
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
  last_pass_ = base.forward(b, logits_.data(), nullptr, base.hidden);  // hidden rows m.. written
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

std::vector<int32_t> TreeStep::keep_path(const TreeAcceptance& acc, const BaseSide& base) {
  const int m = base.kv.size() - (int)tokens_.size();  // the verify forward appended the tree's rows
  const int C = base.model.config.C, n_acc = (int)acc.path.size();
  slots_.resize(n_acc);
  for (int i = 0; i < n_acc; i++) slots_[i] = m + acc.path[i];
  base.kv.compact(m, slots_.data(), n_acc);
  if (base.hidden) base.be.compact_rows(base.hidden, 0, 1, C, slots_.data(), m, n_acc);
  std::vector<int32_t> out;
  for (int i = 1; i < n_acc; i++) out.push_back(tokens_[acc.path[i]]);
  out.push_back(acc.bonus);
  return out;
}

}  // namespace chimera
