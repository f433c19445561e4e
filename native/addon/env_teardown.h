// Callbacks on the JS thread after a worker-thread `Worker` was terminated. Node waits for queued
// native work to finish before it tears the environment down, and then runs the completion and
// progress callbacks with JS stopped: every call into JS fails, and a C++ exception escaping such a
// callback would end the whole process (std::terminate). So completion callbacks settle promises
// through settle_or_drop, and progress callbacks check js_stopped and cancel the native job. The same
// holds for the callbacks and the finalizer of a thread-safe function (generate, session_wrap.cpp).
#pragma once
#include <napi.h>

#include <exception>

namespace chimera::addon {

// True when JS can no longer run in `env` (its worker is being terminated, or the process exits).
inline bool js_stopped(Napi::Env env) {
  napi_value global = nullptr, value = nullptr;
  if (napi_get_global(env, &global) != napi_ok) return true;
  const napi_status s = napi_get_named_property(env, global, "undefined", &value);
  if (s == napi_ok) return false;
  bool pending = false;
  return !(napi_is_exception_pending(env, &pending) == napi_ok && pending);
}

// Runs `settle` (which resolves or rejects a promise). If it fails while JS still runs, the promise is
// rejected with that error; if JS has stopped, nobody is left to see the promise and the failure is
// dropped. Never throws.
template <typename Settle>
void settle_or_drop(Napi::Env env, Napi::Promise::Deferred& deferred, Settle&& settle) noexcept {
  try {
    settle();
    return;
  } catch (const Napi::Error& e) {
    try {
      if (!js_stopped(env)) deferred.Reject(e.Value());
    } catch (...) {
    }
  } catch (...) {
    try {
      if (!js_stopped(env)) deferred.Reject(Napi::Error::New(env, "internal error while settling a result").Value());
    } catch (...) {
    }
  }
}

}  // namespace chimera::addon
