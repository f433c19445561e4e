// The adaptive tree policy.
#include "tree_policy.h"

#include <algorithm>

namespace chimera {

TreePolicy::TreePolicy(int n_trees, int warmup_per_arm, int explore_interval, double decay)
    : arms_(n_trees + 1), warmup_(warmup_per_arm), interval_(explore_interval), decay_(decay) {}

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
  // Warm-up: every arm a few times, in order; one sample is enough for an arm already far behind.
  const int b = best();
  for (int i = 0; i < n_arms(); i++) {
    const bool hopeless = arms_[i].n >= 1 && rate(i) < 0.5 * rate(b);
    if (arms_[i].n < warmup_ && !hopeless) return i;
  }
  int due = -1;
  for (int i = 0; i < n_arms(); i++)
    if (i != b && arms_[i].next_explore <= step_ && (due < 0 || arms_[i].next_explore < arms_[due].next_explore))
      due = i;
  return due >= 0 ? due : b;
}

void TreePolicy::record(int arm, double ms, int tokens) {
  Arm& a = arms_[arm];
  if (a.n >= warmup_ && a.tokens > 0) {  // clip a single slow outlier to 3x the arm's usual time per token
    const double usual = a.ms / a.tokens * tokens;
    ms = std::min(ms, 3.0 * usual);
  }
  a.ms = a.ms * decay_ + ms;
  a.tokens = a.tokens * decay_ + tokens;
  a.n++;
  // The next re-measurement: sooner for arms close to the best.
  const double r = rate(arm), rb = rate(best());
  const double slow = r > 0 ? std::max(1.0, rb / r) : 64.0;
  a.next_explore = step_ + (int64_t)std::min(4096.0, interval_ * slow * slow);
}

}  // namespace chimera
