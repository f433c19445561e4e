// Lookup decoding for a session without a draft (createSession({ lookup })): each step builds a tree
// from LookupSource's candidates, sized for the best modelled tokens per second against the measured
// cost of verifying n rows, and runs it, or a plain step when no size beats plain decoding. After a
// plain decision, and whenever lookup steps have delivered fewer tokens per second (build and
// verification included) than plain steps, the next steps skip building: 1, 2, 4 .. 64 steps while it
// lasts. So where lookup cannot pay (a model whose steps take microseconds) it costs little.
#pragma once
#include <string>
#include <vector>

#include "spec/lookup_source.h"
#include "spec/speculative_config.h"
#include "spec/step_decoder.h"
#include "spec/forward_costs.h"

namespace chimera {

class LookupDecoder : public StepDecoder {
 public:
  LookupDecoder(const LookupConfig& config, VerifyMode mode);

  std::vector<std::string> tree_names() const override { return {"lookup"}; }
  int max_tree_size() const override { return config_.max_nodes; }
  bool needs_hidden() const override { return false; }
  bool uses_lookup() const override { return true; }
  bool uses_draft() const override { return false; }
  int choose(const std::vector<int32_t>& history, int m, int capacity) override;
  std::vector<int32_t> step(int t, BaseSide base, const std::vector<int32_t>& history, const SamplingParams& sampling,
                            Rng& rng, SpeculativeStats& stats) override;
  void plain_step_done(double ms) override;
  void observe_forward(int T, double ms) override { costs_.observe(T, ms); }
  int last_rows() const override { return compiled_.size; }
  void truncate(int) override {}  // the source follows the history it is given

 private:
  LookupConfig config_;
  LookupSource source_;
  ForwardCosts costs_;
  // Exponentially weighted tokens per ms.
  struct Rate {
    double ms = 0, tokens = 0;
    void add(double m, double t) {
      ms = 0.9 * ms + m;
      tokens = 0.9 * tokens + t;
    }
    bool known() const { return ms > 0; }
    double rate() const { return ms > 0 ? tokens / ms : 0.0; }
  };
  Rate plain_rate_, lookup_rate_;
  TreeStep step_;
  LookupTree tree_;         // the candidates of the step chosen last
  std::vector<int> order_;  // compiled node -> candidate node
  CompiledTree compiled_;
  double build_ms_ = 0;          // exponentially weighted time to build a tree
  double last_build_ms_ = 0;     // the last build's
  double pending_build_ms_ = 0;  // build time not yet reported in stats
  bool built_ = false;            // this step built a tree (and chose plain, when it is a plain step)
  int skip_ = 0, backoff_ = 0;   // steps to go without building; the last back-off
};

}  // namespace chimera
