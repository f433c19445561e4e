// The adaptive tree policy.
#include "tree_policy.h"

#include <algorithm>

namespace chimera {

TreePolicy::TreePolicy(int n_trees, int warmup_per_arm, int explore_interval, double decay, double explore_budget)
    : arms_(n_trees + 1), warmup_(warmup_per_arm), interval_(explore_interval), decay_(decay),
      budget_(explore_budget) {}

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
  // Warm-up: every arm once (plain first), then more samples only for arms close to the best.
  for (int i = 0; i < n_arms(); i++)
    if (arms_[i].n == 0) return i;
  const int b = best();
  for (int i = 0; i < n_arms(); i++)
    if (arms_[i].n < warmup_ && rate(i) >= 0.8 * rate(b)) return i;
  int due = -1;
  for (int i = 0; i < n_arms(); i++)
    if (i != b && arms_[i].next_explore_ms <= elapsed_ms_ &&
        (due < 0 || arms_[i].next_explore_ms < arms_[due].next_explore_ms))
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
  a.steps = a.steps * decay_ + 1;
  a.n++;
  elapsed_ms_ += ms;
  // The next re-measurement of this arm: when one of its steps would cost at most budget_ of the time
  // since, and at least interval_ steps of the best arm from now.
  const Arm& bb = arms_[best()];
  const double rb = rate(best());
  const double step_ms = a.ms / a.steps, step_tokens = a.tokens / a.steps;
  const double loss = rb > 0 ? std::max(0.0, step_ms - step_tokens / rb) : 0.0;
  const double best_step_ms = bb.steps > 0 ? bb.ms / bb.steps : step_ms;
  a.next_explore_ms = elapsed_ms_ + std::max(loss / budget_, interval_ * best_step_ms);
}

}  // namespace chimera
