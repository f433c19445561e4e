// DraftWrap and the draft workers.
#include "addon/draft_wrap.h"

#include "addon/addon_data.h"
#include "addon/args.h"
#include "addon/job_worker.h"
#include "addon/js_errors.h"

namespace chimera::addon {

Napi::Function DraftWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeDraft",
                     {InstanceMethod<&DraftWrap::info>("info"), InstanceMethod<&DraftWrap::save>("save"),
                      InstanceMethod<&DraftWrap::dispose>("dispose")});
}

Napi::Object DraftWrap::wrap(Napi::Env env, std::shared_ptr<const DraftModel> draft) {
  auto* holder = new std::shared_ptr<const DraftModel>(std::move(draft));
  auto ext = Napi::External<std::shared_ptr<const DraftModel>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<const DraftModel>* p) { delete p; });
  return addon_data(env).draft_ctor.New({ext});
}

bool DraftWrap::is(Napi::Env env, const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(addon_data(env).draft_ctor.Value());
}

DraftWrap::DraftWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DraftWrap>(info) {
  if (info.Length() < 1 || !info[0].IsExternal())
    throw make_js_error(info.Env(), ErrorCode::InvalidArg, "NativeDraft is created by model.loadDraft()/createDraft()");
  draft_ = std::move(*info[0].As<Napi::External<std::shared_ptr<const DraftModel>>>().Data());
}

std::shared_ptr<const DraftModel> DraftWrap::draft(Napi::Env env) const {
  if (!draft_) throw make_js_error(env, ErrorCode::Disposed, "the draft has been disposed");
  return draft_;
}

Napi::Value DraftWrap::info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto d = draft(env);
  const DraftConfig& c = d->config;
  Napi::Object o = Napi::Object::New(env);
  o.Set("heads", c.K);
  o.Set("hiddenSize", c.C);
  o.Set("vocabSize", c.V);
  o.Set("width", c.D);
  o.Set("headVocabSize", c.Vh);
  o.Set("weightBytes", (double)d->weight_bytes());
  o.Set("dtype", dtype_name(draft_matrix_dtype(*d)));
  o.Set("formatVersion", kDraftFormatVersion);
  return o;
}


Napi::Value DraftWrap::save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto d = draft(env);
  const std::string path = arg_string(info, 0, "path");
  const std::string dt = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "F32";
  if (dt != "F32" && dt != "F16" && dt != "BF16")
    throw make_js_error(env, ErrorCode::InvalidArg, "dtype must be F32, F16 or BF16");
  const DType dtype = dt == "F16" ? DType::F16 : dt == "BF16" ? DType::BF16 : DType::F32;
  return run_job(env, "chimera.saveDraft", [d, path, dtype] { save_draft(*d, path, dtype); },
                 [](Napi::Env e) { return e.Undefined(); });
}

Napi::Value DraftWrap::dispose(const Napi::CallbackInfo& info) {
  draft_.reset();  // sessions using it keep their own reference
  return info.Env().Undefined();
}

Napi::Value load_draft_async(Napi::Env env, std::shared_ptr<ModelRuntime> rt, const std::string& path,
                             std::optional<DType> dtype) {
  auto out = std::make_shared<std::shared_ptr<const DraftModel>>();
  return run_job(
      env, "chimera.loadDraft",
      [rt, path, dtype, out] {
        auto d = load_draft(path, rt->model());
        if (dtype) convert_draft_weights(*d, *dtype);
        *out = std::move(d);
      },
      [out](Napi::Env e) { return DraftWrap::wrap(e, *out); });
}

Napi::Value create_draft_async(Napi::Env env, std::shared_ptr<ModelRuntime> rt, const DraftShape& shape,
                               uint64_t seed, std::optional<DType> dtype) {
  auto out = std::make_shared<std::shared_ptr<const DraftModel>>();
  return run_job(
      env, "chimera.createDraft",
      [rt, shape, seed, dtype, out] {
        auto d = create_draft(rt->model(), shape, seed);
        if (dtype) convert_draft_weights(*d, *dtype);
        *out = std::move(d);
      },
      [out](Napi::Env e) { return DraftWrap::wrap(e, *out); });
}

std::optional<DType> draft_dtype_option(Napi::Env env, const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    if (s == dtype_name(t)) return t;
  throw make_js_error(env, ErrorCode::InvalidArg,
                      "dtype must be 'F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q5_K' or 'Q6_K'");
}

Napi::Value read_draft_metadata_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = arg_string(info, 0, "path");
  auto meta = guard(env, [&] { return read_draft_metadata(path); });
  Napi::Object o = Napi::Object::New(env);
  for (const auto& kv : meta) o.Set(kv.first, kv.second);
  return o;
}

}  // namespace chimera::addon
