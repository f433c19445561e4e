// Recursive rejection over a static token tree.
#include "spec/tree_verify.h"

#include <algorithm>

namespace chimera {

namespace {
// Removes a token from a distribution and renormalises what is left.
void remove_and_renormalise(TokenDistribution& p, int32_t id) {
  double left = 0;
  for (size_t i = 0; i < p.ids.size(); i++) {
    if (p.ids[i] == id) p.probs[i] = 0.0f;
    left += p.probs[i];
  }
  if (left <= 0) return;
  for (float& x : p.probs) x = (float)(x / left);
}
}  // namespace

TreeAcceptance accept_tree(const CompiledTree& tree, const int32_t* node_tokens, const float* logits, int V,
                           const SamplingParams& sampling, const std::vector<int32_t>& history, Rng& rng,
                           VerifyMode mode) {
  std::vector<float> scratch;
  return accept_tree(
      tree, node_tokens,
      [&](int u, const std::vector<int32_t>& recent, TokenDistribution& p) {
        target_distribution(logits + (size_t)u * V, V, sampling, recent.data(), (int)recent.size(), p, scratch);
      },
      sampling, history, rng, mode);
}

std::vector<int32_t> node_penalty_windows(const CompiledTree& tree, const int32_t* node_tokens,
                                          const SamplingParams& sampling, const std::vector<int32_t>& history,
                                          int* width) {
  const int W = penalty_window(sampling, 1 << 30);
  *width = W;
  std::vector<int32_t> out((size_t)tree.size * W, -1);
  std::vector<int32_t> seq;
  for (int u = 0; u < tree.size; u++) {
    seq.clear();
    for (int v = u; v > 0; v = tree.node_parent[v]) seq.push_back(node_tokens[v]);  // the path, backwards
    int32_t* row = out.data() + (size_t)u * W;
    int filled = 0;
    for (size_t i = 0; i < seq.size() && filled < W; i++) row[W - 1 - filled++] = seq[i];
    for (size_t i = history.size(); i > 0 && filled < W; i--) row[W - 1 - filled++] = history[i - 1];
  }
  return out;
}

TreeAcceptance accept_tree(const CompiledTree& tree, const int32_t* node_tokens, const NodeDistribution& dist,
                           const SamplingParams& sampling, const std::vector<int32_t>& history, Rng& rng,
                           VerifyMode mode) {
  TreeAcceptance out;
  // The penalty window: the tail of the context, growing along the accepted path.
  const size_t tail = std::min(history.size(), (size_t)sampling.repeat_last_n);
  std::vector<int32_t> recent(history.end() - tail, history.end());
  TokenDistribution p;
  int u = 0;
  out.path.push_back(0);
  for (;;) {
    dist(u, recent, p);
    int next = -1;
    for (int c : tree.children[u]) {
      const float pc = p.prob_of(node_tokens[c]);
      if (mode == VerifyMode::LossyTopOneForTest && c == tree.children[u][0] && pc > 0.1f) {
        next = c;
        break;
      }
      if (pc >= 1.0f || (pc > 0.0f && rng.uniform() < pc)) {
        next = c;
        break;
      }
      if (pc > 0.0f) remove_and_renormalise(p, node_tokens[c]);
    }
    if (next < 0) {  // nothing accepted here: the bonus comes from the residual
      out.bonus = sample_from(p, rng);
      return out;
    }
    u = next;
    out.path.push_back(u);
    recent.push_back(node_tokens[u]);
    if (tree.children[u].empty()) {  // a leaf: the bonus comes from the full target at it
      dist(u, recent, p);
      out.bonus = sample_from(p, rng);
      return out;
    }
  }
}

TreeAcceptance accept_tree_greedy(const CompiledTree& tree, const int32_t* node_tokens, const int32_t* argmax) {
  TreeAcceptance out;
  int u = 0;
  out.path.push_back(0);
  for (;;) {
    int next = -1;
    for (int c : tree.children[u])
      if (node_tokens[c] == argmax[u]) {
        next = c;
        break;
      }
    if (next < 0) break;
    u = next;
    out.path.push_back(u);
  }
  out.bonus = argmax[u];
  return out;
}

}  // namespace chimera
