// JS handle of a lookup n-gram cache (NgramTable) built from a corpus or loaded from a file, for
// createSession({ lookup: { corpus } }). Building, loading and saving run off the JS thread.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "model/runtime.h"
#include "spec/ngram_table.h"

namespace chimera::addon {

class LookupCacheWrap : public Napi::ObjectWrap<LookupCacheWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<const NgramTable> table);
  static bool is(Napi::Env env, const Napi::Value& v);
  explicit LookupCacheWrap(const Napi::CallbackInfo& info);

  std::shared_ptr<const NgramTable> table(Napi::Env env) const;  // or a thrown E_DISPOSED

 private:
  Napi::Value info(const Napi::CallbackInfo& info);
  Napi::Value save(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<const NgramTable> table_;
};

// model.buildLookupCache(texts, order) -> Promise<LookupCacheWrap>: each text tokenized as a document.
Napi::Value build_lookup_cache_async(Napi::Env env, std::shared_ptr<ModelRuntime> rt, std::vector<std::string> texts,
                                     int order);
// model.loadLookupCache(path) -> Promise<LookupCacheWrap>; a cache for another vocabulary is E_INVALID_ARG.
Napi::Value load_lookup_cache_async(Napi::Env env, std::shared_ptr<ModelRuntime> rt, const std::string& path);

}  // namespace chimera::addon
