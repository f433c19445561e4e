// trainDraft / trainBase: training jobs on worker threads, progress streamed to JS, abortable.
#pragma once
#include <napi.h>

namespace chimera::addon {

Napi::Value train_draft_async(const Napi::CallbackInfo& info);
Napi::Value train_base_async(const Napi::CallbackInfo& info);

}  // namespace chimera::addon
