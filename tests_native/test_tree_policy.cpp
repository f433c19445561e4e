// The adaptive tree policy: plain decoding first, first tries of trees priced against a time budget
// (so a compute-bound CPU loses almost nothing to trees that cannot pay, while a GPU finds the big
// tree early), then the fastest arm with bounded re-measurement, following a change of speed.
#include <cstdio>
#include <vector>

#include "check.h"
#include "spec/tree_policy.h"

using chimera::ArmShape;
using chimera::TreePolicy;

namespace {

// A simulated machine: a forward of n rows costs fixed + per_row * n ms, the draft per_depth ms per
// depth, and each arm gives tokens[arm] tokens per step.
struct Machine {
  double fixed, per_row, per_depth;
  std::vector<ArmShape> arms;
  std::vector<double> tokens;
  double forward(int n) const { return fixed + per_row * n; }
  double step_ms(int arm) const { return forward(arms[arm].nodes) + per_depth * arms[arm].depth; }
};

const std::vector<ArmShape> kTrees{{1, 0}, {2, 1}, {4, 3}, {26, 5}};  // plain, chain-1, chain-3, chimera-25

// Decodes `steps` steps after a 64-token prompt; returns the share of time lost against always
// running the best arm, and counts the steps per arm.
double decode(const Machine& m, int steps, std::vector<int>& counts) {
  TreePolicy p(m.arms, /*draft depth guess*/ 0.3);
  p.observe_forward(64, m.forward(64));  // the prompt
  double best_rate = 0;
  for (size_t a = 0; a < m.arms.size(); a++) best_rate = std::max(best_rate, m.tokens[a] / m.step_ms((int)a));
  counts.assign(m.arms.size(), 0);
  double ms = 0, tokens = 0;
  for (int i = 0; i < steps; i++) {
    const int a = p.choose();
    counts[a]++;
    const double step = m.step_ms(a);
    if (a > 0) p.observe_forward(m.arms[a].nodes, m.forward(m.arms[a].nodes));
    else p.observe_forward(1, m.forward(1));
    p.record(a, step, (int)m.tokens[a], m.per_depth * m.arms[a].depth);
    ms += step;
    tokens += m.tokens[a];
  }
  return 1.0 - (tokens / ms) / best_rate;
}

}  // namespace

int main() {
  // A compute-bound CPU: every row costs as much as the weights' streaming, no tree pays.
  {
    const Machine cpu{0.5, 0.5, 0.4, kTrees, {1, 1, 1, 1}};
    // The same with a real draft's acceptance, still not enough.
    const Machine cpu_tokens{0.5, 0.5, 0.4, kTrees, {1, 1.5, 1.8, 2.5}};
    for (const Machine* m : {&cpu, &cpu_tokens})
      for (int steps : {20, 100, 1000}) {
        std::vector<int> counts;
        const double lost = decode(*m, steps, counts);
        std::printf("cpu-like, %4d steps: %.2f%% lost (steps per arm %d %d %d %d)\n", steps, 100 * lost, counts[0],
                    counts[1], counts[2], counts[3]);
        EXPECT(lost <= 0.03);
        EXPECT(counts[3] == 0);  // the 26-node tree is priced out before it runs
      }
  }
  // A GPU: a forward costs about the same for 1 or 64 rows, and the big tree doubles the speed.
  {
    const Machine gpu{1.0, 0.01, 0.1, kTrees, {1, 1.6, 2.2, 3.5}};
    std::vector<int> counts;
    const double lost = decode(gpu, 400, counts);
    std::printf("gpu-like, 400 steps: %.2f%% lost against always chimera-25 (steps per arm %d %d %d %d)\n",
                100 * lost, counts[0], counts[1], counts[2], counts[3]);
    EXPECT(counts[3] >= 300);  // found early and kept
    EXPECT(lost < 0.15);
  }
  // Tried arms: the best runs almost always, the others are revisited at a bounded cost, a single
  // preempted step does not flip the choice, and a slowdown of the best arm moves the choice (to arm 2,
  // which is then no longer hopeless and gets its first try).
  {
    TreePolicy p({{1, 0}, {2, 1}, {3, 2}}, 0.1, /*sync guess*/ 0.0, /*warmup*/ 2, /*explore_interval*/ 10,
                 /*decay*/ 0.8);
    const double step_ms[3] = {1.0, 0.5, 0.4};
    const int tokens[3] = {1, 3, 1};  // arm 1 gives 6 tokens/ms, arm 2 2.5, plain 1
    p.observe_forward(8, 1.2);        // a GPU-like prompt: trees look cheap
    int counts[3] = {0, 0, 0};
    double ms = 0, lost = 0;
    for (int i = 0; i < 2000; i++) {
      const int a = p.choose();
      counts[a]++;
      p.record(a, step_ms[a], tokens[a]);
      ms += step_ms[a];
      lost += step_ms[a] - tokens[a] / 6.0;
    }
    EXPECT(counts[1] >= 1900);
    EXPECT(counts[0] >= 3);   // plain decoding is revisited
    EXPECT(counts[2] == 0);   // 3 tokens per estimated 0.65 ms cannot beat 6 tokens/ms: never tried
    std::printf("exploration cost: %.2f%% of the time (%d and %d steps of arms 0 and 2)\n", 100 * lost / ms, counts[0],
                counts[2]);
    EXPECT(lost / ms < 0.03);
    p.record(1, 50.0, 3);
    EXPECT(p.choose() == 1 || p.rate(1) > p.rate(0));
    for (int i = 0; i < 200; i++) {
      const int a = p.choose();
      p.record(a, a == 1 ? 5.0 : step_ms[a], tokens[a]);
    }
    int late[3] = {0, 0, 0};
    for (int i = 0; i < 50; i++) {
      const int a = p.choose();
      late[a]++;
      p.record(a, a == 1 ? 5.0 : step_ms[a], tokens[a]);
    }
    EXPECT(late[2] > late[0] && late[2] > late[1]);
  }
  // Interference: a tree step leaves the caches cold, so the plain step after it is twice as slow. Per
  // step, the tree (1.1 tokens/ms) then looks better than the plain steps measured between tree steps
  // (0.6), but plain decoding on its own (1.2) is faster: the realised-throughput windows must notice
  // and keep trees on hold, so little is lost against plain decoding throughout.
  {
    TreePolicy p({{1, 0}, {2, 1}}, 0.1);
    p.observe_forward(64, 2.0);
    bool after_tree = false;
    double ms = 0, tokens = 0;
    int tree_steps = 0;
    for (int i = 0; i < 3000; i++) {
      const int a = p.choose(0);
      const double step = a == 0 ? (after_tree ? 2.0 / 1.2 : 1.0 / 1.2) : 2.0;
      const int tok = a == 0 ? 1 : (i % 5 == 0 ? 3 : 2);  // 2.2 tokens per tree step on average
      p.observe_forward(a == 0 ? 1 : 2, step);
      p.record(a, step, tok);
      after_tree = a != 0;
      tree_steps += a != 0;
      ms += step;
      tokens += tok;
    }
    const double lost = 1.0 - (tokens / ms) / 1.2;
    std::printf("interference: %.2f%% lost against plain decoding (%d tree steps of 3000)\n", 100 * lost, tree_steps);
    EXPECT(lost < 0.04);
  }
  // The draft's catch-up with a long context is part of a first try's price: with 500 positions to
  // catch up at 0.05 plain steps each (25 steps), no tree is tried in the first 100 steps; once the
  // draft is caught up (or the measured catch-up is cheap), a tree is tried early.
  {
    auto first_tree_step = [](int pending, double sync_guess) {
      TreePolicy p({{1, 0}, {2, 1}}, 0.1, sync_guess);
      p.observe_forward(64, 2.0);
      for (int i = 0; i < 1000; i++) {
        const int a = p.choose(pending);
        if (a != 0) return i;
        p.observe_forward(1, 1.0);
        p.record(0, 1.0, 1);
      }
      return 1000;
    };
    const int with_catch_up = first_tree_step(500, 0.05), without = first_tree_step(0, 0.05);
    std::printf("first tree step: %d with 500 positions to catch up, %d without\n", with_catch_up, without);
    EXPECT(with_catch_up > 100);
    EXPECT(without < 100);
  }
  // Re-measuring a losing tree also pays the draft's catch-up with every position decoded since its
  // last step. Guessed cheap, it measures 0.07 plain steps per position (a tiny model, where a
  // position's fixed costs weigh), more than the 1% budget: after its first tries the tree is not
  // retried over 3000 plain steps. Where catching up is as cheap as guessed (0.001), it still is, now
  // and then.
  {
    auto retries = [](double sync_per_position) {
      TreePolicy p({{1, 0}, {26, 5}}, 0.5, /*sync guess*/ 0.001);
      p.observe_forward(64, 2.0);
      int pending = 0, tree_steps = 0;
      for (int i = 0; i < 3000; i++) {
        const int a = p.choose(pending);
        if (a != 0) {
          // A step of 4 plain steps' time for 1.1 tokens, after catching up.
          p.observe_sync(pending, pending * sync_per_position);
          p.observe_forward(26, 3.0);
          p.record(a, 4.0 + pending * sync_per_position, 1, 1.0);
          pending = 0;
          tree_steps++;
        } else {
          p.observe_forward(1, 1.0);
          p.record(0, 1.0, 1);
          pending++;
        }
      }
      return tree_steps;
    };
    const int costly = retries(0.07), cheap = retries(0.001);
    std::printf("tree steps in 3000 with a losing tree: %d with a costly catch-up, %d with a cheap one\n", costly,
                cheap);
    EXPECT(costly <= 3);
    EXPECT(cheap > costly + 3);
  }
  // Estimates: a tree step is its forward on the fitted cost curve (test_forward_costs) plus its draft.
  {
    TreePolicy p({{1, 0}, {26, 5}}, 0.5);
    p.observe_forward(1, 2.0);
    p.observe_forward(64, 65.0);
    p.record(0, 2.0, 1);
    const double est = p.estimated_step_ms(1);  // forward(26) = 1 + 26 = 27 on this machine, draft 5 * 0.5 * 2
    std::printf("estimated 26-node step: %.2f ms (expected 32)\n", est);
    EXPECT(est > 0.9 * 32 && est < 1.1 * 32);
  }
  return test::finish("test_tree_policy");
}
