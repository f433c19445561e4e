// Measured forward costs by row count.
#include "spec/forward_costs.h"

#include <algorithm>

namespace chimera {

void ForwardCosts::observe(int T, double ms) {
  if (T < 1 || T > kMaxRows || !(ms > 0)) return;
  double& f = ms_[(size_t)T];
  f = f > 0 ? decay_ * f + (1 - decay_) * ms : ms;
}

double ForwardCosts::estimate(int T) const {
  T = std::max(1, std::min(T, kMaxRows));
  if (ms_[(size_t)T] > 0) return ms_[(size_t)T];
  int lo = 0, lo2 = 0, hi = 0;
  for (int t = T - 1; t >= 1; t--)
    if (ms_[(size_t)t] > 0) {
      if (!lo) lo = t;
      else { lo2 = t; break; }
    }
  for (int t = T + 1; t <= kMaxRows; t++)
    if (ms_[(size_t)t] > 0) { hi = t; break; }
  if (lo && hi) return ms_[(size_t)lo] + (ms_[(size_t)hi] - ms_[(size_t)lo]) * (T - lo) / (double)(hi - lo);
  if (lo && lo2) {
    const double slope = std::max(0.0, (ms_[(size_t)lo] - ms_[(size_t)lo2]) / (lo - lo2));
    return ms_[(size_t)lo] + slope * (T - lo);
  }
  if (lo) return ms_[(size_t)lo] * T / lo;
  if (hi) return ms_[(size_t)hi] * T / hi;
  return 0.0;
}

}  // namespace chimera
