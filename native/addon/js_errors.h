// The one boundary between native errors and JS: every exception leaving the core becomes a JS Error
// whose `.code` is one of the closed set in error.h (lib/errors.ts maps codes to classes).
#pragma once
#include <napi.h>

#include <exception>
#include <string>

#include "common/error.h"

namespace chimera::addon {

// A captured error that can cross from a worker thread to the JS thread.
struct CapturedError {
  ErrorCode code = ErrorCode::Internal;
  std::string message;
};

// Converts the current exception (call inside a catch block).
CapturedError capture_current_exception();

Napi::Error make_js_error(Napi::Env env, const CapturedError& e);
Napi::Error make_js_error(Napi::Env env, ErrorCode code, const std::string& message);

// Runs fn; turns any native exception into a thrown JS error.
template <typename Fn>
auto guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_js_error(env, capture_current_exception());
  }
}

}  // namespace chimera::addon
