// Adaptive speculation (tree: 'auto'): chooses, step by step, between plain decoding and a set of
// candidate trees by the tokens per second each has delivered on this machine and this text, measured
// as decoding goes. Every tree is lossless, so the choice changes speed, never output.
//
// Plain decoding runs first. A tree is first tried, smallest first, only when what that step may lose
// against the best arm so far fits a budget of the decoding time (3% by default, all first tries
// together), and never when even full acceptance could not beat the best arm. What a step of a tree
// would cost is estimated before it runs: the verify forward of its nodes from the forward passes
// seen so far (prompt chunks give multi-row costs, plain steps one row), plus its draft depth times
// the draft's measured time per depth, plus the draft catching up with the context positions it has
// not seen (before any draft ran, both are guesses the caller gives, as fractions of a plain step). So on a compute-bound CPU, where a 26-node verify costs many plain steps, the big
// trees are priced out before they cost anything, while on a GPU, where it costs about one step,
// they are tried early.
//
// Per-step rates miss what one mode does to the other (a draft's weights evicting the base model's
// from the caches, catching the draft up): so the realised throughput is also measured over windows
// of decoding time (about 64 plain steps), by mode (plain decoding best, or a tree best). A tree less
// than 1.5x faster per step than plain decoding only becomes the choice after one plain window; when
// a tree mode window delivers less than the plain windows, trees are put on hold for a back-off time
// (8 windows) that doubles each time it happens (and resets when a tree mode window wins).
//
// Plain decoding's rate comes from plain steps that follow plain steps; a plain step right after a
// tree step (cold caches) is measured apart, and its extra time counts as part of a tree's cost while
// plain decoding is the best.
//
// Tried arms within 80% of the best get a few more samples. Afterwards the fastest runs, and each
// other arm is re-measured when the time decoding has taken since its last step is 1/budget times what
// one of its steps is expected to lose against the best arm (1% by default), and never sooner than
// `explore_interval` steps of the best arm; for a tree while plain decoding is best, also the draft's
// catch-up with the positions decoded since must fit the budget. So a change of text or machine load
// is noticed while a hopeless arm costs almost nothing. Single slow outliers (a preempted step) are
// clipped.
#pragma once
#include <cstdint>
#include <vector>

#include "spec/forward_costs.h"

namespace chimera {

// What one step of an arm evaluates: `nodes` rows in the verify forward and `depth` draft heads.
struct ArmShape {
  int nodes = 1;
  int depth = 0;
};

class TreePolicy {
 public:
  // arms[0] is plain decoding ({1, 0}); arms 1.. the candidate trees in order. draft_depth_guess: the
  // draft's time per depth in plain steps, used until a speculative step has measured it;
  // sync_guess: the time, in plain steps, for the draft to catch up with one context position (it
  // must before its first step, for every position decoded or prompted since), until measured.
  explicit TreePolicy(std::vector<ArmShape> arms, double draft_depth_guess = 0.5, double sync_guess = 0.0,
                      int warmup_per_arm = 3, int explore_interval = 16, double decay = 0.9,
                      double explore_budget = 0.01, double first_try_budget = 0.03);

  // The arm for the next step; pending_positions: the context positions the draft would first have to
  // catch up with (part of what a first try costs).
  int choose(int pending_positions = 0);
  // The draft caught up with `positions` positions in ms.
  void observe_sync(int positions, double ms);
  // A step of `arm` took ms and gave `tokens`; draft_ms of it was the draft's (speculative arms).
  void record(int arm, double ms, int tokens, double draft_ms = 0);
  // A base forward pass over T rows took ms (prompt chunks, plain steps, tree verification).
  void observe_forward(int T, double ms);
  int n_arms() const { return (int)arms_.size(); }
  // Tokens per millisecond the arm has shown (0 before it was tried).
  double rate(int arm) const;
  int steps(int arm) const { return arms_[arm].n; }
  // Tokens one step of the arm has delivered (weighted mean; 0 before it was tried).
  double tokens_per_step(int arm) const { return arms_[arm].steps > 0 ? arms_[arm].tokens / arms_[arm].steps : 0.0; }
  // What one step of the arm is expected to take, in ms (measured or estimated; 0 when unknown).
  double estimated_step_ms(int arm) const;
  // The arm's tree changed shape (a fitted tree): its measured rate carries over, decaying as usual.
  void set_arm_shape(int arm, ArmShape shape) { arms_[arm].shape = shape; }
  // The cost model the policy has measured: a base forward over T rows, one draft depth (ms; estimates
  // before measurements, 0 when nothing is known).
  double forward_estimate_ms(int T) const { return forward_ms(T); }
  // The draft's catch-up time per context position (measured, else the guess; 0 when unknown).
  double sync_estimate_ms() const { return sync_ms_ > 0 ? sync_ms_ : sync_guess_ * plain_step_ms(); }
  double draft_depth_estimate_ms() const {
    return draft_depth_ms_ > 0 ? draft_depth_ms_ : draft_depth_guess_ * plain_step_ms();
  }

 private:
  struct Arm {
    ArmShape shape;
    double ms = 0, tokens = 0, steps = 0;  // exponentially weighted sums
    int n = 0;
    double next_explore_ms = 0;  // decoding time at which a non-best arm is measured again
  };
  int best() const;       // by per-step rates
  int effective_best() const;  // the same, unless trees are on hold
  void close_window();
  int first_try(int pending_positions) const;  // an untried arm to try now, or -1
  double forward_ms(int T) const;
  double plain_step_ms() const;
  std::vector<Arm> arms_;
  std::vector<int> by_size_;  // the tree arms, fewest nodes first (first tries go in this order)
  ForwardCosts forward_;
  double draft_depth_guess_;
  double draft_depth_ms_ = 0;  // measured draft time per depth
  double sync_guess_;
  double sync_ms_ = 0;         // measured catch-up time per position
  int warmup_, interval_;
  double decay_, budget_, first_budget_;
  double elapsed_ms_ = 0;      // decoding time recorded so far
  double first_try_loss_ = 0;  // what first tries lost against the best arm
  // Realised throughput by mode (0: plain best, 1: a tree best): exponentially weighted window sums.
  double mode_ms_[2] = {0, 0}, mode_tokens_[2] = {0, 0};
  int mode_ = 0;  // the mode of the step chosen last
  int window_mode_ = 0;
  double window_ms_ = 0, window_tokens_ = 0;
  double hold_until_ms_ = 0, hold_ms_ = 0;  // trees on hold until then; the last hold's length
  int last_arm_ = 0;
  double cold_extra_ms_ = 0;  // what a plain step right after a tree step costs over one after a plain step
  bool cold_seen_ = false;
};

}  // namespace chimera
