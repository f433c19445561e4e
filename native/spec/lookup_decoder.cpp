// Lookup decoding: tree size by the modelled rate, verification, learning.
#include "spec/lookup_decoder.h"

#include <algorithm>
#include <chrono>

namespace chimera {

namespace {
constexpr int kMaxSkip = 64;
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
}  // namespace

LookupDecoder::LookupDecoder(const LookupConfig& config, VerifyMode mode)
    : config_(config), source_(config.corpus), step_(mode) {}

int LookupDecoder::choose(const std::vector<int32_t>& history, int m, int capacity) {
  const double c1 = costs_.estimate(1);
  const int cap = std::min(config_.max_nodes, capacity - m);
  built_ = false;
  const bool measured = batch_.batched() ? batch_.pass_ms(batch_.other_rows + 1) > 0 : c1 > 0;
  if (m < 1 || cap < 2 || !measured) return -1;  // nothing measured yet, or no room
  if (skip_ > 0 && !config_.always) {
    skip_--;
    return -1;
  }
  const auto t0 = Clock::now();
  source_.sync(history);
  source_.build(history, cap, config_.max_depth, tree_);
  // The prefix of the candidates (best first: every prefix is a tree) with the best modelled rate.
  // Inside a batch, the rate is the whole pass's (batch_context.h).
  const bool batched = batch_.batched();
  int best_n = 1;
  double best_rate = batched ? batch_.pass_rate(1, 1, 0) : 1.0 / c1, expected = 1.0;
  for (int n = 2; n <= tree_.size(); n++) {
    expected += tree_.p[(size_t)n - 1];
    const double rate = batched ? batch_.pass_rate(expected, n, build_ms_) : expected / (costs_.estimate(n) + build_ms_);
    if (rate > best_rate) {
      best_rate = rate;
      best_n = n;
    }
  }
  if (config_.always) best_n = tree_.size();
  if (best_n > 1) {
    compiled_ = compile_parents(tree_.parent.data(), best_n, config_.max_depth, config_.max_nodes, "lookup", order_);
  }
  last_build_ms_ = ms_since(t0);
  build_ms_ = build_ms_ > 0 ? 0.9 * build_ms_ + 0.1 * last_build_ms_ : last_build_ms_;
  pending_build_ms_ += last_build_ms_;
  built_ = true;
  if (best_n == 1) {
    // Nothing pays now: the next steps skip building (1, 2, 4 .. kMaxSkip steps while that lasts).
    backoff_ = std::min(kMaxSkip, std::max(1, 2 * backoff_));
    skip_ = backoff_;
    return -1;
  }
  return 0;
}

void LookupDecoder::plain_step_done(double ms) {
  // Plain steps after a build that chose plain count for lookup (their build was its cost); others
  // are plain decoding's rate.
  if (batch_.batched()) return;  // the pass was shared: not this session's own rate
  if (built_) lookup_rate_.add(ms + last_build_ms_, 1);
  else plain_rate_.add(ms, 1);
}

std::vector<int32_t> LookupDecoder::step(int, BaseSide base, const std::vector<int32_t>& history,
                                         const SamplingParams& sampling, Rng& rng, SpeculativeStats& stats) {
  std::vector<int32_t>& tokens = step_.tokens();
  tokens.resize((size_t)compiled_.size);
  for (int i = 0; i < compiled_.size; i++) tokens[(size_t)i] = tree_.token[(size_t)order_[(size_t)i]];
  const auto t0 = Clock::now();
  TreeAcceptance acc;
  std::vector<int32_t> out = step_.run(compiled_, base, history, sampling, rng, acc);
  const double ms = ms_since(t0);
  // A pass shared with other sessions measures the batch, not this session's own costs and rates.
  const bool alone = step_.last_pass().sequences == 1;
  if (alone) {
    costs_.observe(compiled_.size, ms);
    // Realised: when lookup delivers fewer tokens per second than plain steps (the model misjudged:
    // costs it does not see on a tiny model), back off like a plain decision.
    lookup_rate_.add(ms + last_build_ms_, (double)out.size());
  }
  if (alone && !config_.always && plain_rate_.known() && lookup_rate_.rate() < plain_rate_.rate()) {
    backoff_ = std::min(kMaxSkip, std::max(1, 2 * backoff_));
    skip_ = backoff_;
  } else {
    backoff_ = 0;
  }
  std::vector<int> path;
  for (int i : acc.path) path.push_back(order_[(size_t)i]);
  source_.observe(tree_, path);

  stats.ms_verify += ms;
  stats.ms_draft += pending_build_ms_;
  pending_build_ms_ = 0;
  count_step(stats, 0, 1, compiled_.depth, acc, out.size());
  for (size_t i = 1; i < path.size(); i++) count_sources(stats, tree_.origins[(size_t)path[i]]);
  return out;
}

}  // namespace chimera
