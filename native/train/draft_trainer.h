// Self-distillation of a Chimera draft for a frozen base model (spec Part A, "Training"): data the
// base generates itself (or a text file run through it), the teacher-forced layout of
// draft_train_step.h, AdamW with warm-up and cosine decay, gradient clipping, periodic checkpoints
// and exact resume. Deterministic for a seed and thread count.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/runtime.h"
#include "spec/draft_model.h"

namespace chimera {

struct DraftTrainOptions {
  int heads = 5;
  int width = 0;                   // the draft's width D (0 = the default of draft_config_for)
  int head_vocab = 0;              // head vocabulary: the data's most frequent tokens (0 = the default)
  std::string data = "self:1000";  // "self:N" (N sequences the base generates) or "file:PATH"
  int steps = 2000;
  int seq_len = 128;
  int batch = 8;                   // sequences per optimiser step
  float lr = 2e-3f;
  float lr_min_ratio = 0.1f;       // final learning rate = lr * ratio
  int warmup = 100;
  float weight_decay = 0.0f;
  float clip = 1.0f;               // global gradient norm limit
  float mse_weight = 1.0f;         // lambda of the hidden-state MSE
  float soft_targets = 0.0f;       // > 0: KL to the base's distribution at this temperature instead of
                                   // cross-entropy to its greedy choice (raises acceptance under sampling)
  uint64_t seed = 1;
  std::string checkpoint;          // checkpoint file written every checkpoint_every steps ("" = none);
                                   // "{step}" in it is replaced by the step, keeping each one
  int checkpoint_every = 200;
  std::string resume;              // checkpoint to resume from ("" = start fresh)
};

struct DraftTrainProgress {
  int step = 0, steps = 0;
  double loss = 0;                 // mean over the steps since the last report
  std::vector<double> ce_by_head;  // mean CE per head
  std::vector<double> agree_by_head;  // top-1 agreement with the base per head
  double mse = 0;
  double tokens_per_second = 0;    // training predictions (positions x heads) per second
  double elapsed_s = 0, eta_s = 0;
  std::string phase;               // "data" while generating data, "train" after
};

using DraftTrainCallback = std::function<void(const DraftTrainProgress&)>;

// Trains and returns the draft; progress is reported every `report_every` steps.
std::shared_ptr<DraftModel> train_draft(const std::shared_ptr<ModelRuntime>& base, const DraftTrainOptions& opts,
                                        const DraftTrainCallback& on_progress, const std::atomic<bool>& abort,
                                        int report_every = 10);

void validate_train_options(const DraftTrainOptions& o);

}  // namespace chimera
