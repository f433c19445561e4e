// The persistent worker pool of thread_pool.h. A job is published by bumping a generation counter;
// workers spin on it for a short while after each job (a decode step issues ~10 small jobs per layer,
// and a futex wake per job would cost more than the job) and then sleep on the condition variable.
// Tasks are claimed dynamically, and the caller waits only for workers that joined the job, so a worker
// that is asleep or preempted (a shared machine, more threads than cores) does not stall every job.
#include "common/thread_pool.h"

#include <chrono>
#include <exception>
#include <string>
#include <system_error>

#include "common/error.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define CHIMERA_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define CHIMERA_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CHIMERA_CPU_RELAX() ((void)0)
#endif

#ifdef __linux__
#include <sched.h>
#endif

namespace chimera {

namespace {

using Clock = std::chrono::steady_clock;
// Busy-wait with pause this long, then with yield (lets another process have the core), then sleep.
constexpr auto kPauseSpin = std::chrono::microseconds(20);
constexpr auto kYieldSpin = std::chrono::microseconds(100);

// generation_ holds (job number << 1) | kJobClosed. A job is open from its publication until every task
// has been claimed; pending_workers_ counts the workers inside a job.
constexpr uint64_t kJobClosed = 1;

// The pool (and thread index) the current thread is running tasks for, so a task that calls back into
// its own pool runs the nested job inline instead of deadlocking on run_mutex_.
struct PoolContext {
  const ThreadPool* pool = nullptr;
  int index = 0;
};
thread_local PoolContext t_ctx;

// Sets t_ctx for a scope and restores it.
class ContextScope {
 public:
  ContextScope(const ThreadPool* pool, int index) : saved_(t_ctx) { t_ctx = {pool, index}; }
  ~ContextScope() { t_ctx = saved_; }

 private:
  PoolContext saved_;
};

// Spins until `done()` is true: pause first, then yield. Returns false when the spin budget ran out.
template <typename Done>
bool spin_until(Done done, Clock::duration budget) {
  const auto start = Clock::now();
  for (unsigned spin = 1;; spin++) {
    if (done()) return true;
    if ((spin & 63) == 0) {
      const auto elapsed = Clock::now() - start;
      if (elapsed > budget) return false;
      if (elapsed > kPauseSpin) std::this_thread::yield();
    }
    CHIMERA_CPU_RELAX();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) : n_threads_(threads < 1 ? 1 : threads) {
  workers_.reserve((size_t)n_threads_ - 1);
  try {
    for (int i = 1; i < n_threads_; i++) workers_.emplace_back([this, i] { worker_main(i); });
  } catch (const std::system_error& e) {
    // The destructor will not run for a half-built pool: stop and join what did start.
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_.store(true);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    throw_error(ErrorCode::OutOfMemory, "cannot start ", n_threads_ - 1, " worker threads: ", e.what());
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

void ThreadPool::worker_main(int index) {
  ContextScope scope(this, index);
  uint64_t seen = 0;  // the last job number this worker looked at; jobs are numbered from 1
  for (;;) {
    auto has_news = [&] { return (generation_.load(std::memory_order_acquire) >> 1) != seen || stop_.load(); };
    if (!spin_until(has_news, kYieldSpin)) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, has_news);
    }
    if (stop_.load()) return;
    // Join: count ourselves in first, then look at the job. Both are seq_cst, as are the caller's close
    // and its check of the count, so either the caller waits for us or we see the job closed and leave
    // without touching its state.
    pending_workers_.fetch_add(1, std::memory_order_seq_cst);
    const uint64_t g = generation_.load(std::memory_order_seq_cst);
    seen = g >> 1;
    if ((g & kJobClosed) == 0) work(index);
    // Release: the caller's acquire of a zero count makes the tasks' writes visible when run() returns.
    pending_workers_.fetch_sub(1, std::memory_order_release);
  }
}

void ThreadPool::work(int thread) {
  for (;;) {
    const int task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) return;
    try {
      (*fn_)(task, thread);
    } catch (...) {
      std::lock_guard<std::mutex> lk(err_mu_);
      if (!error_) error_ = std::current_exception();
      next_task_.store(n_tasks_, std::memory_order_relaxed);  // skip the tasks nobody has started
    }
  }
}

namespace {
thread_local double t_wait_ms = 0;  // this thread's time waiting for other callers' jobs (run())
}  // namespace

double ThreadPool::caller_wait_ms() { return t_wait_ms; }

void ThreadPool::run(int n_tasks, const std::function<void(int task, int thread)>& fn) {
  if (n_tasks <= 0) return;
  if (t_ctx.pool == this) {  // nested call from one of our own tasks
    for (int t = 0; t < n_tasks; t++) fn(t, t_ctx.index);
    return;
  }
  std::unique_lock<std::mutex> run_lock(run_mutex_, std::try_to_lock);
  if (!run_lock.owns_lock()) {  // another caller's job runs: wait for it, and count the wait
    const auto t0 = std::chrono::steady_clock::now();
    run_lock.lock();
    t_wait_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  if (n_threads_ == 1 || n_tasks == 1) {
    ContextScope scope(this, 0);
    for (int t = 0; t < n_tasks; t++) fn(t, 0);
    return;
  }
  fn_ = &fn;
  n_tasks_ = n_tasks;
  error_ = nullptr;
  next_task_.store(0, std::memory_order_relaxed);
  const uint64_t job = (generation_.load(std::memory_order_relaxed) >> 1) + 1;
  {
    // Under mu_ so a worker between its last check and cv_.wait cannot miss the new job.
    std::lock_guard<std::mutex> lk(mu_);
    generation_.store(job << 1, std::memory_order_seq_cst);
  }
  cv_.notify_all();  // cheap when nobody sleeps
  {
    ContextScope scope(this, 0);
    work(0);
  }
  // Every task is claimed now. Close the job to late joiners and wait only for the workers inside it: a
  // worker that is asleep or descheduled does not hold the caller up.
  generation_.store((job << 1) | kJobClosed, std::memory_order_seq_cst);
  auto joined_done = [&] { return pending_workers_.load(std::memory_order_seq_cst) == 0; };
  while (!spin_until(joined_done, std::chrono::milliseconds(10))) {
  }
  fn_ = nullptr;
  std::exception_ptr err = error_;
  error_ = nullptr;
  if (err) std::rethrow_exception(err);
}

void ThreadPool::parallel_for(int64_t n, int64_t align, const std::function<void(int64_t, int64_t, int)>& fn,
                              bool serial) {
  if (n <= 0) return;
  if (align < 1) align = 1;
  if (serial || n_threads_ == 1 || n <= align) {
    run(1, [&](int, int thread) { fn(0, n, thread); });  // inline, but still one job at a time
    return;
  }
  int64_t chunk = (n + n_threads_ - 1) / n_threads_;
  chunk = (chunk + align - 1) / align * align;
  const int n_chunks = (int)((n + chunk - 1) / chunk);
  run(n_chunks, [&](int task, int thread) {
    const int64_t begin = (int64_t)task * chunk;
    const int64_t end = begin + chunk < n ? begin + chunk : n;
    fn(begin, end, thread);
  });
}

int available_cpus() {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? (int)hw : 1;
}

}  // namespace chimera
