// A token tree fitted to the draft and the hardware as decoding goes (tree: 'auto'), after Sequoia
// (arXiv 2402.12374) and EAGLE-2 (arXiv 2406.16858):
//
// - Acceptance per (depth, rank) is learned online from verification outcomes: at every depth the
//   accepted path reached, the base model's own token is looked up in that head's guesses. p[d][r] is
//   the chance that head d's rank-r guess is the base's token there, given the path reached depth d.
//   Counts decay, so a change of text is followed; a prior stands in until there are counts.
// - Under that positional model a node's chance of being accepted is the product of p over its path,
//   which never grows along a path. So the n nodes of highest path probability form a valid tree and
//   the best one of n nodes for expected accepted tokens: a best-first expansion (EAGLE-2's
//   confidence-ranked expansion, Sequoia's optimum for positional acceptance) yields the optimal tree
//   of every size in one pass.
// - The size is then chosen for tokens per second: (1 + expected accepted tokens) / (the measured cost
//   of verifying n + 1 rows + the draft's cost at the tree's depth). Where nothing pays, the best rate
//   is near one token per plain step and the policy (tree_policy.h) keeps plain decoding.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "spec/token_tree.h"

namespace chimera {

class TreeFitter {
 public:
  static constexpr int kMaxRank = 8;    // guesses per depth the model tracks (and a tree may use)
  static constexpr int kMaxNodes = 63;  // drafted nodes of a fitted tree (64 rows with the root)

  explicit TreeFitter(int depths, double decay = 0.98);

  // A step's outcome: guesses[d] = head d's guesses (best first) as drafted; tokens = what the step
  // emitted (the accepted tokens, then the base's own token after them), so tokens[d] is the base's
  // token at depth d wherever the accepted path reached depth d.
  void observe(const std::vector<std::vector<int32_t>>& guesses, const std::vector<int32_t>& tokens);

  // p[d][r] (with the prior while counts are few).
  double acceptance(int d, int r) const;

  struct Fit {
    TreePaths paths;         // empty: no tree (plain decoding)
    int nodes = 1;           // rows verified (the root included)
    int depth = 0;
    double expected_tokens = 1;  // per step, the bonus token included
    double step_ms = 0;      // modelled cost of a step
  };
  // The tree of best modelled tokens/s. verify_ms(T): a forward over T rows; draft_ms(depth): drafting
  // that many heads. Trees of at most max_nodes rows.
  Fit fit(const std::function<double(int)>& verify_ms, const std::function<double(int)>& draft_ms,
          int max_nodes = kMaxNodes + 1) const;

 private:
  int depths_;
  double decay_;
  std::vector<double> hits_;    // (depths, kMaxRank) decayed counts
  std::vector<double> trials_;  // (depths, kMaxRank) decayed counts of lists that had that rank
};

}  // namespace chimera
