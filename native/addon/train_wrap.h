// trainDraft(model, options, onProgress) -> Promise<NativeDraft>: draft training on a worker thread,
// progress streamed to JS, abortable.
#pragma once
#include <napi.h>

namespace chimera::addon {

Napi::Value train_draft_async(const Napi::CallbackInfo& info);

}  // namespace chimera::addon
