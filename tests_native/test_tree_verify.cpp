// Greedy tree acceptance from node argmaxes alone (what a GPU session copies to the host) against the
// full acceptance from logits, on the built-in trees and random trees, with random logits and drafts
// that often agree with the base. And sampled acceptance from the backend's top-k candidates (what a
// GPU session copies when top-k bounds the distribution) against the acceptance from whole logits:
// the same paths and bonus tokens from the same random numbers, penalties included.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/backend.h"
#include "check.h"
#include "cpu/cpu_backend.h"
#include "sampling/candidates.h"
#include "sampling/sampler.h"
#include "spec/token_tree.h"
#include "spec/tree_verify.h"

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

  // Sampled acceptance from candidates. Logits are rounded to a few levels, so ties are common.
  struct Params {
    float temperature, top_p, min_p, penalty;
    int top_k, last_n;
  };
  const Params params[] = {{1.0f, 1.0f, 0.0f, 1.0f, 5, 64},  {0.7f, 0.9f, 0.05f, 1.0f, 40, 64},
                           {1.0f, 1.0f, 0.0f, 3.0f, 8, 4},   {0.8f, 0.95f, 0.0f, 2.0f, 20, 64},
                           {0.0f, 1.0f, 0.0f, 2.5f, 40, 6},  {1.2f, 1.0f, 0.1f, 1.5f, 1, 64}};
  int sampled = 0, differ = 0, deep = 0, penalised = 0;
  CandidateRows candidates;
  for (const Params& q : params) {
    SamplingParams sp;
    sp.temperature = q.temperature;
    sp.top_k = q.top_k;
    sp.top_p = q.top_p;
    sp.min_p = q.min_p;
    sp.repeat_penalty = q.penalty;
    sp.repeat_last_n = q.last_n;
    for (const CompiledTree& tree : trees) {
      for (int trial = 0; trial < 40; trial++) {
        std::vector<float> logits = test::random_floats(rng, (size_t)tree.size * V, -3, 3);
        for (float& x : logits) x = std::round(x * 4) / 4;
        std::vector<int32_t> argmax(tree.size), tokens(tree.size);
        be.argmax_rows(argmax.data(), logits.data(), tree.size, V);
        tokens[0] = 1;
        for (int n = 1; n < tree.size; n++) tokens[n] = rng.below(10) < 7 ? argmax[tree.node_parent[n]] : rng.below(V);
        std::vector<int32_t> history;
        for (int i = 0; i < 10; i++) history.push_back(rng.below(V));
        history.push_back(tokens[0]);
        Rng r1(trial), r2(trial);
        const TreeAcceptance whole = accept_tree(tree, tokens.data(), logits.data(), V, sp, history, r1);
        int W = 0;
        const std::vector<int32_t> windows = node_penalty_windows(tree, tokens.data(), sp, history, &W);
        EXPECT(candidates.select(be, logits.data(), tree.size, V, sp, windows.data(), W));
        const TreeAcceptance cand = accept_tree(
            tree, tokens.data(),
            [&](int u, const std::vector<int32_t>&, TokenDistribution& p) { candidates.distribution(u, sp, p); }, sp,
            history, r2);
        sampled++;
        if (whole.path != cand.path || whole.bonus != cand.bonus) differ++;
        if (whole.path.size() > 2) deep++;
        if (q.penalty != 1.0f) penalised++;
      }
    }
  }
  std::printf("sampled acceptance from top-k candidates: %d of %d trials match the acceptance from logits "
              "(%d past depth 1, %d with a penalty)\n",
              sampled - differ, sampled, deep, penalised);
  EXPECT(differ == 0);
  EXPECT(deep > sampled / 20);
  // Parameters that need whole rows are refused (then the logits are used).
  SamplingParams open;
  open.top_k = 0;
  std::vector<float> row((size_t)V, 0.f);
  EXPECT(!candidates.select(be, row.data(), 1, V, open, nullptr, 0));
  open.top_k = V;
  EXPECT(!candidates.select(be, row.data(), 1, V, open, nullptr, 0));
  return test::finish("test_tree_verify");
}
