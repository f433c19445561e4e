// Training a small LLaMA base model from a text corpus, natively: a BPE tokenizer (byte fallback)
// trained on the corpus, then next-token cross-entropy with AdamW, warm-up and cosine decay, and the
// result written as GGUF (tokenizer included) that loadModel and llama.cpp read.
#pragma once
#include <atomic>
#include <functional>
#include <string>

#include "common/dtype.h"

namespace chimera {

struct BaseTrainOptions {
  std::string corpus;     // UTF-8 text file
  std::string out;        // .gguf to write
  int vocab = 1024;
  int dim = 128, layers = 4, heads = 4, kv_heads = 4, hidden = 384;
  int seq_len = 128;
  int context = 512;      // context length recorded in the file
  int steps = 1000;
  int batch = 8;
  float lr = 2e-3f;
  float lr_min_ratio = 0.1f;
  int warmup = 50;
  float weight_decay = 0.1f;
  float clip = 1.0f;
  bool tied = true;       // output projection shares the embedding
  DType dtype = DType::F32;  // matrices in the file
  uint64_t seed = 1;
  std::string name = "chimera-base";
};

struct BaseTrainProgress {
  std::string phase;      // "tokenizer", "train"
  int step = 0, steps = 0;
  double loss = 0;        // mean training CE since the last report (nats/token)
  double val_loss = -1;   // held-out CE (the last 5% of the corpus), when measured
  double accuracy = 0;    // next-token top-1 accuracy since the last report
  double tokens_per_second = 0, elapsed_s = 0, eta_s = 0;
};

void validate_base_options(const BaseTrainOptions& o);

// Trains and writes o.out. Returns the final held-out loss.
double train_base(const BaseTrainOptions& o, int threads, const std::function<void(const BaseTrainProgress&)>& cb,
                  const std::atomic<bool>& abort, int report_every = 10);

}  // namespace chimera
