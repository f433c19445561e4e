// JS handle of a loaded model (ModelRuntime). Loading runs off the JS thread (loadModel worker).
#pragma once
#include <napi.h>

#include <memory>

#include "model/runtime.h"

namespace chimera::addon {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<ModelRuntime> runtime);
  explicit ModelWrap(const Napi::CallbackInfo& info);

  // The runtime, or a thrown E_DISPOSED.
  std::shared_ptr<ModelRuntime> runtime(Napi::Env env) const;

 private:
  Napi::Value info(const Napi::CallbackInfo& info);
  Napi::Value tokenize(const Napi::CallbackInfo& info);
  Napi::Value detokenize(const Napi::CallbackInfo& info);
  Napi::Value tokenText(const Napi::CallbackInfo& info);
  Napi::Value createSession(const Napi::CallbackInfo& info);
  Napi::Value loadDraft(const Napi::CallbackInfo& info);
  Napi::Value createDraft(const Napi::CallbackInfo& info);
  Napi::Value buildLookupCache(const Napi::CallbackInfo& info);
  Napi::Value loadLookupCache(const Napi::CallbackInfo& info);
  Napi::Value batchStats(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelRuntime> runtime_;
};

// loadModel(path, {tokenizer?, threads?}) -> Promise<ModelWrap>
Napi::Value load_model_async(const Napi::CallbackInfo& info);

}  // namespace chimera::addon
