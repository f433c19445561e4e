// Continuous batching. The forward passes of a model's concurrently generating sessions go through
// its BatchScheduler, which runs the ones waiting at the same time as one forward over all their rows
// (forward_sequences): a memory-bound model then reads its weights once per step for every session
// instead of once per session. Each session keeps its own cache, positions and mask (tree rows
// included), and its outputs are bit-identical to running alone, so batching never changes text.
//
// There is no scheduler thread: each session's thread submits its forward and waits; whichever
// waiting thread finds the model idle runs the next pass for everyone in it. Sessions join and leave
// between steps. A pass starts as soon as every member session has submitted its next forward, or
// when the batch bounds are reached, or after a gather wait (the last pass's time, at most 50 ms, from
// the end of the last pass) for members still busy between steps (sampling, a draft's work): on a
// memory-bound model a late member costs the others less than a pass of its own would, and a member
// that is slower than that never stalls the others for longer. Requests are taken first come, first served, so none starves; a long
// prompt arrives as a series of chunks (the session's batch size) that share passes with the others'
// decode steps instead of stalling them.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include "model/forward.h"
#include "spec/forward_costs.h"

namespace chimera {

struct BatchLimits {
  int max_sessions = 64;  // sequences in one pass (1: no batching)
  int max_rows = 512;     // rows in one pass; a single request above it still runs, alone
};

// The pass that ran a request: alone, or shared (its timing then measures the batch, not the session).
struct PassInfo {
  int sequences = 1;  // sessions in the pass
};

struct BatchStats {
  int64_t passes = 0;          // forward passes run
  int64_t batched_passes = 0;  // passes with 2 or more sessions
  int64_t sequence_steps = 0;  // sessions' forwards run (sum over passes of their sessions)
  int64_t rows = 0;            // rows run
  int max_sequences = 0;       // the most sessions one pass held
  double pass_ms = 0;          // time spent running passes (the rest of the wall time, the model was idle)
};

class BatchScheduler {
 public:
  BatchScheduler(const Model& model, Backend& backend, BatchLimits limits = {});
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // A session taking part in batching while it generates: passes wait (briefly) for its next forward.
  class Membership {
   public:
    explicit Membership(BatchScheduler& s) : s_(s) { s_.join(); }
    ~Membership() { s_.leave(); }
    Membership(const Membership&) = delete;
    Membership& operator=(const Membership&) = delete;

   private:
    BatchScheduler& s_;
  };

  // Runs the sequence's forward (forward()'s arguments) in the next pass it fits, and returns once it
  // has run; its errors are thrown here. ws is the session's own workspace, used when it runs alone.
  PassInfo run(Workspace& ws, KVCache& kv, const Batch& batch, float* logits, float* hidden, float* hidden_all);

  const BatchLimits& limits() const { return limits_; }
  BatchStats stats() const;
  // Sessions generating now, and the rows of the last pass (what a session's step shares a pass with).
  int members() const;
  int last_pass_rows() const;
  // The measured costs of passes by row count, as of now (a copy: priced without holding the scheduler).
  ForwardCosts pass_costs() const;
  // The measured duration of a pass over `rows` rows (ForwardCosts's estimate; 0 before any pass).
  double pass_ms(int rows) const;

 private:
  struct Request {
    Workspace* ws;
    SequenceForward seq;
    std::exception_ptr error;
    PassInfo info;
    bool done = false;
  };
  using Clock = std::chrono::steady_clock;

  void join();
  void leave();
  bool ready(Clock::time_point now) const;
  Clock::time_point gather_deadline() const;
  std::vector<Request*> take_pass();
  void execute(std::vector<Request*>& pass);

  const Model& model_;
  Backend& be_;
  const BatchLimits limits_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request*> pending_;
  Clock::time_point first_pending_at_{};
  Clock::time_point last_end_{};
  bool running_ = false;
  int members_ = 0;
  int last_rows_ = 0;
  double last_ms_ = 0;
  BatchStats stats_;
  ForwardCosts pass_costs_;
  // The leader's buffers for passes of several sessions (one pass runs at a time).
  std::unique_ptr<Workspace> ws_;
  std::vector<float> logits_;
  std::vector<SequenceForward> seqs_;
};

}  // namespace chimera
