// What a session's next step shares its forward pass with under continuous batching, and what a
// tree is worth there. In a pass with other sessions' rows, a tree's extra rows are not free for the
// batch: they make the pass, and so every session's step, longer. A tree pays only when the whole
// pass delivers more tokens per second with it than with this session's plain row, so trees shrink
// as the batch grows, and at large batch (a compute-bound pass) plain decoding wins.
#pragma once
#include "model/batch_scheduler.h"

namespace chimera {

struct BatchContext {
  int other_sessions = 0;                     // 0: the step runs alone
  int other_rows = 0;                         // the other sessions' rows in a pass
  const BatchScheduler* batcher = nullptr;    // the model's scheduler, whose measured pass costs price rows

  bool batched() const { return other_sessions > 0 && batcher != nullptr; }
  // The measured duration of a pass over `rows` rows.
  double pass_ms(int rows) const { return batcher->pass_ms(rows); }
  // Tokens per ms of the pass when this session's step has `rows` rows, is expected to emit `tokens`
  // and keeps the pass waiting extra_ms (drafting); the others are counted at one token each.
  double pass_rate(double tokens, int rows, double extra_ms) const {
    const double ms = pass_ms(other_rows + rows) + extra_ms;
    return ms > 0 ? (other_sessions + tokens) / ms : 0.0;
  }
};

}  // namespace chimera
