// The draft-training worker.
#include "train_wrap.h"

#include <atomic>

#include "addon_data.h"
#include "args.h"
#include "draft_trainer.h"
#include "draft_wrap.h"
#include "js_errors.h"
#include "model_wrap.h"

namespace chimera::addon {

namespace {

DraftTrainOptions read_train_options(const Napi::Object& o) {
  DraftTrainOptions t;
  t.heads = opt_int(o, "heads", t.heads);
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

class TrainWorker : public Napi::AsyncProgressQueueWorker<DraftTrainProgress> {
 public:
  TrainWorker(Napi::Env env, std::shared_ptr<ModelRuntime> rt, DraftTrainOptions opts, Napi::Function on_progress,
              std::shared_ptr<std::atomic<bool>> abort)
      : Napi::AsyncProgressQueueWorker<DraftTrainProgress>(env, "chimera.trainDraft"), deferred_(env),
        rt_(std::move(rt)), opts_(std::move(opts)), abort_(std::move(abort)) {
    if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute(const ExecutionProgress& progress) override {
    try {
      draft_ = train_draft(rt_, opts_, [&](const DraftTrainProgress& p) { progress.Send(&p, 1); }, *abort_);
    } catch (...) {
      error_ = capture_current_exception();
      SetError(error_.message);
    }
  }
  void OnProgress(const DraftTrainProgress* data, size_t count) override {
    if (on_progress_.IsEmpty()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (size_t i = 0; i < count; i++) {
      const DraftTrainProgress& p = data[i];
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
      try {
        on_progress_.Call({o});
      } catch (const Napi::Error&) {  // a throwing callback must not stop training
      }
    }
  }
  void OnOK() override { deferred_.Resolve(DraftWrap::wrap(Env(), draft_)); }
  void OnError(const Napi::Error&) override { deferred_.Reject(make_js_error(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<ModelRuntime> rt_;
  DraftTrainOptions opts_;
  std::shared_ptr<std::atomic<bool>> abort_;
  Napi::FunctionReference on_progress_;
  std::shared_ptr<const DraftModel> draft_;
  CapturedError error_;
};

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
  Napi::Function on_progress = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
  auto abort = std::make_shared<std::atomic<bool>>(false);
  auto* w = new TrainWorker(env, rt, opts, on_progress, abort);
  Napi::Object out = Napi::Object::New(env);
  out.Set("promise", w->promise());
  out.Set("abort", Napi::Function::New(env, [abort](const Napi::CallbackInfo& i) {
            *abort = true;
            return i.Env().Undefined();
          }));
  w->Queue();
  return out;
}

}  // namespace chimera::addon
