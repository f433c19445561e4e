// SessionWrap methods, the native thread behind generate() and the worker behind evaluate().
#include "addon/session_wrap.h"

#include "addon/addon_data.h"
#include "addon/args.h"
#include "addon/draft_wrap.h"
#include "addon/lookup_cache_wrap.h"
#include "addon/env_teardown.h"
#include "addon/job_worker.h"
#include "addon/js_errors.h"
#include "spec/lookup_source.h"
#include "spec/speculative_config.h"

#include <memory>
#include <thread>

namespace chimera::addon {

Napi::Function SessionWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeSession",
                     {InstanceMethod<&SessionWrap::generate>("generate"),
                      InstanceMethod<&SessionWrap::evaluate>("evaluate"), InstanceMethod<&SessionWrap::abort>("abort"),
                      InstanceMethod<&SessionWrap::reset>("reset"),
                      InstanceMethod<&SessionWrap::truncate>("truncate"), InstanceMethod<&SessionWrap::history>("history"),
                      InstanceMethod<&SessionWrap::stats>("stats"), InstanceMethod<&SessionWrap::dispose>("dispose")});
}

// lookup: true | false | { corpus?: NativeLookupCache, maxNodes?: 2..64, when?: auto | always }; null when off.
static std::shared_ptr<const LookupConfig> read_lookup(Napi::Env env, const Napi::Object& opts) {
  Napi::Value v = opts.Get("lookup");
  if (v.IsUndefined() || v.IsNull() || (v.IsBoolean() && !v.As<Napi::Boolean>().Value())) return nullptr;
  auto lc = std::make_shared<LookupConfig>();
  if (v.IsBoolean()) return lc;
  if (!v.IsObject() || v.IsArray())
    throw make_js_error(env, ErrorCode::InvalidArg, "lookup must be true, false or an object like { maxNodes: 32 }");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value corpus = o.Get("corpus");
  if (!corpus.IsUndefined() && !corpus.IsNull()) {
    if (!LookupCacheWrap::is(env, corpus))
      throw make_js_error(env, ErrorCode::InvalidArg,
                          "lookup.corpus must be a lookup cache from model.buildLookupCache()/loadLookupCache()");
    lc->corpus = Napi::ObjectWrap<LookupCacheWrap>::Unwrap(corpus.As<Napi::Object>())->table(env);
  }
  lc->max_nodes = opt_int(o, "maxNodes", lc->max_nodes);
  const std::string when = opt_string(o, "when", "auto");
  if (when != "auto" && when != "always")
    throw make_js_error(env, ErrorCode::InvalidArg, "lookup.when must be 'auto' or 'always'");
  lc->always = when == "always";
  if (lc->max_nodes < 2 || lc->max_nodes > 64)
    throw make_js_error(env, ErrorCode::InvalidArg, "lookup.maxNodes must be in 2..64, got " + std::to_string(lc->max_nodes));
  return lc;
}

// {draft, tree: 'auto' (default) | 'chimera-25' | 'chain-N' | number[][], verify?: 'exact' | 'lossy-test-only',
// lookup} read into the core's TreeChoice and LookupConfig; make_speculative_config expands and checks them.
static std::unique_ptr<SpeculativeConfig> read_speculative(Napi::Env env, const Napi::Object& opts) {
  Napi::Value d = opts.Get("draft");
  Napi::Value t = opts.Get("tree");
  std::shared_ptr<const LookupConfig> lookup = read_lookup(env, opts);
  const std::string verify = opt_string(opts, "verify", "exact");
  VerifyMode mode = VerifyMode::Exact;
  if (verify == "lossy-test-only") mode = VerifyMode::LossyTopOneForTest;
  else if (verify != "exact") throw make_js_error(env, ErrorCode::InvalidArg, "verify must be 'exact'");
  if (d.IsUndefined() || d.IsNull()) {
    if (!t.IsUndefined() && !t.IsNull()) throw make_js_error(env, ErrorCode::InvalidArg, "tree needs a draft");
    if (!lookup) return nullptr;
    auto spec = std::make_unique<SpeculativeConfig>();
    spec->lookup = std::move(lookup);
    spec->mode = mode;
    return spec;
  }
  if (!DraftWrap::is(env, d)) throw make_js_error(env, ErrorCode::InvalidArg, "draft must be a draft from loadDraft()");
  std::shared_ptr<const DraftModel> draft = Napi::ObjectWrap<DraftWrap>::Unwrap(d.As<Napi::Object>())->draft(env);
  TreeChoice choice;
  if (t.IsUndefined() || t.IsNull()) {
    choice.name = "auto";
  } else if (t.IsString()) {
    choice.name = t.As<Napi::String>().Utf8Value();
  } else if (t.IsArray()) {
    choice.custom = true;
    Napi::Array a = t.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value p = a.Get(i);
      if (!p.IsArray()) throw make_js_error(env, ErrorCode::InvalidArg, "tree must be a list of paths (arrays of integers)");
      Napi::Array pa = p.As<Napi::Array>();
      std::vector<int> path;
      for (uint32_t j = 0; j < pa.Length(); j++) {
        Napi::Value e = pa.Get(j);
        if (!e.IsNumber() || e.As<Napi::Number>().DoubleValue() != (double)e.As<Napi::Number>().Int32Value())
          throw make_js_error(env, ErrorCode::InvalidArg, "tree paths must contain integers");
        path.push_back(e.As<Napi::Number>().Int32Value());
      }
      choice.paths.push_back(path);
    }
  } else {
    throw make_js_error(env, ErrorCode::InvalidArg, "tree must be 'auto', 'chimera-25', 'chain-N' or a list of paths");
  }
  return guard(env, [&] {
    auto spec = std::make_unique<SpeculativeConfig>(make_speculative_config(std::move(draft), choice, mode));
    spec->lookup = std::move(lookup);
    return spec;
  });
}

Napi::Object SessionWrap::create(Napi::Env env, std::shared_ptr<ModelRuntime> rt, const Napi::Object& opts) {
  const int max_ctx = rt->model().config.max_context > 0 ? rt->model().config.max_context : 2048;
  Napi::Value given = opts.Get("contextSize");
  if ((given.IsUndefined() || given.IsNull()) && max_ctx < 2)
    throw make_js_error(env, ErrorCode::InvalidArg,
                        "the model's own context length is " + std::to_string(max_ctx) + " (from " + rt->model().path +
                            "), too short for a session; pass contextSize (2..4194304) to createSession");
  const int context = opt_int(opts, "contextSize", std::min(max_ctx, 4096));
  const int batch = opt_int(opts, "batchSize", 64);
  if (context < 2 || context > (1 << 22))
    throw make_js_error(env, ErrorCode::InvalidArg, "contextSize must be in 2..4194304, got " + std::to_string(context));
  if (batch < 1 || batch > 4096)
    throw make_js_error(env, ErrorCode::InvalidArg, "batchSize must be in 1..4096, got " + std::to_string(batch));
  std::unique_ptr<SpeculativeConfig> spec = read_speculative(env, opts);
  auto st = guard(env, [&] { return std::make_shared<SessionState>(rt, context, batch, spec.get()); });
  auto* holder = new std::shared_ptr<SessionState>(std::move(st));
  auto ext = Napi::External<std::shared_ptr<SessionState>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<SessionState>* p) { delete p; });
  return addon_data(env).session_ctor.New({ext});
}

SessionWrap::SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
  if (info.Length() < 1 || !info[0].IsExternal())
    throw make_js_error(info.Env(), ErrorCode::InvalidArg, "NativeSession is created by model.createSession()");
  // Take the reference out of the External so that dispose() frees the state without waiting for GC.
  state_ = std::move(*info[0].As<Napi::External<std::shared_ptr<SessionState>>>().Data());
}

std::shared_ptr<SessionState> SessionWrap::state(Napi::Env env) const {
  if (!state_) throw make_js_error(env, ErrorCode::Disposed, "the session has been disposed");
  return state_;
}

std::shared_ptr<SessionState> SessionWrap::acquire(Napi::Env env) {
  auto st = state(env);
  if (st->busy.exchange(true))
    throw make_js_error(env, ErrorCode::Busy, "the session is already generating; await it or use another session");
  st->abort = false;
  return st;
}

// ---- generate ----

namespace {

Napi::Array to_js_array(Napi::Env env, const std::vector<int32_t>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set((uint32_t)i, v[i]);
  return a;
}

Napi::Object result_to_js(Napi::Env env, const GenerateResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("text", r.text);
  o.Set("promptTokens", to_js_array(env, r.prompt_tokens));
  o.Set("tokens", to_js_array(env, r.tokens));
  o.Set("stopReason", stop_reason_name(r.stop_reason));
  o.Set("reusedTokens", r.reused_tokens);
  o.Set("evaluatedPromptTokens", r.evaluated_prompt_tokens);
  o.Set("msPrompt", r.ms_prompt);
  o.Set("msGenerate", r.ms_generate);
  o.Set("msTotal", r.ms_total);
  o.Set("speculative", r.speculative);
  if (r.speculative) {
    o.Set("steps", r.spec.steps);
    o.Set("plainSteps", r.plain_steps);
    o.Set("speculativeTokens", r.spec.drafted_tokens);
    Napi::Array by_depth = Napi::Array::New(env, r.spec.accepted_by_depth.size());
    for (size_t i = 0; i < r.spec.accepted_by_depth.size(); i++) by_depth.Set((uint32_t)i, (double)r.spec.accepted_by_depth[i]);
    o.Set("acceptedByDepth", by_depth);
    o.Set("msDraft", r.spec.ms_draft);
    Napi::Object by_tree = Napi::Object::New(env);
    by_tree.Set("plain", r.plain_steps);
    for (size_t i = 0; i < r.tree_names.size(); i++)
      by_tree.Set(r.tree_names[i], i < r.spec.steps_by_tree.size() ? (double)r.spec.steps_by_tree[i] : 0.0);
    o.Set("stepsByTree", by_tree);
    o.Set("msVerify", r.spec.ms_verify);
    if (r.spec.lookup) {
      Napi::Object by_source = Napi::Object::New(env);
      for (int i = 0; i < kLookupOrigins; i++)
        by_source.Set(lookup_origin_name((LookupOrigin)i), (double)r.spec.accepted_by_source[(size_t)i]);
      if (r.spec.draft_and_lookup) by_source.Set("draft", (double)r.spec.accepted_from_draft);
      o.Set("acceptedBySource", by_source);
    }
  }
  return o;
}

// One generate() call on its own native thread. Not on libuv's pool: that has UV_THREADPOOL_SIZE
// threads (4 by default), so further calls would queue, while batching sessions together needs every
// generating session to be running. Chunks reach onChunk through a thread-safe function; its finalizer
// (JS thread, after the thread's last release and the last chunk) joins the thread and settles the
// promise. The thread-safe function also keeps the event loop alive while the generation runs.
//
// A terminated worker thread or an exiting environment needs no heartbeat: its cleanup closes the
// thread-safe function, so the next chunk's call fails (napi_closing) and the finalizer runs at once;
// both set the abort flag, and the generation stops at its next step.
class GenerateThread {
 public:
  // Starts the thread and returns the promise. Takes over `st` (acquired: busy).
  static Napi::Promise start(Napi::Env env, std::shared_ptr<SessionState> st, GenerateRequest req,
                             Napi::Function on_chunk) {
    SessionState& state = *st;
    GenerateThread* job = nullptr;
    try {
      auto owned = std::unique_ptr<GenerateThread>(new GenerateThread(env, std::move(st), std::move(req)));
      // Unbounded queue: the thread never blocks on JS, so the finalizer can always join it.
      owned->tsfn_ = Tsfn::New(env, on_chunk, "chimera.generate", 0, 1, owned.get(), &GenerateThread::finish);
      job = owned.release();  // the thread-safe function's finalizer deletes it
    } catch (...) {
      state.busy = false;
      throw;
    }
    Napi::Promise promise = job->deferred_.Promise();
    try {
      job->thread_ = std::thread(&GenerateThread::run, job);
    } catch (...) {  // no thread: the finalizer rejects the promise
      job->error_ = capture_current_exception();
      job->failed_ = true;
      job->tsfn_.Release();
    }
    return promise;
  }

 private:
  static void deliver(Napi::Env env, Napi::Function on_chunk, GenerateThread* job, Chunk* data);
  static void finish(Napi::Env env, void*, GenerateThread* job);
  using Tsfn = Napi::TypedThreadSafeFunction<GenerateThread, Chunk, &GenerateThread::deliver>;

  GenerateThread(Napi::Env env, std::shared_ptr<SessionState> st, GenerateRequest req)
      : deferred_(env), st_(std::move(st)), req_(std::move(req)) {}

  void run() noexcept {
    try {
      result_ = st_->session.generate(req_, [this](Chunk&& c) { send(std::move(c)); }, st_->abort);
    } catch (...) {
      error_ = capture_current_exception();
      failed_ = true;
    }
    // After a failed call the thread-safe function may be gone: no release then.
    if (!js_gone_) tsfn_.Release();
  }

  void send(Chunk&& c) {
    if (js_gone_) return;
    auto* data = new Chunk(std::move(c));
    if (tsfn_.NonBlockingCall(data) != napi_ok) {  // JS has stopped: nobody reads the chunks
      delete data;
      js_gone_ = true;
      st_->abort = true;
    }
  }

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<SessionState> st_;
  GenerateRequest req_;
  Tsfn tsfn_;
  std::thread thread_;
  bool js_gone_ = false;  // the thread's own: a call failed
  GenerateResult result_;
  bool failed_ = false;
  CapturedError error_;
};

// JS thread. A null env: the environment is being torn down and drops the queued chunk (the job may be
// deleted already).
void GenerateThread::deliver(Napi::Env env, Napi::Function on_chunk, GenerateThread* job, Chunk* data) {
  std::unique_ptr<Chunk> chunk(data);
  if (env == nullptr) return;
  try {
    on_chunk.Call({Napi::String::New(env, chunk->text), to_js_array(env, chunk->tokens)});
  } catch (const Napi::Error&) {  // a throwing user callback must not break the stream
    if (js_stopped(env)) job->st_->abort = true;
  } catch (...) {
    job->st_->abort = true;
  }
}

// JS thread, after the last chunk; may run with JS stopped (see env_teardown.h), so never throws.
void GenerateThread::finish(Napi::Env env, void*, GenerateThread* job) {
  std::unique_ptr<GenerateThread> owned(job);
  // At teardown the thread may still be running: stop it at its next step before waiting for it.
  // After a normal end this changes nothing (acquire() clears the flag for the next call).
  job->st_->abort = true;
  if (job->thread_.joinable()) job->thread_.join();
  job->st_->busy = false;
  settle_or_drop(env, job->deferred_, [&] {
    if (job->failed_) job->deferred_.Reject(make_js_error(env, job->error_).Value());
    else job->deferred_.Resolve(result_to_js(env, job->result_));
  });
}

// Absent options keep GenerateRequest's and SamplingParams' defaults (the one home of the defaults).
GenerateRequest read_request(const Napi::Object& o) {
  GenerateRequest r;
  r.text = opt_string(o, "text", "");
  const Napi::Value tokens = o.Get("tokens");
  if (tokens.IsTypedArray() && tokens.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    const Napi::Int32Array a = tokens.As<Napi::Int32Array>();
    r.use_tokens = true;
    r.tokens.assign(a.Data(), a.Data() + a.ElementLength());
  }
  r.append = opt_bool(o, "append", r.append);
  r.special = opt_bool(o, "special", r.special);
  r.max_tokens = opt_int(o, "maxTokens", r.max_tokens);
  r.stop = opt_string_list(o, "stop");
  r.stop_on_eos = opt_bool(o, "stopOnEos", r.stop_on_eos);
  SamplingParams& s = r.sampling;
  s.temperature = (float)opt_number(o, "temperature", s.temperature);
  s.top_k = opt_int(o, "topK", s.top_k);
  s.top_p = (float)opt_number(o, "topP", s.top_p);
  s.min_p = (float)opt_number(o, "minP", s.min_p);
  s.repeat_penalty = (float)opt_number(o, "repeatPenalty", s.repeat_penalty);
  s.repeat_last_n = opt_int(o, "repeatLastN", s.repeat_last_n);
  s.seed = (uint64_t)opt_number(o, "seed", (double)s.seed);
  return r;
}

}  // namespace

Napi::Value SessionWrap::generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = arg_object(info, 0, "request");
  Napi::Function on_chunk = arg_function(info, 1, "onChunk");
  GenerateRequest req = read_request(o);
  guard(env, [&] { validate_sampling(req.sampling); });
  auto st = acquire(env);
  if (opt_bool(o, "aborted", false)) st->abort = true;  // the caller's signal fired before the call
  return GenerateThread::start(env, std::move(st), std::move(req), on_chunk);
}

// ---- evaluate ----


Napi::Value SessionWrap::evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int32_t> tokens = arg_int32_list(info, 0, "tokens");
  const int rows = arg_int(info, 1, "rows", 1, 0, (int)tokens.size());
  auto st = acquire(env);
  struct Out { std::vector<float> logits, hidden; };
  auto out = std::make_shared<Out>();
  return run_job(
      env, "chimera.evaluate",
      [st, tokens = std::move(tokens), rows, out](const Interrupt& interrupt) {
        st->session.evaluate(tokens, rows, &out->logits, &out->hidden, interrupt);
      },
      [out](Napi::Env e) {
        Napi::Object o = Napi::Object::New(e);
        Napi::Float32Array l = Napi::Float32Array::New(e, out->logits.size());
        std::copy(out->logits.begin(), out->logits.end(), l.Data());
        Napi::Float32Array h = Napi::Float32Array::New(e, out->hidden.size());
        std::copy(out->hidden.begin(), out->hidden.end(), h.Data());
        o.Set("logits", l);
        o.Set("hidden", h);
        return o;
      },
      [st] { st->busy = false; });
}

Napi::Value SessionWrap::abort(const Napi::CallbackInfo& info) {
  if (state_) state_->abort = true;
  return info.Env().Undefined();
}

// Synchronous edits of the context: refused while a worker owns the session.
std::shared_ptr<SessionState> SessionWrap::idle(Napi::Env env) const {
  auto st = state(env);
  if (st->busy) throw make_js_error(env, ErrorCode::Busy, "the session is generating");
  return st;
}

Napi::Value SessionWrap::reset(const Napi::CallbackInfo& info) {
  idle(info.Env())->session.reset();
  return info.Env().Undefined();
}

Napi::Value SessionWrap::truncate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = idle(env);
  const double n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (n != (double)(int)n) throw make_js_error(env, ErrorCode::InvalidArg, "truncate: length must be an integer");
  guard(env, [&] { st->session.truncate((int)n); });
  return env.Undefined();
}

Napi::Value SessionWrap::history(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = idle(env);
  const auto& h = st->session.history();
  Napi::Int32Array out = Napi::Int32Array::New(env, h.size());
  std::copy(h.begin(), h.end(), out.Data());
  return out;
}

Napi::Value SessionWrap::stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = state(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("contextSize", st->session.context_size());
  o.Set("busy", st->busy.load());
  o.Set("kvBytes", (double)st->session.kv_bytes());
  return o;
}

Napi::Value SessionWrap::dispose(const Napi::CallbackInfo& info) {
  if (state_) {
    state_->abort = true;  // an in-flight generate stops at its next step and still resolves
    state_.reset();
  }
  return info.Env().Undefined();
}

}  // namespace chimera::addon
