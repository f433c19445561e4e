// CPU attention for training: a forward pass that keeps its softmax probabilities, and the backward pass
// that uses them. The forward splits (head, query row) pairs over the pool; the backward gives each task a
// whole KV-head group, so the dk/dv rows a group accumulates into are written by one thread only.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "backend/backend.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"

namespace chimera {

namespace {

// Below this many multiply-adds (T * NH * S * HS) attention runs on the calling thread.
constexpr double kParallelAttentionTrainWork = 32.0 * 1024;

void check_attention_train_shape(const char* op, int T, int S, int NH, int NKV, int HS) {
  CHIMERA_CHECK(NH > 0 && NKV > 0 && NH % NKV == 0 && HS > 0 && T >= 0 && S >= 0, ErrorCode::InvalidArg, op,
                ": bad shape NH=", NH, " NKV=", NKV, " HS=", HS, " T=", T, " S=", S);
}

// Eight independent partial sums so the loop vectorises without reassociation.
float dot_f32(const float* a, const float* b, int n) {
  float lanes[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) lanes[l] += a[i + l] * b[i + l];
  float s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// y (n) += a * x (n). One stream per loop, so each vectorises.
inline void axpy_f32(float* y, float a, const float* x, int n) {
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

struct AttentionTrainShape {
  int T, S, NH, NKV, HS;
  int G() const { return NH / NKV; }
  int QD() const { return NH * HS; }
  int KVD() const { return NKV * HS; }
};

// One (head h, query row t): p (S) = softmax of the visible q.k * scale, o (HS) = p @ v.
void attention_train_row_cpu(float* o, float* p, const float* q, const float* k, const float* v, const uint8_t* mask,
                             const AttentionTrainShape& a, int h, int t) {
  const int S = a.S, HS = a.HS, KVD = a.KVD();
  const float scale = 1.f / std::sqrt((float)HS);
  const float* qv = q + (int64_t)t * a.QD() + (int64_t)h * HS;  // (HS)
  const int64_t kv = (int64_t)(h / a.G()) * HS;
  const uint8_t* mrow = mask ? mask + (int64_t)t * S : nullptr;  // (S)
  const int visible_end = S - a.T + t + 1;                        // causal, when there is no mask
  float m = -std::numeric_limits<float>::infinity();
  bool any = false;
  for (int j = 0; j < S; j++) {
    const bool vis = mrow ? mrow[j] != 0 : j < visible_end;
    p[j] = vis ? dot_f32(qv, k + (int64_t)j * KVD + kv, HS) * scale : 0.f;
    if (vis) m = std::max(m, p[j]);
    any = any || vis;
  }
  std::fill(o, o + HS, 0.f);
  if (!any) {
    std::fill(p, p + S, 0.f);
    return;
  }
  double sum = 0;
  for (int j = 0; j < S; j++) {
    const bool vis = mrow ? mrow[j] != 0 : j < visible_end;
    p[j] = vis ? std::exp(p[j] - m) : 0.f;
    sum += p[j];
  }
  const float inv = (float)(1.0 / sum);
  for (int j = 0; j < S; j++) {
    p[j] *= inv;
    if (p[j] == 0.f) continue;
    const float* vj = v + (int64_t)j * KVD + kv;  // (HS)
    for (int d = 0; d < HS; d++) o[d] += p[j] * vj[d];
  }
}

// The backward of KV-head group g: heads [g*G, (g+1)*G) in order, query rows in order. With dP = dout.v^T
// and dS = P * (dP - rowsum(P * dP)): dq = scale * dS k, dk += scale * dS^T q, dv += P^T dout.
struct AttentionGrads {
  float *dq, *dk, *dv;
  const float *dout, *probs, *q, *k, *v;
};

void attention_backward_group_cpu(const AttentionGrads& a, const AttentionTrainShape& s, int g,
                                  std::vector<float>& dp /*(S)*/) {
  const int S = s.S, HS = s.HS, KVD = s.KVD(), QD = s.QD();
  const float scale = 1.f / std::sqrt((float)HS);
  const int64_t kv = (int64_t)g * HS;
  for (int h = g * s.G(); h < (g + 1) * s.G(); h++) {
    for (int t = 0; t < s.T; t++) {
      const float* p = a.probs + ((int64_t)h * s.T + t) * S;        // (S)
      const int64_t off = (int64_t)t * QD + (int64_t)h * HS;
      const float *go = a.dout + off, *qv = a.q + off;              // (HS)
      float* dqv = a.dq + off;                                      // (HS)
      double rowsum = 0;
      for (int j = 0; j < S; j++) {
        dp[j] = p[j] == 0.f ? 0.f : dot_f32(go, a.v + (int64_t)j * KVD + kv, HS);
        rowsum += (double)p[j] * dp[j];
      }
      const float D = (float)rowsum;
      std::fill(dqv, dqv + HS, 0.f);
      for (int j = 0; j < S; j++) {
        if (p[j] == 0.f) continue;  // masked (or underflowed): contributes exactly nothing
        const float c = scale * (p[j] * (dp[j] - D)), pj = p[j];
        const float* kj = a.k + (int64_t)j * KVD + kv;  // (HS)
        float* dkj = a.dk + (int64_t)j * KVD + kv;      // (HS)
        float* dvj = a.dv + (int64_t)j * KVD + kv;      // (HS)
        axpy_f32(dqv, c, kj, HS);
        axpy_f32(dkj, c, qv, HS);
        axpy_f32(dvj, pj, go, HS);
      }
    }
  }
}

}  // namespace

void CpuBackend::attention_forward_train(float* out, float* probs, const float* q, const float* k, const float* v,
                                         const uint8_t* mask, int T, int S, int NH, int NKV, int HS) {
  check_attention_train_shape("attention_forward_train", T, S, NH, NKV, HS);
  CHIMERA_CHECK(mask || S >= T, ErrorCode::InvalidArg, "attention_forward_train: a causal pass (no mask) needs S >= T",
                ", got S=", S, " T=", T);
  const AttentionTrainShape a{T, S, NH, NKV, HS};
  auto rows = [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {  // i = h * T + t: the probs row
      const int h = (int)(i / T), t = (int)(i % T);
      attention_train_row_cpu(out + (int64_t)t * a.QD() + (int64_t)h * HS, probs + i * S, q, k, v, mask, a, h, t);
    }
  };
  const int64_t n = (int64_t)NH * T;
  if (n == 0) return;
  const double work = (double)T * NH * S * HS;
  if (!pool_ || pool_->size() == 1 || work < kParallelAttentionTrainWork)
    rows(0, n, 0);
  else
    pool_->parallel_for(n, 1, rows);
}

void CpuBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs,
                                    const float* q, const float* k, const float* v, int T, int S, int NH, int NKV,
                                    int HS) {
  check_attention_train_shape("attention_backward", T, S, NH, NKV, HS);
  if (T == 0) return;
  const AttentionTrainShape s{T, S, NH, NKV, HS};
  const AttentionGrads a{dq, dk, dv, dout, probs, q, k, v};
  const double work = (double)T * NH * S * HS;
  if (!pool_ || pool_->size() == 1 || NKV == 1 || work < kParallelAttentionTrainWork) {
    std::vector<float> dp((size_t)S);
    for (int g = 0; g < NKV; g++) attention_backward_group_cpu(a, s, g, dp);
    return;
  }
  pool_->run(NKV, [&](int g, int) {
    std::vector<float> dp((size_t)S);
    attention_backward_group_cpu(a, s, g, dp);
  });
}

}  // namespace chimera
