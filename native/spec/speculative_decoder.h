// Speculation for one session, behind one object: the Speculator (draft state, trees, the step) and,
// for tree 'auto', a tree fitted to the measured costs and acceptance (TreeFitter) and the TreePolicy
// that runs it or plain decoding for each step. The session asks which tree to run next, runs plain
// steps itself, and reports what it timed.
#pragma once
#include <memory>
#include <vector>

#include "spec/speculative_config.h"
#include "spec/speculator.h"
#include "spec/step_decoder.h"
#include "spec/tree_fitter.h"
#include "spec/tree_policy.h"

namespace chimera {

class SpeculativeDecoder : public StepDecoder {
 public:
  // Checks the draft against the base (through the Speculator's draft state).
  SpeculativeDecoder(const SpeculativeConfig& config, const Model& base, Backend* backend, int context_size);

  int n_trees() const { return spec_.n_trees(); }
  const CompiledTree& tree(int i) const { return spec_.tree(i); }
  std::vector<std::string> tree_names() const override;
  int max_tree_size() const override { return spec_.max_tree_size(); }
  bool needs_hidden() const override { return true; }
  bool uses_lookup() const override { return spec_.uses_lookup(); }
  bool uses_draft() const override { return true; }

  // The tree for the next step, or -1 for a plain step (the policy chose it, or the tree does not fit
  // the `capacity` of a cache holding `m` positions).
  int choose(const std::vector<int32_t>& history, int m, int capacity) override;
  // One speculative step with tree t (from choose); timings go to stats and the policy.
  std::vector<int32_t> step(int t, BaseSide base, const std::vector<int32_t>& history, const SamplingParams& sampling,
                            Rng& rng, SpeculativeStats& stats) override;
  void plain_step_done(double ms) override;
  void observe_forward(int T, double ms) override;
  void truncate(int keep) override { spec_.draft_state().truncate(keep); }
  int last_rows() const override { return spec_.last_rows(); }

 private:
  // tree: 'auto': fits the tree to what has been measured (a new tree when it models >= 2% faster).
  void refit();
  double modelled_tokens(const CompiledTree& t) const;
  // tree: 'auto' inside a batch: the arm (0 = plain) whose step gives the whole pass the best rate.
  int choose_in_batch(int pending_positions);

  Speculator spec_;
  std::unique_ptr<TreePolicy> policy_;  // tree: 'auto'
  std::unique_ptr<TreeFitter> fitter_;  // tree: 'auto'
  bool observed_ = false;               // a tree step taught the fitter since the last fit
  int steps_since_fit_ = 0;
  bool plain_chosen_ = false;           // the last choose() picked plain decoding by policy
  double per_token_ms_ = 0;             // the fitted tree's modelled time per token (lookup's gate)
  bool batched_choice_ = false;         // the last choose() weighed the arms inside a batch
  // Per arm, over its tree steps alone or batched (exponentially weighted): tokens, and the time the
  // step spends outside its forward pass (drafting, acceptance; the draft's catch-up is priced per
  // position apart), which a batch waits for; and the batched steps since a tree last ran (exploration).
  std::vector<double> arm_tokens_, arm_extra_ms_, arm_steps_;
  int batch_steps_without_tree_ = 0;
  double explore_credit_ms_ = 0;      // what trying a losing tree in a batch may cost now (ms)
};

}  // namespace chimera
