// Adaptive speculation (tree: 'auto'): chooses, step by step, between plain decoding and a set of
// candidate trees by the tokens per second each has delivered on this machine and this text, measured
// as decoding goes. Every tree is lossless, so the choice changes speed, never output.
//
// Every arm is tried a few times first (once, if it is already far behind); afterwards the fastest runs. The others are re-measured now
// and then, less often the slower they were (an arm at half the best speed waits 4x longer), so that a
// change of text or machine load is noticed while exploring costs little. Single slow outliers (a
// preempted step) are clipped so they cannot flip the choice.
#pragma once
#include <cstdint>
#include <vector>

namespace chimera {

class TreePolicy {
 public:
  // Arm 0 is plain decoding; arms 1..n_trees are the candidate trees in order.
  explicit TreePolicy(int n_trees, int warmup_per_arm = 3, int explore_interval = 16, double decay = 0.8);

  int choose();  // the arm for the next step
  void record(int arm, double ms, int tokens);
  int n_arms() const { return (int)arms_.size(); }
  // Tokens per millisecond the arm has shown (0 before it was tried).
  double rate(int arm) const;
  int steps(int arm) const { return arms_[arm].n; }

 private:
  struct Arm {
    double ms = 0, tokens = 0;  // exponentially weighted sums
    int n = 0;
    int64_t next_explore = 0;   // step at which a non-best arm is measured again
  };
  int best() const;
  std::vector<Arm> arms_;
  int warmup_, interval_;
  double decay_;
  int64_t step_ = 0;
};

}  // namespace chimera
