// Argument readers for the N-API boundary.
#include "addon/args.h"

#include <cmath>
#include <limits>

#include "addon/js_errors.h"

namespace chimera::addon {

namespace {
[[noreturn]] void bad(Napi::Env env, const std::string& msg) { throw make_js_error(env, ErrorCode::InvalidArg, msg); }
}  // namespace

Napi::Object arg_object(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsObject()) bad(info.Env(), std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) bad(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Function arg_function(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsFunction()) bad(info.Env(), std::string(name) + " must be a function");
  return info[i].As<Napi::Function>();
}

std::vector<int32_t> arg_int32_list(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Env env = info.Env();
  if (info.Length() <= i) bad(env, std::string(name) + " is required");
  Napi::Value v = info[i];
  std::vector<int32_t> out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
    return out;
  }
  if (!v.IsArray()) bad(env, std::string(name) + " must be an array of token ids or an Int32Array");
  Napi::Array a = v.As<Napi::Array>();
  out.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value e = a.Get(k);
    if (!e.IsNumber()) bad(env, std::string(name) + " must contain only integers");
    const double d = e.As<Napi::Number>().DoubleValue();
    if (!(d == std::floor(d)) || d < 0 || d > std::numeric_limits<int32_t>::max())
      bad(env, std::string(name) + " must contain non-negative integer token ids");
    out.push_back((int32_t)d);
  }
  return out;
}

int arg_int(const Napi::CallbackInfo& info, size_t i, const char* name, int fallback, int lo, int hi) {
  if (info.Length() <= i || info[i].IsUndefined()) return fallback;
  const Napi::Value v = info[i];
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(d == std::floor(d) && d >= lo && d <= hi)) {
    const std::string got = v.IsNumber() ? v.ToString().Utf8Value() : "a " + std::string(v.IsString() ? "string" : "non-number");
    bad(info.Env(), std::string(name) + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
                        ", got " + got);
  }
  return (int)d;
}

double opt_number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) bad(o.Env(), std::string(key) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) bad(o.Env(), std::string(key) + " must be a finite number");
  return d;
}

int opt_int(const Napi::Object& o, const char* key, int fallback) {
  const double d = opt_number(o, key, fallback);
  if (d != std::floor(d) || d < std::numeric_limits<int>::min() || d > std::numeric_limits<int>::max())
    bad(o.Env(), std::string(key) + " must be an integer");
  return (int)d;
}

bool opt_bool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) bad(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string opt_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) bad(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<std::string> opt_string_list(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  std::vector<std::string> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) bad(o.Env(), std::string(key) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) bad(o.Env(), std::string(key) + " must be an array of strings");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

}  // namespace chimera::addon
