// The measured cost of a base forward over T rows on this machine and backend (prompt chunks, plain
// steps, tree verification), with estimates for row counts not seen yet: what speculation weighs a
// tree against (TreePolicy for a draft's trees, LookupDecoder for lookup trees).
#pragma once
#include <vector>

namespace chimera {

class ForwardCosts {
 public:
  static constexpr int kMaxRows = 256;  // costs kept for T = 1..256
  explicit ForwardCosts(double decay = 0.9) : ms_(kMaxRows + 1, 0.0), decay_(decay) {}

  // A forward over T rows took ms (exponentially weighted per T).
  void observe(int T, double ms);
  // The cost of T rows: as seen, else interpolated between the nearest row counts seen, else
  // extrapolated from the two largest below (at least linearly from one row: pessimistic for a GPU,
  // right for a compute-bound CPU, until a real tree measures it); 0 when nothing was seen.
  double estimate(int T) const;

 private:
  std::vector<double> ms_;  // (T) 0 = not seen
  double decay_;
};

}  // namespace chimera
