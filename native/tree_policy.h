// Adaptive speculation (tree: 'auto'): chooses, step by step, between plain decoding and a set of
// candidate trees by the tokens per second each has delivered on this machine and this text, measured
// as decoding goes. Every tree is lossless, so the choice changes speed, never output.
//
// Every arm is tried once, plain decoding first; arms within 80% of the best get a few more samples.
// Afterwards the fastest runs, and each other arm is re-measured when the time decoding has taken since
// its last step is 1/budget times what one of its steps is expected to lose against the best arm (with
// the default 1%, exploring costs at most ~1% of the time per arm), and never sooner than
// `explore_interval` steps of the best arm. So a change of text or machine load is noticed while a
// hopeless arm (a big tree on a compute-bound CPU) costs almost nothing. Single slow outliers (a
// preempted step) are clipped so they cannot flip the choice.
#pragma once
#include <cstdint>
#include <vector>

namespace chimera {

class TreePolicy {
 public:
  // Arm 0 is plain decoding; arms 1..n_trees are the candidate trees in order.
  explicit TreePolicy(int n_trees, int warmup_per_arm = 3, int explore_interval = 16, double decay = 0.8,
                      double explore_budget = 0.01);

  int choose();  // the arm for the next step
  void record(int arm, double ms, int tokens);
  int n_arms() const { return (int)arms_.size(); }
  // Tokens per millisecond the arm has shown (0 before it was tried).
  double rate(int arm) const;
  int steps(int arm) const { return arms_[arm].n; }

 private:
  struct Arm {
    double ms = 0, tokens = 0, steps = 0;  // exponentially weighted sums
    int n = 0;
    double next_explore_ms = 0;  // decoding time at which a non-best arm is measured again
  };
  int best() const;
  std::vector<Arm> arms_;
  int warmup_, interval_;
  double decay_, budget_;
  double elapsed_ms_ = 0;  // decoding time recorded so far
};

}  // namespace chimera
