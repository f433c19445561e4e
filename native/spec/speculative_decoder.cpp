// The session's speculation: tree choice, the step, and the policy's measurements.
#include "spec/speculative_decoder.h"

#include <algorithm>
#include <chrono>

namespace chimera {

namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// tree: 'auto' over plain decoding and the speculator's trees, with the costs it cannot have measured
// yet guessed from the weights: one draft depth streams one head's share of the draft's bytes, and
// catching up with one position runs the trigram encoder and two rows of K/V projections (that share
// of the base model's multiply-adds per token).
std::unique_ptr<TreePolicy> adaptive_policy(const Speculator& spec, const DraftModel& d, const Model& base) {
  std::vector<ArmShape> arms{ArmShape{1, 0}};
  for (int i = 0; i < spec.n_trees(); i++) arms.push_back({spec.tree(i).size, spec.tree(i).depth});
  const double depth_guess =
      (double)d.weight_bytes() / std::max(1, d.config.K) / (double)std::max<size_t>(base.weight_bytes(), 1);
  auto elems = [](const TensorView& t) { return (double)t.rows * (double)t.cols; };
  double base_elems = elems(base.weights.output);
  for (const LayerWeights& l : base.weights.layers)
    for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) base_elems += elems(*t);
  const double sync_guess = (elems(d.weights.tri_res) + elems(d.weights.tri_proj) +
                             2 * (elems(d.weights.layer.wk) + elems(d.weights.layer.wv))) /
                            std::max(base_elems, 1.0);
  return std::make_unique<TreePolicy>(std::move(arms), depth_guess, sync_guess);
}

}  // namespace

SpeculativeDecoder::SpeculativeDecoder(const SpeculativeConfig& config, const Model& base, Backend* backend,
                                       int context_size)
    : spec_(config.draft, config.trees, base, backend, context_size, config.mode) {
  if (config.adaptive) policy_ = adaptive_policy(spec_, *config.draft, base);
}

int SpeculativeDecoder::choose(int m, int capacity) {
  // arm 0 = plain decoding; arm i = tree i-1. Without a policy the one tree always runs.
  const int arm = policy_ ? policy_->choose(spec_.pending_positions(m)) : 1;
  plain_chosen_ = arm == 0;
  if (arm > 0 && m >= 1 && m + spec_.tree(arm - 1).size <= capacity) return arm - 1;
  return -1;
}

std::vector<int32_t> SpeculativeDecoder::step(int t, BaseSide base, const std::vector<int32_t>& history,
                                              const SamplingParams& sampling, Rng& rng, SpeculativeStats& stats) {
  const auto t0 = std::chrono::steady_clock::now();
  const double draft0 = stats.ms_draft, verify0 = stats.ms_verify, sync0 = stats.ms_sync;
  const int64_t synced0 = stats.synced_positions;
  std::vector<int32_t> out = spec_.step(t, base, history, sampling, rng, stats);
  if (policy_) {
    const double sync_ms = stats.ms_sync - sync0;
    policy_->observe_sync((int)(stats.synced_positions - synced0), sync_ms);
    policy_->observe_forward(spec_.tree(t).size, stats.ms_verify - verify0);
    policy_->record(t + 1, ms_since(t0), (int)out.size(), stats.ms_draft - draft0 - sync_ms);
  }
  return out;
}

void SpeculativeDecoder::plain_step_done(double ms) {
  if (policy_ && plain_chosen_) policy_->record(0, ms, 1);
}

void SpeculativeDecoder::observe_forward(int T, double ms) {
  if (policy_) policy_->observe_forward(T, ms);
}

}  // namespace chimera
