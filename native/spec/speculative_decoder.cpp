// The session's speculation: tree choice, the step, and the policy's measurements.
#include "spec/speculative_decoder.h"

#include <algorithm>
#include <chrono>

#include "common/thread_pool.h"

namespace chimera {

namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// tree: 'auto' over plain decoding and the speculator's trees, with the costs it cannot have measured
// yet guessed from the weights: one draft depth streams one head's share of the draft's bytes, and
// catching up with one position runs the trigram encoder and two rows of K/V projections (that share
// of the base model's multiply-adds per token).
// Heads a step drafts for a tree of `depth` (one more than it uses: the acceptance model learns it).
int drafted_depth(int depth, const DraftModel& d) { return std::min(depth + 1, d.config.K); }

std::unique_ptr<TreePolicy> adaptive_policy(const Speculator& spec, const DraftModel& d, const Model& base) {
  std::vector<ArmShape> arms{ArmShape{1, 0}};
  for (int i = 0; i < spec.n_trees(); i++) arms.push_back({spec.tree(i).size, drafted_depth(spec.tree(i).depth, d)});
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
    : spec_(config.draft, config.trees, base, backend, context_size, config.mode, config.reserve_nodes) {
  if (config.lookup) spec_.set_lookup(*config.lookup);
  if (config.adaptive) {
    policy_ = adaptive_policy(spec_, *config.draft, base);
    fitter_ = std::make_unique<TreeFitter>(config.draft->config.K);
    spec_.set_learning(1, TreeFitter::kMaxRank);
    if (config.lookup) {
      // A lookup node joins the fitted tree when its expected tokens, at the tree's measured time per
      // token, pay for the row it adds (the rule of kMinLookupP until the first fit).
      spec_.set_lookup_gate([this](int rows, double p) {
        if (!(per_token_ms_ > 0)) return p >= Speculator::kMinLookupP;
        return p * per_token_ms_ >= policy_->forward_estimate_ms(rows + 1) - policy_->forward_estimate_ms(rows);
      });
    }
  }
}

// Tokens a step of tree t is expected to emit under the fitter's acceptance model (its prior before
// any step was observed): the bonus token plus each node's chance that its whole path is accepted.
double SpeculativeDecoder::modelled_tokens(const CompiledTree& t) const {
  double expected = 1;
  for (int n = 1; n < t.size; n++) {
    double p = 1;
    for (int a = n; a > 0; a = t.node_parent[a]) p *= fitter_->acceptance(t.node_depth[a] - 1, t.node_rank[a]);
    expected += p;
  }
  return expected;
}

void SpeculativeDecoder::refit() {
  const DraftModel& d = spec_.draft_state().draft();
  const double per_depth = policy_->draft_depth_estimate_ms();
  // Fitted to the cost of a forward over the tree's rows alone (not to the marginal cost of its rows
  // in a shared pass: a tree fitted to that could make every session's pass compute-bound before a
  // measurement said so; choose_in_batch decides whether the tree runs in a batch). A forward over T
  // rows costs the same whichever sessions' rows they are, so the model's pass costs (every session's
  // passes, shared or not) price it, and this session's own measurements where there are none: sessions
  // that start together, and never run alone, still fit their trees.
  const ForwardCosts model_costs = batch_.batcher ? batch_.batcher->pass_costs() : ForwardCosts();
  auto verify_ms = [&](int T) {
    const double model_wide = model_costs.estimate(T);
    return model_wide > 0 ? model_wide : policy_->forward_estimate_ms(T);
  };
  auto draft_ms = [&](int depth) { return per_depth * drafted_depth(depth, d); };
  if (!(verify_ms(1) > 0)) return;  // nothing measured yet
  const TreeFitter::Fit fit = fitter_->fit(verify_ms, draft_ms, spec_.max_draft_tree_size());
  const CompiledTree& cur = spec_.tree(0);
  const double cur_expected = modelled_tokens(cur);  // the tree in use, under the same model
  const double current_ms = verify_ms(cur.size) + draft_ms(cur.depth);
  per_token_ms_ = current_ms / cur_expected;
  if (fit.paths.empty()) return;  // no tree models faster than plain: the policy's measurements decide
  const double current_rate = cur_expected / current_ms;
  if (fit.expected_tokens / fit.step_ms < 1.02 * current_rate) return;
  per_token_ms_ = fit.step_ms / fit.expected_tokens;
  CompiledTree t = compile_tree(fit.paths, d.config.K, TreeFitter::kMaxRank, "auto");
  policy_->set_arm_shape(1, ArmShape{t.size, drafted_depth(t.depth, d)});
  spec_.set_tree(0, std::move(t));
}

std::vector<std::string> SpeculativeDecoder::tree_names() const {
  std::vector<std::string> names;
  for (int i = 0; i < spec_.n_trees(); i++) names.push_back(spec_.tree(i).name);
  return names;
}

int SpeculativeDecoder::choose(const std::vector<int32_t>&, int m, int capacity) {
  // arm 0 = plain decoding; arm i = tree i-1. Without a policy the one tree always runs.
  // The tree is refitted after each tree step (new acceptance counts) and every 32 steps (the costs
  // move slowly): a fit takes tens of microseconds, a whole plain step of a tiny model not much more.
  if (fitter_ && (observed_ || ++steps_since_fit_ >= 32)) {
    refit();
    observed_ = false;
    steps_since_fit_ = 0;
  }
  batched_choice_ = policy_ && batch_.batched();
  const int pending = spec_.pending_positions(m);
  const int arm = batched_choice_ ? choose_in_batch(pending) : policy_ ? policy_->choose(pending) : 1;
  plain_chosen_ = arm == 0 && !batched_choice_;
  if (arm > 0 && m >= 1 && m + spec_.tree(arm - 1).size <= capacity) return arm - 1;
  return -1;
}

namespace {
constexpr int kBatchExploreSteps = 32;  // inside a batch, the fewest steps between tries of a losing tree
// Inside a batch a tree must model this much faster than plain decoding for the pass: what the model
// leaves out (members that miss a pass while a draft runs, the draft's caches) costs real time.
constexpr double kBatchTreeMargin = 1.2;
// What trying a losing tree inside a batch may cost, as a share of the batch's time: a try makes every
// member's pass longer (its rows, its draft), so each session earns this share of its part of the pass
// (the pass over the members) for each plain step, and tries when the try's modelled loss fits.
constexpr double kBatchExploreBudget = 0.02;
constexpr double kArmDecay = 0.8;
}  // namespace

int SpeculativeDecoder::choose_in_batch(int pending_positions) {
  // Each tree arm is weighed by the tokens its steps have delivered (alone or batched; before any,
  // what it delivered alone per the policy), at the pass's measured cost with the other sessions'
  // rows and the draft's time (drafting, and catching up with the positions the step emits). A tree
  // that is losing, or not measured yet, is tried when what the try is modelled to lose against plain
  // decoding fits the credit this session has earned for the batch (kBatchExploreBudget), and at most
  // once per kBatchExploreSteps steps; an untried one at once where even the try models a gain. The
  // loss: the longer pass, the draft's time and its catch-up with every position since it last ran,
  // less the extra tokens (for an untried tree, those its acceptance model expects). So a change of
  // text or batch is still seen, while on a compute-bound pass of many sessions the tries cost about
  // 2% of the time instead of a long pass every other step.
  const int n_arms = policy_->n_arms();
  arm_tokens_.resize((size_t)n_arms, 0.0);
  arm_extra_ms_.resize((size_t)n_arms, 0.0);
  arm_steps_.resize((size_t)n_arms, 0.0);
  const double per_depth = policy_->draft_depth_estimate_ms();
  const double sync_ms = policy_->sync_estimate_ms();
  const DraftModel& d = spec_.draft_state().draft();
  const int sessions = batch_.other_sessions + 1;
  const double plain_ms = batch_.pass_ms(batch_.other_rows + 1);
  const double plain_rate = batch_.pass_rate(1, 1, 0);
  int best = 0, candidate = -1;
  bool untried = false;
  double best_rate = kBatchTreeMargin * plain_rate, candidate_loss = 0;
  for (int arm = 1; arm < n_arms; arm++) {
    const CompiledTree& t = spec_.tree(arm - 1);
    const double steps = arm_steps_[(size_t)arm];
    const double measured = steps > 0 ? arm_tokens_[(size_t)arm] / steps : policy_->tokens_per_step(arm);
    const double tokens = measured > 0 ? measured : modelled_tokens(t);  // untried: the acceptance model's
    const double draft_ms = steps > 0 ? arm_extra_ms_[(size_t)arm] / steps : per_depth * drafted_depth(t.depth, d);
    if (measured > 0) {
      const double rate = batch_.pass_rate(tokens, t.size, draft_ms + sync_ms * tokens);
      if (rate > best_rate) best_rate = rate, best = arm;
    }
    // A try now: the pass with the tree's rows and the draft's time, against a plain pass, less what
    // the extra tokens are worth at the batch's time per token.
    const double loss = batch_.pass_ms(batch_.other_rows + t.size) + draft_ms + sync_ms * pending_positions -
                        plain_ms - (tokens - 1) * plain_ms / sessions;
    if (candidate < 0 || loss < candidate_loss) candidate = arm, candidate_loss = loss, untried = !(measured > 0);
  }
  if (best > 0) {
    explore_credit_ms_ = 0;
    batch_steps_without_tree_ = 0;
    return best;
  }
  explore_credit_ms_ += kBatchExploreBudget * plain_ms / sessions;
  const bool due = ++batch_steps_without_tree_ >= kBatchExploreSteps && candidate_loss <= explore_credit_ms_;
  if (candidate > 0 && (due || (untried && candidate_loss <= 0))) {
    explore_credit_ms_ = 0;
    batch_steps_without_tree_ = 0;
    return candidate;
  }
  return 0;
}

std::vector<int32_t> SpeculativeDecoder::step(int t, BaseSide base, const std::vector<int32_t>& history,
                                              const SamplingParams& sampling, Rng& rng, SpeculativeStats& stats) {
  const auto t0 = std::chrono::steady_clock::now();
  const double wait0 = ThreadPool::caller_wait_ms();
  const double draft0 = stats.ms_draft, verify0 = stats.ms_verify, sync0 = stats.ms_sync;
  const int64_t synced0 = stats.synced_positions;
  std::vector<int32_t> out = spec_.step(t, base, history, sampling, rng, stats);
  const double sync_ms = stats.ms_sync - sync0;  // the draft catching up with the context
  if (policy_) {  // what this arm's steps deliver and cost outside the pass, for choices in a batch
    const size_t arm = (size_t)t + 1;
    arm_tokens_.resize(std::max(arm_tokens_.size(), arm + 1), 0.0);
    arm_extra_ms_.resize(arm_tokens_.size(), 0.0);
    arm_steps_.resize(arm_tokens_.size(), 0.0);
    arm_tokens_[arm] = kArmDecay * arm_tokens_[arm] + (double)out.size();
    // Outside the pass, less the time spent waiting for the cores (another session's pass or draft) and
    // the draft's catch-up (priced per position by the policy: it grows with the steps since the draft
    // last ran).
    const double waited = ThreadPool::caller_wait_ms() - wait0;
    const double extra = std::max(0.0, ms_since(t0) - (stats.ms_verify - verify0) - waited - sync_ms);
    arm_extra_ms_[arm] = kArmDecay * arm_extra_ms_[arm] + extra;
    arm_steps_[arm] = kArmDecay * arm_steps_[arm] + 1;
    // The draft's catch-up does not depend on the batch: every step measures it.
    policy_->observe_sync((int)(stats.synced_positions - synced0), sync_ms);
  }
  if (fitter_) {
    fitter_->observe(spec_.last_guesses(), out);
    observed_ = true;
  }
  // A step weighed inside a batch, or verified in a pass shared with other sessions, does not measure
  // this session's own rates: the policy keeps the rates of running alone.
  if (policy_ && !batched_choice_ && spec_.last_pass().sequences == 1) {
    policy_->observe_forward(spec_.last_rows(), stats.ms_verify - verify0);
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
