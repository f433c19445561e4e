// Online acceptance model and the best-first fitted tree.
#include "spec/tree_fitter.h"

#include <algorithm>
#include <queue>

namespace chimera {

namespace {
// Prior: a fairly good draft (top-1 0.6, falling by depth and rank), worth two observations. Optimistic
// enough that a draft gets tried; a few steps of counts then replace it.
constexpr double kPriorWeight = 2.0;
double prior(int d, int r) {
  const double top1 = 0.6 * (1.0 - 0.05 * d);
  return r == 0 ? top1 : top1 * 0.25 / r;
}
}  // namespace

TreeFitter::TreeFitter(int depths, double decay)
    : depths_(std::max(1, depths)), decay_(decay), hits_((size_t)depths_ * kMaxRank, 0.0),
      trials_((size_t)depths_ * kMaxRank, 0.0) {}

void TreeFitter::observe(const std::vector<std::vector<int32_t>>& guesses, const std::vector<int32_t>& tokens) {
  for (double& h : hits_) h *= decay_;
  for (double& t : trials_) t *= decay_;
  const int reach = std::min<int>((int)std::min(guesses.size(), tokens.size()), depths_);
  for (int d = 0; d < reach; d++) {
    const std::vector<int32_t>& g = guesses[d];
    const int n = std::min<int>((int)g.size(), kMaxRank);
    // Every listed rank is a trial (guesses are distinct: at most one is the base's token).
    bool hit = false;
    for (int r = 0; r < n; r++) {
      trials_[(size_t)d * kMaxRank + r] += 1;
      if (g[r] == tokens[d]) {
        hits_[(size_t)d * kMaxRank + r] += 1;
        hit = true;
      }
    }
    // Deeper heads guessed after this one's top-1; a miss at every rank ends the accepted path.
    if (!hit) break;
  }
}

double TreeFitter::acceptance(int d, int r) const {
  if (d < 0 || d >= depths_ || r < 0 || r >= kMaxRank) return 0.0;
  const size_t i = (size_t)d * kMaxRank + r;
  return (hits_[i] + kPriorWeight * prior(d, r)) / (trials_[i] + kPriorWeight);
}

TreeFitter::Fit TreeFitter::fit(const std::function<double(int)>& verify_ms,
                                const std::function<double(int)>& draft_ms, int max_nodes) const {
  struct Cand {
    double p;
    int parent;  // index into nodes (-1: the root)
    int depth, rank;
    bool operator<(const Cand& o) const { return p < o.p; }
  };
  struct Node {
    std::vector<int> path;
    double p;
  };
  std::vector<Node> nodes;
  std::priority_queue<Cand> frontier;
  for (int r = 0; r < kMaxRank; r++) frontier.push({acceptance(0, r), -1, 0, r});
  Fit best;
  best.step_ms = verify_ms(1);
  double best_rate = best.step_ms > 0 ? 1.0 / best.step_ms : 0.0;
  double expected = 1.0;
  int depth = 0;
  const int limit = std::min(max_nodes - 1, kMaxNodes);
  while ((int)nodes.size() < limit && !frontier.empty()) {
    const Cand c = frontier.top();
    frontier.pop();
    if (!(c.p > 1e-4)) break;
    Node n;
    if (c.parent >= 0) n.path = nodes[(size_t)c.parent].path;
    n.path.push_back(c.rank);
    n.p = c.p;
    nodes.push_back(n);
    expected += c.p;
    depth = std::max(depth, c.depth + 1);
    if (c.depth + 1 < depths_)
      for (int r = 0; r < kMaxRank; r++)
        frontier.push({c.p * acceptance(c.depth + 1, r), (int)nodes.size() - 1, c.depth + 1, r});
    const int rows = (int)nodes.size() + 1;
    const double ms = verify_ms(rows) + draft_ms(depth);
    if (ms > 0 && expected / ms > best_rate) {
      best_rate = expected / ms;
      best.nodes = rows;
      best.depth = depth;
      best.expected_tokens = expected;
      best.step_ms = ms;
      best.paths.clear();
      for (const Node& x : nodes) best.paths.push_back(x.path);
    }
  }
  return best;
}

}  // namespace chimera
