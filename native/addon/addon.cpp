// Registers the native surface of chimera-llm. lib/addonTypes.ts types every export listed here.
#include <napi.h>

#include "addon/addon_data.h"
#include "addon/draft_wrap.h"
#include "addon/lookup_cache_wrap.h"
#include "addon/job_worker.h"
#include "addon/model_wrap.h"
#include "addon/session_wrap.h"
#include "addon/train_wrap.h"
#include "backend/gpu_backend.h"
#include "cpu/kernels_cpu.h"

namespace chimera::addon {

static Napi::Value kernel_path(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kernel_path_name(active_kernel_path()));
}

static Napi::Value cpu_count(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), available_cpus()); }

// Whether this build has the CUDA backend and a usable GPU (off the JS thread: the first CUDA call
// starts the driver).
static Napi::Value cuda_status(const Napi::CallbackInfo& info) {
  struct Status {
    bool available = false;
    std::string reason;
  };
  auto out = std::make_shared<Status>();
  return run_job(info.Env(), "chimera.cudaStatus", [out] { out->available = gpu_available(0, &out->reason); },
                 [out](Napi::Env e) {
                   Napi::Object o = Napi::Object::New(e);
                   o.Set("built", gpu_backend_built());
                   o.Set("available", out->available);
                   o.Set("reason", out->available ? std::string() : out->reason);
                   return o;
                 });
}

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  data->model_ctor = Napi::Persistent(ModelWrap::define(env));
  data->session_ctor = Napi::Persistent(SessionWrap::define(env));
  data->draft_ctor = Napi::Persistent(DraftWrap::define(env));
  data->lookup_cache_ctor = Napi::Persistent(LookupCacheWrap::define(env));
  exports.Set("loadModel", Napi::Function::New(env, load_model_async, "loadModel"));
  exports.Set("readDraftMetadata", Napi::Function::New(env, read_draft_metadata_js, "readDraftMetadata"));
  exports.Set("trainDraft", Napi::Function::New(env, train_draft_async, "trainDraft"));
  exports.Set("trainBase", Napi::Function::New(env, train_base_async, "trainBase"));
  exports.Set("kernelPath", Napi::Function::New(env, kernel_path, "kernelPath"));
  exports.Set("cpuCount", Napi::Function::New(env, cpu_count, "cpuCount"));
  exports.Set("hasCuda", Napi::Boolean::New(env, gpu_backend_built()));
  exports.Set("cudaStatus", Napi::Function::New(env, cuda_status, "cudaStatus"));
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  return exports;
}

}  // namespace chimera::addon

static Napi::Object InitChimera(Napi::Env env, Napi::Object exports) { return chimera::addon::init(env, exports); }

NODE_API_MODULE(chimera, InitChimera)
