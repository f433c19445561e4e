// Finite-difference check of the composed draft training step (draft_example_grads): every weight
// tensor of a one-head draft gets its analytic gradient compared with central differences of the loss
// on a tiny random base, so the teacher-forced layout's backward is right end to end. With more heads
// the chain's earlier predictions enter deeper depths detached (as in the reference code), which
// central differences cannot see; there the test checks that a small step along the gradient lowers
// the loss. Narrow drafts (width below the base's, heads over part of the vocabulary) are checked the
// same way. The hidden-state MSE's target P_c h is detached, so P_c is checked with the MSE off.
#include <cmath>
#include <cstdio>
#include <memory>

#include "backend/backend.h"
#include "check.h"
#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "train/draft_train_step.h"

using namespace chimera;

namespace {

struct TinyBase {
  std::vector<float> emb, out;
  Model model;
  TinyBase(test::Rng& rng, int C, int V, int NH, int NKV, int HD) {
    ModelConfig& c = model.config;
    c.C = C; c.V = V; c.NH = NH; c.NKV = NKV; c.HS = C / NH; c.HD = HD; c.L = 1; c.rope_dims = c.HS;
    emb = test::random_floats(rng, (size_t)V * C);
    out = test::random_floats(rng, (size_t)V * C);
    model.weights.tok_embd = TensorView{DType::F32, emb.data(), V, C};
    model.weights.output = TensorView{DType::F32, out.data(), V, C};
  }
};

double loss_of(const Model& base, const DraftModel& d, const std::vector<DraftParam>& params, CpuBackend& be,
               const DraftExample& ex, std::vector<std::vector<float>>* grads, float mse_scale) {
  std::vector<std::vector<float>> scratch;
  if (!grads) {
    for (const auto& p : params) scratch.emplace_back(p.size(), 0.f);
    grads = &scratch;
  }
  DraftLossStats st;
  st.reset(d.config.K);
  draft_example_grads(base, d, params, *grads, be, ex, 1.0f, mse_scale, st);
  double total = mse_scale * st.mse_sum;
  for (double ce : st.ce_sum) total += ce;
  return total;
}

}  // namespace

namespace {
const int C = 16, V = 11, NH = 2, NKV = 1, HD = 24, L = 7;
}  // namespace

// A draft with random weights everywhere (so no gradient is trivially zero) and one random example.
struct Fixture {
  test::Rng rng;
  TinyBase base;
  std::unique_ptr<DraftModel> draft;
  std::vector<DraftParam> params;
  std::vector<int32_t> tokens, labels;
  std::vector<float> hidden;
  DraftExample ex;
  CpuBackend be{nullptr};
  float mse_scale = 1.0f;
  Fixture(uint64_t seed, const DraftShape& shape) : rng(seed), base(rng, C, V, NH, NKV, HD) {
    draft = create_draft(base.model, shape, seed + 100);
    params = make_trainable(*draft);
    for (DraftParam& p : params)
      for (int64_t i = 0; i < p.size(); i++) p.data[i] = (p.is_vector ? 1.0f : 0.0f) + 0.3f * rng.uniform();
    tokens.resize(L);
    labels.assign(L, -1);
    for (int i = 0; i < L; i++) tokens[i] = rng.below(V);
    for (int i = 1; i < L; i++) labels[i] = rng.below(V);
    hidden = test::random_floats(rng, (size_t)L * C);
    ex = DraftExample{tokens.data(), hidden.data(), labels.data(), L};
  }
  double loss(std::vector<std::vector<float>>* grads) {
    return loss_of(base.model, *draft, params, be, ex, grads, mse_scale);
  }
  std::vector<std::vector<float>> zero_grads() const {
    std::vector<std::vector<float>> g;
    for (const auto& p : params) g.emplace_back(p.size(), 0.f);
    return g;
  }
};

void check_finite_differences(const DraftShape& shape, float mse_scale, const char* what) {
  Fixture f(11, shape);
  f.mse_scale = mse_scale;
  std::printf("%s: width %d of %d, %d head tokens of %d, mse %.0f\n", what, f.draft->config.D, C, f.draft->config.Vh,
              V, mse_scale);
  auto grads = f.zero_grads();
  f.loss(&grads);
  const float h = 1e-2f;
  for (size_t pi = 0; pi < f.params.size(); pi++) {
    DraftParam& p = f.params[pi];
    if (mse_scale > 0 && p.name == "context.proj.weight") continue;  // the MSE target is detached
    std::vector<float> got, ref;
    for (int s = 0; s < 6; s++) {
      const int64_t i = (int64_t)(f.rng.next() % (uint64_t)p.size());
      const float keep = p.data[i];
      p.data[i] = keep + h;
      const double up = f.loss(nullptr);
      p.data[i] = keep - h;
      const double down = f.loss(nullptr);
      p.data[i] = keep;
      ref.push_back((float)((up - down) / (2.0 * h)));
      got.push_back(grads[pi][i]);
    }
    test::compare(("d loss / d " + p.name).c_str(), got.data(), ref.data(), got.size(), 2e-2f, 3e-2f);
  }
}

// Several heads: the loss must fall along -gradient (detached chain inputs make it a descent direction,
// not the exact gradient, for the layer weights; heads get exact gradients).
void check_descent_with_chain() {
  Fixture f(12, DraftShape{3, 0, 0, {}});
  auto grads = f.zero_grads();
  const double before = f.loss(&grads);
  for (size_t pi = 0; pi < f.params.size(); pi++)
    for (int64_t i = 0; i < f.params[pi].size(); i++) f.params[pi].data[i] -= 1e-3f * grads[pi][i];
  const double after = f.loss(nullptr);
  std::printf("three heads: loss %.5f -> %.5f after a step of 1e-3 along -gradient\n", before, after);
  EXPECT(after < before - 1e-4);
}

int main() {
  check_finite_differences(DraftShape{1, 0, 0, {}}, 1.0f, "paper shape");
  check_finite_differences(DraftShape{1, 0, 0, {}}, 0.0f, "paper shape");
  check_finite_differences(DraftShape{1, 8, 7, {}}, 1.0f, "narrow");
  check_finite_differences(DraftShape{1, 8, 0, {1, 3, 4, 8, 10}}, 0.0f, "narrow");
  check_descent_with_chain();
  return test::finish("test_draft_grad");
}
