// The measured cost of a base forward over T rows on this machine and backend (prompt chunks, plain
// steps, tree verification), with estimates for row counts not seen yet: what speculation weighs a
// tree against (TreePolicy for a draft's trees, LookupDecoder for lookup trees, the batch scheduler for
// the passes it shares).
//
// A forward streams the weights once and does T rows of multiply-adds: its cost rises from a floor
// (memory-bound, a few rows cost about one) to a slope (compute-bound, each row costs k). The curve
//   cost(T) = cbrt(m^3 + (k T)^3)
// has that shape with a smooth knee. m is the cheapest forward seen; k the steepest slope under which
// the curve stays within 4% of every other row count's measurement. So one slow pass (a cold cache, a
// busy machine) changes nothing, where interpolating between the row counts seen let it price every
// tree near it out for good; and where only memory-bound row counts were seen, a tree twice the largest
// is estimated modestly above the floor, and measured, before larger ones can look cheap. A row count
// seen often enough, and recently, is answered from its own measurements; no estimate is below a smaller
// row count's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace chimera {

class ForwardCosts {
 public:
  static constexpr int kMaxRows = 256;  // costs kept for T = 1..256
  // From this many observations of T on, T's own (exponentially weighted) measurement is its estimate,
  // while T is among the row counts of the last kRecentObservations observations: a row count no
  // longer run (a cold pass at start-up, a tree priced out since) answers from the curve again, whose
  // fit a stale slow measurement does not bend.
  static constexpr int kTrustedObservations = 3;
  static constexpr int64_t kRecentObservations = 64;

  explicit ForwardCosts(double decay = 0.9)
      : ms_(kMaxRows + 1, 0.0), seen_(kMaxRows + 1, 0), last_(kMaxRows + 1, 0), decay_(decay) {}

  // A forward over T rows took ms (exponentially weighted per T).
  void observe(int T, double ms);
  // The cost of T rows (0 when nothing was seen).
  double estimate(int T) const;

 private:
  void fit() const;
  bool trusted(int T) const {
    return seen_[(size_t)T] >= kTrustedObservations && observations_ - last_[(size_t)T] < kRecentObservations;
  }
  std::vector<double> ms_;      // (T) 0 = not seen
  std::vector<int> seen_;       // (T) observations, capped
  std::vector<int64_t> last_;   // (T) the observation count when T was last observed
  int64_t observations_ = 0;
  double decay_;
  mutable bool stale_ = false;
  mutable int since_fit_ = 0;
  mutable double m_ = 0, k_ = 0;
};

}  // namespace chimera
