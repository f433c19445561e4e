// Lookup decoding for a session without a draft (createSession({ lookup })): each step builds a tree
// from LookupSource's candidates, sized for the best modelled tokens per second against the measured
// cost of verifying n rows, and runs it, or a plain step when no size beats plain decoding.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "spec/lookup_source.h"
#include "spec/speculative_config.h"
#include "spec/step_decoder.h"
#include "spec/tree_policy.h"

namespace chimera {

class LookupDecoder : public StepDecoder {
 public:
  LookupDecoder(const LookupConfig& config, VerifyMode mode);

  std::vector<std::string> tree_names() const override { return {"lookup"}; }
  int max_tree_size() const override { return config_.max_nodes; }
  bool needs_hidden() const override { return false; }
  int choose(const std::vector<int32_t>& history, int m, int capacity) override;
  std::vector<int32_t> step(int t, BaseSide base, const std::vector<int32_t>& history, const SamplingParams& sampling,
                            Rng& rng, SpeculativeStats& stats) override;
  void plain_step_done(double) override {}
  void observe_forward(int T, double ms) override { costs_.observe_forward(T, ms); }
  void truncate(int) override {}  // the source follows the history it is given

 private:
  LookupConfig config_;
  LookupSource source_;
  TreePolicy costs_;  // its measured forward costs only
  TreeStep step_;
  LookupTree tree_;         // the candidates of the step chosen last
  std::vector<int> order_;  // compiled node -> candidate node
  CompiledTree compiled_;
  double build_ms_ = 0;     // exponentially weighted time to build a tree
  double pending_build_ms_ = 0;  // build time not yet reported in stats
  int skip_ = 0, backoff_ = 0;   // after a plain decision, steps to go without building (doubling)
};

}  // namespace chimera
