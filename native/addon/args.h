// Typed reading of JS arguments and option objects. The TS layer validates first; these checks
// exist because the addon can be called directly. Bad values throw E_INVALID_ARG.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

namespace chimera::addon {

Napi::Object arg_object(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Function arg_function(const Napi::CallbackInfo& info, size_t i, const char* name);
// info[i] as an integer in lo..hi (absent or undefined: fallback); anything else is E_INVALID_ARG.
int arg_int(const Napi::CallbackInfo& info, size_t i, const char* name, int fallback, int lo, int hi);
std::vector<int32_t> arg_int32_list(const Napi::CallbackInfo& info, size_t i, const char* name);

// Optional fields: return `fallback` when the field is undefined.
double opt_number(const Napi::Object& o, const char* key, double fallback);
int opt_int(const Napi::Object& o, const char* key, int fallback);
bool opt_bool(const Napi::Object& o, const char* key, bool fallback);
std::string opt_string(const Napi::Object& o, const char* key, const std::string& fallback);
std::vector<std::string> opt_string_list(const Napi::Object& o, const char* key);

}  // namespace chimera::addon
