// ForwardCosts: the fitted cost curve of a forward over T rows, against synthetic machines.
#include <cmath>
#include <cstdio>

#include "check.h"
#include "spec/forward_costs.h"

using namespace chimera;

namespace {

// A CPU whose weights stream in 70 ms and whose rows cost 11.5 ms each once compute-bound (the shape
// measured for the 1.1B F16 model on two cores), with a deterministic +-3% of noise.
double cpu_ms(int T, int i) { return std::cbrt(70.0 * 70 * 70 + std::pow(11.5 * T, 3)) * (1 + 0.03 * std::sin(1.7 * i)); }
double cpu_true(int T) { return std::cbrt(70.0 * 70 * 70 + std::pow(11.5 * T, 3)); }

bool within(double est, double truth, double rel) { return std::fabs(est / truth - 1) <= rel; }

}  // namespace

int main() {
  // Decode steps, small trees and one 16-row prefill: the unseen row counts follow the curve.
  {
    ForwardCosts c;
    int i = 0;
    for (int n = 0; n < 40; n++)
      for (int T : {1, 2, 3, 4}) c.observe(T, cpu_ms(T, i++));
    c.observe(16, cpu_ms(16, i++));
    bool ok = true;
    for (int T : {5, 6, 8, 12, 24, 32}) {
      std::printf("cpu, T=%2d: estimate %.1f ms, true %.1f ms\n", T, c.estimate(T), cpu_true(T));
      ok = ok && within(c.estimate(T), cpu_true(T), 0.10);
    }
    EXPECT(ok);
    EXPECT(within(c.estimate(2), cpu_true(2), 0.05));  // seen often: its own measurement
  }
  // One cold pass (twice its cost: page faults, a busy machine) moves the estimates near it a little.
  // Interpolating between the row counts seen (the previous estimator) put 6 rows at 1.8x their cost.
  {
    ForwardCosts c;
    int i = 0;
    c.observe(7, 2 * cpu_true(7));
    for (int n = 0; n < 40; n++)
      for (int T : {1, 2, 3, 4}) c.observe(T, cpu_ms(T, i++));
    for (int n = 0; n < 3; n++) c.observe(16, cpu_ms(16, i++));
    std::printf("cold 7-row pass: 6 rows estimated %.1f ms, true %.1f ms\n", c.estimate(6), cpu_true(6));
    EXPECT(within(c.estimate(6), cpu_true(6), 0.20));
    EXPECT(within(c.estimate(5), cpu_true(5), 0.20));
  }
  // Only memory-bound row counts seen (flat to 4 rows): twice the largest seen is estimated modestly
  // above the floor, not free and not T times a row.
  {
    ForwardCosts c;
    for (int n = 0; n < 20; n++)
      for (int T : {1, 2, 3, 4}) c.observe(T, 70.0);
    const double e8 = c.estimate(8), e64 = c.estimate(64);
    std::printf("flat to 4 rows: 8 rows %.1f ms, 64 rows %.1f ms\n", e8, e64);
    EXPECT(e8 > 75 && e8 < 2 * 70.0);
    EXPECT(e64 > e8 && e64 < 64 * 70.0 / 2);
  }
  // A GPU: flat to 64 rows. 128 rows are estimated modestly above the floor.
  {
    ForwardCosts c;
    for (int n = 0; n < 10; n++)
      for (int T : {1, 8, 26, 64}) c.observe(T, 10.0 + 0.01 * T);
    std::printf("gpu: 128 rows %.2f ms\n", c.estimate(128));
    EXPECT(c.estimate(128) >= 10.0 && c.estimate(128) < 20.0);
  }
  // A compute-bound machine (a tiny model on a CPU): cost grows with every row.
  {
    ForwardCosts c;
    for (int n = 0; n < 10; n++)
      for (int T : {1, 3, 64}) c.observe(T, 0.1 * T);
    std::printf("linear: 26 rows %.2f ms (true 2.6)\n", c.estimate(26));
    EXPECT(within(c.estimate(26), 2.6, 0.10));
  }
  // One row count seen. A prompt of 8 rows: fewer rows cost no more. One decode step: each further row
  // is priced near a whole forward until a tree is measured.
  {
    ForwardCosts prompt;
    prompt.observe(8, 1.2);
    std::printf("one 8-row prompt: 2 rows %.3f ms, 8 rows %.3f ms\n", prompt.estimate(2), prompt.estimate(8));
    EXPECT(prompt.estimate(2) <= 1.2 && prompt.estimate(2) > 0.8);
    EXPECT(within(prompt.estimate(8), 1.2, 0.01));
    ForwardCosts step;
    step.observe(1, 10.0);
    std::printf("one decode step: 1 row %.2f ms, 4 rows %.2f ms\n", step.estimate(1), step.estimate(4));
    EXPECT(within(step.estimate(1), 10.0, 0.01));
    EXPECT(step.estimate(4) > 20.0 && step.estimate(4) <= 40.0);
  }
  // The machine slowed down after the curve's points were measured: the common row count (16, a batch of
  // 16 sessions) is measured 25% slower now. A pass a few rows larger is estimated at no less than it,
  // where the curve alone, fitted to the older and faster measurements too, priced 17 rows below 16.
  {
    ForwardCosts c;
    int i = 0;
    for (int n = 0; n < 10; n++)
      for (int T : {1, 4, 8, 32}) c.observe(T, cpu_ms(T, i++));
    for (int n = 0; n < 40; n++) c.observe(16, 1.25 * cpu_true(16));
    std::printf("slowed down: 16 rows %.1f ms, 20 rows %.1f ms (curve %.1f)\n", c.estimate(16), c.estimate(20),
                cpu_true(20));
    EXPECT(within(c.estimate(16), 1.25 * cpu_true(16), 0.01));
    EXPECT(c.estimate(20) >= c.estimate(16));
    EXPECT(c.estimate(17) >= c.estimate(16));
  }
  // Three slow passes of 3 rows at start-up (cold caches, a draft holding the cores), then only 1 and
  // 2 rows (trees priced out by them): 3 rows stop answering from their stale measurement once other
  // row counts have been run kRecentObservations times, and follow the curve again.
  {
    ForwardCosts c;
    for (int n = 0; n < 3; n++) c.observe(3, 10 * cpu_true(3));
    for (int n = 0; n < 3; n++) c.observe(16, cpu_true(16));
    EXPECT(within(c.estimate(3), 10 * cpu_true(3), 0.01));  // trusted while recent
    int i = 0;
    for (int n = 0; n < ForwardCosts::kRecentObservations / 2; n++)
      for (int T : {1, 2}) c.observe(T, cpu_ms(T, i++));
    std::printf("stale cold 3-row passes: 3 rows estimated %.1f ms, true %.1f ms\n", c.estimate(3), cpu_true(3));
    EXPECT(within(c.estimate(3), cpu_true(3), 0.10));
  }
  // Nothing seen: no estimate.
  {
    ForwardCosts c;
    EXPECT(c.estimate(4) == 0.0);
    c.observe(0, 5.0);
    c.observe(1, -1.0);
    EXPECT(c.estimate(4) == 0.0);
  }
  return test::finish("test_forward_costs");
}
