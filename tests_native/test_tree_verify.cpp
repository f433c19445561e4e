// Greedy tree acceptance from node argmaxes alone (what a GPU session copies to the host) against the
// full acceptance from logits, on the built-in trees and random trees, with random logits and drafts
// that often agree with the base.
#include <algorithm>
#include <vector>

#include "check.h"
#include "ops.h"
#include "sampler.h"
#include "token_tree.h"
#include "tree_verify.h"

using namespace chimera;

int main() {
  test::Rng rng(11);
  CpuBackend be(nullptr);
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.repeat_penalty = 1.0f;
  std::vector<CompiledTree> trees = {compile_tree(builtin_tree("chimera-25"), 8, 64, "chimera-25"),
                                     compile_tree(builtin_tree("chain-4"), 8, 64, "chain-4")};
  for (int r = 0; r < 20; r++) {  // random prefix-closed trees
    TreePaths paths;
    for (int i = 0; i < 12; i++) {
      std::vector<int> p;
      const int len = 1 + rng.below(4);
      for (int d = 0; d < len; d++) p.push_back(rng.below(3));
      for (size_t k = 1; k <= p.size(); k++) paths.push_back(std::vector<int>(p.begin(), p.begin() + k));
    }
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
    trees.push_back(compile_tree(paths, 8, 64, "random"));
  }
  const int V = 50;
  int checked = 0, mismatches = 0, long_paths = 0;
  for (const CompiledTree& tree : trees) {
    for (int trial = 0; trial < 200; trial++) {
      std::vector<float> logits = test::random_floats(rng, (size_t)tree.size * V, -3, 3);
      std::vector<int32_t> argmax(tree.size), tokens(tree.size);
      be.argmax_rows(argmax.data(), logits.data(), tree.size, V);
      tokens[0] = 1;
      for (int n = 1; n < tree.size; n++)  // the parent's argmax 60% of the time
        tokens[n] = rng.below(10) < 6 ? argmax[tree.node_parent[n]] : rng.below(V);
      Rng sampler_rng(trial);
      const std::vector<int32_t> history = {1, 2, 3};
      TreeAcceptance full = accept_tree(tree, tokens.data(), logits.data(), V, greedy, history, sampler_rng);
      TreeAcceptance fast = accept_tree_greedy(tree, tokens.data(), argmax.data());
      checked++;
      if (full.path != fast.path || full.bonus != fast.bonus) mismatches++;
      if (full.path.size() > 2) long_paths++;
    }
  }
  std::printf("greedy acceptance from argmaxes: %d of %d trials match the full acceptance (%d paths past depth 1)\n",
              checked - mismatches, checked, long_paths);
  EXPECT(mismatches == 0);
  EXPECT(long_paths > checked / 10);  // the trials do exercise deep paths
  return test::finish("test_tree_verify");
}
