// Runs a native job on a libuv worker thread and settles a promise with its result: the one shape of
// every slow call of the addon (except generate, which also streams). Native errors become coded JS
// errors; `settle` runs on the JS thread in both outcomes (e.g. to release a busy session).
//
// A job may take an Interrupt and poll it between batches of work: its heartbeat pings the JS thread,
// and when JS has stopped there (the worker thread was terminated) the job is told to stop, so the
// thread's teardown does not wait for the whole job.
#pragma once
#include <napi.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "addon/env_teardown.h"
#include "addon/js_errors.h"
#include "common/interrupt.h"

namespace chimera::addon {

// A heartbeat that sends at most one ping per interval through `send` (from the job's thread).
inline std::function<void()> rate_limited(std::function<void()> send, std::chrono::milliseconds interval) {
  auto last = std::make_shared<std::chrono::steady_clock::time_point>();
  return [send = std::move(send), last, interval] {
    const auto now = std::chrono::steady_clock::now();
    if (now - *last < interval) return;
    *last = now;
    send();
  };
}

constexpr std::chrono::milliseconds kHeartbeatInterval{20};

class JobWorker : public Napi::AsyncProgressQueueWorker<char> {
 public:
  using Job = std::function<void(const Interrupt&)>;   // worker thread
  using Done = std::function<Napi::Value(Napi::Env)>;  // JS thread: the resolved value
  using Settle = std::function<void()>;               // JS thread, before resolve or reject

  JobWorker(Napi::Env env, const char* name, Job job, Done done, Settle settle)
      : Napi::AsyncProgressQueueWorker<char>(env, name), deferred_(env), job_(std::move(job)), done_(std::move(done)),
        settle_(std::move(settle)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    try {
      Interrupt interrupt;
      interrupt.flag = &stop_;
      interrupt.heartbeat = rate_limited([&progress] { progress.Signal(); }, kHeartbeatInterval);
      job_(interrupt);
    } catch (...) {
      error_ = capture_current_exception();
      SetError(error_.message);
    }
  }
  void OnProgress(const char*, size_t) override {
    if (js_stopped(Env())) stop_ = true;
  }
  // Both may run with JS stopped (a terminated worker thread): see env_teardown.h.
  void OnOK() override {
    release();
    settle_or_drop(Env(), deferred_, [&] { deferred_.Resolve(done_(Env())); });
  }
  void OnError(const Napi::Error&) override {
    release();
    settle_or_drop(Env(), deferred_, [&] { deferred_.Reject(make_js_error(Env(), error_).Value()); });
  }

 private:
  void release() noexcept {
    try {
      if (settle_) settle_();
    } catch (...) {
    }
  }
  Napi::Promise::Deferred deferred_;
  Job job_;
  Done done_;
  Settle settle_;
  std::atomic<bool> stop_{false};
  CapturedError error_;
};

// Queues a job and returns its promise. `job` takes no argument, or the Interrupt to poll.
template <typename Fn>
Napi::Value run_job(Napi::Env env, const char* name, Fn job, JobWorker::Done done, JobWorker::Settle settle = nullptr) {
  JobWorker::Job j;
  if constexpr (std::is_invocable_v<Fn&, const Interrupt&>) j = std::move(job);
  else j = [job = std::move(job)](const Interrupt&) mutable { job(); };
  auto* w = new JobWorker(env, name, std::move(j), std::move(done), std::move(settle));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace chimera::addon
