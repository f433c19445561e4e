// The adaptive tree policy.
#include "spec/tree_policy.h"

#include <algorithm>

namespace chimera {

namespace {
constexpr double kWindowPlainSteps = 64;  // a throughput window: about this many plain steps of time
constexpr double kClearWin = 1.5;          // a tree this much faster per step needs no plain window first
constexpr double kFirstHoldWindows = 8;    // the first hold of trees, in windows (then doubling)
}

TreePolicy::TreePolicy(std::vector<ArmShape> arms, double draft_depth_guess, double sync_guess, int warmup_per_arm,
                       int explore_interval, double decay, double explore_budget, double first_try_budget)
    : arms_(arms.size()), forward_(decay), draft_depth_guess_(draft_depth_guess),
      sync_guess_(sync_guess), warmup_(warmup_per_arm), interval_(explore_interval), decay_(decay), budget_(explore_budget),
      first_budget_(first_try_budget) {
  for (size_t i = 0; i < arms.size(); i++) arms_[i].shape = arms[i];
  for (int i = 1; i < n_arms(); i++) by_size_.push_back(i);
  std::stable_sort(by_size_.begin(), by_size_.end(),
                   [&](int a, int b) { return arms_[a].shape.nodes < arms_[b].shape.nodes; });
}

// One plain step's time as measured (before any: the one-row forward seen, or 0).
double TreePolicy::plain_step_ms() const {
  return arms_[0].n > 0 ? arms_[0].ms / arms_[0].steps : forward_ms(1);
}

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

void TreePolicy::observe_forward(int T, double ms) { forward_.observe(T, ms); }

double TreePolicy::forward_ms(int T) const { return forward_.estimate(T); }

double TreePolicy::estimated_step_ms(int arm) const {
  const Arm& a = arms_[arm];
  if (a.n > 0) return a.ms / a.steps;
  const double plain = plain_step_ms();
  const double per_depth = draft_depth_ms_ > 0 ? draft_depth_ms_ : draft_depth_guess_ * plain;
  return forward_ms(a.shape.nodes) + a.shape.depth * per_depth;
}

void TreePolicy::observe_sync(int positions, double ms) {
  if (positions <= 0 || !(ms > 0)) return;
  const double per = ms / positions;
  sync_ms_ = sync_ms_ > 0 ? decay_ * sync_ms_ + (1 - decay_) * per : per;
}

void TreePolicy::close_window() {
  const int m = window_mode_;
  const double plain_step = plain_step_ms();
  // A window cut short by a change of mode counts when it holds at least a quarter of a full one.
  if (window_ms_ > 0 && window_ms_ >= 0.25 * kWindowPlainSteps * plain_step) {
    mode_ms_[m] = 0.5 * mode_ms_[m] + window_ms_;
    mode_tokens_[m] = 0.5 * mode_tokens_[m] + window_tokens_;
    if (m == 1) {
      // Trees against plain decoding as realised (per-step plain rate until a plain window exists).
      const double tree_rate = mode_tokens_[1] / mode_ms_[1];
      const double plain_rate = mode_ms_[0] > 0 ? mode_tokens_[0] / mode_ms_[0] : rate(0);
      if (tree_rate < plain_rate) {
        hold_ms_ = hold_ms_ > 0 ? 2 * hold_ms_ : kFirstHoldWindows * kWindowPlainSteps * plain_step;
        hold_until_ms_ = elapsed_ms_ + hold_ms_;
        mode_ms_[1] = mode_tokens_[1] = 0;  // the next tree mode is judged afresh
      } else {
        hold_ms_ = 0;
      }
    }
  }
  window_ms_ = window_tokens_ = 0;
}

int TreePolicy::first_try(int pending_positions) const {
  const double rb = rate(best());
  if (rb <= 0) return -1;
  const double catch_up = pending_positions * (sync_ms_ > 0 ? sync_ms_ : sync_guess_ * plain_step_ms());
  for (int i : by_size_) {
    if (arms_[i].n > 0) continue;
    const double est = estimated_step_ms(i);
    if (!(est > 0)) return -1;
    // Hopeless: even with every drafted token accepted it would not beat the best arm.
    if ((arms_[i].shape.depth + 1) / est < rb) continue;
    const double loss = std::max(0.0, est + catch_up - 1.0 / rb) + cold_extra_ms_;  // >= 1 token per step
    return first_try_loss_ + loss <= first_budget_ * elapsed_ms_ ? i : -1;
  }
  return -1;
}

// Trees wait for the end of a hold, and a tree less than 1.5x plain decoding's per-step rate also for
// one window of plain decoding (the realised rate to beat).
int TreePolicy::effective_best() const {
  const int b = best();
  if (b == 0 || elapsed_ms_ < hold_until_ms_) return 0;
  if (mode_ms_[0] <= 0 && rate(b) < kClearWin * rate(0)) return 0;
  return b;
}

int TreePolicy::choose(int pending_positions) {
  mode_ = 0;
  if (arms_[0].n < warmup_) return 0;  // plain decoding first: the rate to beat
  const int b = effective_best();
  mode_ = b == 0 ? 0 : 1;
  const int first = first_try(pending_positions);
  if (first >= 0) return first;
  for (int i = 0; i < n_arms(); i++)
    if (arms_[i].n > 0 && arms_[i].n < warmup_ && rate(i) >= 0.8 * rate(b)) return i;
  // Re-measuring a tree also costs the draft's catch-up with the positions decoded since it last ran:
  // that waits until it, too, fits the budget (so where catching up costs more per position than the
  // budget's share of a plain step, a losing tree is not retried while plain decoding goes on).
  const double catch_up = pending_positions * (sync_ms_ > 0 ? sync_ms_ : sync_guess_ * plain_step_ms());
  auto due_at = [&](int i) { return arms_[i].next_explore_ms + (i > 0 ? catch_up / budget_ : 0.0); };
  int due = -1;
  for (int i = 0; i < n_arms(); i++)
    if (i != b && arms_[i].n > 0 && due_at(i) <= elapsed_ms_ && (due < 0 || due_at(i) < due_at(due))) due = i;
  return due >= 0 ? due : b;
}

void TreePolicy::record(int arm, double ms, int tokens, double draft_ms) {
  Arm& a = arms_[arm];
  const bool cold = arm == 0 && last_arm_ > 0 && a.n >= warmup_;
  last_arm_ = arm;
  if (a.shape.depth > 0 && draft_ms > 0) {
    const double per_depth = draft_ms / a.shape.depth;
    draft_depth_ms_ = draft_depth_ms_ > 0 ? decay_ * draft_depth_ms_ + (1 - decay_) * per_depth : per_depth;
  }
  if (a.n == 0 && arm != 0) {
    const double rb = rate(best());
    if (rb > 0) first_try_loss_ += std::max(0.0, ms - tokens / rb);
  }
  // The realised-throughput window of the current mode (unclipped time: what decoding really took).
  if (mode_ != window_mode_) close_window();
  window_mode_ = mode_;
  window_ms_ += ms;
  window_tokens_ += tokens;
  if (window_ms_ >= kWindowPlainSteps * (arms_[0].n > 0 ? plain_step_ms() : ms)) close_window();
  if (a.n >= warmup_ && a.tokens > 0) {  // clip a single slow outlier to 3x the arm's usual time per token
    const double usual = a.ms / a.tokens * tokens;
    ms = std::min(ms, 3.0 * usual);
  }
  if (cold) {
    // A plain step right after a tree step: what it costs over a plain step after a plain step is
    // part of what trying a tree costs; plain decoding's own rate stays that of plain runs.
    const double extra = std::max(0.0, ms - a.ms / a.steps);
    cold_extra_ms_ = cold_seen_ ? decay_ * cold_extra_ms_ + (1 - decay_) * extra : extra;
    cold_seen_ = true;
    elapsed_ms_ += ms;
    return;
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
  // With plain decoding best, a tree step also costs the plain step after it its cold start.
  const double collateral = arm != 0 && best() == 0 ? cold_extra_ms_ : 0.0;
  const double loss = rb > 0 ? std::max(0.0, step_ms - step_tokens / rb) + collateral : 0.0;
  const double best_step_ms = bb.steps > 0 ? bb.ms / bb.steps : step_ms;
  a.next_explore_ms = elapsed_ms_ + std::max(loss / budget_, interval_ * best_step_ms);
}

}  // namespace chimera
