// JS handle of a Chimera draft model. Drafts are created, loaded and saved off the JS thread.
#pragma once
#include <napi.h>

#include <memory>
#include <optional>

#include "model/runtime.h"
#include "spec/draft_model.h"

namespace chimera::addon {

class DraftWrap : public Napi::ObjectWrap<DraftWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<const DraftModel> draft);
  static bool is(Napi::Env env, const Napi::Value& v);
  explicit DraftWrap(const Napi::CallbackInfo& info);

  std::shared_ptr<const DraftModel> draft(Napi::Env env) const;  // or a thrown E_DISPOSED

 private:
  Napi::Value info(const Napi::CallbackInfo& info);
  Napi::Value save(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<const DraftModel> draft_;
};

// model.loadDraft(path) / model.createDraft({heads, seed}) -> Promise<DraftWrap>
// dtype: the type to store the draft's matrices as (none: as loaded / F32 when created).
Napi::Value load_draft_async(Napi::Env env, std::shared_ptr<ModelRuntime> rt, const std::string& path,
                             std::optional<DType> dtype);
Napi::Value create_draft_async(Napi::Env env, std::shared_ptr<ModelRuntime> rt, const DraftShape& shape, uint64_t seed,
                               std::optional<DType> dtype);
// A JS dtype option ('F32', 'F16', 'BF16' or 'Q8_0'; undefined: none); throws E_INVALID_ARG otherwise.
std::optional<DType> draft_dtype_option(Napi::Env env, const Napi::Value& v);
// readDraftMetadata(path) -> {key: value}
Napi::Value read_draft_metadata_js(const Napi::CallbackInfo& info);

}  // namespace chimera::addon
