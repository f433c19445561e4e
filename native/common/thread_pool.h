// A persistent pool of worker threads for data-parallel loops. The calling thread takes part, so a
// pool of n threads starts n-1 workers. Workers spin briefly between jobs (decode steps issue many
// small jobs back to back) and then sleep. One job runs at a time; callers from several threads are
// serialised.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace chimera {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(task, thread_index) for task in [0, n_tasks), spread over the threads; returns when all
  // are done. An exception thrown by fn is rethrown here (the first one).
  void run(int n_tasks, const std::function<void(int task, int thread)>& fn);

  // Splits [0, n) into contiguous ranges, about one per thread, each a multiple of `align` except the
  // last, and runs fn(begin, end, thread) on them. Runs inline when n is small or `serial` is true.
  void parallel_for(int64_t n, int64_t align, const std::function<void(int64_t, int64_t, int)>& fn,
                    bool serial = false);

  // The calling thread's total time spent in run() waiting for other callers' jobs (any pool), in ms:
  // what to leave out of a measurement of one's own work when several threads share the cores.
  static double caller_wait_ms();

 private:
  void worker_main(int index);
  void work(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one job at a time
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> next_task_{0};
  std::atomic<int> pending_workers_{0};
  std::atomic<bool> stop_{false};
  int n_tasks_ = 0;
  const std::function<void(int, int)>* fn_ = nullptr;
  std::mutex err_mu_;
  std::exception_ptr error_;
};

// The number of CPUs this process may run on (sched affinity), at least 1.
int available_cpus();

}  // namespace chimera
