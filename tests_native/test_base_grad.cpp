// Finite-difference check of the whole-model training step (base_sequence_grads) on tiny shapes, with
// a separate and a tied output projection: every weight tensor's analytic gradient is compared with
// central differences of the cross-entropy. And the training forward is the inference forward: its loss
// equals the cross-entropy of forward()'s logits.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "backend/backend.h"
#include "check.h"
#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "train/base_train_step.h"

using namespace chimera;

static double loss_of(const ModelConfig& c, const ModelWeights& w, const std::vector<BaseParam>& params, CpuBackend& be,
                      const std::vector<int32_t>& tokens, std::vector<std::vector<float>>* grads) {
  std::vector<std::vector<float>> scratch;
  if (!grads) {
    for (const auto& p : params) scratch.emplace_back(p.size(), 0.f);
    grads = &scratch;
  }
  BaseLossStats st;
  base_sequence_grads(c, w, params, *grads, be, tokens.data(), (int)tokens.size() - 1, 1.0f, st);
  return st.ce_sum;
}

static void check(bool tied, uint64_t seed) {
  test::Rng rng(seed);
  ModelConfig c;
  c.C = 8; c.L = 2; c.NH = 2; c.NKV = 1; c.HS = 4; c.HD = 12; c.V = 9; c.rope_dims = 4; c.tied_output = tied;
  WeightStorage st;
  ModelWeights w;
  std::vector<BaseParam> params = init_base_weights(c, seed, st, w);
  for (BaseParam& p : params)  // larger than the init, so every path carries gradient
    for (int64_t i = 0; i < p.size(); i++) p.data[i] = (p.is_vector ? 1.0f : 0.0f) + 0.4f * rng.uniform();
  std::vector<int32_t> tokens(7);
  for (auto& t : tokens) t = rng.below(c.V);
  CpuBackend be(nullptr);
  std::vector<std::vector<float>> grads;
  for (const auto& p : params) grads.emplace_back(p.size(), 0.f);
  loss_of(c, w, params, be, tokens, &grads);
  const float h = 1e-2f;
  for (size_t pi = 0; pi < params.size(); pi++) {
    BaseParam& p = params[pi];
    std::vector<float> got, ref;
    for (int s = 0; s < 5; s++) {
      const int64_t i = (int64_t)(rng.next() % (uint64_t)p.size());
      const float keep = p.data[i];
      p.data[i] = keep + h;
      const double up = loss_of(c, w, params, be, tokens, nullptr);
      p.data[i] = keep - h;
      const double down = loss_of(c, w, params, be, tokens, nullptr);
      p.data[i] = keep;
      ref.push_back((float)((up - down) / (2.0 * h)));
      got.push_back(grads[pi][i]);
    }
    const std::string label = std::string(tied ? "tied " : "") + "d loss / d " + p.name;
    test::compare(label.c_str(), got.data(), ref.data(), got.size(), 1e-2f, 3e-2f);
  }
}

// The training forward (base_sequence_grads' loss) against the cross-entropy of forward()'s logits.
static void check_training_forward_is_forward(bool tied, uint64_t seed) {
  test::Rng rng(seed);
  Model m;
  ModelConfig& c = m.config;
  c.C = 16; c.L = 3; c.NH = 4; c.NKV = 2; c.HS = 4; c.HD = 24; c.V = 11; c.rope_dims = 4; c.tied_output = tied;
  c.max_context = 64;
  std::vector<BaseParam> params = init_base_weights(c, seed, m.storage, m.weights);
  for (BaseParam& p : params)
    for (int64_t i = 0; i < p.size(); i++) p.data[i] = (p.is_vector ? 1.0f : 0.0f) + 0.3f * rng.uniform();
  const int T = 12;
  std::vector<int32_t> tokens(T + 1), pos(T), rows(T);
  for (auto& t : tokens) t = rng.below(c.V);
  for (int t = 0; t < T; t++) pos[t] = rows[t] = t;
  CpuBackend be(nullptr);
  std::vector<std::vector<float>> grads;
  for (const auto& p : params) grads.emplace_back(p.size(), 0.f);
  BaseLossStats st;
  base_sequence_grads(c, m.weights, params, grads, be, tokens.data(), T, 1.0f, st);

  Workspace ws(&be, c, T);
  KVCache kv(&be, c.L, T, c.KVD());
  Batch b;
  b.tokens = tokens.data();
  b.positions = pos.data();
  b.T = T;
  b.out_rows = rows.data();
  b.R = T;
  std::vector<float> logits((size_t)T * c.V), hidden((size_t)T * c.C);
  forward(m, be, ws, kv, b, logits.data(), hidden.data());
  double ce = 0;
  for (int t = 0; t < T; t++) {
    const float* l = &logits[(size_t)t * c.V];
    double mx = l[0], sum = 0;
    for (int v = 1; v < c.V; v++) mx = std::max(mx, (double)l[v]);
    for (int v = 0; v < c.V; v++) sum += std::exp((double)l[v] - mx);
    ce += mx + std::log(sum) - l[tokens[(size_t)t + 1]];
  }
  std::fprintf(stderr, "%s: training loss %.6f, forward() loss %.6f\n", tied ? "tied" : "untied", st.ce_sum, ce);
  EXPECT(std::fabs(st.ce_sum - ce) <= 1e-4 * std::fabs(ce) + 1e-5);
}

int main() {
  check(false, 21);
  check(true, 22);
  check_training_forward_is_forward(false, 23);
  check_training_forward_is_forward(true, 24);
  return test::finish("test_base_grad");
}
