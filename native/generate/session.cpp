// The generation loop of a session: build the context, reuse the cached prefix, prefill in batches,
// then sample one token per step until EOS, a stop string, max_tokens, abort or a full context.
#include "generate/session.h"

#include <algorithm>

#include "common/error.h"
#include "generate/stop_matcher.h"

namespace chimera {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
}  // namespace

static int max_tree_size(const SpeculativeConfig* s) {
  int n = 1;
  if (s) {
    n = std::max(n, s->reserve_nodes);
    for (const CompiledTree& t : s->trees) n = std::max(n, t.size);
    if (s->lookup) n = s->draft ? n + s->lookup->max_nodes : std::max(n, s->lookup->max_nodes);
  }
  return n;
}

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Eos: return "eos";
    case StopReason::MaxTokens: return "maxTokens";
    case StopReason::StopString: return "stop";
    case StopReason::Aborted: return "abort";
    case StopReason::ContextFull: return "contextFull";
  }
  return "?";
}


Session::Session(std::shared_ptr<ModelRuntime> runtime, int context_size, int batch_size,
                 const SpeculativeConfig* speculative)
    : runtime_(std::move(runtime)),
      kv_(&runtime_->backend(), runtime_->model().config.L, context_size, runtime_->model().config.KVD()),
      ws_(&runtime_->backend(), runtime_->model().config, std::max(batch_size, max_tree_size(speculative))) {
  if (speculative && speculative->draft) {
    spec_ = std::make_unique<SpeculativeDecoder>(*speculative, runtime_->model(), &runtime_->backend(), context_size);
  } else if (speculative && speculative->lookup) {
    spec_ = std::make_unique<LookupDecoder>(*speculative->lookup, speculative->mode);
  }
  if (spec_ && spec_->needs_hidden())
    hidden_cache_.reset(&runtime_->backend(), (size_t)context_size * runtime_->model().config.C);
}

void Session::reset() {
  history_.clear();
  truncate_cache(0);
}

void Session::truncate(int n) {
  CHIMERA_CHECK(n >= 0 && n <= (int)history_.size(), ErrorCode::InvalidArg, "truncate: length must be in 0..",
                history_.size(), ", got ", n);
  history_.resize(n);
  if (kv_.size() > n) truncate_cache(n);
}

void Session::truncate_cache(int keep) {
  kv_.truncate(keep);
  if (spec_) spec_->truncate(keep);
}

std::vector<int32_t> Session::build_context(const GenerateRequest& req, std::vector<int32_t>& prompt_tokens) const {
  const Tokenizer& tok = runtime_->model().tokenizer;
  const bool fresh = !req.append || history_.empty();
  if (req.use_tokens) {
    for (int32_t id : req.tokens)
      CHIMERA_CHECK(id >= 0 && id < tok.vocab_size(), ErrorCode::InvalidArg, "prompt token ", id,
                    " is outside the vocabulary of ", tok.vocab_size());
    prompt_tokens = req.tokens;
  } else {
    prompt_tokens = tok.encode(req.text, fresh && tok.add_bos(), fresh, req.special);
  }
  std::vector<int32_t> context;
  if (!fresh) context = history_;
  context.insert(context.end(), prompt_tokens.begin(), prompt_tokens.end());
  CHIMERA_CHECK(!context.empty(), ErrorCode::InvalidArg,
                "the prompt is empty and the model adds no BOS token: give some text to start from");
  return context;
}

void Session::sync_cache(const std::vector<int32_t>& context, GenerateResult& res) {
  // The last context token is always evaluated: its logits give the first new token.
  size_t common = 0;
  const size_t cached = std::min<size_t>(kv_.size(), context.size());
  while (common < cached && history_[common] == context[common]) common++;
  const int keep = (int)std::min(common, context.size() - 1);
  truncate_cache(keep);
  history_ = context;
  res.reused_tokens = keep;
  res.evaluated_prompt_tokens = (int)context.size() - keep;
  evaluate_pending(1);
}

void Session::evaluate_pending(int rows_wanted) {
  const Model& model = runtime_->model();
  const int V = model.config.V, C = model.config.C;
  const int total = (int)history_.size();
  const int first_wanted = total - rows_wanted;
  Backend& be = runtime_->backend();
  logits_.ensure(&be, (size_t)std::max(rows_wanted, 1) * V);
  hidden_.ensure(&be, (size_t)std::max(rows_wanted, 1) * C);
  rows_evaluated_ = rows_wanted;
  bool first_batch = true;
  while (kv_.size() < total) {
    // Between the batches of a long evaluation (never inside a one-batch step, so decoding polls the
    // abort flag itself), the caller may stop it; the cache then holds the batches done so far.
    if (!first_batch && interrupt_ != nullptr && interrupt_->requested()) {
      history_.resize((size_t)kv_.size());
      rows_evaluated_ = 0;
      throw_error(ErrorCode::Aborted, "the evaluation was aborted after ", kv_.size(), " of ", total, " tokens");
    }
    first_batch = false;
    const int start = kv_.size();
    const int T = std::min(ws_.max_T(), total - start);
    positions_.resize(T);
    rows_.clear();
    for (int i = 0; i < T; i++) {
      positions_[i] = start + i;
      if (start + i >= first_wanted) rows_.push_back(i);
    }
    Batch b;
    b.tokens = history_.data() + start;
    b.positions = positions_.data();
    b.T = T;
    b.out_rows = rows_.data();
    b.R = (int)rows_.size();
    const size_t out0 = rows_.empty() ? 0 : (size_t)(start + rows_[0] - first_wanted);
    float* hidden_all = spec_ && spec_->needs_hidden() ? hidden_cache_.data() : nullptr;  // rows [start, start + T)
    const auto t0 = std::chrono::steady_clock::now();
    const PassInfo pass =
        runtime_->batcher().run(ws_, kv_, b, logits_.data() + out0 * V, hidden_.data() + out0 * C, hidden_all);
    last_rows_ = T;
    // A pass shared with other sessions says nothing about this session's own cost of T rows.
    if (spec_ && pass.sequences == 1) spec_->observe_forward(T, ms_since(t0));
  }
}

namespace {
// Sets a session's interrupt for the duration of one call.
class InterruptScope {
 public:
  InterruptScope(const Interrupt*& slot, const Interrupt* value) : slot_(slot) { slot_ = value; }
  ~InterruptScope() { slot_ = nullptr; }

 private:
  const Interrupt*& slot_;
};
}  // namespace

void Session::evaluate(const std::vector<int32_t>& tokens, int rows, std::vector<float>* logits,
                       std::vector<float>* hidden, const Interrupt& interrupt) {
  InterruptScope scope(interrupt_, &interrupt);
  BatchScheduler::Membership member(runtime_->batcher());
  CHIMERA_CHECK(!tokens.empty(), ErrorCode::InvalidArg, "evaluate: no tokens");
  CHIMERA_CHECK(rows >= 0 && rows <= (int)tokens.size(), ErrorCode::InvalidArg, "evaluate: rows must be in 0..",
                tokens.size());
  CHIMERA_CHECK(history_.size() + tokens.size() <= (size_t)kv_.capacity(), ErrorCode::PromptTooLong, "evaluate: ",
                history_.size(), " + ", tokens.size(), " tokens exceed the context size ", kv_.capacity());
  for (int32_t t : tokens)
    CHIMERA_CHECK(t >= 0 && t < runtime_->model().config.V, ErrorCode::InvalidArg, "token id ", t, " out of range");
  // Anything in history_ but not yet in the cache is evaluated along with the new tokens.
  history_.insert(history_.end(), tokens.begin(), tokens.end());
  evaluate_pending(rows);
  const ModelConfig& cfg = runtime_->model().config;
  Backend& be = runtime_->backend();
  if (logits) {
    logits->resize((size_t)rows * cfg.V);
    be.copy_to_host(logits->data(), logits_.data(), logits->size() * sizeof(float));
  }
  if (hidden) {
    hidden->resize((size_t)rows * cfg.C);
    be.copy_to_host(hidden->data(), hidden_.data(), hidden->size() * sizeof(float));
  }
}

GenerateResult Session::generate(const GenerateRequest& req, const ChunkSink& sink, const std::atomic<bool>& abort,
                                 const std::function<void()>& heartbeat) {
  const Interrupt interrupt{&abort, heartbeat};
  InterruptScope scope(interrupt_, &interrupt);
  BatchScheduler::Membership member(runtime_->batcher());
  validate_sampling(req.sampling);
  CHIMERA_CHECK(req.max_tokens >= 0, ErrorCode::InvalidArg, "maxTokens must be >= 0, got ", req.max_tokens);
  const auto t_start = Clock::now();
  const Model& model = runtime_->model();
  const Tokenizer& tok = model.tokenizer;
  GenerateResult res;
  std::vector<int32_t> context = build_context(req, res.prompt_tokens);
  CHIMERA_CHECK((int)context.size() < kv_.capacity(), ErrorCode::PromptTooLong, "the prompt needs ", context.size(),
                " tokens of context but the session's context size is ", kv_.capacity(),
                " (one more slot is needed for the first new token): shorten the prompt or raise contextSize");
  if (abort.load()) {
    res.stop_reason = StopReason::Aborted;
    res.ms_total = ms_since(t_start);
    return res;
  }
  try {
    sync_cache(context, res);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Aborted) throw;
    res.stop_reason = StopReason::Aborted;  // stopped between the prompt's batches
    res.ms_total = ms_since(t_start);
    return res;
  }
  res.ms_prompt = ms_since(t_start);

  const auto t_gen = Clock::now();
  res.speculative = spec_ != nullptr;
  if (spec_) {
    res.tree_names = spec_->tree_names();
    res.spec.lookup = spec_->uses_lookup();
    res.spec.draft_and_lookup = spec_->uses_lookup() && spec_->uses_draft();
  }
  Rng rng(req.sampling.seed);
  Utf8StreamDecoder utf8;
  StopMatcher stops(req.stop);
  Chunk pending;
  int32_t prev = history_.back();
  auto emit = [&](std::string text) {
    res.text += text;
    pending.text += text;
    if (!pending.text.empty()) {
      sink(std::move(pending));
      pending = Chunk();
    }
  };
  // Takes one new token; returns false when generation must stop before or at it.
  auto take = [&](int32_t next) {
    if (req.stop_on_eos && tok.is_eog(next)) { res.stop_reason = StopReason::Eos; return false; }
    res.tokens.push_back(next);
    history_.push_back(next);
    pending.tokens.push_back(next);
    emit(stops.push(utf8.push(tok.token_bytes(next, prev))));
    prev = next;
    if (stops.stopped()) { res.stop_reason = StopReason::StopString; return false; }
    if ((int)res.tokens.size() >= req.max_tokens) { res.stop_reason = StopReason::MaxTokens; return false; }
    if ((int)history_.size() >= kv_.capacity()) { res.stop_reason = StopReason::ContextFull; return false; }
    return true;
  };
  bool running = req.max_tokens > 0;
  if (!running) res.stop_reason = StopReason::MaxTokens;
  bool first = true;
  while (running) {
    if (interrupt.requested()) { res.stop_reason = StopReason::Aborted; break; }
    std::vector<int32_t> next;
    if (first) {  // the prompt's logits give the first token
      next.push_back(sample_last(req.sampling, rng));
      first = false;
    } else {
      next = next_tokens(req.sampling, rng, res);
    }
    for (int32_t t : next)
      if (!(running = take(t))) break;
  }
  // A stop inside an accepted path leaves later tokens in the cache: drop them.
  if (kv_.size() > (int)history_.size()) truncate_cache((int)history_.size());
  if (!stops.stopped()) emit(stops.push(utf8.flush()) + stops.flush());
  if (!pending.tokens.empty()) sink(std::move(pending));
  res.ms_generate = ms_since(t_gen);
  res.ms_total = ms_since(t_start);
  return res;
}

std::vector<int32_t> Session::next_tokens(const SamplingParams& sampling, Rng& rng, GenerateResult& res) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  if (spec_) {
    spec_->set_batch(batch_context());
    const int tree = spec_->choose(history_, kv_.size(), kv_.capacity());
    if (tree >= 0) {
      float* hidden = spec_->needs_hidden() ? hidden_cache_.data() : nullptr;
      BatchScheduler& batcher = runtime_->batcher();
      const BaseSide base{runtime_->model(), runtime_->backend(), ws_, kv_, hidden, &batcher};
      std::vector<int32_t> out = spec_->step(tree, base, history_, sampling, rng, res.spec);
      last_rows_ = spec_->last_rows();
      return out;
    }
    // Plain step (chosen, or the tree no longer fits the context).
    evaluate_pending(1);
    res.plain_steps++;
    const int32_t t = sample_last(sampling, rng);
    spec_->plain_step_done(ms_since(t0));
    return {t};
  }
  evaluate_pending(1);
  return {sample_last(sampling, rng)};
}

BatchContext Session::batch_context() const {
  const BatchScheduler& b = runtime_->batcher();
  BatchContext c;
  c.batcher = &b;  // its pass costs also price trees running alone
  c.other_sessions = std::max(0, b.members() - 1);
  if (c.other_sessions == 0) return c;
  c.other_rows = std::max(c.other_sessions, b.last_pass_rows() - last_rows_);
  return c;
}

int32_t Session::sample_last(const SamplingParams& sampling, Rng& rng) {
  const int V = runtime_->model().config.V;
  CHIMERA_CHECK(rows_evaluated_ >= 1, ErrorCode::Internal, "sampling without evaluated logits");
  Backend& be = runtime_->backend();
  const float* row = logits_.data() + (size_t)(rows_evaluated_ - 1) * V;
  const int n_pen = penalty_window(sampling, (int)history_.size());
  // The backend selects the candidates (greedy: the argmax) and k of them cross to the host, not V
  // logits; plain greedy on the CPU takes the argmax straight from the logits.
  const bool host_argmax = plain_greedy(sampling) && be.host_memory();
  if (!host_argmax &&
      candidates_.select(be, row, 1, V, sampling, history_.data() + history_.size() - n_pen, n_pen)) {
    candidates_.distribution(0, sampling, dist_);
  } else {
    const float* logits = host_view(be, row, (size_t)V, logits_host_);
    target_distribution(logits, V, sampling, history_.data(), (int)history_.size(), dist_, scratch_);
  }
  return sample_from(dist_, rng);
}

}  // namespace chimera
