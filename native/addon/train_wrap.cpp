// The draft-training worker.
#include "addon/train_wrap.h"

#include <atomic>
#include <functional>

#include "addon/addon_data.h"
#include "addon/args.h"
#include "addon/draft_wrap.h"
#include "addon/env_teardown.h"
#include "addon/js_errors.h"
#include "addon/model_wrap.h"
#include "train/base_trainer.h"
#include "train/draft_trainer.h"

namespace chimera::addon {

namespace {

DraftTrainOptions read_train_options(const Napi::Object& o) {
  DraftTrainOptions t;
  t.heads = opt_int(o, "heads", t.heads);
  t.width = opt_int(o, "width", t.width);
  t.head_vocab = opt_int(o, "headVocab", t.head_vocab);
  t.data = opt_string(o, "data", t.data);
  t.steps = opt_int(o, "steps", t.steps);
  t.seq_len = opt_int(o, "seqLen", t.seq_len);
  t.batch = opt_int(o, "batch", t.batch);
  t.lr = (float)opt_number(o, "lr", t.lr);
  t.lr_min_ratio = (float)opt_number(o, "lrMinRatio", t.lr_min_ratio);
  t.warmup = opt_int(o, "warmup", t.warmup);
  t.weight_decay = (float)opt_number(o, "weightDecay", t.weight_decay);
  t.clip = (float)opt_number(o, "clip", t.clip);
  t.mse_weight = (float)opt_number(o, "mseWeight", t.mse_weight);
  t.soft_targets = (float)opt_number(o, "softTargets", t.soft_targets);
  t.seed = (uint64_t)opt_number(o, "seed", (double)t.seed);
  t.checkpoint = opt_string(o, "checkpoint", t.checkpoint);
  t.checkpoint_every = opt_int(o, "checkpointEvery", t.checkpoint_every);
  t.resume = opt_string(o, "resume", t.resume);
  return t;
}

Napi::Array doubles(Napi::Env env, const std::vector<double>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set((uint32_t)i, v[i]);
  return a;
}

// A training job on a worker thread: streams progress records of type P to a JS callback (converted by
// `to_js`) and resolves with what `done` makes of the finished job.
template <typename P>
class TrainWorker : public Napi::AsyncProgressQueueWorker<P> {
 public:
  using Job = std::function<void(const std::function<void(const P&)>& report)>;
  using ToJs = Napi::Object (*)(Napi::Env, const P&);
  using Done = std::function<Napi::Value(Napi::Env)>;
  TrainWorker(Napi::Env env, Job job, ToJs to_js, Done done, Napi::Function on_progress,
              std::shared_ptr<std::atomic<bool>> abort)
      : Napi::AsyncProgressQueueWorker<P>(env, "chimera.train"), deferred_(env), job_(std::move(job)), to_js_(to_js),
        done_(std::move(done)), abort_(std::move(abort)) {
    if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute(const typename Napi::AsyncProgressQueueWorker<P>::ExecutionProgress& progress) override {
    try {
      job_([&](const P& p) { progress.Send(&p, 1); });
    } catch (...) {
      error_ = capture_current_exception();
      this->SetError(error_.message);
    }
  }
  void OnProgress(const P* data, size_t count) override {
    Napi::Env env = this->Env();
    if (js_stopped(env)) {  // a terminated worker thread: stop training at its next step
      *abort_ = true;
      return;
    }
    if (on_progress_.IsEmpty()) return;
    try {
      Napi::HandleScope scope(env);
      for (size_t i = 0; i < count; i++) {
        try {
          on_progress_.Call({to_js_(env, data[i])});
        } catch (const Napi::Error&) {  // a throwing callback must not stop training
          if (js_stopped(env)) *abort_ = true;
        }
      }
    } catch (...) {
      *abort_ = true;
    }
  }
  void OnOK() override {
    settle_or_drop(this->Env(), deferred_, [&] { deferred_.Resolve(done_(this->Env())); });
  }
  void OnError(const Napi::Error&) override {
    settle_or_drop(this->Env(), deferred_, [&] { deferred_.Reject(make_js_error(this->Env(), error_).Value()); });
  }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  ToJs to_js_;
  Done done_;
  Napi::FunctionReference on_progress_;
  std::shared_ptr<std::atomic<bool>> abort_;
  CapturedError error_;
};

Napi::Object draft_progress_js(Napi::Env env, const DraftTrainProgress& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("phase", p.phase);
  o.Set("step", p.step);
  o.Set("steps", p.steps);
  o.Set("loss", p.loss);
  o.Set("ceByHead", doubles(env, p.ce_by_head));
  o.Set("agreementByHead", doubles(env, p.agree_by_head));
  o.Set("mse", p.mse);
  o.Set("predictionsPerSecond", p.tokens_per_second);
  o.Set("elapsedSeconds", p.elapsed_s);
  o.Set("etaSeconds", p.eta_s);
  return o;
}

Napi::Object base_progress_js(Napi::Env env, const BaseTrainProgress& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("phase", p.phase);
  o.Set("step", p.step);
  o.Set("steps", p.steps);
  o.Set("loss", p.loss);
  o.Set("validationLoss", p.val_loss < 0 ? env.Null() : Napi::Number::New(env, p.val_loss));
  o.Set("accuracy", p.accuracy);
  o.Set("tokensPerSecond", p.tokens_per_second);
  o.Set("elapsedSeconds", p.elapsed_s);
  o.Set("etaSeconds", p.eta_s);
  return o;
}

// {promise, abort()} for a queued worker.
template <typename P>
Napi::Value start(Napi::Env env, TrainWorker<P>* w, const std::shared_ptr<std::atomic<bool>>& abort) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("promise", w->promise());
  out.Set("abort", Napi::Function::New(env, [abort](const Napi::CallbackInfo& i) {
            *abort = true;
            return i.Env().Undefined();
          }));
  w->Queue();
  return out;
}

BaseTrainOptions read_base_options(const Napi::Object& o) {
  BaseTrainOptions t;
  t.corpus = opt_string(o, "corpus", "");
  t.out = opt_string(o, "out", "");
  t.vocab = opt_int(o, "vocab", t.vocab);
  t.dim = opt_int(o, "dim", t.dim);
  t.layers = opt_int(o, "layers", t.layers);
  t.heads = opt_int(o, "heads", t.heads);
  t.kv_heads = opt_int(o, "kvHeads", t.heads);
  t.hidden = opt_int(o, "hidden", t.hidden);
  t.seq_len = opt_int(o, "seqLen", t.seq_len);
  t.context = opt_int(o, "context", t.context);
  t.steps = opt_int(o, "steps", t.steps);
  t.batch = opt_int(o, "batch", t.batch);
  t.lr = (float)opt_number(o, "lr", t.lr);
  t.warmup = opt_int(o, "warmup", t.warmup);
  t.weight_decay = (float)opt_number(o, "weightDecay", t.weight_decay);
  t.tied = opt_bool(o, "tied", t.tied);
  const std::string dt = opt_string(o, "dtype", "F32");
  t.dtype = dt == "F16" ? DType::F16 : dt == "BF16" ? DType::BF16 : DType::F32;
  if (dt != "F32" && dt != "F16" && dt != "BF16") throw_error(ErrorCode::InvalidArg, "dtype must be F32, F16 or BF16");
  t.seed = (uint64_t)opt_number(o, "seed", (double)t.seed);
  t.name = opt_string(o, "name", t.name);
  return t;
}

}  // namespace

// trainDraft(model, options, onProgress?) -> {promise, abort()}
Napi::Value train_draft_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object model = arg_object(info, 0, "model");
  if (!model.InstanceOf(addon_data(env).model_ctor.Value()))
    throw make_js_error(env, ErrorCode::InvalidArg, "model must be a model from loadModel()");
  auto rt = Napi::ObjectWrap<ModelWrap>::Unwrap(model)->runtime(env);
  DraftTrainOptions opts = read_train_options(arg_object(info, 1, "options"));
  guard(env, [&] { validate_train_options(opts); });
  Napi::Function cb = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
  auto abort = std::make_shared<std::atomic<bool>>(false);
  auto result = std::make_shared<std::shared_ptr<const DraftModel>>();
  auto* w = new TrainWorker<DraftTrainProgress>(
      env, [rt, opts, abort, result](const auto& report) { *result = train_draft(rt, opts, report, *abort); },
      draft_progress_js, [result](Napi::Env e) { return DraftWrap::wrap(e, *result); }, cb, abort);
  return start(env, w, abort);
}

// trainBase(options, onProgress?) -> {promise (resolves with the held-out loss), abort()}
Napi::Value train_base_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BaseTrainOptions opts = guard(env, [&] { return read_base_options(arg_object(info, 0, "options")); });
  guard(env, [&] { validate_base_options(opts); });
  const int threads = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  Napi::Function cb = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
  auto abort = std::make_shared<std::atomic<bool>>(false);
  auto loss = std::make_shared<double>(0);
  auto* w = new TrainWorker<BaseTrainProgress>(
      env, [opts, threads, abort, loss](const auto& report) { *loss = train_base(opts, threads, report, *abort); },
      base_progress_js, [loss](Napi::Env e) { return Napi::Number::New(e, *loss); }, cb, abort);
  return start(env, w, abort);
}

}  // namespace chimera::addon
