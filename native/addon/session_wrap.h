// JS handle of a generation session. generate() runs on a native thread of its own and streams chunks
// back through a thread-safe function; evaluate() runs on a libuv worker thread. A session holds its
// model runtime alive.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "generate/session.h"

namespace chimera::addon {

// Shared by the JS handle and any in-flight worker, so dispose() during a call is safe.
struct SessionState {
  SessionState(std::shared_ptr<ModelRuntime> rt, int context, int batch, const SpeculativeConfig* spec)
      : session(std::move(rt), context, batch, spec) {}
  Session session;
  std::atomic<bool> busy{false};
  std::atomic<bool> abort{false};
};

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object create(Napi::Env env, std::shared_ptr<ModelRuntime> runtime, const Napi::Object& opts);
  explicit SessionWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<SessionState> state(Napi::Env env) const;  // or a thrown E_DISPOSED
  std::shared_ptr<SessionState> acquire(Napi::Env env);     // state marked busy, or a thrown E_BUSY
  std::shared_ptr<SessionState> idle(Napi::Env env) const;  // state not busy, or a thrown E_BUSY
  Napi::Value generate(const Napi::CallbackInfo& info);
  Napi::Value evaluate(const Napi::CallbackInfo& info);
  Napi::Value abort(const Napi::CallbackInfo& info);
  Napi::Value reset(const Napi::CallbackInfo& info);
  Napi::Value truncate(const Napi::CallbackInfo& info);
  Napi::Value history(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<SessionState> state_;
};

}  // namespace chimera::addon
