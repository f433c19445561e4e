// Tests of the training ops of the Backend table (backward passes, losses, optimiser, lr schedule).
//
// Gradients are checked against central differences: for a scalar L = sum(r * f(inputs)) with a seeded
// random r, the analytic gradient of every input (or of a seeded sample of at most 64 elements of a large
// one) is compared with (L(x + h) - L(x - h)) / (2h), h ~ 1e-3, L summed in double from the backend's own
// F32 forward. Tolerance: |diff| <= 2e-3 + 2e-2 |ref| (F32 rounding of the forward divided by 2h is
// ~1e-4 here; the O(h^2) truncation is smaller). Each check runs on a serial CpuBackend and on one with a
// 2-thread pool; shapes above the ops' parallel thresholds are also compared serial vs pooled, which must
// be bit-identical (every output element is summed in one fixed order), and pooled twice (determinism).
// Attention's F32 forward makes those differences noisy (~3e-4 where one K row feeds many outputs), so its
// gradients are also checked against differences (h = 1e-5) of an attention written in double here, at
// |diff| <= 1e-5 + 1e-4 |ref|. Destinations that "accumulate" start from random values; those
// "overwritten" start as NaN. Other tolerances: attention_forward_train vs Backend::attention 1e-5;
// losses vs a double computation 1e-9 + 1e-6 |ref|; AdamW vs a double hand computation 1e-7 + 1e-6 |ref|.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "check.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"
#include "train/lr_schedule.h"

using namespace chimera;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kGradAtol = 2e-3f, kGradRtol = 2e-2f;
constexpr float kExactAtol = 1e-5f, kExactRtol = 1e-4f;  // against the double-precision attention
constexpr size_t kMaxChecked = 64;

using Vec = std::vector<float>;

double weighted_sum(const Vec& r, const Vec& y) {
  double s = 0;
  for (size_t i = 0; i < y.size(); i++) s += (double)r[i] * y[i];
  return s;
}

// All indices of n, or a seeded sample of kMaxChecked of them.
std::vector<size_t> checked_indices(size_t n, uint64_t seed) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; i++) idx[i] = i;
  test::Rng rng(seed);
  if (n > kMaxChecked) {
    for (size_t i = 0; i < kMaxChecked; i++) std::swap(idx[i], idx[i + (size_t)rng.below((int)(n - i))]);
    idx.resize(kMaxChecked);
  }
  return idx;
}

// test::compare, with the scale of the gradient and the largest |diff| added to the label.
void compare_grad(const std::string& label, const Vec& got, const Vec& ref, float atol, float rtol) {
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < got.size(); i++) {
    max_ref = std::max(max_ref, std::fabs((double)ref[i]));
    max_diff = std::max(max_diff, std::fabs((double)got[i] - ref[i]));
  }
  char scale[96];
  std::snprintf(scale, sizeof scale, " (max|ref| %.2g, max|diff| %.2g)", max_ref, max_diff);
  test::compare((label + scale).c_str(), got.data(), ref.data(), got.size(), atol, rtol);
}

// Compares `analytic` (dL/dx) with central differences of `loss` over x (all elements, or a sample).
void check_grad(const std::string& label, Vec& x, const Vec& analytic, const std::function<double()>& loss,
                uint64_t seed = 1, float h = 1e-3f) {
  Vec got, ref;
  for (size_t i : checked_indices(x.size(), seed)) {
    const float x0 = x[i], xp = x0 + h, xm = x0 - h;
    x[i] = xp;
    const double lp = loss();
    x[i] = xm;
    const double lm = loss();
    x[i] = x0;
    ref.push_back((float)((lp - lm) / ((double)xp - (double)xm)));
    got.push_back(analytic[i]);
  }
  compare_grad(label, got, ref, kGradAtol, kGradRtol);
}

// The same over a double-precision loss (h = 1e-5: differences good to ~1e-9), with the tight tolerance.
void check_grad_exact(const std::string& label, std::vector<double>& x, const Vec& analytic,
                      const std::function<double()>& loss, uint64_t seed) {
  const double h = 1e-5;
  Vec got, ref;
  for (size_t i : checked_indices(x.size(), seed)) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = loss();
    x[i] = x0 - h;
    const double lm = loss();
    x[i] = x0;
    ref.push_back((float)((lp - lm) / (2 * h)));
    got.push_back(analytic[i]);
  }
  compare_grad(label, got, ref, kExactAtol, kExactRtol);
}

Vec minus(const Vec& a, const Vec& b) {
  Vec d(a.size());
  for (size_t i = 0; i < a.size(); i++) d[i] = a[i] - b[i];
  return d;
}

bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::string backend_label(ThreadPool* pool) { return pool ? " [2 threads]" : " [serial]"; }

// ---- linear ----

Vec to_f16_values(const Vec& w, std::vector<uint16_t>& bits) {
  bits.resize(w.size());
  Vec back(w.size());
  for (size_t i = 0; i < w.size(); i++) {
    bits[i] = f32_to_fp16(w[i]);
    back[i] = fp16_to_f32(bits[i]);
  }
  return back;
}

struct LinearResult {
  Vec dx, dW;
};

LinearResult run_linear_backward(CpuBackend& be, const Vec& dy, const Vec& x, const Vec& W, int T, int N, int K,
                                 const Vec& dW0) {
  LinearResult r{Vec((size_t)T * K, kNaN), dW0};
  be.linear_backward(r.dx.data(), r.dW.data(), dy.data(), x.data(), TensorView{DType::F32, W.data(), N, K}, T);
  return r;
}

void test_linear_case(ThreadPool* pool, int T, int N, int K, uint64_t seed) {
  CpuBackend be(pool);
  test::Rng rng(seed);
  Vec x = test::random_floats(rng, (size_t)T * K), W = test::random_floats(rng, (size_t)N * K);
  const Vec r = test::random_floats(rng, (size_t)T * N), dW0 = test::random_floats(rng, (size_t)N * K);
  const std::string name = "linear T=" + std::to_string(T) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                           backend_label(pool);
  auto loss = [&] {
    Vec y((size_t)T * N);
    be.matmul(y.data(), x.data(), TensorView{DType::F32, W.data(), N, K}, T);
    return weighted_sum(r, y);
  };
  const LinearResult g = run_linear_backward(be, r, x, W, T, N, K, dW0);
  check_grad(name + " dx", x, g.dx, loss, seed);
  check_grad(name + " dW (accumulated)", W, minus(g.dW, dW0), loss, seed + 1);
  // Either output alone gives the same bits as both together.
  Vec dx_only((size_t)T * K, kNaN), dW_only = dW0;
  be.linear_backward(dx_only.data(), nullptr, r.data(), x.data(), TensorView{DType::F32, W.data(), N, K}, T);
  be.linear_backward(nullptr, dW_only.data(), r.data(), x.data(), TensorView{DType::F32, W.data(), N, K}, T);
  EXPECT(same_bits(dx_only, g.dx));
  EXPECT(same_bits(dW_only, g.dW));
}

// dx through F16 weights: the gradient of the forward that reads the same F16 weights.
void test_linear_f16(ThreadPool* pool) {
  CpuBackend be(pool);
  test::Rng rng(21);
  const int T = 3, N = 5, K = 7;
  Vec x = test::random_floats(rng, (size_t)T * K);
  const Vec r = test::random_floats(rng, (size_t)T * N);
  std::vector<uint16_t> bits;
  const Vec Wf = to_f16_values(test::random_floats(rng, (size_t)N * K), bits);
  const TensorView W16{DType::F16, bits.data(), N, K};
  auto loss = [&] {
    Vec y((size_t)T * N);
    be.matmul(y.data(), x.data(), W16, T);
    return weighted_sum(r, y);
  };
  Vec dx((size_t)T * K, kNaN), dx_f32((size_t)T * K, kNaN);
  be.linear_backward(dx.data(), nullptr, r.data(), x.data(), W16, T);
  check_grad(std::string("linear F16 W dx") + backend_label(pool), x, dx, loss, 22);
  be.linear_backward(dx_f32.data(), nullptr, r.data(), x.data(), TensorView{DType::F32, Wf.data(), N, K}, T);
  test::compare((std::string("linear F16 W dx == F32 W of the same values") + backend_label(pool)).c_str(), dx.data(),
                dx_f32.data(), dx.size(), 0.f, 0.f);
  Vec dW((size_t)N * K, 0.f);
  EXPECT_THROWS_CODE(be.linear_backward(nullptr, dW.data(), r.data(), x.data(), W16, T), ErrorCode::Unsupported);
}

// dx through Q8_0 weights (blocks of an F16 scale and 32 int8), against the F32 weights they decode to.
void test_linear_q8(ThreadPool* pool) {
  CpuBackend be(pool);
  test::Rng rng(25);
  const int T = 2, N = 3, K = 64;
  std::vector<uint8_t> q8((size_t)N * (K / kQ8BlockSize) * kQ8BlockBytes);
  for (size_t b = 0; b < q8.size() / kQ8BlockBytes; b++) {
    const uint16_t d = f32_to_fp16(rng.uniform(0.002f, 0.02f));
    std::memcpy(&q8[b * kQ8BlockBytes], &d, 2);
    for (int i = 0; i < kQ8BlockSize; i++) q8[b * kQ8BlockBytes + 2 + i] = (uint8_t)(int8_t)(rng.below(255) - 127);
  }
  const TensorView Wq{DType::Q8_0, q8.data(), N, K};
  Vec Wf((size_t)N * K);
  for (int n = 0; n < N; n++) row_to_f32(DType::Q8_0, Wq.row(n), Wf.data() + (size_t)n * K, K);
  Vec x = test::random_floats(rng, (size_t)T * K);
  const Vec r = test::random_floats(rng, (size_t)T * N);
  Vec dx((size_t)T * K, kNaN), dx_f32((size_t)T * K, kNaN);
  be.linear_backward(dx.data(), nullptr, r.data(), x.data(), Wq, T);
  be.linear_backward(dx_f32.data(), nullptr, r.data(), x.data(), TensorView{DType::F32, Wf.data(), N, K}, T);
  test::compare((std::string("linear Q8_0 W dx == F32 W of the same values") + backend_label(pool)).c_str(),
                dx.data(), dx_f32.data(), dx.size(), 0.f, 0.f);
  // Finite differences of y = x W^T with W the values the Q8_0 blocks decode to (what the backward
  // differentiates; the AVX2 forward over Q8_0 also rounds x to Q8 blocks, a step function of x).
  check_grad(std::string("linear Q8_0 W dx") + backend_label(pool), x, dx, [&] {
    Vec y((size_t)T * N);
    be.matmul(y.data(), x.data(), TensorView{DType::F32, Wf.data(), N, K}, T);
    return weighted_sum(r, y);
  }, 26);
  const TensorView bad{DType::Q8_0, q8.data(), 1, 48};
  EXPECT_THROWS_CODE(be.linear_backward(dx.data(), nullptr, r.data(), x.data(), bad, 1), ErrorCode::Tensor);
}

// Above the parallel threshold: pooled == serial bit for bit, and pooled twice gives the same bits.
void test_linear_determinism(ThreadPool& pool) {
  CpuBackend serial(nullptr), pooled(&pool);
  test::Rng rng(31);
  for (const auto& s : {std::vector<int>{8, 64, 64}, std::vector<int>{33, 70, 50}, std::vector<int>{5, 97, 129}}) {
    const int T = s[0], N = s[1], K = s[2];
    const Vec x = test::random_floats(rng, (size_t)T * K), W = test::random_floats(rng, (size_t)N * K);
    const Vec dy = test::random_floats(rng, (size_t)T * N), dW0 = test::random_floats(rng, (size_t)N * K);
    const LinearResult a = run_linear_backward(pooled, dy, x, W, T, N, K, dW0);
    const LinearResult b = run_linear_backward(pooled, dy, x, W, T, N, K, dW0);
    const LinearResult c = run_linear_backward(serial, dy, x, W, T, N, K, dW0);
    const bool ok = same_bits(a.dx, b.dx) && same_bits(a.dW, b.dW) && same_bits(a.dx, c.dx) && same_bits(a.dW, c.dW);
    std::printf("linear_backward T=%d N=%d K=%d: 2 threads twice and serial bit-identical: %s\n", T, N, K,
                ok ? "ok" : "FAIL");
    EXPECT(ok);
  }
}

void test_linear(ThreadPool& pool) {
  for (ThreadPool* p : {(ThreadPool*)nullptr, &pool}) {
    test_linear_case(p, 3, 5, 7, 11);
    test_linear_case(p, 1, 4, 9, 12);
    test_linear_case(p, 8, 64, 64, 13);  // T*N*K = 32K: the pooled backend splits it
    test_linear_f16(p);
    test_linear_q8(p);
  }
  test_linear_determinism(pool);
}

// ---- rmsnorm, rope, swiglu ----

void test_rmsnorm(ThreadPool* pool) {
  CpuBackend be(pool);
  test::Rng rng(41);
  for (int C : {4, 13}) {
    const int T = 3;
    const float eps = 1e-5f;
    Vec x = test::random_floats(rng, (size_t)T * C, -2.f, 2.f), w = test::random_floats(rng, (size_t)C, 0.5f, 1.5f);
    const Vec r = test::random_floats(rng, (size_t)T * C), dw0 = test::random_floats(rng, (size_t)C);
    auto loss = [&] {
      Vec y((size_t)T * C);
      be.rmsnorm(y.data(), x.data(), w.data(), T, C, eps);
      return weighted_sum(r, y);
    };
    Vec dx((size_t)T * C, kNaN), dw = dw0;
    be.rmsnorm_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), T, C, eps);
    const std::string name = "rmsnorm C=" + std::to_string(C) + backend_label(pool);
    check_grad(name + " dx", x, dx, loss, 42);
    check_grad(name + " dw (accumulated)", w, minus(dw, dw0), loss, 43);
    Vec in_place = r;  // dx may alias dy
    be.rmsnorm_backward(in_place.data(), nullptr, in_place.data(), x.data(), w.data(), T, C, eps);
    EXPECT(same_bits(in_place, dx));
  }
}

void test_rope(ThreadPool* pool) {
  CpuBackend be(pool);
  test::Rng rng(51);
  const std::vector<int32_t> pos{0, 3, 17, 1000};
  const int T = (int)pos.size(), NH = 2;
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit})
    for (int HS : {4, 6})
      for (int dims : {HS, HS - 2}) {
        Vec x = test::random_floats(rng, (size_t)T * NH * HS);
        const Vec r = test::random_floats(rng, x.size());
        auto loss = [&] {
          Vec y = x;
          be.rope(y.data(), pos.data(), T, NH, HS, dims, 10000.f, layout);
          return weighted_sum(r, y);
        };
        Vec dx = r;
        be.rope_backward(dx.data(), pos.data(), T, NH, HS, dims, 10000.f, layout);
        const std::string name = std::string("rope ") + (layout == RopeLayout::Interleaved ? "interleaved" : "half") +
                                 " HS=" + std::to_string(HS) + " dims=" + std::to_string(dims) + backend_label(pool);
        check_grad(name + " dx", x, dx, loss, 52);
        Vec back = x;  // the backward is the inverse rotation
        be.rope(back.data(), pos.data(), T, NH, HS, dims, 10000.f, layout);
        be.rope_backward(back.data(), pos.data(), T, NH, HS, dims, 10000.f, layout);
        test::compare((name + " inverse of forward").c_str(), back.data(), x.data(), x.size(), 1e-5f, 1e-5f);
      }
  Vec x(8, 1.f);
  const int32_t p0 = 1;
  EXPECT_THROWS_CODE(be.rope_backward(x.data(), &p0, 1, 1, 8, 7, 10000.f, RopeLayout::Interleaved),
                     ErrorCode::InvalidArg);
}

void test_swiglu(ThreadPool* pool) {
  CpuBackend be(pool);
  test::Rng rng(61);
  const int64_t n = 50;
  Vec gate = test::random_floats(rng, (size_t)n, -4.f, 4.f), up = test::random_floats(rng, (size_t)n, -2.f, 2.f);
  const Vec r = test::random_floats(rng, (size_t)n);
  auto loss = [&] {
    Vec y((size_t)n);
    be.swiglu(y.data(), gate.data(), up.data(), n);
    return weighted_sum(r, y);
  };
  Vec dg((size_t)n, kNaN), du((size_t)n, kNaN);
  be.swiglu_backward(dg.data(), du.data(), r.data(), gate.data(), up.data(), n);
  check_grad("swiglu dgate" + backend_label(pool), gate, dg, loss, 62);
  check_grad("swiglu dup" + backend_label(pool), up, du, loss, 63);
}

// ---- attention ----

struct AttnShape {
  int T, S, NH, NKV, HS;
  std::string str() const {
    return "T=" + std::to_string(T) + " S=" + std::to_string(S) + " NH/NKV=" + std::to_string(NH) + "/" +
           std::to_string(NKV) + " HS=" + std::to_string(HS);
  }
};

// 2/3 of the slots visible; every row sees two or more except `blind` (-1: none), which sees nothing.
std::vector<uint8_t> random_mask(test::Rng& rng, int T, int S, int blind) {
  std::vector<uint8_t> m((size_t)T * S);
  for (int t = 0; t < T; t++) {
    int seen = 0;
    for (int j = 0; j < S; j++) seen += (m[(size_t)t * S + j] = rng.below(3) != 0);
    if (seen < 2) m[(size_t)t * S] = m[(size_t)t * S + S - 1] = 1;  // a softmax over one slot has no gradient
    if (t == blind)
      for (int j = 0; j < S; j++) m[(size_t)t * S + j] = 0;
  }
  return m;
}

// Attention in double, written from its definition: the reference the tight gradient check differences.
double attention_loss_double(const AttnShape& a, const std::vector<double>& q, const std::vector<double>& k,
                             const std::vector<double>& v, const std::vector<uint8_t>& mask, const Vec& r) {
  const int QD = a.NH * a.HS, KVD = a.NKV * a.HS, G = a.NH / a.NKV;
  std::vector<double> p((size_t)a.S);
  double loss = 0;
  for (int t = 0; t < a.T; t++)
    for (int h = 0; h < a.NH; h++) {
      const int qo = t * QD + h * a.HS, kv = (h / G) * a.HS;
      double m = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int j = 0; j < a.S; j++) {
        p[j] = 0;
        for (int d = 0; d < a.HS; d++) p[j] += q[qo + d] * k[j * KVD + kv + d] / std::sqrt((double)a.HS);
        if (mask[(size_t)t * a.S + j]) m = std::max(m, p[j]);
      }
      for (int j = 0; j < a.S; j++) sum += p[j] = mask[(size_t)t * a.S + j] ? std::exp(p[j] - m) : 0.0;
      for (int d = 0; d < a.HS && sum > 0; d++) {
        double o = 0;
        for (int j = 0; j < a.S; j++) o += p[j] * v[j * KVD + kv + d];
        loss += r[qo + d] * o / sum;
      }
    }
  return loss;
}

struct AttnGrads {
  Vec out, probs, dq, dk, dv;
};

AttnGrads run_attention(CpuBackend& be, const AttnShape& a, const Vec& q, const Vec& k, const Vec& v,
                        const uint8_t* mask, const Vec& dout, const Vec& dk0, const Vec& dv0) {
  const size_t QD = (size_t)a.NH * a.HS;
  AttnGrads g{Vec(a.T * QD, kNaN), Vec((size_t)a.NH * a.T * a.S, kNaN), Vec(a.T * QD, kNaN), dk0, dv0};
  be.attention_forward_train(g.out.data(), g.probs.data(), q.data(), k.data(), v.data(), mask, a.T, a.S, a.NH, a.NKV,
                             a.HS);
  be.attention_backward(g.dq.data(), g.dk.data(), g.dv.data(), dout.data(), g.probs.data(), q.data(), k.data(),
                        v.data(), a.T, a.S, a.NH, a.NKV, a.HS);
  return g;
}

// Probabilities: rows sum to 1 over visible slots, zero elsewhere; a blind row has zero probs and output.
void check_probs(const AttnShape& a, const AttnGrads& g, const std::vector<uint8_t>& mask, int blind) {
  const size_t QD = (size_t)a.NH * a.HS;
  bool ok = true;
  for (int h = 0; h < a.NH; h++)
    for (int t = 0; t < a.T; t++) {
      double sum = 0;
      for (int j = 0; j < a.S; j++) {
        const float p = g.probs[((size_t)h * a.T + t) * a.S + j];
        if (!mask[(size_t)t * a.S + j]) ok = ok && p == 0.f;
        sum += p;
      }
      ok = ok && std::fabs(sum - (t == blind ? 0.0 : 1.0)) <= 1e-5;
      if (t == blind)
        for (int d = 0; d < a.HS; d++) ok = ok && g.out[t * QD + (size_t)h * a.HS + d] == 0.f &&
                                            g.dq[t * QD + (size_t)h * a.HS + d] == 0.f;
    }
  if (!ok) std::printf("attention %s: probs/blind-row invariants FAIL\n", a.str().c_str());
  EXPECT(ok);
}

void test_attention_grad_case(ThreadPool* pool, const AttnShape& a, bool causal, uint64_t seed) {
  CpuBackend be(pool);
  test::Rng rng(seed);
  const size_t QD = (size_t)a.NH * a.HS, KVD = (size_t)a.NKV * a.HS;
  Vec q = test::random_floats(rng, a.T * QD, -1.5f, 1.5f), k = test::random_floats(rng, a.S * KVD),
      v = test::random_floats(rng, a.S * KVD);
  const Vec r = test::random_floats(rng, a.T * QD), dk0 = test::random_floats(rng, a.S * KVD),
            dv0 = test::random_floats(rng, a.S * KVD);
  const int blind = causal || a.T < 3 ? -1 : a.T / 2;
  std::vector<uint8_t> mask = random_mask(rng, a.T, a.S, blind);
  if (causal)
    for (int t = 0; t < a.T; t++)
      for (int j = 0; j < a.S; j++) mask[(size_t)t * a.S + j] = j < a.S - a.T + t + 1;
  const uint8_t* mp = causal ? nullptr : mask.data();
  auto loss = [&] {
    Vec out(a.T * QD), probs((size_t)a.NH * a.T * a.S);
    be.attention_forward_train(out.data(), probs.data(), q.data(), k.data(), v.data(), mp, a.T, a.S, a.NH, a.NKV,
                               a.HS);
    return weighted_sum(r, out);
  };
  const AttnGrads g = run_attention(be, a, q, k, v, mp, r, dk0, dv0);
  check_probs(a, g, mask, blind);
  const std::string name = std::string("attention ") + (causal ? "causal " : "masked ") + a.str() +
                           backend_label(pool);
  check_grad(name + " dq", q, g.dq, loss, seed + 1);
  check_grad(name + " dk (acc)", k, minus(g.dk, dk0), loss, seed + 2);
  check_grad(name + " dv (acc)", v, minus(g.dv, dv0), loss, seed + 3);
  std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end()), vd(v.begin(), v.end());
  auto exact = [&] { return attention_loss_double(a, qd, kd, vd, mask, r); };
  check_grad_exact(name + " dq vs double", qd, g.dq, exact, seed + 4);
  check_grad_exact(name + " dk vs double", kd, minus(g.dk, dk0), exact, seed + 5);
  check_grad_exact(name + " dv vs double", vd, minus(g.dv, dv0), exact, seed + 6);
}

// Above the parallel threshold: pooled twice and serial give the same bits.
void test_attention_determinism(ThreadPool& pool) {
  CpuBackend serial(nullptr), pooled(&pool);
  test::Rng rng(81);
  for (const AttnShape& a : {AttnShape{16, 32, 4, 2, 16}, AttnShape{24, 40, 8, 4, 8}, AttnShape{9, 64, 6, 3, 12}}) {
    const size_t QD = (size_t)a.NH * a.HS, KVD = (size_t)a.NKV * a.HS;
    const Vec q = test::random_floats(rng, a.T * QD, -1.5f, 1.5f), k = test::random_floats(rng, a.S * KVD),
              v = test::random_floats(rng, a.S * KVD), dout = test::random_floats(rng, a.T * QD),
              dk0 = test::random_floats(rng, a.S * KVD), dv0 = test::random_floats(rng, a.S * KVD);
    const std::vector<uint8_t> mask = random_mask(rng, a.T, a.S, 2);
    const AttnGrads x = run_attention(pooled, a, q, k, v, mask.data(), dout, dk0, dv0);
    const AttnGrads y = run_attention(pooled, a, q, k, v, mask.data(), dout, dk0, dv0);
    const AttnGrads z = run_attention(serial, a, q, k, v, mask.data(), dout, dk0, dv0);
    bool ok = true;
    for (const AttnGrads* o : {&y, &z})
      ok = ok && same_bits(x.out, o->out) && same_bits(x.probs, o->probs) && same_bits(x.dq, o->dq) &&
           same_bits(x.dk, o->dk) && same_bits(x.dv, o->dv);
    std::printf("attention train %s: 2 threads twice and serial bit-identical: %s\n", a.str().c_str(),
                ok ? "ok" : "FAIL");
    EXPECT(ok);
  }
}

// attention_forward_train against Backend::attention over the same visible set (causal with n_past, or
// a random mask), serial and pooled, all cases gathered into one comparison per kind.
void test_attention_matches_forward(ThreadPool& pool) {
  test::Rng rng(91);
  for (ThreadPool* p : {(ThreadPool*)nullptr, &pool}) {
    CpuBackend be(p);
    for (int kind = 0; kind < 3; kind++) {  // 0: explicit causal mask, 1: no mask (causal), 2: random mask
      Vec got, ref;
      for (int n_past : {0, 3, 17})
        for (int T : {1, 4, 9})
          for (const auto& h : {std::vector<int>{4, 2}, std::vector<int>{2, 2}, std::vector<int>{8, 4}})
            for (int HS : {4, 6, 16}) {
              const int S = n_past + T, NH = h[0], NKV = h[1];
              const size_t QD = (size_t)NH * HS, KVD = (size_t)NKV * HS;
              const Vec q = test::random_floats(rng, T * QD, -2.f, 2.f), k = test::random_floats(rng, S * KVD),
                        v = test::random_floats(rng, S * KVD);
              std::vector<uint8_t> mask = random_mask(rng, T, S, T > 2 ? 1 : -1);
              if (kind < 2)
                for (int t = 0; t < T; t++)
                  for (int j = 0; j < S; j++) mask[(size_t)t * S + j] = j < n_past + t + 1;
              Vec out(T * QD, kNaN), probs((size_t)NH * T * S, kNaN), want(T * QD, kNaN);
              be.attention(want.data(), q.data(), k.data(), v.data(), kind == 2 ? mask.data() : nullptr, T, n_past,
                           NH, NKV, HS);
              be.attention_forward_train(out.data(), probs.data(), q.data(), k.data(), v.data(),
                                         kind == 1 ? nullptr : mask.data(), T, S, NH, NKV, HS);
              got.insert(got.end(), out.begin(), out.end());
              ref.insert(ref.end(), want.begin(), want.end());
            }
      const char* kinds[] = {"causal mask", "no mask", "random mask"};
      const std::string label = std::string("attention_forward_train == attention, ") + kinds[kind] +
                                backend_label(p);
      test::compare(label.c_str(), got.data(), ref.data(), got.size(), 1e-5f, 0.f);
    }
  }
}

void test_attention(ThreadPool& pool) {
  uint64_t seed = 100;
  for (ThreadPool* p : {(ThreadPool*)nullptr, &pool}) {
    for (int T : {1, 3, 5})
      for (int S : {4, 9})
        for (const auto& h : {std::vector<int>{4, 2}, std::vector<int>{2, 2}})
          for (int HS : {4, 6}) test_attention_grad_case(p, AttnShape{T, S, h[0], h[1], HS}, false, seed += 10);
    test_attention_grad_case(p, AttnShape{3, 5, 4, 2, 4}, true, seed += 10);
    test_attention_grad_case(p, AttnShape{16, 32, 4, 2, 16}, true, seed += 10);  // pooled: split over kv heads
    test_attention_grad_case(p, AttnShape{16, 32, 4, 2, 16}, false, seed += 10);
  }
  test_attention_determinism(pool);
  test_attention_matches_forward(pool);
  CpuBackend be(nullptr);
  Vec buf(64, 1.f);
  EXPECT_THROWS_CODE(be.attention_forward_train(buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), nullptr,
                                                2, 2, 3, 2, 4),
                     ErrorCode::InvalidArg);
  EXPECT_THROWS_CODE(be.attention_forward_train(buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), nullptr,
                                                3, 2, 2, 2, 4),
                     ErrorCode::InvalidArg);  // causal needs S >= T
  EXPECT_THROWS_CODE(be.attention_backward(buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), buf.data(),
                                           buf.data(), buf.data(), 2, 2, 2, 0, 4),
                     ErrorCode::InvalidArg);
}

// ---- losses ----

// Checks a double against a double reference: |diff| <= 1e-9 + 1e-6 |ref|.
void expect_close(const std::string& label, double got, double ref) {
  const double diff = std::fabs(got - ref);
  const bool ok = diff <= 1e-9 + 1e-6 * std::fabs(ref);
  std::printf("%-48s got %.12g ref %.12g |diff|=%.3g tol=1e-9+1e-6*|ref| %s\n", label.c_str(), got, ref, diff,
              ok ? "ok" : "FAIL");
  if (!ok) test::failures()++;
}

void test_cross_entropy(ThreadPool* pool) {
  CpuBackend be(pool);
  test::Rng rng(201);
  const int T = 6, V = 11;
  const float grad_scale = 0.25f;
  Vec logits = test::random_floats(rng, (size_t)T * V, -3.f, 3.f);
  for (int i = 0; i < V; i++) logits[2 * V + i] += 80.f;  // large logits: needs the max subtraction
  std::vector<int32_t> targets{3, -1, 5, 0, 0, -1};
  // Row 3's target is its argmax, so top-1 counts at least one hit.
  for (int i = 0; i < V; i++)
    if (logits[3 * V + i] > logits[3 * V + targets[3]]) targets[3] = i;
  double ref_loss = 0;
  int ref_hits = 0;
  for (int t = 0; t < T; t++) {
    if (targets[t] < 0) continue;
    const float* l = logits.data() + t * V;
    double m = l[0];
    int arg = 0;
    for (int i = 1; i < V; i++)
      if (l[i] > m) m = l[i], arg = i;
    double s = 0;
    for (int i = 0; i < V; i++) s += std::exp((double)l[i] - m);
    ref_loss += m + std::log(s) - l[targets[t]];
    ref_hits += arg == targets[t];
  }
  Vec d((size_t)T * V, kNaN);
  double loss = 0.5;
  int counted = 2, hits = 1;
  be.softmax_cross_entropy(d.data(), logits.data(), targets.data(), T, V, grad_scale, &loss, &counted, &hits);
  const std::string name = "cross-entropy" + backend_label(pool);
  expect_close(name + " loss (+= 0.5)", loss - 0.5, ref_loss);
  EXPECT(counted == 2 + 4);
  EXPECT(hits == 1 + ref_hits && ref_hits >= 1);
  for (int t : {1, 5})
    for (int i = 0; i < V; i++) EXPECT(d[(size_t)t * V + i] == 0.f);
  check_grad(name + " dlogits", logits, d, [&] {
    double l = 0;
    be.softmax_cross_entropy(nullptr, logits.data(), targets.data(), T, V, grad_scale, &l, nullptr, nullptr);
    return grad_scale * l;
  }, 202);
  Vec in_place = logits;  // dlogits may be the logits buffer
  be.softmax_cross_entropy(in_place.data(), in_place.data(), targets.data(), T, V, grad_scale, nullptr, nullptr,
                           nullptr);
  EXPECT(same_bits(in_place, d));
  for (int32_t bad : {V, -2}) {
    std::vector<int32_t> tg = targets;
    tg[4] = bad;
    EXPECT_THROWS_CODE(be.softmax_cross_entropy(d.data(), logits.data(), tg.data(), T, V, 1.f, nullptr, nullptr,
                                                nullptr),
                       ErrorCode::InvalidArg);
  }
}

void test_kl(ThreadPool* pool) {
  CpuBackend be(pool);
  test::Rng rng(211);
  const int T = 4, V = 9;
  const float grad_scale = 0.5f;
  const std::vector<uint8_t> row_mask{1, 0, 1, 1};
  for (float tau : {1.f, 2.5f}) {
    Vec s = test::random_floats(rng, (size_t)T * V, -3.f, 3.f);
    const Vec te = test::random_floats(rng, (size_t)T * V, -3.f, 3.f);
    double ref = 0;
    for (int t = 0; t < T; t++) {
      if (!row_mask[t]) continue;
      std::vector<double> ls(V), lt(V);
      double zs = 0, zt = 0;
      for (int i = 0; i < V; i++) zs += std::exp(s[(size_t)t * V + i] / (double)tau);
      for (int i = 0; i < V; i++) zt += std::exp(te[(size_t)t * V + i] / (double)tau);
      for (int i = 0; i < V; i++) {
        const double lps = s[(size_t)t * V + i] / (double)tau - std::log(zs);
        const double lpt = te[(size_t)t * V + i] / (double)tau - std::log(zt);
        ref += std::exp(lpt) * (lpt - lps);
      }
    }
    Vec d((size_t)T * V, kNaN);
    double loss = 0.25;
    be.kl_to_teacher(d.data(), s.data(), te.data(), row_mask.data(), T, V, tau, grad_scale, &loss);
    const std::string name = "kl_to_teacher tau=" + std::to_string(tau).substr(0, 3) + backend_label(pool);
    expect_close(name + " loss (+= 0.25)", loss - 0.25, ref);
    for (int i = 0; i < V; i++) EXPECT(d[(size_t)V + i] == 0.f);
    check_grad(name + " dlogits", s, d, [&] {
      double l = 0;
      be.kl_to_teacher(nullptr, s.data(), te.data(), row_mask.data(), T, V, tau, grad_scale, &l);
      return grad_scale * l;
    }, 212);
    Vec in_place = s;
    be.kl_to_teacher(in_place.data(), in_place.data(), te.data(), row_mask.data(), T, V, tau, grad_scale, nullptr);
    EXPECT(same_bits(in_place, d));
    // A student equal to its teacher: zero loss, zero gradient.
    double self = 0;
    be.kl_to_teacher(d.data(), te.data(), te.data(), nullptr, T, V, tau, grad_scale, &self);
    bool zero = std::fabs(self) < 1e-6;
    for (float x : d) zero = zero && std::fabs(x) < 1e-6f;
    EXPECT(zero);
  }
  Vec d((size_t)T * V);
  EXPECT_THROWS_CODE(be.kl_to_teacher(d.data(), d.data(), d.data(), nullptr, T, V, 0.f, 1.f, nullptr),
                     ErrorCode::InvalidArg);
}

void test_mse(ThreadPool* pool) {
  CpuBackend be(pool);
  test::Rng rng(221);
  const int64_t n = 37;
  const float grad_scale = 0.3f;
  Vec x = test::random_floats(rng, (size_t)n, -2.f, 2.f);
  const Vec target = test::random_floats(rng, (size_t)n, -2.f, 2.f);
  double ref = 0;
  for (int64_t i = 0; i < n; i++) ref += ((double)x[i] - target[i]) * ((double)x[i] - target[i]);
  Vec d((size_t)n, kNaN);
  double loss = 1.0;
  be.mse(d.data(), x.data(), target.data(), n, grad_scale, &loss);
  expect_close("mse loss (+= 1)" + backend_label(pool), loss - 1.0, ref);
  check_grad("mse dx" + backend_label(pool), x, d, [&] {
    double l = 0;
    be.mse(nullptr, x.data(), target.data(), n, grad_scale, &l);
    return grad_scale * l;
  }, 222);
}

// Above the parallel threshold: the same bits and totals serial and pooled.
void test_loss_determinism(ThreadPool& pool) {
  CpuBackend serial(nullptr), pooled(&pool);
  test::Rng rng(231);
  const int T = 40, V = 1000;
  const Vec logits = test::random_floats(rng, (size_t)T * V, -4.f, 4.f), te = test::random_floats(rng, logits.size());
  std::vector<int32_t> targets((size_t)T);
  for (auto& t : targets) t = rng.below(V + 1) - 1;
  Vec d1(logits.size()), d2(logits.size()), k1(logits.size()), k2(logits.size());
  double l1 = 0, l2 = 0, kl1 = 0, kl2 = 0;
  int c1 = 0, c2 = 0, h1 = 0, h2 = 0;
  serial.softmax_cross_entropy(d1.data(), logits.data(), targets.data(), T, V, 0.1f, &l1, &c1, &h1);
  pooled.softmax_cross_entropy(d2.data(), logits.data(), targets.data(), T, V, 0.1f, &l2, &c2, &h2);
  serial.kl_to_teacher(k1.data(), logits.data(), te.data(), nullptr, T, V, 2.f, 0.1f, &kl1);
  pooled.kl_to_teacher(k2.data(), logits.data(), te.data(), nullptr, T, V, 2.f, 0.1f, &kl2);
  const bool ok = same_bits(d1, d2) && l1 == l2 && c1 == c2 && h1 == h2 && same_bits(k1, k2) && kl1 == kl2;
  std::printf("losses T=%d V=%d: serial and 2 threads bit-identical: %s\n", T, V, ok ? "ok" : "FAIL");
  EXPECT(ok);
}

void test_losses(ThreadPool& pool) {
  for (ThreadPool* p : {(ThreadPool*)nullptr, &pool}) {
    test_cross_entropy(p);
    test_kl(p);
    test_mse(p);
  }
  test_loss_determinism(pool);
}

// ---- optimiser, schedule ----

void test_sum_squares_and_scale(ThreadPool& pool) {
  CpuBackend serial(nullptr), pooled(&pool);
  test::Rng rng(301);
  for (int64_t n : {(int64_t)5, (int64_t)200003}) {
    const Vec x = test::random_floats(rng, (size_t)n, -3.f, 3.f);
    double ref = 0;
    for (float v : x) ref += (double)v * v;
    const double a = serial.sum_squares(x.data(), n), b = pooled.sum_squares(x.data(), n);
    expect_close("sum_squares n=" + std::to_string(n), a, ref);
    EXPECT(a == b);
  }
  Vec x = test::random_floats(rng, 10), want = x;
  for (float& v : want) v *= 0.37f;
  serial.scale(x.data(), 0.37f, 10);
  test::compare("scale", x.data(), want.data(), 10, 0.f, 0.f);
}

void test_adamw(ThreadPool& pool) {
  CpuBackend be(&pool);
  test::Rng rng(311);
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
  for (int step : {1, 5}) {
    const size_t n = 1000;
    Vec w = test::random_floats(rng, n), g = test::random_floats(rng, n);
    Vec m = step == 1 ? Vec(n, 0.f) : test::random_floats(rng, n, -0.1f, 0.1f);
    Vec v = step == 1 ? Vec(n, 0.f) : test::random_floats(rng, n, 0.f, 0.1f);
    Vec wr(n), mr(n), vr(n);
    for (size_t i = 0; i < n; i++) {
      const double mi = b1 * (double)m[i] + (1.0 - b1) * g[i], vi = b2 * (double)v[i] + (1.0 - b2) * g[i] * g[i];
      const double mh = mi / (1.0 - std::pow((double)b1, step)), vh = vi / (1.0 - std::pow((double)b2, step));
      wr[i] = (float)(w[i] - (double)lr * wd * w[i] - (double)lr * mh / (std::sqrt(vh) + eps));
      mr[i] = (float)mi;
      vr[i] = (float)vi;
    }
    be.adamw_step(w.data(), g.data(), m.data(), v.data(), (int64_t)n, lr, b1, b2, eps, wd, step);
    const std::string name = "adamw step " + std::to_string(step);
    test::compare((name + " w").c_str(), w.data(), wr.data(), n, 1e-7f, 1e-6f);
    test::compare((name + " m").c_str(), m.data(), mr.data(), n, 1e-7f, 1e-6f);
    test::compare((name + " v").c_str(), v.data(), vr.data(), n, 1e-7f, 1e-6f);
  }
  // Large enough to split: the same bits as serial.
  CpuBackend serial(nullptr);
  const size_t n = 300000;
  const Vec w0 = test::random_floats(rng, n), g = test::random_floats(rng, n), m0 = test::random_floats(rng, n),
            v0 = test::random_floats(rng, n, 0.f, 1.f);
  Vec w1 = w0, m1 = m0, v1 = v0, w2 = w0, m2 = m0, v2 = v0;
  serial.adamw_step(w1.data(), g.data(), m1.data(), v1.data(), (int64_t)n, lr, b1, b2, eps, wd, 3);
  be.adamw_step(w2.data(), g.data(), m2.data(), v2.data(), (int64_t)n, lr, b1, b2, eps, wd, 3);
  EXPECT(same_bits(w1, w2) && same_bits(m1, m2) && same_bits(v1, v2));
  EXPECT_THROWS_CODE(be.adamw_step(w1.data(), g.data(), m1.data(), v1.data(), 4, lr, b1, b2, eps, wd, 0),
                     ErrorCode::InvalidArg);
}

void test_lr_schedule() {
  auto near = [](float a, double b) { return std::fabs(a - b) <= 1e-9 + 1e-6 * std::fabs(b); };
  EXPECT(cosine_lr(0, 10, 110, 1e-3f, 1e-4f) == 0.f);
  EXPECT(near(cosine_lr(5, 10, 110, 1e-3f, 1e-4f), 5e-4));
  EXPECT(near(cosine_lr(10, 10, 110, 1e-3f, 1e-4f), 1e-3));  // warm-up end: the peak
  EXPECT(near(cosine_lr(60, 10, 110, 1e-3f, 1e-4f), 5.5e-4));  // half-way through the decay: the mean
  EXPECT(near(cosine_lr(85, 10, 110, 1e-3f, 1e-4f), 1e-4 + 0.5 * (1 + std::cos(0.75 * 3.14159265358979323846)) * 9e-4));
  EXPECT(near(cosine_lr(110, 10, 110, 1e-3f, 1e-4f), 1e-4));
  EXPECT(near(cosine_lr(500, 10, 110, 1e-3f, 1e-4f), 1e-4));
  EXPECT(near(cosine_lr(0, 0, 100, 1.f, 0.f), 1.0));  // no warm-up: starts at the peak
  EXPECT(clip_scale(25.0, 10.f) == 1.f);
  EXPECT(near(clip_scale(400.0, 10.f), 0.5));
  EXPECT(clip_scale(400.0, 0.f) == 1.f);
  EXPECT(clip_scale(std::numeric_limits<double>::infinity(), 1.f) == 0.f);
  std::printf("cosine_lr, clip_scale: checked\n");
}

}  // namespace

int main() {
  try {
    ThreadPool pool(2);
    test_linear(pool);
    for (ThreadPool* p : {(ThreadPool*)nullptr, &pool}) {
      test_rmsnorm(p);
      test_rope(p);
      test_swiglu(p);
    }
    test_attention(pool);
    test_losses(pool);
    test_sum_squares_and_scale(pool);
    test_adamw(pool);
    test_lr_schedule();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    test::failures()++;
  }
  return test::finish("test_backward");
}
