// ModelWrap: model metadata, tokenizer access and session creation, plus the async loader.
#include "addon/model_wrap.h"

#include "addon/addon_data.h"
#include "addon/args.h"
#include "addon/draft_wrap.h"
#include "addon/lookup_cache_wrap.h"
#include "addon/job_worker.h"
#include "addon/js_errors.h"
#include "addon/session_wrap.h"
#include "cpu/kernels_cpu.h"

namespace chimera::addon {

Napi::Function ModelWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {InstanceMethod<&ModelWrap::info>("info"), InstanceMethod<&ModelWrap::tokenize>("tokenize"),
                      InstanceMethod<&ModelWrap::detokenize>("detokenize"),
                      InstanceMethod<&ModelWrap::tokenText>("tokenText"),
                      InstanceMethod<&ModelWrap::createSession>("createSession"),
                      InstanceMethod<&ModelWrap::buildLookupCache>("buildLookupCache"),
                      InstanceMethod<&ModelWrap::loadLookupCache>("loadLookupCache"),
                      InstanceMethod<&ModelWrap::loadDraft>("loadDraft"),
                      InstanceMethod<&ModelWrap::createDraft>("createDraft"),
                      InstanceMethod<&ModelWrap::batchStats>("batchStats"),
                      InstanceMethod<&ModelWrap::dispose>("dispose")});
}

Napi::Object ModelWrap::wrap(Napi::Env env, std::shared_ptr<ModelRuntime> runtime) {
  auto* holder = new std::shared_ptr<ModelRuntime>(std::move(runtime));
  Napi::External<std::shared_ptr<ModelRuntime>> ext = Napi::External<std::shared_ptr<ModelRuntime>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<ModelRuntime>* p) { delete p; });
  return addon_data(env).model_ctor.New({ext});
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() < 1 || !info[0].IsExternal())
    throw make_js_error(info.Env(), ErrorCode::InvalidArg, "NativeModel is created by loadModel(), not by new");
  // Take the reference out of the External so that dispose() frees the model without waiting for GC.
  runtime_ = std::move(*info[0].As<Napi::External<std::shared_ptr<ModelRuntime>>>().Data());
}

std::shared_ptr<ModelRuntime> ModelWrap::runtime(Napi::Env env) const {
  if (!runtime_) throw make_js_error(env, ErrorCode::Disposed, "the model has been disposed");
  return runtime_;
}

namespace {

// model.info.tokenizer: ids and texts of the special tokens, the end-of-generation set and the chat
// template, which chat formatting in TypeScript builds on.
Napi::Object tokenizer_info(Napi::Env env, const Tokenizer& tok) {
  const TokenizerData& d = tok.data();
  const auto text = [&](int32_t id) { return id >= 0 ? d.pieces[(size_t)id] : std::string(); };
  Napi::Object t = Napi::Object::New(env);
  t.Set("model", d.model);
  t.Set("pre", d.pre);
  t.Set("vocabSize", tok.vocab_size());
  t.Set("bos", tok.bos());
  t.Set("eos", tok.eos());
  t.Set("eot", tok.eot());
  t.Set("eom", tok.eom());
  t.Set("bosText", text(tok.bos()));
  t.Set("eosText", text(tok.eos()));
  t.Set("eotText", text(tok.eot()));
  const std::vector<int32_t> eog = tok.eog_tokens();
  Napi::Array eog_js = Napi::Array::New(env, eog.size());
  for (size_t i = 0; i < eog.size(); i++) eog_js.Set((uint32_t)i, eog[i]);
  t.Set("eogTokens", eog_js);
  t.Set("addBos", tok.add_bos());
  t.Set("addSpacePrefix", d.add_space_prefix);
  t.Set("chatTemplate", d.chat_template);
  return t;
}

}  // namespace

Napi::Value ModelWrap::info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  const Model& m = rt->model();
  const ModelConfig& c = m.config;
  Napi::Object o = Napi::Object::New(env);
  o.Set("architecture", c.architecture);
  o.Set("name", c.name);
  o.Set("format", c.format);
  o.Set("path", m.path);
  o.Set("embeddingLength", c.C);
  o.Set("layers", c.L);
  o.Set("heads", c.NH);
  o.Set("kvHeads", c.NKV);
  o.Set("headSize", c.HS);
  o.Set("feedForwardLength", c.HD);
  o.Set("vocabSize", c.V);
  o.Set("contextLength", c.max_context);
  o.Set("rmsEps", c.rms_eps);
  o.Set("ropeTheta", c.rope_theta);
  o.Set("ropeLayout", c.rope_layout == RopeLayout::Interleaved ? "interleaved" : "half-split");
  o.Set("tiedOutput", c.tied_output);
  o.Set("dtype", dtype_name(m.weights.layers.empty() ? m.weights.tok_embd.dtype : m.weights.layers[0].wq.dtype));
  // How many weight matrices each type holds (a Q4_K_M file mixes Q4_K and Q6_K).
  Napi::Object types = Napi::Object::New(env);
  const auto count = [&](const TensorView& t) {
    const char* name = dtype_name(t.dtype);
    const Napi::Value v = types.Get(name);
    types.Set(name, (v.IsNumber() ? v.As<Napi::Number>().Int32Value() : 0) + 1);
  };
  count(m.weights.tok_embd);
  for (const LayerWeights& l : m.weights.layers)
    for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) count(*t);
  if (!c.tied_output) count(m.weights.output);
  o.Set("tensorTypes", types);
  o.Set("weightBytes", (double)m.weight_bytes());
  o.Set("mappedBytes", (double)m.storage.mapped_bytes);
  o.Set("ownedBytes", (double)m.storage.owned_bytes);
  o.Set("repackedBytes", (double)rt->repacked_bytes());
  o.Set("threads", rt->threads());
  o.Set("backend", rt->backend().name());
  o.Set("kernels", std::string(kernel_path_name(active_kernel_path())) + (rt->uses_amx() ? "+amx" : ""));
  o.Set("tokenizer", tokenizer_info(env, m.tokenizer));
  return o;
}

Napi::Value ModelWrap::tokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  const std::string text = arg_string(info, 0, "text");
  const bool add_bos = info.Length() > 1 && info[1].ToBoolean();
  const bool at_start = info.Length() > 2 ? info[2].ToBoolean().Value() : true;
  const bool special = info.Length() > 3 && info[3].ToBoolean();
  auto ids = guard(env, [&] { return rt->model().tokenizer.encode(text, add_bos, at_start, special); });
  Napi::Int32Array out = Napi::Int32Array::New(env, ids.size());
  std::copy(ids.begin(), ids.end(), out.Data());
  return out;
}

Napi::Value ModelWrap::detokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  const std::vector<int32_t> ids = arg_int32_list(info, 0, "tokens");
  const int32_t prev = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  return guard(env, [&] {
    Utf8StreamDecoder utf8;
    std::string s = utf8.push(rt->model().tokenizer.decode(ids, prev));
    s += utf8.flush();
    return Napi::String::New(env, s);
  });
}

Napi::Value ModelWrap::tokenText(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  const std::vector<int32_t> ids = arg_int32_list(info, 0, "tokens");
  const Tokenizer& tok = rt->model().tokenizer;
  Napi::Array out = Napi::Array::New(env, ids.size());
  for (size_t i = 0; i < ids.size(); i++) {
    if (ids[i] < 0 || ids[i] >= tok.vocab_size())
      throw make_js_error(env, ErrorCode::InvalidArg, "token id " + std::to_string(ids[i]) + " out of range");
    out.Set((uint32_t)i, tok.data().pieces[ids[i]]);
  }
  return out;
}

Napi::Value ModelWrap::createSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  Napi::Object opts = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  return SessionWrap::create(env, rt, opts);
}

Napi::Value ModelWrap::loadDraft(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  const std::string path = arg_string(info, 0, "path");
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  return load_draft_async(env, rt, path, draft_dtype_option(env, o.Get("dtype")));
}

Napi::Value ModelWrap::createDraft(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  Napi::Object o = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  DraftShape shape;
  shape.heads = opt_int(o, "heads", 5);
  shape.width = opt_int(o, "width", 0);
  shape.head_vocab = opt_int(o, "headVocab", 0);
  const double seed = opt_number(o, "seed", 0);
  if (shape.heads < 1 || shape.heads > 16) throw make_js_error(env, ErrorCode::InvalidArg, "heads must be in 1..16");
  if (shape.width < 0 || shape.head_vocab < 0)
    throw make_js_error(env, ErrorCode::InvalidArg, "width and headVocab must be positive integers");
  return create_draft_async(env, rt, shape, (uint64_t)seed, draft_dtype_option(env, o.Get("dtype")));
}

// buildLookupCache(texts: string[], order) -> Promise<NativeLookupCache>
Napi::Value ModelWrap::buildLookupCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  if (info.Length() < 1 || !info[0].IsArray())
    throw make_js_error(env, ErrorCode::InvalidArg, "texts must be an array of strings");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::string> texts;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) throw make_js_error(env, ErrorCode::InvalidArg, "texts must be an array of strings");
    texts.push_back(v.As<Napi::String>().Utf8Value());
  }
  const int order = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 3;
  return build_lookup_cache_async(env, rt, std::move(texts), order);
}

Napi::Value ModelWrap::loadLookupCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  return load_lookup_cache_async(env, rt, arg_string(info, 0, "path"));
}

Napi::Value ModelWrap::batchStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto rt = runtime(env);
  const BatchScheduler& b = rt->batcher();
  const BatchStats s = b.stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("passes", (double)s.passes);
  o.Set("batchedPasses", (double)s.batched_passes);
  o.Set("sessionSteps", (double)s.sequence_steps);
  o.Set("rows", (double)s.rows);
  o.Set("maxSessions", s.max_sequences);
  o.Set("passMs", s.pass_ms);
  o.Set("activeSessions", b.members());
  o.Set("maxBatchSessions", b.limits().max_sessions);
  o.Set("maxBatchRows", b.limits().max_rows);
  return o;
}

Napi::Value ModelWrap::dispose(const Napi::CallbackInfo& info) {
  runtime_.reset();  // sessions keep their own reference; memory goes with the last one
  return info.Env().Undefined();
}

// ---- async load ----


Napi::Value load_model_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = arg_string(info, 0, "path");
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  RuntimeOptions opts;
  opts.load.tokenizer_path = opt_string(o, "tokenizer", "");
  opts.load.check_tensors = opt_bool(o, "checkTensors", false);
  opts.threads = opt_int(o, "threads", 0);
  const std::string gpu = opt_string(o, "gpu", "auto");
  if (gpu == "auto") opts.gpu = GpuMode::Auto;
  else if (gpu == "cuda") opts.gpu = GpuMode::Cuda;
  else if (gpu == "off") opts.gpu = GpuMode::Off;
  else throw make_js_error(env, ErrorCode::InvalidArg, "gpu must be 'auto', 'cuda' or false");
  opts.batch.max_sessions = opt_int(o, "batchMaxSessions", opts.batch.max_sessions);
  opts.batch.max_rows = opt_int(o, "batchMaxRows", opts.batch.max_rows);
  auto out = std::make_shared<std::shared_ptr<ModelRuntime>>();
  return run_job(env, "chimera.loadModel", [path, opts, out] { *out = ModelRuntime::load(path, opts); },
                 [out](Napi::Env e) { return ModelWrap::wrap(e, std::move(*out)); });
}

}  // namespace chimera::addon
