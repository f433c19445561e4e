// Matrix multiply out (T, N) = x (T, K) @ W^T for decode (T = 1), tree verification (T up to 64) and
// prefill (chunks of 64 rows).
//  - Tensor cores (WMMA 16x16x16, F32 accumulate) for F16/BF16 weights with N and K multiples of 16.
//    A block owns 64 weight rows x a 256-column slice of K (split-K, so even a 2048-row matrix has
//    hundreds of blocks streaming it): each of its 8 warps loads its 16 rows x 128 columns of weights
//    first, the block stages the slice of x (rounded to the weight type; token rows >= T zero) in
//    shared memory, then the warps multiply. Slices meet in a partial buffer and the last block of a
//    row group (an atomic ticket) sums them in slice order. Every sum has a fixed order that does not
//    depend on T, so a row's result never depends on how many rows share the call (T = 1 runs the
//    same code with one 16-row token tile).
//  - CUDA cores for F32 weights and odd shapes: a warp per weight row, 4 token rows per pass.
#include <mma.h>

#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {
namespace cuda {

namespace {

constexpr int kMaxTokenTiles = 4;  // 64 rows of x per launch
constexpr int kRowsWarps = 8;
constexpr int kBlockRows = 64;     // 4 row tiles of 16
constexpr int kSliceSteps = 16;    // k-steps (of 16 columns) per block
constexpr int kWarpSteps = 8;      // k-steps per warp (two warps per row tile)
constexpr int kStageLd = kSliceSteps * 16 + 8;  // padded stage row (elements): fewer bank conflicts

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

template <typename WT, int NT>
__global__ void __launch_bounds__(256)
    matmul_tc_kernel(float* __restrict__ out, const WT* __restrict__ W, const float* __restrict__ x, int T, int N,
                     int K, float* __restrict__ partials, int* __restrict__ tickets) {
  using namespace nvcuda;
  constexpr int kStageBytes = NT * 16 * kStageLd * (int)sizeof(WT);
  constexpr int kRedBytes = 8 * NT * 256 * (int)sizeof(float);
  __shared__ __align__(128) unsigned char smem[kStageBytes > kRedBytes ? kStageBytes : kRedBytes];
  __shared__ int is_last;
  WT* stage = reinterpret_cast<WT*>(smem);
  float* red = reinterpret_cast<float*>(smem);
  const int warp = threadIdx.x >> 5;
  const int rt = warp & 3, kh = warp >> 2;  // row tile, half of the slice
  const int n0 = blockIdx.x * kBlockRows;
  const int slice = blockIdx.y, slices = gridDim.y;
  const int ksteps = K / 16;
  const int ks0 = slice * kSliceSteps, kw0 = ks0 + kh * kWarpSteps;
  const int row = n0 + rt * 16;
  const bool row_ok = row < N;

  // 1. This warp's weights, issued before the staging so that their latency overlaps it.
  wmma::fragment<wmma::matrix_a, 16, 16, 16, WT, wmma::row_major> a[kWarpSteps];
  if (row_ok) {
#pragma unroll
    for (int u = 0; u < kWarpSteps; u++)
      if (kw0 + u < ksteps) wmma::load_matrix_sync(a[u], W + (size_t)row * K + (size_t)(kw0 + u) * 16, K);
  }
  // 2. The slice of x, rounded to WT, zero beyond T and beyond K.
  const int c0 = ks0 * 16, cols = min(kSliceSteps * 16, K - c0);
  for (int idx = threadIdx.x; idx < NT * 16 * kSliceSteps * 16; idx += blockDim.x) {
    const int t = idx / (kSliceSteps * 16), c = idx % (kSliceSteps * 16);
    const float v = (t < T && c < cols) ? x[(size_t)t * K + c0 + c] : 0.f;
    stage[t * kStageLd + c] = from_f32<WT>(v);
  }
  __syncthreads();
  // 3. Multiply: acc[i] (16 rows, 16 tokens of tile i).
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NT];
#pragma unroll
  for (int i = 0; i < NT; i++) wmma::fill_fragment(acc[i], 0.0f);
  if (row_ok) {
#pragma unroll
    for (int u = 0; u < kWarpSteps; u++) {
      if (kw0 + u < ksteps) {
        const int cc = (kh * kWarpSteps + u) * 16;
#pragma unroll
        for (int i = 0; i < NT; i++) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, WT, wmma::col_major> b;
          wmma::load_matrix_sync(b, stage + i * 16 * kStageLd + cc, kStageLd);  // (k, t) at t * ld + k
          wmma::mma_sync(acc[i], a[u], b, acc[i]);
        }
      }
    }
  }
  __syncthreads();  // the stage becomes the reduction buffer
#pragma unroll
  for (int i = 0; i < NT; i++) wmma::store_matrix_sync(red + (warp * NT + i) * 256, acc[i], 16, wmma::mem_row_major);
  __syncthreads();
  // 4. This block's partial: half 0 + half 1 of each row tile.
  for (int idx = threadIdx.x; idx < 4 * NT * 256; idx += blockDim.x) {
    const int tile = idx / (NT * 256), rem = idx % (NT * 256);
    const int i = rem >> 8, r = (rem >> 4) & 15, c = rem & 15;
    const int t = i * 16 + c, n = n0 + tile * 16 + r;
    if (t < T && n < N)
      partials[((size_t)slice * T + t) * N + n] =
          red[(tile * NT + i) * 256 + r * 16 + c] + red[((4 + tile) * NT + i) * 256 + r * 16 + c];
  }
  // 5. The last block of the row group sums the slices in order and resets the ticket.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) is_last = atomicAdd(&tickets[blockIdx.x], 1) == slices - 1;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  for (int idx = threadIdx.x; idx < kBlockRows * T; idx += blockDim.x) {
    const int t = idx / kBlockRows, n = n0 + idx % kBlockRows;
    if (n >= N) continue;
    float sum = 0.f;
    for (int sl = 0; sl < slices; sl++) sum += __ldcg(&partials[((size_t)sl * T + t) * N + n]);
    out[(size_t)t * N + n] = sum;
  }
  if (threadIdx.x == 0) tickets[blockIdx.x] = 0;
}

template <typename WT>
void launch_tc(cudaStream_t s, float* out, const float* x, const WT* W, int N, int K, int T, float* partials,
               int* tickets) {
  const int ksteps = K / 16;
  const dim3 grid((unsigned)((N + kBlockRows - 1) / kBlockRows), (unsigned)((ksteps + kSliceSteps - 1) / kSliceSteps));
  for (int t0 = 0; t0 < T; t0 += kMaxTokenTiles * 16) {
    const int Tc = T - t0 < kMaxTokenTiles * 16 ? T - t0 : kMaxTokenTiles * 16;
    const float* xc = x + (size_t)t0 * K;
    float* o = out + (size_t)t0 * N;
    switch ((Tc + 15) / 16) {
      case 1: matmul_tc_kernel<WT, 1><<<grid, 256, 0, s>>>(o, W, xc, Tc, N, K, partials, tickets); break;
      case 2: matmul_tc_kernel<WT, 2><<<grid, 256, 0, s>>>(o, W, xc, Tc, N, K, partials, tickets); break;
      case 3: matmul_tc_kernel<WT, 3><<<grid, 256, 0, s>>>(o, W, xc, Tc, N, K, partials, tickets); break;
      default: matmul_tc_kernel<WT, 4><<<grid, 256, 0, s>>>(o, W, xc, Tc, N, K, partials, tickets); break;
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

size_t matmul_scratch_bytes(DType dtype, int N, int K, int T) {
  if (!matmul_uses_tensor_cores(dtype, N, K)) return 0;
  const size_t slices = ((size_t)K / 16 + kSliceSteps - 1) / kSliceSteps;
  const size_t rows = T < kMaxTokenTiles * 16 ? (size_t)T : (size_t)kMaxTokenTiles * 16;
  return slices * rows * N * sizeof(float);
}

int matmul_tickets_needed(int N) { return (N + kBlockRows - 1) / kBlockRows; }

void matmul(cudaStream_t s, float* out, const float* x, DType dtype, const void* W, int N, int K, int T,
            float* partials, int* tickets) {
  if (T <= 0 || N <= 0) return;
  const bool tc = matmul_uses_tensor_cores(dtype, N, K);
  switch (dtype) {
    case DType::F32: return launch_rows(s, out, x, static_cast<const float*>(W), N, K, T);
    case DType::F16:
      if (tc) return launch_tc(s, out, x, static_cast<const __half*>(W), N, K, T, partials, tickets);
      return launch_rows(s, out, x, static_cast<const __half*>(W), N, K, T);
    case DType::BF16:
      if (tc)
        return launch_tc(s, out, x, static_cast<const __nv_bfloat16*>(W), N, K, T, partials, tickets);
      return launch_rows(s, out, x, static_cast<const __nv_bfloat16*>(W), N, K, T);
    default: throw_error(ErrorCode::Unsupported, "CUDA matmul over ", dtype_name(dtype), " weights");
  }
}

}  // namespace cuda
}  // namespace chimera
