// C++ benchmark driver (no Node needed), one JSON object per case on stdout.
//   chimera_bench model --model M.gguf [--draft D.safetensors] [--backend cuda|cpu] [--tokens 256]
//       plain greedy decode vs Chimera (chimera-25, chain-4, auto) on the same backend: tokens/s, ratio,
//       accepted tokens per step.
//   chimera_bench synthetic [--backend cuda|cpu] [--threads N] [--layers 22] [--tau 3.4]
//       a TinyLlama-1.1B-shaped model with random BF16 weights (made on the GPU, or on the host for the
//       CPU backend, whose kernels and AMX use it reports): plain decode tokens/s, achieved bandwidth
//       (weight bytes / step time) against a copy (GPU) or a parallel read of the weights (CPU), and
//       the cost of verifying trees of 1, 8, 26 and 64 nodes relative to one decode step; with --tau,
//       the projected Chimera speedup tau * step / (verify(26) + draft), the draft's cost estimated
//       from its weight bytes.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "backend/gpu_backend.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "cpu/kernels_cpu.h"
#include "generate/session.h"
#include "model/forward.h"
#include "spec/draft_model.h"
#include "spec/speculative_config.h"
#include "spec/token_tree.h"

using namespace chimera;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::map<std::string, std::string> parse_flags(int argc, char** argv, int first) {
  std::map<std::string, std::string> f;
  for (int i = first; i < argc; i++) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) throw_error(ErrorCode::InvalidArg, "unexpected argument ", a);
    a = a.substr(2);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) f[a] = argv[++i];
    else f[a] = "1";
  }
  return f;
}

std::string flag(const std::map<std::string, std::string>& f, const std::string& k, const std::string& def) {
  auto it = f.find(k);
  return it == f.end() ? def : it->second;
}

struct Timed {
  GenerateResult r;
  double tok_s;
};

Timed generate(Session& s, const std::string& prompt, int tokens) {
  GenerateRequest req;
  req.text = prompt;
  req.append = false;
  req.max_tokens = tokens;
  req.sampling.temperature = 0;
  req.stop_on_eos = false;
  std::atomic<bool> abort{false};
  Timed t;
  t.r = s.generate(req, [](Chunk&&) {}, abort);
  t.tok_s = t.r.tokens.size() / (t.r.ms_generate / 1000.0);
  return t;
}

int bench_model(const std::map<std::string, std::string>& f) {
  RuntimeOptions opts;
  opts.gpu = flag(f, "backend", "cuda") == "cuda" ? GpuMode::Cuda : GpuMode::Off;
  opts.threads = std::atoi(flag(f, "threads", "0").c_str());
  auto rt = ModelRuntime::load(flag(f, "model", ""), opts);
  const int tokens = std::atoi(flag(f, "tokens", "256").c_str());
  const std::vector<std::string> prompts = {"Once upon a time", "Lily and Ben went to the park", "The little dog"};
  const std::string name = rt->model().config.name, backend = rt->backend().name();
  std::string device = backend == "cuda" ? gpu_device_name(rt->backend()) : "cpu";
  // Plain decoding, warmed up once (uploads the weights).
  Session plain(rt, 1024);
  generate(plain, prompts[0], 16);
  double plain_tok_s = 0;
  for (const std::string& p : prompts) plain_tok_s += generate(plain, p, tokens).tok_s;
  plain_tok_s /= prompts.size();
  std::printf("{\"case\":\"%s plain\",\"backend\":\"%s\",\"device\":\"%s\",\"tokens_per_s\":%.1f}\n", name.c_str(),
              backend.c_str(), device.c_str(), plain_tok_s);
  const std::string draft_path = flag(f, "draft", "");
  if (draft_path.empty()) return 0;
  std::shared_ptr<const DraftModel> draft(load_draft(draft_path, rt->model()));
  for (const std::string tree : {"chimera-25", "chain-4", "auto"}) {
    TreeChoice choice;
    choice.name = tree;  // 'auto' is the one users get (speculative_config.h)
    const SpeculativeConfig spec = make_speculative_config(draft, choice);
    Session s(rt, 1024, 64, &spec);
    generate(s, prompts[0], 16);
    double tok_s = 0, drafted = 0, steps = 0, ms_draft = 0, ms_verify = 0;
    for (const std::string& p : prompts) {
      Timed t = generate(s, p, tokens);
      tok_s += t.tok_s;
      drafted += t.r.spec.drafted_tokens;
      steps += t.r.spec.steps;
      ms_draft += t.r.spec.ms_draft;
      ms_verify += t.r.spec.ms_verify;
    }
    tok_s /= prompts.size();
    std::printf("{\"case\":\"%s chimera %s\",\"backend\":\"%s\",\"device\":\"%s\",\"tokens_per_s\":%.1f,"
                "\"ratio_vs_plain\":%.2f,\"tokens_per_step\":%.2f,\"ms_draft_per_step\":%.3f,"
                "\"ms_verify_per_step\":%.3f}\n",
                name.c_str(), tree.c_str(), backend.c_str(), device.c_str(), tok_s, tok_s / plain_tok_s,
                steps ? drafted / steps : 0.0, steps ? ms_draft / steps : 0.0, steps ? ms_verify / steps : 0.0);
  }
  return 0;
}

// A TinyLlama-1.1B-shaped model whose weights are random BF16 made on the device.
struct SyntheticModel {
  Model model;
  std::vector<void*> buffers;
  Backend* be = nullptr;
  ~SyntheticModel() {
    for (void* p : buffers) be->free(p);
  }
};

// n random bf16 values, uniform in [-scale, scale), from a seeded xorshift (host memory).
void fill_random_bf16_host(void* dst, size_t n, uint64_t seed, float scale) {
  uint16_t* out = static_cast<uint16_t*>(dst);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const float u = (float)((x >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
    out[i] = f32_to_bf16(u * scale);
  }
}

void make_synthetic(SyntheticModel& s, Backend& be, int layers) {
  s.be = &be;
  ModelConfig& c = s.model.config;
  c.name = "synthetic-1.1b-bf16";
  c.C = 2048; c.L = layers; c.NH = 32; c.NKV = 4; c.HS = 64; c.HD = 5632; c.V = 32000;
  c.max_context = 2048; c.rope_dims = 64; c.format = "synthetic";
  uint64_t seed = 1;
  auto matrix = [&](int64_t rows, int64_t cols) {
    void* p = be.alloc((size_t)rows * cols * 2);
    s.buffers.push_back(p);
    const float scale = 0.5f / std::sqrt((float)cols) * 1.7f;
    if (be.host_memory()) fill_random_bf16_host(p, (size_t)rows * cols, seed++, scale);
    else gpu_fill_random_bf16(be, p, (size_t)rows * cols, seed++, scale);
    return TensorView{DType::BF16, p, rows, cols};
  };
  std::vector<float> ones((size_t)c.C, 1.0f);
  auto gains = [&]() {
    void* p = be.alloc(ones.size() * 4);
    s.buffers.push_back(p);
    be.copy_to_device(p, ones.data(), ones.size() * 4);
    return static_cast<const float*>(p);
  };
  ModelWeights& w = s.model.weights;
  w.tok_embd = matrix(c.V, c.C);
  for (int l = 0; l < layers; l++) {
    LayerWeights lw;
    lw.attn_norm = gains();
    lw.wq = matrix(c.NH * c.HS, c.C);
    lw.wk = matrix(c.KVD(), c.C);
    lw.wv = matrix(c.KVD(), c.C);
    lw.wo = matrix(c.C, c.NH * c.HS);
    lw.ffn_norm = gains();
    lw.w_gate = matrix(c.HD, c.C);
    lw.w_up = matrix(c.HD, c.C);
    lw.w_down = matrix(c.C, c.HD);
    w.layers.push_back(lw);
  }
  w.output_norm = gains();
  w.output = matrix(c.V, c.C);
  if (!be.host_memory()) gpu_synchronize(be);
}

int bench_synthetic(const std::map<std::string, std::string>& f) {
  const bool on_cpu = flag(f, "backend", "cuda") == "cpu";
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Backend> be;
  if (on_cpu) {
    const int threads = std::atoi(flag(f, "threads", "0").c_str());
    pool = std::make_unique<ThreadPool>(threads > 0 ? threads : available_cpus());
    be = std::make_unique<CpuBackend>(pool.get());
  } else {
    std::string why;
    if (!gpu_available(0, &why)) throw_error(ErrorCode::Cuda, why);
    be = create_gpu_backend(0);
  }
  auto sync = [&] {
    if (!on_cpu) gpu_synchronize(*be);
  };
  const int layers = std::atoi(flag(f, "layers", "22").c_str());
  SyntheticModel sm;
  make_synthetic(sm, *be, layers);
  const Model& model = sm.model;
  const ModelConfig& c = model.config;
  size_t weight_bytes = 0;
  for (const LayerWeights& lw : model.weights.layers)
    for (const TensorView* t : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down})
      weight_bytes += t->bytes();
  weight_bytes += model.weights.output.bytes();  // the embedding is a gather, not streamed
  std::string device;
  double copy_gbs = 0;
  if (on_cpu) {
    auto& cpu = static_cast<CpuBackend&>(*be);
    const size_t repacked = cpu.prepare_weights(model.weights);
    device = std::string("cpu ") + kernel_path_name(active_kernel_path()) + (cpu.uses_amx() ? "+amx" : "") + " x" +
             std::to_string(pool->size());
    std::printf("{\"case\":\"cpu kernels\",\"path\":\"%s\",\"amx\":%s,\"threads\":%d,\"repacked_gb\":%.3f}\n",
                kernel_path_name(active_kernel_path()), cpu.uses_amx() ? "true" : "false", pool->size(),
                repacked / 1e9);
    // Read bandwidth: every thread sums its share of the layer weights (8 bytes at a time), twice.
    std::vector<std::pair<const uint64_t*, size_t>> spans;
    for (const LayerWeights& lw : model.weights.layers)
      for (const TensorView* t : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down})
        spans.push_back({static_cast<const uint64_t*>(t->data), t->bytes() / 8});
    std::atomic<uint64_t> sink{0};
    double best = 1e30;
    size_t bytes = 0;
    for (const auto& sp : spans) bytes += sp.second * 8;
    for (int rep = 0; rep < 2; rep++) {
      const auto t0 = Clock::now();
      pool->parallel_for((int64_t)spans.size() * 64, 1, [&](int64_t a, int64_t b, int) {
        uint64_t acc = 0;
        for (int64_t i = a; i < b; i++) {
          const auto& sp = spans[(size_t)(i / 64)];
          const size_t part = (sp.second + 63) / 64, lo = (size_t)(i % 64) * part, hi = std::min(sp.second, lo + part);
          for (size_t j = lo; j < hi; j++) acc += sp.first[j];
        }
        sink += acc;
      });
      best = std::min(best, seconds_since(t0));
    }
    copy_gbs = bytes / best / 1e9;
  } else {
    device = gpu_device_name(*be);
    copy_gbs = gpu_copy_bandwidth_gbs(*be, (size_t)1 << 30);
  }

  // Per-op costs: back-to-back calls of one op (the larger of launch time and run time); GPU only.
  if (!on_cpu) {
    auto per_call_us = [&](const std::function<void()>& fn, int reps) {
      fn();
      sync();
      const auto t0 = Clock::now();
      for (int r = 0; r < reps; r++) fn();
      sync();
      return seconds_since(t0) / reps * 1e6;
    };
    BackendArray<float> a(be.get(), (size_t)64 * 32000), b(be.get(), (size_t)64 * 5632);
    const double launch = per_call_us([&] { be->add(a.data(), b.data(), 1); }, 2000);
    std::printf("{\"case\":\"op launch (add of 1 float)\",\"us\":%.2f}\n", launch);
    const LayerWeights& lw = model.weights.layers[0];
    const std::vector<std::pair<const char*, const TensorView*>> mats = {
        {"wq", &lw.wq}, {"wk", &lw.wk}, {"w_gate", &lw.w_gate}, {"w_down", &lw.w_down},
        {"output", &model.weights.output}};
    for (int T : {1, 26, 64})
      for (const auto& [nm, W] : mats) {
        const double us = per_call_us([&] { be->matmul(a.data(), b.data(), *W, T); }, 50);
        std::printf("{\"case\":\"op matmul %s T=%d\",\"us\":%.1f,\"gbs\":%.0f}\n", nm, T, us,
                    W->bytes() / us / 1e3);
      }
  }

  const int ctx = 1024, prompt = 128;
  KVCache kv(be.get(), c.L, ctx, c.KVD());
  Workspace ws(be.get(), c, 64);
  BackendArray<float> logits(be.get(), (size_t)64 * c.V);
  std::vector<int32_t> tokens(64), pos(64), rows(64);
  // Prefill 128 tokens (two batches of 64).
  for (int b = 0; b < prompt; b += 64) {
    for (int i = 0; i < 64; i++) { tokens[i] = (b + i) * 7 % c.V; pos[i] = b + i; rows[i] = i; }
    Batch batch;
    batch.tokens = tokens.data(); batch.positions = pos.data(); batch.T = 64; batch.out_rows = rows.data(); batch.R = 1;
    forward(model, *be, ws, kv, batch, logits.data(), nullptr);
  }
  sync();
  // One step over n tree nodes (n = 1: a plain decode step) with greedy verification's device argmax
  // of every node (n ints to the host); the cache is cut back after each.
  BackendArray<int32_t> argmax(be.get(), 64);
  std::vector<int32_t> argmax_host(64);
  std::vector<uint8_t> mask;
  auto step = [&](int n) {
    const int N = kv.size();
    for (int i = 0; i < n; i++) { tokens[i] = (N + i) * 13 % c.V; pos[i] = N + (i == 0 ? 0 : 1 + (i - 1) / 4); rows[i] = i; }
    mask.assign((size_t)n * (N + n), 0);
    for (int i = 0; i < n; i++) {  // a root with a 4-wide fan of chains: each node sees the prefix, root, itself
      std::memset(mask.data() + (size_t)i * (N + n), 1, N);
      mask[(size_t)i * (N + n) + N] = 1;
      mask[(size_t)i * (N + n) + N + i] = 1;
    }
    Batch batch;
    batch.tokens = tokens.data(); batch.positions = pos.data(); batch.T = n; batch.out_rows = rows.data();
    batch.R = n; batch.mask = n > 1 ? mask.data() : nullptr;
    forward(model, *be, ws, kv, batch, logits.data(), nullptr);
    be->argmax_rows(argmax.data(), logits.data(), n, c.V);
    be->copy_to_host(argmax_host.data(), argmax.data(), sizeof(int32_t) * n);
    kv.truncate(N);
  };
  auto time_steps = [&](int n, int reps) {
    step(n);  // warm-up
    const auto t0 = Clock::now();
    for (int r = 0; r < reps; r++) step(n);
    return seconds_since(t0) / reps;
  };
  // Plain decode: tokens appended for real (the cache grows), 64 steps.
  double t_step;
  {
    const auto t0 = Clock::now();
    const int steps = on_cpu ? 16 : 64;
    for (int s = 0; s < steps; s++) {
      const int N = kv.size();
      tokens[0] = (N * 31) % c.V; pos[0] = N; rows[0] = 0;
      Batch batch;
      batch.tokens = tokens.data(); batch.positions = pos.data(); batch.T = 1; batch.out_rows = rows.data(); batch.R = 1;
      forward(model, *be, ws, kv, batch, logits.data(), nullptr);
      be->argmax_rows(argmax.data(), logits.data(), 1, c.V);  // greedy, as Session does on a GPU
      be->copy_to_host(argmax_host.data(), argmax.data(), sizeof(int32_t));
    }
    t_step = seconds_since(t0) / steps;
  }
  const double achieved = weight_bytes / t_step / 1e9;
  std::printf("{\"case\":\"%s decode\",\"device\":\"%s\",\"layers\":%d,\"tokens_per_s\":%.1f,\"ms_per_token\":%.3f,"
              "\"weight_gb\":%.3f,\"achieved_gbs\":%.0f,\"copy_gbs\":%.0f,\"fraction_of_copy_bw\":%.2f}\n",
              c.name.c_str(), device.c_str(), c.L, 1.0 / t_step, t_step * 1e3, weight_bytes / 1e9,
              achieved, copy_gbs, achieved / copy_gbs);
  const int reps = on_cpu ? 4 : 20;
  const double t1 = time_steps(1, reps);
  std::map<int, double> cost;
  for (int n : {1, 8, 26, 64}) {
    const double t = n == 1 ? t1 : time_steps(n, reps);
    cost[n] = t / t1;
    std::printf("{\"case\":\"%s verify\",\"nodes\":%d,\"ms\":%.3f,\"cost_vs_decode_step\":%.2f}\n", c.name.c_str(), n,
                t * 1e3, t / t1);
  }
  const double tau = std::atof(flag(f, "tau", "0").c_str());
  if (tau > 0) {
    // Chimera draft of this base in BF16: 4 heads Linear(2C -> V), one layer, the trigram encoder.
    const double draft_bytes = 2.0 * (4.0 * c.V * 2 * c.C + (double)weight_bytes / c.L + 12.0 * c.C * c.C);
    const double t_draft = draft_bytes / 1e9 / achieved;
    const double speedup = tau * t1 / (cost[26] * t1 + t_draft);
    std::printf("{\"case\":\"%s chimera-25 projected\",\"tau\":%.2f,\"draft_ms_estimate\":%.3f,"
                "\"projected_speedup\":%.2f}\n", c.name.c_str(), tau, t_draft * 1e3, speedup);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    const auto f = parse_flags(argc, argv, 2);
    if (cmd == "model") return bench_model(f);
    if (cmd == "synthetic") return bench_synthetic(f);
    std::fprintf(stderr, "usage: chimera_bench model --model M.gguf [--draft D] [--backend cuda|cpu] [--tokens N]\n"
                         "       chimera_bench synthetic [--backend cuda|cpu] [--threads N] [--layers 22] [--tau 3.4]\n");
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "chimera_bench: %s: %s\n", error_code_name(e.code()), e.what());
    return 1;
  }
}
