// Measured forward costs by row count, and the curve fitted to them.
#include "spec/forward_costs.h"

#include <algorithm>
#include <cmath>

namespace chimera {

namespace {
constexpr int kSeenCap = 8;        // observation counts are kept up to this
constexpr int kRefitEvery = 8;     // observations of known row counts between refits (a new one refits)
constexpr double kTolerance = 1.04;  // the curve may pass this far above a row count's measurement

double curve(double m, double k, int T) { return std::cbrt(m * m * m + std::pow(k * T, 3)); }
}  // namespace

void ForwardCosts::observe(int T, double ms) {
  if (T < 1 || T > kMaxRows || !(ms > 0)) return;
  double& f = ms_[(size_t)T];
  const bool first = f <= 0;
  f = first ? ms : decay_ * f + (1 - decay_) * ms;
  seen_[(size_t)T] = std::min(seen_[(size_t)T] + 1, kSeenCap);
  last_[(size_t)T] = ++observations_;
  if (first || ++since_fit_ >= kRefitEvery) stale_ = true;
}

// m: the cheapest forward seen. k: the steepest slope under which the curve passes no other row
// count's measurement by more than kTolerance. A slow outlier constrains nothing; with only
// memory-bound row counts seen, the slope is the steepest they allow (pessimistic beyond them, by about
// the factor a tree twice as large would cost on a compute-bound machine, until one is measured).
void ForwardCosts::fit() const {
  stale_ = false;
  since_fit_ = 0;
  int floor_T = 0;
  for (int T = 1; T <= kMaxRows; T++)
    if (ms_[(size_t)T] > 0 && (!floor_T || ms_[(size_t)T] < ms_[(size_t)floor_T])) floor_T = T;
  m_ = floor_T ? ms_[(size_t)floor_T] : 0.0;
  bool bounded = false;
  for (int T = 1; T <= kMaxRows; T++) {
    if (T == floor_T || !(ms_[(size_t)T] > 0)) continue;
    const double c = kTolerance * ms_[(size_t)T];
    const double k = std::cbrt(std::max(0.0, c * c * c - m_ * m_ * m_)) / T;
    k_ = bounded ? std::min(k_, k) : k;
    bounded = true;
  }
  if (!bounded && floor_T) {
    // One row count seen, T0: taken as the knee, cost(T) = c * cbrt((1 + (T/T0)^3) / 2). One row seen:
    // each further row costs about a forward (pessimistic, until a tree is measured); a prompt seen:
    // fewer rows cost less, never more.
    m_ /= std::cbrt(2.0);
    k_ = m_ / floor_T;
  }
}

// A row count seen often enough answers from its own measurement; any other from the curve, but never
// below what a smaller row count was measured to cost (more rows never cost less; the curve is fitted
// to older measurements too, and priced a pass a few rows larger than the common one below it when
// the machine had slowed down since).
double ForwardCosts::estimate(int T) const {
  T = std::max(1, std::min(T, kMaxRows));
  if (trusted(T)) return ms_[(size_t)T];
  if (stale_) fit();
  if (!(m_ > 0)) return 0.0;
  double below = 0;
  for (int t = 1; t < T; t++)
    if (trusted(t)) below = std::max(below, ms_[(size_t)t]);
  return std::max(curve(m_, k_, T), below);
}

}  // namespace chimera
