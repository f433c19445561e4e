// The adaptive tree policy.
#include "tree_policy.h"

namespace chimera {

TreePolicy::TreePolicy(int n_trees, int warmup_per_arm, int explore_every, double decay)
    : arms_(n_trees + 1), warmup_(warmup_per_arm), explore_every_(explore_every), decay_(decay) {}

double TreePolicy::rate(int arm) const {
  const Arm& a = arms_[arm];
  return a.ms > 0 ? a.tokens / a.ms : 0.0;
}

int TreePolicy::best() const {
  int b = 0;
  for (int i = 1; i < n_arms(); i++)
    if (rate(i) > rate(b)) b = i;
  return b;
}

int TreePolicy::choose() {
  step_++;
  for (int i = 0; i < n_arms(); i++)  // warm-up: every arm a few times, in order
    if (arms_[i].n < warmup_) return i;
  if (explore_every_ > 0 && step_ % explore_every_ == 0) {  // revisit the others in turn
    const int b = best();
    for (int k = 0; k < n_arms(); k++) {
      const int i = (explore_next_ + k) % n_arms();
      if (i != b) {
        explore_next_ = (i + 1) % n_arms();
        return i;
      }
    }
  }
  return best();
}

void TreePolicy::record(int arm, double ms, int tokens) {
  Arm& a = arms_[arm];
  a.ms = a.ms * decay_ + ms;
  a.tokens = a.tokens * decay_ + tokens;
  a.n++;
}

}  // namespace chimera
