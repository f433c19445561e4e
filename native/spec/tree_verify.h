// Choosing the accepted path of a verified token tree, losslessly: at each node the base model's
// target distribution (sampling transforms applied with that node's own prefix) decides. Children are
// tried in tree order; child c is accepted with probability p[c], else p[c] = 0 and p is renormalised;
// if none is accepted the bonus token is drawn from the residual p (spec Part A). This is a sequential
// decomposition of one draw from p, so the output is distributed exactly as plain sampling; under
// greedy targets (one-hot) it reduces to "longest path matching the base argmax".
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "sampling/sampler.h"
#include "spec/token_tree.h"

namespace chimera {

struct TreeAcceptance {
  std::vector<int> path;  // accepted nodes, root (node 0) first
  int32_t bonus = -1;     // the token drawn after the last accepted node
};

enum class VerifyMode {
  Exact,              // the lossless recursive rejection above
  LossyTopOneForTest  // NEGATIVE CONTROL for tests only: accept the first child whenever p > 0.1 (biased)
};

// logits (tree.size, V) from one base forward over the tree; node_tokens (tree.size); `history` is the
// context up to and including the root token (for the repetition penalty).
TreeAcceptance accept_tree(const CompiledTree& tree, const int32_t* node_tokens, const float* logits, int V,
                           const SamplingParams& sampling, const std::vector<int32_t>& history, Rng& rng,
                           VerifyMode mode = VerifyMode::Exact);

// The same, with node u's target distribution given by dist(u, out) (its penalty window is the last
// repeat_last_n tokens of the history followed by the tokens of u's path, root excluded).
using NodeDistribution = std::function<void(int node, const std::vector<int32_t>& recent, TokenDistribution& out)>;
TreeAcceptance accept_tree(const CompiledTree& tree, const int32_t* node_tokens, const NodeDistribution& dist,
                           const SamplingParams& sampling, const std::vector<int32_t>& history, Rng& rng,
                           VerifyMode mode = VerifyMode::Exact);

// The penalty windows of every node (tree.size, width penalty_window(sampling, huge)), -1 padded in
// front: what accept_tree passes as `recent` for each node, for a backend to penalise rows itself.
std::vector<int32_t> node_penalty_windows(const CompiledTree& tree, const int32_t* node_tokens,
                                          const SamplingParams& sampling, const std::vector<int32_t>& history,
                                          int* width);

// The same acceptance under plain greedy targets (plain_greedy(sampling)), from each node's argmax
// (tree.size) alone: the longest path whose every token is its parent's argmax, then the argmax of
// the last node as the bonus token.
TreeAcceptance accept_tree_greedy(const CompiledTree& tree, const int32_t* node_tokens, const int32_t* argmax);

}  // namespace chimera
