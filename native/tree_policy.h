// Adaptive speculation (tree: 'auto'): chooses, step by step, between plain decoding and a set of
// candidate trees by the tokens per second each has delivered on this machine and this text, measured
// as decoding goes. Every tree is lossless, so the choice changes speed, never output. Each arm is
// tried a few times first; afterwards the best arm runs, and every `explore_every` steps another arm
// gets one step so that a change of text or load is noticed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace chimera {

class TreePolicy {
 public:
  // Arm 0 is plain decoding; arms 1..n_trees are the candidate trees in order.
  explicit TreePolicy(int n_trees, int warmup_per_arm = 3, int explore_every = 32, double decay = 0.9);

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
  };
  int best() const;
  std::vector<Arm> arms_;
  int warmup_, explore_every_;
  double decay_;
  int64_t step_ = 0;
  int explore_next_ = 0;
};

}  // namespace chimera
