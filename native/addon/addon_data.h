// Per-environment data of the addon (constructors of the wrapped classes), so the addon works in
// worker threads and several environments at once.
#pragma once
#include <napi.h>

namespace chimera::addon {

struct AddonData {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference session_ctor;
  Napi::FunctionReference draft_ctor;
  Napi::FunctionReference lookup_cache_ctor;
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace chimera::addon
