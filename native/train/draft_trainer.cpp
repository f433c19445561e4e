// The draft training loop: data, batches, AdamW, checkpoints.
#include "train/draft_trainer.h"

#include <algorithm>
#include "train/optimizer.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>

#include "common/error.h"
#include "common/mapped_file.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "generate/session.h"
#include "sampling/sampler.h"
#include "train/draft_train_step.h"
#include "train/lr_schedule.h"

namespace chimera {

namespace {

using Clock = std::chrono::steady_clock;
using Sequences = std::vector<std::vector<int32_t>>;

// "self:N" -> N sequences the base writes itself. Even ones: BOS, 1-3 tokens sampled at temperature 1
// (so the prompts vary), then the greedy continuation, which is what greedy verification asks the draft
// for. Odd ones: sampled at temperature 0.8 throughout, for variety of contexts. The labels are the
// base's greedy choices either way (base_view).
Sequences self_data(const std::shared_ptr<ModelRuntime>& runtime, int n, int L, uint64_t seed, const std::atomic<bool>& abort,
                    const std::function<void(int)>& tick) {
  const ModelRuntime& rt = *runtime;
  Session s(runtime, L + 1, 64);
  const int V = rt.model().config.V;
  const int32_t bos = rt.model().tokenizer.bos() >= 0 ? rt.model().tokenizer.bos() : 0;
  Rng rng(seed * 7919 + 17);
  SamplingParams sample;
  sample.temperature = 1.0f;
  sample.top_k = 0;
  sample.top_p = 1.0f;
  sample.min_p = 0.0f;
  TokenDistribution dist;
  std::vector<float> logits, scratch;
  Sequences out;
  for (int i = 0; i < n && !abort; i++) {
    s.reset();
    std::vector<int32_t> seq = {bos};
    s.evaluate(seq, 1, &logits, nullptr);
    const bool sampled = i % 2 == 1;
    const int n_sampled = 1 + (int)(rng.next() % 3);
    sample.temperature = sampled ? 0.8f : 1.0f;
    while ((int)seq.size() < L) {
      int32_t t;
      if (sampled || (int)seq.size() <= n_sampled) {
        target_distribution(logits.data(), V, sample, seq.data(), (int)seq.size(), dist, scratch);
        t = sample_from(dist, rng);
      } else {
        t = argmax(logits.data(), V);
      }
      seq.push_back(t);
      if ((int)seq.size() < L) s.evaluate({t}, 1, &logits, nullptr);
    }
    out.push_back(std::move(seq));
    if (tick) tick(i + 1);
  }
  return out;
}

// "file:PATH" -> the text cut into L-token sequences (BOS first).
Sequences file_data(const ModelRuntime& rt, const std::string& path, int L) {
  const std::string text = read_text_file(path);
  const Tokenizer& tok = rt.model().tokenizer;
  std::vector<int32_t> ids = tok.encode(text, false, true);
  const int32_t bos = tok.bos() >= 0 ? tok.bos() : 0;
  Sequences out;
  for (size_t i = 0; i + (size_t)(L - 1) <= ids.size(); i += (size_t)(L - 1)) {
    std::vector<int32_t> seq = {bos};
    seq.insert(seq.end(), ids.begin() + (long)i, ids.begin() + (long)(i + L - 1));
    out.push_back(std::move(seq));
  }
  CHIMERA_CHECK(!out.empty(), ErrorCode::InvalidArg, path, " has ", ids.size(), " tokens: fewer than one sequence of ",
                L, "; use a longer corpus or a smaller seqLen");
  return out;
}

Sequences load_data(const std::shared_ptr<ModelRuntime>& rt, const DraftTrainOptions& o, const std::atomic<bool>& abort,
                    const std::function<void(int)>& tick) {
  if (o.data.rfind("self:", 0) == 0) {
    char* end = nullptr;
    const long n = std::strtol(o.data.c_str() + 5, &end, 10);
    CHIMERA_CHECK(end && *end == '\0' && n >= 1 && n <= 10000000, ErrorCode::InvalidArg,
                  "data 'self:N' needs a count N >= 1, got '", o.data, "'");
    return self_data(rt, (int)n, o.seq_len, o.seed, abort, tick);
  }
  if (o.data.rfind("file:", 0) == 0) return file_data(*rt, o.data.substr(5), o.seq_len);
  throw_error(ErrorCode::InvalidArg, "data must be 'self:N' or 'file:PATH', got '", o.data, "'");
}

// The frozen base on one sequence: final hidden states and its own choice at every position.
void base_view(Session& s, const std::vector<int32_t>& seq, std::vector<float>& hidden, std::vector<int32_t>& labels,
               std::vector<float>& logits, int V) {
  s.reset();
  s.evaluate(seq, (int)seq.size(), &logits, &hidden);
  labels.assign(seq.size(), -1);
  for (size_t p = 0; p + 1 < seq.size(); p++) labels[p + 1] = argmax(logits.data() + p * V, V);
}

struct OptimState {
  std::vector<std::vector<float>> m, v;
  int step = 0;
};

std::string optim_path(const std::string& ckpt) { return ckpt + ".optim.safetensors"; }

// "{step}" in the checkpoint path keeps one checkpoint per save.
std::string checkpoint_path(const std::string& pattern, int step) {
  std::string p = pattern;
  const size_t at = p.find("{step}");
  if (at != std::string::npos) p.replace(at, 6, std::to_string(step));
  return p;
}

void save_checkpoint(const DraftModel& d, const std::vector<DraftParam>& params, const OptimState& st,
                     const DraftTrainOptions& o) {
  const std::string path = checkpoint_path(o.checkpoint, st.step);
  save_draft(d, path);
  std::vector<TensorToWrite> t;
  for (size_t i = 0; i < params.size(); i++) {
    t.push_back({"m." + params[i].name, DType::F32, {params[i].size()}, st.m[i].data()});
    t.push_back({"v." + params[i].name, DType::F32, {params[i].size()}, st.v[i].data()});
  }
  write_safetensors(optim_path(path), t,
                    {{"step", std::to_string(st.step)}, {"seed", std::to_string(o.seed)}, {"data", o.data}});
}

void load_optim(const std::string& ckpt, const std::vector<DraftParam>& params, OptimState& st) {
  SafetensorsFile f(optim_path(ckpt));
  for (const auto& kv : f.metadata())
    if (kv.first == "step") st.step = std::atoi(kv.second.c_str());
  CHIMERA_CHECK(st.step >= 0, ErrorCode::Format, optim_path(ckpt), ": bad step");
  for (size_t i = 0; i < params.size(); i++) {
    for (auto [prefix, dst] : {std::pair<const char*, std::vector<float>*>{"m.", &st.m[i]}, {"v.", &st.v[i]}}) {
      const RawTensor* t = f.tensor(prefix + params[i].name);
      CHIMERA_CHECK(t && t->supported && t->dtype == DType::F32 && t->bytes == (uint64_t)params[i].size() * 4,
                    ErrorCode::Format, optim_path(ckpt), ": optimiser state ", prefix, params[i].name,
                    " is missing or has the wrong size");
      std::memcpy(dst->data(), t->data, (size_t)t->bytes);
    }
  }
}

// The n ids that occur most often in the data (ties and ids the data lack: lower ids first).
std::vector<int32_t> most_frequent_tokens(const Sequences& data, int V, int n) {
  std::vector<int64_t> count((size_t)V, 0);
  for (const auto& seq : data)
    for (int32_t t : seq)
      if (t >= 0 && t < V) count[(size_t)t]++;
  std::vector<int32_t> ids((size_t)V);
  for (int i = 0; i < V; i++) ids[(size_t)i] = i;
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return count[(size_t)a] > count[(size_t)b]; });
  ids.resize((size_t)std::min(n, V));
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

void validate_train_options(const DraftTrainOptions& o) {
  CHIMERA_CHECK(o.heads >= 1 && o.heads <= 16, ErrorCode::InvalidArg, "heads must be in 1..16, got ", o.heads);
  CHIMERA_CHECK(o.width >= 0 && o.head_vocab >= 0, ErrorCode::InvalidArg,
                "width and headVocab must be positive (0 = the default)");
  CHIMERA_CHECK(o.steps >= 1, ErrorCode::InvalidArg, "steps must be >= 1, got ", o.steps);
  CHIMERA_CHECK(o.seq_len >= 8 && o.seq_len <= 8192, ErrorCode::InvalidArg, "seqLen must be in 8..8192, got ",
                o.seq_len);
  CHIMERA_CHECK(o.batch >= 1 && o.batch <= 4096, ErrorCode::InvalidArg, "batch must be in 1..4096, got ", o.batch);
  CHIMERA_CHECK(std::isfinite(o.lr) && o.lr > 0 && o.lr < 1, ErrorCode::InvalidArg, "lr must be in (0, 1), got ",
                o.lr);
  CHIMERA_CHECK(o.warmup >= 0, ErrorCode::InvalidArg, "warmup must be >= 0");
  CHIMERA_CHECK(o.weight_decay >= 0 && o.clip > 0 && o.mse_weight >= 0 && o.lr_min_ratio >= 0 &&
                    o.lr_min_ratio <= 1,
                ErrorCode::InvalidArg, "weightDecay, clip, mseWeight and lrMinRatio must be non-negative (clip > 0)");
  CHIMERA_CHECK(o.checkpoint_every >= 1, ErrorCode::InvalidArg, "checkpointEvery must be >= 1");
  CHIMERA_CHECK(std::isfinite(o.soft_targets) && o.soft_targets >= 0 && o.soft_targets <= 100, ErrorCode::InvalidArg,
                "softTargets must be a temperature in [0, 100] (0 = hard labels), got ", o.soft_targets);
}

std::shared_ptr<DraftModel> train_draft(const std::shared_ptr<ModelRuntime>& runtime, const DraftTrainOptions& o,
                                        const DraftTrainCallback& on_progress, const std::atomic<bool>& abort,
                                        int report_every) {
  validate_train_options(o);
  const ModelRuntime& rt = *runtime;
  const Model& base = rt.model();
  CpuBackend& be = rt.cpu_backend();  // training keeps its tensors in host memory
  const auto t_start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t_start).count(); };

  // A checkpoint is checked against the base before the data are made.
  std::shared_ptr<DraftModel> draft;
  if (!o.resume.empty()) draft = std::shared_ptr<DraftModel>(load_draft(o.resume, base));
  else (void)draft_config_for(base, DraftShape{o.heads, o.width, o.head_vocab, {}});  // bad shapes fail early

  DraftTrainProgress prog;
  prog.steps = o.steps;
  prog.phase = "data";
  const Sequences data = load_data(runtime, o, abort, [&](int n) {
    if (on_progress && n % 50 == 0) {
      prog.step = n;
      prog.elapsed_s = elapsed();
      on_progress(prog);
    }
  });
  if (abort) throw_error(ErrorCode::Aborted, "training was aborted");
  prog.phase = "train";

  // Draft and optimiser state (fresh, with heads over the data's most frequent tokens, or from the
  // checkpoint).
  if (!draft) {
    DraftShape shape{o.heads, o.width, o.head_vocab, {}};
    shape.head_tokens = most_frequent_tokens(data, base.config.V, draft_config_for(base, shape).Vh);
    draft = std::shared_ptr<DraftModel>(create_draft(base, shape, o.seed));
  }
  const std::vector<DraftParam> params = make_trainable(*draft);
  const int K = draft->config.K;
  OptimState st;
  for (const DraftParam& p : params) {
    st.m.emplace_back(p.size(), 0.f);
    st.v.emplace_back(p.size(), 0.f);
  }
  if (!o.resume.empty()) load_optim(o.resume, params, st);

  Session base_session(runtime, o.seq_len + 1, 64);
  std::vector<std::vector<float>> grads;
  for (const DraftParam& p : params) grads.emplace_back(p.size(), 0.f);
  std::vector<float> hidden, logits;
  std::vector<int32_t> labels;
  DraftLossStats window, batch_stats;
  window.reset(K);
  int window_steps = 0;
  int64_t window_preds = 0;
  auto t_window = Clock::now();
  const int first_step = st.step + 1;
  for (int step = first_step; step <= o.steps; step++) {
    if (abort) throw_error(ErrorCode::Aborted, "training was aborted at step ", step);
    for (auto& g : grads) std::fill(g.begin(), g.end(), 0.f);
    batch_stats.reset(K);
    Rng pick(o.seed * 1000003ull + (uint64_t)step);  // the batch depends on (seed, step) only: exact resume
    const float ce_scale = 1.0f / (float)(o.batch * std::max(1, o.seq_len - 2));
    const float mse_scale = o.mse_weight / (float)(o.batch * std::max(1, o.seq_len - 2) * base.config.C);
    for (int b = 0; b < o.batch; b++) {
      const std::vector<int32_t>& seq = data[pick.next() % data.size()];
      base_view(base_session, seq, hidden, labels, logits, base.config.V);
      DraftExample ex{seq.data(), hidden.data(), labels.data(), (int)seq.size()};
      if (o.soft_targets > 0) {
        ex.teacher_logits = logits.data();
        ex.soft_temperature = o.soft_targets;
      }
      draft_example_grads(base, *draft, params, grads, be, ex, ce_scale, mse_scale, batch_stats);
    }
    const float lr = cosine_lr(step, o.warmup, o.steps, o.lr, o.lr * o.lr_min_ratio);
    clipped_adamw_step(be, params, grads, st.m, st.v, o.clip, lr, AdamWConfig{0.9f, 0.999f, 1e-8f, o.weight_decay},
                       step);
    st.step = step;
    window.add(batch_stats);
    window_steps++;
    for (int k = 0; k < K; k++) window_preds += batch_stats.counted[k];
    if (!o.checkpoint.empty() && (step % o.checkpoint_every == 0 || step == o.steps)) save_checkpoint(*draft, params, st, o);
    if (on_progress && (step % report_every == 0 || step == o.steps)) {
      prog.step = step;
      prog.ce_by_head.assign(K, 0);
      prog.agree_by_head.assign(K, 0);
      prog.loss = 0;
      for (int k = 0; k < K; k++) {
        const int n = std::max(1, window.counted[k]);
        prog.ce_by_head[k] = window.ce_sum[k] / n;
        prog.agree_by_head[k] = (double)window.correct[k] / n;
        prog.loss += prog.ce_by_head[k];
      }
      prog.mse = window.mse_count ? window.mse_sum / window.mse_count : 0;
      prog.loss += o.mse_weight * prog.mse;
      const double secs = std::chrono::duration<double>(Clock::now() - t_window).count();
      prog.tokens_per_second = secs > 0 ? window_preds / secs : 0;
      prog.elapsed_s = elapsed();
      prog.eta_s = secs / window_steps * (o.steps - step);
      on_progress(prog);
      window.reset(K);
      window_steps = 0;
      window_preds = 0;
      t_window = Clock::now();
    }
  }
  return draft;
}

}  // namespace chimera
