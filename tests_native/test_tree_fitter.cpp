// The fitted tree (spec/tree_fitter.h): the acceptance model learns per-(depth, rank) rates from
// outcomes; the best-first tree of each size is the optimum under that model (checked against brute
// force over small trees); the chosen size follows the verify-cost curve: a flat (GPU-like) curve gives
// a big tree, a compute-bound curve (cost linear in rows) none, a memory-bound CPU curve a chain-like
// tree of a few nodes.
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "check.h"
#include "spec/token_tree.h"
#include "spec/tree_fitter.h"

using namespace chimera;

namespace {

// Outcomes drawn from known rates: head d's guesses are 8 distinct tokens; the base's token is at rank r
// with probability q[d][r] (elsewhere otherwise).
void teach(TreeFitter& f, const std::vector<std::vector<double>>& q, int steps, test::Rng& rng) {
  for (int s = 0; s < steps; s++) {
    std::vector<std::vector<int32_t>> guesses(q.size());
    std::vector<int32_t> tokens;
    for (size_t d = 0; d < q.size(); d++) {
      for (int r = 0; r < TreeFitter::kMaxRank; r++) guesses[d].push_back((int32_t)(1000 * d + r));
      double u = rng.uniform(0.f, 1.f);
      int32_t tok = 999999;
      for (int r = 0; r < (int)q[d].size(); r++) {
        if (u < q[d][r]) { tok = guesses[d][r]; break; }
        u -= q[d][r];
      }
      tokens.push_back(tok);
      if (tok == 999999) break;  // the path ends here; the step emitted this as its bonus token
    }
    f.observe(guesses, tokens);
  }
}

double expected_of(const TreeFitter& f, const TreePaths& paths) {
  double e = 1;
  for (const auto& p : paths) {
    double x = 1;
    for (size_t d = 0; d < p.size(); d++) x *= f.acceptance((int)d, p[d]);
    e += x;
  }
  return e;
}

// Best expected tokens over every prefix-closed tree of n nodes within depth 3 and rank 3 (brute force).
double brute_best(const TreeFitter& f, int n) {
  std::vector<std::vector<int>> all;
  for (int a = 0; a < 3; a++) {
    all.push_back({a});
    for (int b = 0; b < 3; b++) {
      all.push_back({a, b});
      for (int c = 0; c < 3; c++) all.push_back({a, b, c});
    }
  }
  double best = 0;
  const int m = (int)all.size();  // 39 candidate nodes: enumerate subsets of size n by recursion
  std::vector<int> pick;
  std::function<void(int)> rec = [&](int i) {
    if ((int)pick.size() == n) {
      TreePaths t;
      for (int k : pick) t.push_back(all[k]);
      for (const auto& p : t)  // prefix-closed
        if (p.size() > 1) {
          bool ok = false;
          for (const auto& q : t) ok |= q.size() + 1 == p.size() && std::equal(q.begin(), q.end(), p.begin());
          if (!ok) return;
        }
      best = std::max(best, expected_of(f, t));
      return;
    }
    if (i >= m || m - i < n - (int)pick.size()) return;
    pick.push_back(i);
    rec(i + 1);
    pick.pop_back();
    rec(i + 1);
  };
  rec(0);
  return best;
}

}  // namespace

int main() {
  test::Rng rng(5);
  const std::vector<std::vector<double>> q = {{0.7, 0.15, 0.05}, {0.6, 0.2, 0.05}, {0.5, 0.2, 0.1}, {0.4, 0.1}};
  TreeFitter f(5, 0.999);
  teach(f, q, 4000, rng);
  for (int d = 0; d < 3; d++)
    for (int r = 0; r < 2; r++) {
      std::printf("p[%d][%d] = %.3f (true %.2f)\n", d, r, f.acceptance(d, r), q[d][r]);
      EXPECT(std::fabs(f.acceptance(d, r) - q[d][r]) < 0.04);
    }
  // The optimum under the model, for every size up to 6 (trees within depth 3 and rank 3).
  for (int n = 1; n <= 6; n++) {
    const TreeFitter::Fit fit = f.fit([&](int T) { return T <= n + 1 ? 1.0 : 1e9; }, [](int) { return 0.0; });
    const double brute = brute_best(f, n);
    std::printf("n=%d: best-first %.4f, brute force %.4f\n", n, fit.expected_tokens, brute);
    EXPECT((int)fit.paths.size() == n);
    EXPECT(fit.expected_tokens >= brute - 1e-9);
    compile_tree(fit.paths, 5, TreeFitter::kMaxRank);  // valid (throws otherwise)
  }
  // Costs decide the size. GPU-like: 64 rows cost about one step.
  auto fit_for = [&](const std::function<double(int)>& verify, double draft_per_depth) {
    return f.fit(verify, [&](int depth) { return draft_per_depth * depth; });
  };
  const auto gpu = fit_for([](int T) { return 10.0 + 0.02 * T; }, 0.1);
  std::printf("GPU-like: %d nodes, depth %d, %.2f tokens/step\n", gpu.nodes, gpu.depth, gpu.expected_tokens);
  EXPECT(gpu.nodes >= 16 && gpu.depth >= 4);
  // Compute-bound CPU: every row costs a plain step; no tree can pay.
  const auto cpu = fit_for([](int T) { return 10.0 * T; }, 1.0);
  std::printf("compute-bound: %zu paths\n", cpu.paths.size());
  EXPECT(cpu.paths.empty());
  // Memory-bound CPU (the wide 1.1B F16 model's measured curve, ms): 2 rows 1.02x, 4 1.25x, 8 1.54x,
  // 16 2.84x, a draft depth 1.5% of a step.
  auto mem = [](int T) {
    const double xs[] = {1, 2, 4, 8, 16, 26, 64}, ys[] = {1, 1.02, 1.25, 1.54, 2.84, 3.51, 8.9};
    for (int i = 0; i + 1 < 7; i++)
      if (T <= xs[i + 1]) return 100 * (ys[i] + (ys[i + 1] - ys[i]) * (T - xs[i]) / (xs[i + 1] - xs[i]));
    return 890.0;
  };
  const auto cpu_mem = fit_for(mem, 1.5);
  std::printf("memory-bound CPU: %d nodes, depth %d, %.2f tokens/step, modelled speedup %.2f\n", cpu_mem.nodes,
              cpu_mem.depth, cpu_mem.expected_tokens, cpu_mem.expected_tokens / cpu_mem.step_ms * 100);
  EXPECT(cpu_mem.nodes >= 3 && cpu_mem.nodes <= 12);
  // A draft that never agrees: nothing pays anywhere but the free GPU-like case's tiny trees.
  TreeFitter bad(5, 0.99);
  teach(bad, {{0.0}, {0.0}, {0.0}, {0.0}}, 500, rng);
  EXPECT(bad.fit(mem, [](int d) { return 1.5 * d; }).paths.empty());
  return test::finish("test_tree_fitter");
}
