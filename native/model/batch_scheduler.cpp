// The continuous-batching scheduler.
#include "model/batch_scheduler.h"

#include <algorithm>

#include "common/error.h"
#include "common/thread_pool.h"

namespace chimera {

namespace {
// How long a pass waits for members still between steps: up to one pass (on a memory-bound model, a
// member that misses the pass costs a pass of its own; drafting sessions on a CPU, whose drafts and
// passes share the cores, otherwise fall into taking turns), at most 50 ms.
constexpr double kGatherFraction = 1.0;
constexpr double kMaxGatherMs = 50.0;
}  // namespace

BatchScheduler::BatchScheduler(const Model& model, Backend& backend, BatchLimits limits)
    : model_(model), be_(backend), limits_(limits) {
  CHIMERA_CHECK(limits.max_sessions >= 1 && limits.max_rows >= 1, ErrorCode::InvalidArg,
                "batch limits must be >= 1 (sessions ", limits.max_sessions, ", rows ", limits.max_rows, ")");
}

void BatchScheduler::join() {
  std::lock_guard<std::mutex> lk(mu_);
  members_++;
}

void BatchScheduler::leave() {
  std::lock_guard<std::mutex> lk(mu_);
  members_--;
  cv_.notify_all();  // the others may have been waiting for this one's forward
}

// Counted from the later of the first waiting request and the end of the last pass: the sessions of
// that pass need a moment to sample and come back, and a pass started without them would split the
// members into groups that take turns instead of sharing passes.
BatchScheduler::Clock::time_point BatchScheduler::gather_deadline() const {
  const double wait_ms = std::min(kMaxGatherMs, kGatherFraction * last_ms_);
  return std::max(first_pending_at_, last_end_) + std::chrono::microseconds((int64_t)(wait_ms * 1000));
}

bool BatchScheduler::ready(Clock::time_point now) const {
  if (running_ || pending_.empty()) return false;
  if ((int)pending_.size() >= std::max(members_, 1) || (int)pending_.size() >= limits_.max_sessions) return true;
  int rows = 0;
  for (const Request* r : pending_) rows += r->seq.batch.T;
  return rows >= limits_.max_rows || now >= gather_deadline();
}

std::vector<BatchScheduler::Request*> BatchScheduler::take_pass() {
  std::vector<Request*> pass;
  int rows = 0;
  while (!pending_.empty() && (int)pass.size() < limits_.max_sessions) {
    Request* r = pending_.front();
    if (!pass.empty() && rows + r->seq.batch.T > limits_.max_rows) break;
    pending_.pop_front();
    rows += r->seq.batch.T;
    pass.push_back(r);
  }
  return pass;
}

void BatchScheduler::execute(std::vector<Request*>& pass) {
  int rows = 0;
  for (const Request* r : pass) rows += r->seq.batch.T;
  const auto t0 = Clock::now();
  const double wait0 = ThreadPool::caller_wait_ms();
  std::exception_ptr error;
  try {
    if (pass.size() == 1 || !be_.host_memory()) {
      // Alone (or on a device backend, which has no multi-sequence pass yet): each in its own workspace,
      // the path a session takes without batching (on a GPU, its recorded graphs).
      for (Request* r : pass) {
        const SequenceForward& s = r->seq;
        forward(model_, be_, *r->ws, *s.kv, s.batch, s.logits, s.hidden, s.hidden_all);
      }
    } else {
      if (!ws_ || ws_->max_T() < rows) {
        int cap = 64;
        while (cap < rows) cap *= 2;
        ws_.reset();
        ws_ = std::make_unique<Workspace>(&be_, model_.config, cap);
      }
      seqs_.clear();
      for (Request* r : pass) seqs_.push_back(r->seq);
      forward_sequences(model_, be_, *ws_, logits_, seqs_.data(), (int)seqs_.size());
    }
  } catch (...) {
    error = std::current_exception();
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  // What the pass itself cost: less the time it waited for the cores while another session's job (a
  // draft) held them, which would otherwise price rows by the drafts that happened to run beside them.
  const double own_ms = std::max(0.0, ms - (ThreadPool::caller_wait_ms() - wait0));
  std::lock_guard<std::mutex> lk(mu_);
  running_ = false;
  last_end_ = Clock::now();
  last_rows_ = rows;
  last_ms_ = ms;
  pass_costs_.observe(rows, own_ms);
  stats_.passes++;
  stats_.batched_passes += pass.size() > 1;
  stats_.sequence_steps += (int64_t)pass.size();
  stats_.rows += rows;
  stats_.pass_ms += ms;
  stats_.max_sequences = std::max(stats_.max_sequences, (int)pass.size());
  for (Request* r : pass) {
    r->info = PassInfo{(int)pass.size()};
    r->error = error;
    r->done = true;
  }
  cv_.notify_all();
}

PassInfo BatchScheduler::run(Workspace& ws, KVCache& kv, const Batch& batch, float* logits, float* hidden,
                             float* hidden_all) {
  check_batch(model_, ws.max_T(), kv, batch);  // a bad request fails alone, before it joins a pass
  Request req{&ws, SequenceForward{&kv, batch, logits, hidden, hidden_all}, nullptr, {}, false};
  std::unique_lock<std::mutex> lk(mu_);
  if (pending_.empty()) first_pending_at_ = Clock::now();
  pending_.push_back(&req);
  cv_.notify_all();
  while (!req.done) {
    const auto now = Clock::now();
    if (ready(now)) {
      std::vector<Request*> pass = take_pass();
      running_ = true;
      lk.unlock();
      execute(pass);  // settles every request of the pass (this one may not be among them)
      lk.lock();
      continue;
    }
    if (!running_ && !pending_.empty()) cv_.wait_until(lk, gather_deadline());
    else cv_.wait(lk);
  }
  if (req.error) std::rethrow_exception(req.error);
  return req.info;
}

BatchStats BatchScheduler::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

int BatchScheduler::members() const {
  std::lock_guard<std::mutex> lk(mu_);
  return members_;
}

int BatchScheduler::last_pass_rows() const {
  std::lock_guard<std::mutex> lk(mu_);
  return last_rows_;
}

ForwardCosts BatchScheduler::pass_costs() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pass_costs_;
}

double BatchScheduler::pass_ms(int rows) const {
  std::lock_guard<std::mutex> lk(mu_);
  return pass_costs_.estimate(rows);
}

}  // namespace chimera
