// CPU optimiser ops: the squared norm (for global gradient-norm clipping), scaling, and the AdamW update.
// The squared norm is summed in fixed-size chunks whatever the thread count, so it is reproducible.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"

namespace chimera {

namespace {

// Elements per partial sum of sum_squares, and the size below which element-wise ops stay serial.
constexpr int64_t kChunk = 1 << 16;

// Four double lanes: independent sums the compiler can keep in registers side by side.
double sum_squares_range_cpu(const float* x, int64_t n) {
  double lanes[4] = {};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; l++) lanes[l] += (double)x[i + l] * x[i + l];
  double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

struct AdamW {
  float lr, beta1, beta2, eps, decay;  // decay = lr * weight_decay
  float c1, c2;                        // 1 / (1 - beta^step): the bias corrections
};

void adamw_range_cpu(float* w, const float* g, float* m, float* v, int64_t i0, int64_t i1, const AdamW& a) {
  for (int64_t i = i0; i < i1; i++) {
    const float gi = g[i];
    const float mi = a.beta1 * m[i] + (1.f - a.beta1) * gi;
    const float vi = a.beta2 * v[i] + (1.f - a.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float update = (mi * a.c1) / (std::sqrt(vi * a.c2) + a.eps);
    w[i] -= a.decay * w[i] + a.lr * update;
  }
}

}  // namespace

double CpuBackend::sum_squares(const float* x, int64_t n) {
  CHIMERA_CHECK(n >= 0, ErrorCode::InvalidArg, "sum_squares: negative length ", n);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part((size_t)chunks, 0.0);  // (chunks)
  auto run = [&](int c) {
    const int64_t b = (int64_t)c * kChunk;
    part[(size_t)c] = sum_squares_range_cpu(x + b, std::min(kChunk, n - b));
  };
  if (!pool_ || pool_->size() == 1 || chunks < 2)
    for (int64_t c = 0; c < chunks; c++) run((int)c);
  else
    pool_->run((int)chunks, [&](int c, int) { run(c); });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

void CpuBackend::scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void CpuBackend::adamw_step(float* w, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                            float beta2, float eps, float weight_decay, int step) {
  CHIMERA_CHECK(step >= 1, ErrorCode::InvalidArg, "adamw_step: step counts from 1, got ", step);
  CHIMERA_CHECK(beta1 >= 0.f && beta1 < 1.f && beta2 >= 0.f && beta2 < 1.f, ErrorCode::InvalidArg,
                "adamw_step: betas must be in [0, 1), got ", beta1, " and ", beta2);
  CHIMERA_CHECK(n >= 0, ErrorCode::InvalidArg, "adamw_step: negative length ", n);
  const AdamW a{lr,
                beta1,
                beta2,
                eps,
                lr * weight_decay,
                (float)(1.0 / (1.0 - std::pow((double)beta1, step))),
                (float)(1.0 / (1.0 - std::pow((double)beta2, step)))};
  if (!pool_ || pool_->size() == 1 || n < 2 * kChunk)
    adamw_range_cpu(w, g, m, v, 0, n, a);
  else
    pool_->parallel_for(n, 1024, [&](int64_t i0, int64_t i1, int) { adamw_range_cpu(w, g, m, v, i0, i1, a); });
}

}  // namespace chimera
