// Runs a native job on a libuv worker thread and settles a promise with its result: the one shape of
// every slow call of the addon (except generate, which also streams). Native errors become coded JS
// errors; `settle` runs on the JS thread in both outcomes (e.g. to release a busy session).
#pragma once
#include <napi.h>

#include <functional>

#include "js_errors.h"

namespace chimera::addon {

class JobWorker : public Napi::AsyncWorker {
 public:
  using Job = std::function<void()>;                  // worker thread
  using Done = std::function<Napi::Value(Napi::Env)>;  // JS thread: the resolved value
  using Settle = std::function<void()>;               // JS thread, before resolve or reject

  JobWorker(Napi::Env env, const char* name, Job job, Done done, Settle settle)
      : Napi::AsyncWorker(env, name), deferred_(env), job_(std::move(job)), done_(std::move(done)),
        settle_(std::move(settle)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      job_();
    } catch (...) {
      error_ = capture_current_exception();
      SetError(error_.message);
    }
  }
  void OnOK() override {
    if (settle_) settle_();
    deferred_.Resolve(done_(Env()));
  }
  void OnError(const Napi::Error&) override {
    if (settle_) settle_();
    deferred_.Reject(make_js_error(Env(), error_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  Done done_;
  Settle settle_;
  CapturedError error_;
};

// Queues a job and returns its promise.
inline Napi::Value run_job(Napi::Env env, const char* name, JobWorker::Job job, JobWorker::Done done,
                           JobWorker::Settle settle = nullptr) {
  auto* w = new JobWorker(env, name, std::move(job), std::move(done), std::move(settle));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace chimera::addon
