// Native exception -> JS Error with `.code`.
#include "addon/js_errors.h"

#include <new>

namespace chimera::addon {

CapturedError capture_current_exception() {
  try {
    throw;
  } catch (const Error& e) {
    return {e.code(), e.what()};
  } catch (const std::bad_alloc&) {
    return {ErrorCode::OutOfMemory, "out of memory"};
  } catch (const std::exception& e) {
    return {ErrorCode::Internal, std::string("internal error: ") + e.what()};
  } catch (...) {
    return {ErrorCode::Internal, "internal error: unknown exception"};
  }
}

Napi::Error make_js_error(Napi::Env env, ErrorCode code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, error_code_name(code)));
  return err;
}

Napi::Error make_js_error(Napi::Env env, const CapturedError& e) { return make_js_error(env, e.code, e.message); }

}  // namespace chimera::addon
