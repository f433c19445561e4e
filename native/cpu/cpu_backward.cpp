// CPU backward passes of the linear, rmsnorm, rope and swiglu forward ops (attention's is in
// cpu_attention_train.cpp). Each output element is summed in one fixed order whatever the thread count,
// so a training step gives the same bits serial or split over the pool.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"
#include "cpu/kernels_cpu.h"

namespace chimera {

namespace {

// Below this many multiply-adds a linear backward runs on the calling thread (as the forward matmul).
constexpr double kParallelLinearWork = 32.0 * 1024;
// dx rows updated per pass over W: each (converted) W row is reused for this many rows of dx.
constexpr int64_t kDxTileRows = 16;
// dW rows updated together: each x row is read once for this many rows of dW. dW ranges of a split
// start on a multiple of it, so the tiles (and the bits) are the same for every thread count.
constexpr int64_t kDwTileRows = 4;

// dx rows [t0, t1) of (T, K) = dy (T, N) W (N, K), each element summed over n in ascending order.
void linear_dx_rows_cpu(float* dx, const float* dy, const TensorView& W, int64_t t0, int64_t t1) {
  const int64_t N = W.rows, K = W.cols;
  std::vector<float> wbuf(W.dtype == DType::F32 ? 0 : (size_t)K);  // (K) one converted W row
  for (int64_t a = t0; a < t1; a += kDxTileRows) {
    const int64_t b = std::min(t1, a + kDxTileRows);
    std::fill(dx + a * K, dx + b * K, 0.f);
    for (int64_t n = 0; n < N; n++) {
      const float* w = reinterpret_cast<const float*>(W.row(n));  // (K)
      if (W.dtype != DType::F32) {
        row_to_f32(W.dtype, W.row(n), wbuf.data(), (size_t)K);
        w = wbuf.data();
      }
      for (int64_t t = a; t < b; t++) {
        const float g = dy[t * N + n];
        float* d = dx + t * K;
        for (int64_t k = 0; k < K; k++) d[k] += g * w[k];
      }
    }
  }
}

// dW rows [n0, n1) of (N, K) += dy^T (N, T) x (T, K), each element accumulated over t in ascending order.
void linear_dw_rows_cpu(float* dW, const float* dy, const float* x, int64_t N, int64_t K, int T, int64_t n0,
                        int64_t n1) {
  for (int64_t n = n0; n < n1; n += kDwTileRows) {
    const int64_t rows = std::min(kDwTileRows, n1 - n);
    float* d0 = dW + n * K;
    for (int t = 0; t < T; t++) {
      const float* xt = x + (int64_t)t * K;  // (K)
      const float* g = dy + (int64_t)t * N + n;
      if (rows == kDwTileRows) {
        float *d1 = d0 + K, *d2 = d1 + K, *d3 = d2 + K;
        const float g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3];
        for (int64_t k = 0; k < K; k++) {
          const float xk = xt[k];
          d0[k] += g0 * xk;
          d1[k] += g1 * xk;
          d2[k] += g2 * xk;
          d3[k] += g3 * xk;
        }
      } else {
        for (int64_t r = 0; r < rows; r++) {
          float* d = d0 + r * K;
          const float gr = g[r];
          for (int64_t k = 0; k < K; k++) d[k] += gr * xt[k];
        }
      }
    }
  }
}

}  // namespace

void CpuBackend::linear_backward(float* dx, float* dW, const float* dy, const float* x, const TensorView& W, int T) {
  const int64_t N = W.rows, K = W.cols;
  CHIMERA_CHECK(T >= 0 && N >= 0 && K >= 0, ErrorCode::InvalidArg, "bad linear_backward shape T=", T, " N=", N,
                " K=", K);
  CHIMERA_CHECK(!dW || W.dtype == DType::F32, ErrorCode::Unsupported, "linear_backward: the weight gradient needs ",
                "an F32 weight (trainable weights are kept in F32), this one is ", dtype_name(W.dtype));
  CHIMERA_CHECK(!dx || W.dtype != DType::Q8_0 || K % kQ8BlockSize == 0, ErrorCode::Tensor, "Q8_0 matrix with ", K,
                " columns (not a multiple of 32)");
  if (T == 0 || N == 0 || K == 0) {
    if (dx) std::fill(dx, dx + (int64_t)T * K, 0.f);  // dy W with N = 0 is zero
    return;
  }
  const double work = (double)T * (double)N * (double)K;
  const bool serial = !pool_ || pool_->size() == 1 || work < kParallelLinearWork;
  if (dx) {
    if (serial)
      linear_dx_rows_cpu(dx, dy, W, 0, T);
    else
      pool_->parallel_for(T, 1, [&](int64_t t0, int64_t t1, int) { linear_dx_rows_cpu(dx, dy, W, t0, t1); });
  }
  if (dW) {
    if (serial)
      linear_dw_rows_cpu(dW, dy, x, N, K, T, 0, N);
    else
      pool_->parallel_for(N, kDwTileRows,
                          [&](int64_t n0, int64_t n1, int) { linear_dw_rows_cpu(dW, dy, x, N, K, T, n0, n1); });
  }
}

// y = x * r * w with r = 1 / sqrt(mean(x^2) + eps):
//   dw += dy * x * r;   dx = r * w * dy - x * r^3 / C * sum_c(dy * w * x).
void CpuBackend::rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int T, int C,
                                  float eps) {
  CHIMERA_CHECK(T >= 0 && C > 0, ErrorCode::InvalidArg, "bad rmsnorm_backward shape T=", T, " C=", C);
  for (int t = 0; t < T; t++) {
    const float* xr = x + (int64_t)t * C;    // (C)
    const float* dyr = dy + (int64_t)t * C;  // (C)
    float* dxr = dx + (int64_t)t * C;        // (C)
    double ss = 0, dot = 0;
    for (int c = 0; c < C; c++) {
      ss += (double)xr[c] * xr[c];
      dot += (double)dyr[c] * w[c] * xr[c];
    }
    const double r = 1.0 / std::sqrt(ss / C + (double)eps);
    const float rf = (float)r, coef = (float)(r * r * r * dot / C);
    // dw before dx: dx may alias dy.
    if (dw)
      for (int c = 0; c < C; c++) dw[c] += dyr[c] * xr[c] * rf;
    for (int c = 0; c < C; c++) dxr[c] = rf * w[c] * dyr[c] - coef * xr[c];
  }
}

// The rotation by angle a is orthogonal, so its transpose (the backward) is the rotation by -a. Angles
// are computed exactly as the forward computes them (double, then rounded to float).
void CpuBackend::rope_backward(float* dx, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                               RopeLayout layout) {
  rope_rotate_cpu(dx, pos, T, n_heads, HS, rope_dims, theta, layout, -1);  // the transposed rotation
}

// out = g * s(g) * u with s the logistic sigmoid: d/dg = u * s * (1 + g (1 - s)), d/du = g * s.
void CpuBackend::swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                                 int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float g = gate[i], u = up[i], d = dout[i];
    const float s = 1.f / (1.f + std::exp(-g));
    dgate[i] = d * u * s * (1.f + g * (1.f - s));
    dup[i] = d * g * s;
  }
}

}  // namespace chimera
