// Matrix multiply out (T, N) = x (T, K) @ W^T for decode (T = 1), tree verification (T up to 64) and
// prefill (chunks of 64 rows).
//  - Tensor cores (WMMA 16x16x16, F32 accumulate) for F16/BF16 weights with N and K multiples of 16:
//    a block owns 16 weight rows; its 8 warps stream the K dimension in groups of 8 k-steps (256 bytes
//    of each row), so every weight byte is read once for all T rows, and combine their partial sums in
//    warp order. x is rounded to the weight type. T = 1 runs the same code (one 16-row token tile),
//    so the result of a row never depends on how many rows share the call.
//  - CUDA cores for F32 weights and odd shapes: a warp per weight row, 4 token rows per pass.
#include <mma.h>

#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {
namespace cuda {

namespace {

constexpr int kWmmaWarps = 8;
constexpr int kWmmaGroup = 8;    // k-steps a warp loads before it multiplies
constexpr int kMaxTokenTiles = 4;  // 64 rows of x per launch
constexpr int kRowsWarps = 8;

template <typename WT>
__global__ void matmul_rows_kernel(float* __restrict__ out, const float* __restrict__ x, const WT* __restrict__ W,
                                   int T, int N, int K) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n = blockIdx.x * kRowsWarps + warp;
  if (n >= N) return;
  const WT* w = W + (size_t)n * K;
  for (int t0 = 0; t0 < T; t0 += 4) {
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (int k = lane; k < K; k += 32) {
      const float wk = to_f32(w[k]);
#pragma unroll
      for (int j = 0; j < 4; j++)
        if (t0 + j < T) acc[j] = fmaf(wk, x[(size_t)(t0 + j) * K + k], acc[j]);
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const float v = warp_sum(acc[j]);
      if (lane == 0 && t0 + j < T) out[(size_t)(t0 + j) * N + n] = v;
    }
  }
}

// Each warp builds the 16x16 x tile of a k-step in shared memory (x rounded to WT; token rows >= T
// are zero), so x needs no separate conversion pass.
template <typename WT, int NT>
__global__ void __launch_bounds__(kWmmaWarps * 32)
    matmul_wmma_kernel(float* __restrict__ out, const WT* __restrict__ W, const float* __restrict__ x, int T, int N,
                       int K) {
  using namespace nvcuda;
  __shared__ float red[kWmmaWarps * NT * 256];
  __shared__ __align__(32) WT stage[kWmmaWarps][256];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n0 = blockIdx.x * 16;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NT];
#pragma unroll
  for (int i = 0; i < NT; i++) wmma::fill_fragment(acc[i], 0.0f);
  const int ksteps = K / 16;
  const WT* wrow = W + (size_t)n0 * K;
  WT* st = stage[warp];
  const int r = lane >> 1, h = (lane & 1) * 8;  // this lane stages token row r, k offsets h..h+7
  for (int g = warp * kWmmaGroup; g < ksteps; g += kWmmaWarps * kWmmaGroup) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, WT, wmma::row_major> a[kWmmaGroup];
#pragma unroll
    for (int u = 0; u < kWmmaGroup; u++)
      if (g + u < ksteps) wmma::load_matrix_sync(a[u], wrow + (size_t)(g + u) * 16, K);
#pragma unroll
    for (int u = 0; u < kWmmaGroup; u++) {
      if (g + u < ksteps) {
        const int k0 = (g + u) * 16 + h;
#pragma unroll
        for (int i = 0; i < NT; i++) {
          const int t = i * 16 + r;
          const float* xr = x + (size_t)t * K + k0;
#pragma unroll
          for (int e = 0; e < 8; e++) st[r * 16 + h + e] = from_f32<WT>(t < T ? xr[e] : 0.f);
          __syncwarp();
          wmma::fragment<wmma::matrix_b, 16, 16, 16, WT, wmma::col_major> b;
          wmma::load_matrix_sync(b, st, 16);  // element (k, t) at t * 16 + k
          wmma::mma_sync(acc[i], a[u], b, acc[i]);
          __syncwarp();
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < NT; i++) wmma::store_matrix_sync(red + (warp * NT + i) * 256, acc[i], 16, wmma::mem_row_major);
  __syncthreads();
  // red[warp][tile] is (16 weight rows, 16 tokens); sum the warps in order.
  for (int idx = threadIdx.x; idx < NT * 256; idx += blockDim.x) {
    const int i = idx >> 8, rr = (idx >> 4) & 15, c = idx & 15;
    const int t = i * 16 + c;
    float s = 0.f;
    for (int w = 0; w < kWmmaWarps; w++) s += red[(w * NT + i) * 256 + rr * 16 + c];
    if (t < T) out[(size_t)t * N + n0 + rr] = s;
  }
}

template <typename WT>
void launch_wmma(cudaStream_t s, float* out, const float* x, const WT* W, int N, int K, int T) {
  for (int t0 = 0; t0 < T; t0 += kMaxTokenTiles * 16) {
    const int Tc = T - t0 < kMaxTokenTiles * 16 ? T - t0 : kMaxTokenTiles * 16;
    const int tiles = (Tc + 15) / 16;
    const float* xc = x + (size_t)t0 * K;
    float* o = out + (size_t)t0 * N;
    const dim3 grid((unsigned)(N / 16)), block(kWmmaWarps * 32);
    switch (tiles) {
      case 1: matmul_wmma_kernel<WT, 1><<<grid, block, 0, s>>>(o, W, xc, Tc, N, K); break;
      case 2: matmul_wmma_kernel<WT, 2><<<grid, block, 0, s>>>(o, W, xc, Tc, N, K); break;
      case 3: matmul_wmma_kernel<WT, 3><<<grid, block, 0, s>>>(o, W, xc, Tc, N, K); break;
      default: matmul_wmma_kernel<WT, 4><<<grid, block, 0, s>>>(o, W, xc, Tc, N, K); break;
    }
    check_launch("matmul (tensor cores)");
  }
}

template <typename WT>
void launch_rows(cudaStream_t s, float* out, const float* x, const WT* W, int N, int K, int T) {
  matmul_rows_kernel<WT><<<grid_for(N, kRowsWarps), kRowsWarps * 32, 0, s>>>(out, x, W, T, N, K);
  check_launch("matmul (CUDA cores)");
}

}  // namespace

bool matmul_uses_tensor_cores(DType dtype, int N, int K) {
  return (dtype == DType::F16 || dtype == DType::BF16) && N % 16 == 0 && K % 16 == 0;
}

void matmul(cudaStream_t s, float* out, const float* x, DType dtype, const void* W, int N, int K, int T) {
  if (T <= 0 || N <= 0) return;
  const bool tc = matmul_uses_tensor_cores(dtype, N, K);
  switch (dtype) {
    case DType::F32: return launch_rows(s, out, x, static_cast<const float*>(W), N, K, T);
    case DType::F16:
      if (tc) return launch_wmma(s, out, x, static_cast<const __half*>(W), N, K, T);
      return launch_rows(s, out, x, static_cast<const __half*>(W), N, K, T);
    case DType::BF16:
      if (tc)
        return launch_wmma(s, out, x, static_cast<const __nv_bfloat16*>(W), N, K, T);
      return launch_rows(s, out, x, static_cast<const __nv_bfloat16*>(W), N, K, T);
    default: throw_error(ErrorCode::Unsupported, "CUDA matmul over ", dtype_name(dtype), " weights");
  }
}

}  // namespace cuda
}  // namespace chimera
