// A generation session: one sequence with its KV cache and token history. Each request appends text
// to the session's context (or replaces it), reusing the cached prefix, then decodes new tokens,
// streaming text chunks that never split a UTF-8 character or show part of a stop string.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/interrupt.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/runtime.h"
#include "sampling/sampler.h"
#include "spec/speculative_config.h"
#include "spec/lookup_decoder.h"
#include "spec/speculative_decoder.h"

namespace chimera {

struct GenerateRequest {
  std::string text;
  // A prompt given as token ids (used as they are, no BOS added) instead of text: chat templates are
  // rendered and tokenized with special tokens by the caller.
  bool use_tokens = false;
  std::vector<int32_t> tokens;
  bool append = true;            // false: the text replaces the context (the cached common prefix is reused)
  bool special = false;          // control-token text in the prompt ("<|im_start|>") is that token (chat)
  int max_tokens = 256;
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool stop_on_eos = true;
};

enum class StopReason { Eos, MaxTokens, StopString, Aborted, ContextFull };
const char* stop_reason_name(StopReason r);

struct GenerateResult {
  std::string text;                    // the generated text (without the stop string)
  std::vector<int32_t> prompt_tokens;  // tokens this request added to the context (BOS included when added)
  std::vector<int32_t> tokens;         // generated token ids
  StopReason stop_reason = StopReason::MaxTokens;
  int reused_tokens = 0;               // prompt tokens served from the cache
  int evaluated_prompt_tokens = 0;     // prompt tokens actually computed
  double ms_prompt = 0, ms_generate = 0, ms_total = 0;
  bool speculative = false;            // a draft or lookup was attached
  SpeculativeStats spec;               // speculative steps of this request
  int plain_steps = 0;                 // one-token steps (no draft, chosen by 'auto', or no room for the tree)
  std::vector<std::string> tree_names; // the trees of spec.steps_by_tree
};

struct Chunk {
  std::string text;
  std::vector<int32_t> tokens;
};
using ChunkSink = std::function<void(Chunk&&)>;

class Session {
 public:
  Session(std::shared_ptr<ModelRuntime> runtime, int context_size, int batch_size = 64,
          const SpeculativeConfig* speculative = nullptr);

  // Runs a request to completion. `abort` is polled before every step and between the batches of a
  // long prompt; `heartbeat` (optional) is called at those points too.
  GenerateResult generate(const GenerateRequest& req, const ChunkSink& sink, const std::atomic<bool>& abort,
                          const std::function<void()>& heartbeat = {});

  // Appends tokens to the context and returns the logits (rows, V) and final hidden states (rows, C) of the
  // last `rows` of them (rows = 0: none). For scoring and tests.
  // An interrupt between batches throws E_ABORTED; the context then keeps the tokens evaluated so far.
  void evaluate(const std::vector<int32_t>& tokens, int rows, std::vector<float>* logits, std::vector<float>* hidden,
                const Interrupt& interrupt = {});

  // Drops the context.
  void reset();
  // Keeps the first n tokens of the context (the cache keeps their keys/values).
  void truncate(int n);

  int context_size() const { return kv_.capacity(); }
  int context_used() const { return (int)history_.size(); }
  const std::vector<int32_t>& history() const { return history_; }
  const ModelRuntime& runtime() const { return *runtime_; }
  size_t kv_bytes() const { return kv_.bytes(); }

 private:
  std::vector<int32_t> build_context(const GenerateRequest& req, std::vector<int32_t>& prompt_tokens) const;
  void sync_cache(const std::vector<int32_t>& context, GenerateResult& res);
  // Evaluates history_[kv_.size()..] in batches; leaves the last row's logits in logits_.
  void evaluate_pending(int rows_wanted);
  void truncate_cache(int keep);
  // Plain or speculative: the next tokens to emit (history ends with a token not yet cached).
  std::vector<int32_t> next_tokens(const SamplingParams& sampling, Rng& rng, GenerateResult& res);
  // Samples from the last evaluated row's logits, with the penalty over history_.
  int32_t sample_last(const SamplingParams& sampling, Rng& rng);
  // What this session's next step shares its forward pass with (continuous batching).
  BatchContext batch_context() const;

  std::shared_ptr<ModelRuntime> runtime_;
  const Interrupt* interrupt_ = nullptr;  // of the running generate/evaluate call
  KVCache kv_;
  Workspace ws_;
  std::vector<int32_t> history_;  // the whole context; history_[0, kv_.size()) is in the cache
  BackendArray<float> logits_;    // (rows, V) of the last evaluation (backend memory)
  BackendArray<float> hidden_;    // (rows, C)
  int rows_evaluated_ = 0;        // rows of logits_ / hidden_ that the last evaluation filled
  int last_rows_ = 0;             // rows of this session's last forward (its share of a batched pass)
  std::vector<float> logits_host_;  // host copy of one row, on a device backend
  CandidateRows candidates_;        // the top-k candidates (greedy: the argmax), selected by the backend
  std::vector<int32_t> positions_, rows_;
  TokenDistribution dist_;        // sampling buffers, reused every step
  std::vector<float> scratch_;
  std::unique_ptr<StepDecoder> spec_;  // with a draft (SpeculativeDecoder) or lookup (LookupDecoder)
  BackendArray<float> hidden_cache_;  // (S, C) final hidden states of cached positions, for a draft
};

}  // namespace chimera
