// LookupCacheWrap and its workers.
#include "addon/lookup_cache_wrap.h"

#include "addon/addon_data.h"
#include "addon/args.h"
#include "addon/job_worker.h"
#include "addon/js_errors.h"
#include "common/error.h"

namespace chimera::addon {

Napi::Function LookupCacheWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeLookupCache",
                     {InstanceMethod<&LookupCacheWrap::info>("info"), InstanceMethod<&LookupCacheWrap::save>("save"),
                      InstanceMethod<&LookupCacheWrap::dispose>("dispose")});
}

Napi::Object LookupCacheWrap::wrap(Napi::Env env, std::shared_ptr<const NgramTable> table) {
  auto* holder = new std::shared_ptr<const NgramTable>(std::move(table));
  auto ext = Napi::External<std::shared_ptr<const NgramTable>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<const NgramTable>* p) { delete p; });
  return addon_data(env).lookup_cache_ctor.New({ext});
}

bool LookupCacheWrap::is(Napi::Env env, const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(addon_data(env).lookup_cache_ctor.Value());
}

LookupCacheWrap::LookupCacheWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LookupCacheWrap>(info) {
  if (info.Length() < 1 || !info[0].IsExternal())
    throw make_js_error(info.Env(), ErrorCode::InvalidArg,
                        "NativeLookupCache is created by model.buildLookupCache()/loadLookupCache()");
  table_ = std::move(*info[0].As<Napi::External<std::shared_ptr<const NgramTable>>>().Data());
}

std::shared_ptr<const NgramTable> LookupCacheWrap::table(Napi::Env env) const {
  if (!table_) throw make_js_error(env, ErrorCode::Disposed, "the lookup cache has been disposed");
  return table_;
}

Napi::Value LookupCacheWrap::info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto t = table(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("contexts", (double)t->contexts());
  o.Set("order", t->max_n());
  o.Set("vocabSize", t->vocab_size());
  return o;
}

Napi::Value LookupCacheWrap::save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto t = table(env);
  const std::string path = arg_string(info, 0, "path");
  return run_job(env, "chimera.saveLookupCache", [t, path] { t->save(path); },
                 [](Napi::Env e) { return e.Undefined(); });
}

Napi::Value LookupCacheWrap::dispose(const Napi::CallbackInfo& info) {
  table_.reset();  // sessions using it keep their own reference
  return info.Env().Undefined();
}

Napi::Value build_lookup_cache_async(Napi::Env env, std::shared_ptr<ModelRuntime> rt, std::vector<std::string> texts,
                                     int order) {
  if (order < 1 || order > 8) throw make_js_error(env, ErrorCode::InvalidArg, "order must be in 1..8");
  auto out = std::make_shared<std::shared_ptr<const NgramTable>>();
  return run_job(
      env, "chimera.buildLookupCache",
      [rt, texts = std::move(texts), order, out] {
        const Tokenizer& tok = rt->model().tokenizer;
        auto t = std::make_shared<NgramTable>(order, rt->model().config.V);
        for (const std::string& text : texts) {
          const std::vector<int32_t> ids = tok.encode(text, tok.add_bos(), true);
          t->add_sequence(ids.data(), ids.size());
        }
        *out = std::move(t);
      },
      [out](Napi::Env e) { return LookupCacheWrap::wrap(e, *out); });
}

Napi::Value load_lookup_cache_async(Napi::Env env, std::shared_ptr<ModelRuntime> rt, const std::string& path) {
  auto out = std::make_shared<std::shared_ptr<const NgramTable>>();
  return run_job(
      env, "chimera.loadLookupCache",
      [rt, path, out] {
        auto t = std::make_shared<NgramTable>(NgramTable::load(path));
        const int V = rt->model().config.V;
        CHIMERA_CHECK(t->vocab_size() == V, ErrorCode::InvalidArg, path, " is a lookup cache for a vocabulary of ",
                      t->vocab_size(), " tokens; this model has ", V);
        *out = std::move(t);
      },
      [out](Napi::Env e) { return LookupCacheWrap::wrap(e, *out); });
}

}  // namespace chimera::addon
