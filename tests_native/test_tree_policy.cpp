// The adaptive tree policy: tries every arm, warms up the competitive ones, then runs the fastest,
// revisits the others at a bounded cost of time, and follows a change of speed.
#include <cstdio>

#include "check.h"
#include "tree_policy.h"

using chimera::TreePolicy;

int main() {
  TreePolicy p(2, /*warmup*/ 2, /*explore_interval*/ 10, /*decay*/ 0.8);
  // Warm-up: arms 0, 1, 2 once each, then the best (arm 1) a second time; arms 0 and 2 are far
  // behind (1 and 2.5 tokens/ms against 6), so they get no more warm-up samples.
  const double rate_ms[3] = {1.0, 0.5, 0.4};  // ms per step
  const int tokens[3] = {1, 3, 1};            // tokens per step: arm 1 gives 6 tokens/ms, best
  for (int expect_arm : {0, 1, 2, 1}) {
    const int a = p.choose();
    EXPECT(a == expect_arm);
    p.record(a, rate_ms[a], tokens[a]);
  }
  int counts[3] = {0, 0, 0};
  double ms = 0, lost = 0;
  for (int i = 0; i < 2000; i++) {
    const int a = p.choose();
    counts[a]++;
    p.record(a, rate_ms[a], tokens[a]);
    ms += rate_ms[a];
    lost += rate_ms[a] - tokens[a] / 6.0;  // time this step lost against arm 1
  }
  EXPECT(counts[1] >= 1900);                 // the best arm runs almost always
  EXPECT(counts[0] >= 1 && counts[2] >= 1);  // the others are revisited
  std::printf("exploration cost: %.2f%% of the time (%d and %d revisits of arms 0 and 2)\n", 100 * lost / ms,
              counts[0], counts[2]);
  EXPECT(lost / ms < 0.03);                  // about 1% per arm
  // A single preempted step of the best arm does not flip the choice.
  p.record(1, 50.0, 3);
  EXPECT(p.choose() == 1 || p.rate(1) > p.rate(0));
  // Arm 1 slows down (e.g. the text got harder for the draft): the policy moves to the next best,
  // arm 2 (1 token per 0.4 ms beats arm 0's 1 per ms and arm 1's new 3 per 5 ms).
  for (int i = 0; i < 200; i++) {
    const int a = p.choose();
    p.record(a, a == 1 ? 5.0 : rate_ms[a], tokens[a]);
  }
  int late[3] = {0, 0, 0};
  for (int i = 0; i < 50; i++) {
    const int a = p.choose();
    late[a]++;
    p.record(a, a == 1 ? 5.0 : rate_ms[a], tokens[a]);
  }
  EXPECT(late[2] > late[0] && late[2] > late[1]);
  return test::finish("test_tree_policy");
}
