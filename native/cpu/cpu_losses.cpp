// CPU training losses: softmax cross-entropy against target tokens, KL divergence to a teacher's logits
// (distillation) and mean squared error, each with its gradient. Rows are split over the pool; each row's
// loss is kept apart and the rows are summed in order, so the totals do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "backend/backend.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"

namespace chimera {

namespace {

// Below this many logits (T * V) a loss runs on the calling thread.
constexpr double kParallelLossWork = 32.0 * 1024;

void for_rows(ThreadPool* pool, int T, int V, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (T <= 0) return;
  if (!pool || pool->size() == 1 || (double)T * V < kParallelLossWork)
    fn(0, T, 0);
  else
    pool->parallel_for(T, 1, fn);
}

// One row: returns -log softmax(l)[target]; d (V), if not null, = grad_scale * (softmax - onehot). The
// exponentials are taken after subtracting the maximum and summed in double. d may equal l.
double cross_entropy_row_cpu(float* d, const float* l, int32_t target, int V, float grad_scale, bool* correct) {
  float m = l[0];
  int argmax = 0;
  for (int i = 1; i < V; i++)
    if (l[i] > m) {
      m = l[i];
      argmax = i;
    }
  *correct = argmax == target;
  const float lt = l[target];  // read before d (maybe l) is written
  double sum = 0;
  if (d) {
    for (int i = 0; i < V; i++) {
      d[i] = std::exp(l[i] - m);
      sum += d[i];
    }
    const float f = (float)(grad_scale / sum);
    for (int i = 0; i < V; i++) d[i] *= f;
    d[target] -= grad_scale;
  } else {
    for (int i = 0; i < V; i++) sum += std::exp(l[i] - m);
  }
  return (double)m + std::log(sum) - (double)lt;
}

double log_sum_exp_scaled(const float* l, int V, float inv_tau, float* max_out) {
  float m = l[0];
  for (int i = 1; i < V; i++) m = std::max(m, l[i]);
  double sum = 0;
  for (int i = 0; i < V; i++) sum += std::exp((l[i] - m) * inv_tau);
  *max_out = m;
  return std::log(sum);
}

// One row: returns KL(p_t || p_s) at temperature 1 / inv_tau; d (V), if not null, = grad_scale * inv_tau *
// (p_s - p_t). d may equal s: each element is read before it is written.
double kl_row_cpu(float* d, const float* s, const float* t, int V, float inv_tau, float grad_scale) {
  float ms, mt;
  const double lzs = log_sum_exp_scaled(s, V, inv_tau, &ms), lzt = log_sum_exp_scaled(t, V, inv_tau, &mt);
  const float f = grad_scale * inv_tau;
  double kl = 0;
  for (int i = 0; i < V; i++) {
    const double lps = (double)((s[i] - ms) * inv_tau) - lzs, lpt = (double)((t[i] - mt) * inv_tau) - lzt;
    const double pt = std::exp(lpt);
    kl += pt * (lpt - lps);
    if (d) d[i] = f * (float)(std::exp(lps) - pt);
  }
  return kl;
}

}  // namespace

void CpuBackend::softmax_cross_entropy(float* dlogits, const float* logits, const int32_t* targets, int T, int V,
                                       float grad_scale, double* loss_sum, int* counted, int* top1_correct) {
  CHIMERA_CHECK(T >= 0 && V > 0, ErrorCode::InvalidArg, "softmax_cross_entropy: bad shape T=", T, " V=", V);
  for (int t = 0; t < T; t++)
    CHIMERA_CHECK(targets[t] >= -1 && targets[t] < V, ErrorCode::InvalidArg, "softmax_cross_entropy: target ",
                  targets[t], " of row ", t, " is outside the vocabulary of ", V, " (-1 ignores a row)");
  std::vector<double> row_loss((size_t)T, 0.0);   // (T)
  std::vector<uint8_t> row_hit((size_t)T, 0);     // (T)
  for_rows(pool_, T, V, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; t++) {
      float* d = dlogits ? dlogits + t * V : nullptr;  // (V)
      if (targets[t] < 0) {
        if (d) std::fill(d, d + V, 0.f);
        continue;
      }
      bool hit = false;
      row_loss[(size_t)t] = cross_entropy_row_cpu(d, logits + t * V, targets[t], V, grad_scale, &hit);
      row_hit[(size_t)t] = hit;
    }
  });
  double loss = 0;
  int n = 0, hits = 0;
  for (int t = 0; t < T; t++) {
    if (targets[t] < 0) continue;
    loss += row_loss[(size_t)t];
    n++;
    hits += row_hit[(size_t)t];
  }
  if (loss_sum) *loss_sum += loss;
  if (counted) *counted += n;
  if (top1_correct) *top1_correct += hits;
}

void CpuBackend::kl_to_teacher(float* dlogits, const float* logits, const float* teacher_logits,
                               const uint8_t* row_mask, int T, int V, float temperature, float grad_scale,
                               double* loss_sum) {
  CHIMERA_CHECK(T >= 0 && V > 0, ErrorCode::InvalidArg, "kl_to_teacher: bad shape T=", T, " V=", V);
  CHIMERA_CHECK(temperature > 0.f && std::isfinite(temperature), ErrorCode::InvalidArg,
                "kl_to_teacher: temperature must be positive, got ", temperature);
  const float inv_tau = 1.f / temperature;
  std::vector<double> row_loss((size_t)T, 0.0);  // (T)
  for_rows(pool_, T, V, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; t++) {
      float* d = dlogits ? dlogits + t * V : nullptr;  // (V)
      if (row_mask && !row_mask[t]) {
        if (d) std::fill(d, d + V, 0.f);
        continue;
      }
      row_loss[(size_t)t] = kl_row_cpu(d, logits + t * V, teacher_logits + t * V, V, inv_tau, grad_scale);
    }
  });
  double loss = 0;
  for (double l : row_loss) loss += l;
  if (loss_sum) *loss_sum += loss;
}

void CpuBackend::mse(float* dx, const float* x, const float* target, int64_t n, float grad_scale, double* loss_sum) {
  CHIMERA_CHECK(n >= 0, ErrorCode::InvalidArg, "mse: negative length ", n);
  double loss = 0;
  const float f = 2.f * grad_scale;
  for (int64_t i = 0; i < n; i++) {
    const float e = x[i] - target[i];
    loss += (double)e * e;
    if (dx) dx[i] = f * e;
  }
  if (loss_sum) *loss_sum += loss;
}

}  // namespace chimera
