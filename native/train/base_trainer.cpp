// The base-model training loop.
#include "train/base_trainer.h"

#include <chrono>
#include <cmath>
#include <memory>

#include "backend/backend.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"
#include "formats/gguf_writer.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "train/base_train_step.h"
#include "train/bpe_trainer.h"
#include "train/lr_schedule.h"

namespace chimera {

void validate_base_options(const BaseTrainOptions& o) {
  CHIMERA_CHECK(!o.corpus.empty() && !o.out.empty(), ErrorCode::InvalidArg, "corpus and out are required");
  CHIMERA_CHECK(o.vocab >= 300 && o.vocab <= 65536, ErrorCode::InvalidArg, "vocab must be in 300..65536, got ",
                o.vocab);
  CHIMERA_CHECK(o.dim >= 8 && o.layers >= 1 && o.heads >= 1 && o.kv_heads >= 1 && o.hidden >= 1, ErrorCode::InvalidArg,
                "dim, layers, heads, kvHeads and hidden must be positive");
  CHIMERA_CHECK(o.dim % o.heads == 0 && (o.dim / o.heads) % 2 == 0, ErrorCode::InvalidArg,
                "dim must be a multiple of heads with an even head size (dim ", o.dim, ", heads ", o.heads, ")");
  CHIMERA_CHECK(o.heads % o.kv_heads == 0, ErrorCode::InvalidArg, "heads must be a multiple of kvHeads");
  CHIMERA_CHECK(o.seq_len >= 8 && o.seq_len <= o.context, ErrorCode::InvalidArg, "seqLen must be in 8..context");
  CHIMERA_CHECK(o.steps >= 1 && o.batch >= 1 && o.warmup >= 0, ErrorCode::InvalidArg,
                "steps and batch must be >= 1, warmup >= 0");
  CHIMERA_CHECK(std::isfinite(o.lr) && o.lr > 0 && o.lr < 1 && o.clip > 0 && o.weight_decay >= 0,
                ErrorCode::InvalidArg, "lr must be in (0, 1), clip > 0, weightDecay >= 0");
  CHIMERA_CHECK(o.dtype == DType::F32 || o.dtype == DType::F16 || o.dtype == DType::BF16, ErrorCode::InvalidArg,
                "dtype must be F32, F16 or BF16");
}

double train_base(const BaseTrainOptions& o, int threads, const std::function<void(const BaseTrainProgress&)>& cb,
                  const std::atomic<bool>& abort, int report_every) {
  validate_base_options(o);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  BaseTrainProgress prog;
  prog.steps = o.steps;

  // Tokenizer and token stream; the last 5% of the corpus is held out.
  const std::string text = read_text_file(o.corpus);
  CHIMERA_CHECK(!text.empty(), ErrorCode::InvalidArg, o.corpus, " is empty");
  prog.phase = "tokenizer";
  if (cb) cb(prog);
  Tokenizer tok(train_bpe_tokenizer(text, o.vocab));
  const std::vector<int32_t> ids = tok.encode(text, false, true);
  const size_t n_val = ids.size() / 20;
  const size_t n_train = ids.size() - n_val;
  CHIMERA_CHECK(n_train > (size_t)o.seq_len * 4 && n_val > (size_t)o.seq_len, ErrorCode::InvalidArg, o.corpus,
                " gives ", ids.size(), " tokens: too few for seqLen ", o.seq_len);

  ModelConfig c;
  c.name = o.name;
  c.C = o.dim; c.L = o.layers; c.NH = o.heads; c.NKV = o.kv_heads; c.HS = o.dim / o.heads; c.HD = o.hidden;
  c.V = tok.vocab_size(); c.max_context = o.context; c.rope_dims = c.HS; c.tied_output = o.tied;
  WeightStorage storage;
  ModelWeights w;
  std::vector<BaseParam> params = init_base_weights(c, o.seed, storage, w);
  std::vector<std::vector<float>> grads, m, v;
  for (const BaseParam& p : params) {
    grads.emplace_back(p.size(), 0.f);
    m.emplace_back(p.size(), 0.f);
    v.emplace_back(p.size(), 0.f);
  }
  ThreadPool pool(threads > 0 ? threads : available_cpus());
  CpuBackend be(&pool);

  auto validation = [&] {  // mean CE over up to 16 held-out windows
    BaseLossStats st;
    std::vector<std::vector<float>> sink;
    for (const BaseParam& p : params) sink.emplace_back(p.size(), 0.f);
    for (size_t off = n_train, k = 0; off + o.seq_len + 1 <= ids.size() && k < 16; off += o.seq_len, k++)
      base_sequence_grads(c, w, params, sink, be, ids.data() + off, o.seq_len, 0.0f, st);
    return st.counted ? st.ce_sum / st.counted : 0.0;
  };

  prog.phase = "train";
  BaseLossStats window;
  auto t_window = Clock::now();
  int window_steps = 0;
  for (int step = 1; step <= o.steps; step++) {
    if (abort) throw_error(ErrorCode::Aborted, "training was aborted at step ", step);
    for (auto& g : grads) std::fill(g.begin(), g.end(), 0.f);
    Rng pick(o.seed * 1000003ull + (uint64_t)step);
    const float scale = 1.0f / (float)(o.batch * o.seq_len);
    for (int b = 0; b < o.batch; b++) {
      const size_t off = pick.next() % (n_train - (size_t)o.seq_len - 1);
      base_sequence_grads(c, w, params, grads, be, ids.data() + off, o.seq_len, scale, window);
    }
    const float lr = cosine_lr(step, o.warmup, o.steps, o.lr, o.lr * o.lr_min_ratio);
    clipped_adamw_step(be, params, grads, m, v, o.clip, lr, AdamWConfig{0.9f, 0.95f, 1e-8f, o.weight_decay}, step);
    window_steps++;
    if (cb && (step % report_every == 0 || step == o.steps)) {
      const double secs = std::chrono::duration<double>(Clock::now() - t_window).count();
      prog.step = step;
      prog.loss = window.counted ? window.ce_sum / window.counted : 0;
      prog.accuracy = window.counted ? (double)window.correct / window.counted : 0;
      prog.tokens_per_second = secs > 0 ? window.counted / secs : 0;
      prog.val_loss = (step % (report_every * 10) == 0 || step == o.steps) ? validation() : -1;
      prog.elapsed_s = elapsed();
      prog.eta_s = secs / window_steps * (o.steps - step);
      cb(prog);
      window = BaseLossStats();
      window_steps = 0;
      t_window = Clock::now();
    }
  }
  const double val = validation();
  write_gguf(o.out, c, tok.data(), model_tensors_for_gguf(w, c, o.dtype));
  return val;
}

}  // namespace chimera
