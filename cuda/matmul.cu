// Matrix multiply out (T, N) = x (T, K) @ W^T for decode (T = 1), tree verification (T up to 64) and
// prefill (chunks of 64 rows).
//  - Tensor cores (WMMA 16x16x16, F32 accumulate) for F16/BF16 weights with N and K multiples of 16.
//    A block owns 64 weight rows x a slice of K (split-K only as far as needed for ~2 blocks per SM,
//    so even a 2048-row matrix has hundreds of blocks streaming it). It walks its slice in 256-column
//    chunks of 64 x 256 weights, fetched with 16-byte loads into registers (the next chunk is in
//    flight while the warps multiply this one from shared memory) together with the chunk of x,
//    rounded to the weight type (token rows >= T zero). Slices meet in a partial buffer and the last block of a
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
constexpr int kTargetBlocks = 264;  // about two blocks per SM of an H100

template <typename WT>
__global__ void matmul_rows_kernel(float* __restrict__ out, const float* __restrict__ x, const WT* __restrict__ W,
                                   int T, int N, int K) {
  grid_dependency_wait();
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

// How a matrix is split: slices of K per row group (enough blocks to fill the GPU, each block looping
// over `chunks` 256-column chunks). Depends on the shape only, so sums keep one order for every T.
struct TcPlan {
  int row_groups, chunks, slices;
  TcPlan(int N, int K) {
    row_groups = (N + kBlockRows - 1) / kBlockRows;
    const int total = (K / 16 + kSliceSteps - 1) / kSliceSteps;
    const int want = (kTargetBlocks + row_groups - 1) / row_groups;
    slices = want < 1 ? 1 : (want > total ? total : want);
    chunks = (total + slices - 1) / slices;
    slices = (total + chunks - 1) / chunks;
  }
};

// The block's share of a weight chunk (64 rows x 256 columns = 2048 16-byte pieces, 8 per thread),
// fetched with 16-byte loads into registers while the previous chunk is multiplied.
template <typename WT>
__device__ __forceinline__ void fetch_weights(uint4 (&w)[8], const WT* __restrict__ W, int N, int K, int n0,
                                              int chunk) {
  const int c0 = chunk * kSliceSteps * 16;
#pragma unroll
  for (int j = 0; j < 8; j++) {
    const int idx = threadIdx.x + j * 256, r = idx >> 5, q = idx & 31;
    const int n = n0 + r, col = c0 + q * 8;
    w[j] = (n < N && col < K) ? __ldg(reinterpret_cast<const uint4*>(W + (size_t)n * K + col)) : make_uint4(0, 0, 0, 0);
  }
}

template <typename WT>
__device__ __forceinline__ void store_weights(WT* wtile, const uint4 (&w)[8]) {
#pragma unroll
  for (int j = 0; j < 8; j++) {
    const int idx = threadIdx.x + j * 256, r = idx >> 5, q = idx & 31;
    *reinterpret_cast<uint4*>(wtile + r * kStageLd + q * 8) = w[j];
  }
}

// The chunk's columns of x, rounded to WT, zero beyond T and beyond K: four columns per load when x
// is 16-byte aligned (K is a multiple of 16, so every row then is), one otherwise.
template <typename WT, int NT>
__device__ __forceinline__ void stage_x(WT* stage, const float* __restrict__ x, int T, int K, int chunk,
                                        bool vec4) {
  constexpr int kCols = kSliceSteps * 16;
  const int c0 = chunk * kCols, cols = min(kCols, K - c0);
  if (vec4) {
    for (int idx = threadIdx.x; idx < NT * 16 * (kCols / 4); idx += blockDim.x) {
      const int t = idx / (kCols / 4), c = (idx % (kCols / 4)) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (t < T && c < cols) v = __ldg(reinterpret_cast<const float4*>(x + (size_t)t * K + c0 + c));
      WT* d = stage + t * kStageLd + c;
      d[0] = from_f32<WT>(v.x);
      d[1] = from_f32<WT>(v.y);
      d[2] = from_f32<WT>(v.z);
      d[3] = from_f32<WT>(v.w);
    }
    return;
  }
  for (int idx = threadIdx.x; idx < NT * 16 * kCols; idx += blockDim.x) {
    const int t = idx / kCols, c = idx % kCols;
    const float v = (t < T && c < cols) ? x[(size_t)t * K + c0 + c] : 0.f;
    stage[t * kStageLd + c] = from_f32<WT>(v);
  }
}

template <int NT>
constexpr int tc_smem_bytes() {
  return (kBlockRows + NT * 16) * kStageLd * 2;
}

template <typename WT, int NT>
__global__ void __launch_bounds__(256)
    matmul_tc_kernel(float* __restrict__ out, const WT* __restrict__ W, const float* __restrict__ x, int T, int N,
                     int K, int chunks, float* __restrict__ partials, int* __restrict__ tickets) {
  using namespace nvcuda;
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ int is_last;
  WT* wtile = reinterpret_cast<WT*>(smem);   // (64, kStageLd): this chunk's weights
  WT* stage = wtile + kBlockRows * kStageLd;  // (NT * 16, kStageLd): this chunk's x
  float* red = reinterpret_cast<float*>(smem);  // after the loop: (8 warps, NT, 16 x 16)
  const int warp = threadIdx.x >> 5;
  const int rt = warp & 3, kh = warp >> 2;  // row tile, half of each chunk
  const int n0 = blockIdx.x * kBlockRows;
  const int slice = blockIdx.y, slices = gridDim.y;
  const int ksteps = K / 16, total = (ksteps + kSliceSteps - 1) / kSliceSteps;
  const int c_begin = slice * chunks, c_end = min(total, c_begin + chunks);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NT];
#pragma unroll
  for (int i = 0; i < NT; i++) wmma::fill_fragment(acc[i], 0.0f);
  const bool vec4 = (reinterpret_cast<uintptr_t>(x) & 15) == 0;
  uint4 wnext[8];
  fetch_weights<WT>(wnext, W, N, K, n0, c_begin);  // weights only: no earlier kernel writes them
  grid_dependency_wait();
  for (int c = c_begin; c < c_end; c++) {
    __syncthreads();  // the previous chunk is multiplied
    store_weights<WT>(wtile, wnext);
    stage_x<WT, NT>(stage, x, T, K, c, vec4);
    __syncthreads();
    if (c + 1 < c_end) fetch_weights<WT>(wnext, W, N, K, n0, c + 1);  // in flight while this chunk multiplies
    const int kw0 = c * kSliceSteps + kh * kWarpSteps;
#pragma unroll
    for (int u = 0; u < kWarpSteps; u++) {
      if (kw0 + u < ksteps) {
        const int cc = (kh * kWarpSteps + u) * 16;
        wmma::fragment<wmma::matrix_a, 16, 16, 16, WT, wmma::row_major> a;
        wmma::load_matrix_sync(a, wtile + rt * 16 * kStageLd + cc, kStageLd);
#pragma unroll
        for (int i = 0; i < NT; i++) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, WT, wmma::col_major> b;
          wmma::load_matrix_sync(b, stage + i * 16 * kStageLd + cc, kStageLd);  // (k, t) at t * ld + k
          wmma::mma_sync(acc[i], a, b, acc[i]);
        }
      }
    }
  }
  __syncthreads();  // the tiles become the reduction buffer
#pragma unroll
  for (int i = 0; i < NT; i++) wmma::store_matrix_sync(red + (warp * NT + i) * 256, acc[i], 16, wmma::mem_row_major);
  __syncthreads();
  // This block's sum: half 0 + half 1 of each row tile; the output itself when K is not split.
  float* dst = slices == 1 ? out : partials + (size_t)slice * T * N;
  for (int idx = threadIdx.x; idx < 4 * NT * 256; idx += blockDim.x) {
    const int tile = idx / (NT * 256), rem = idx % (NT * 256);
    const int i = rem >> 8, r = (rem >> 4) & 15, c = rem & 15;
    const int t = i * 16 + c, n = n0 + tile * 16 + r;
    if (t < T && n < N)
      dst[(size_t)t * N + n] = red[(tile * NT + i) * 256 + r * 16 + c] + red[((4 + tile) * NT + i) * 256 + r * 16 + c];
  }
  if (slices == 1) return;
  // The last block of the row group sums the slices in order and resets the ticket.
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

template <typename WT, int NT>
void launch_tc_tiles(cudaStream_t s, const dim3& grid, float* o, const WT* W, const float* xc, int Tc, int N, int K,
                     int chunks, float* partials, int* tickets) {
  constexpr int bytes = tc_smem_bytes<NT>();
  static bool attribute_set = false;  // once per instantiation (callers hold the backend's mutex)
  if (!attribute_set) {
    CHIMERA_CUDA_CHECK(cudaFuncSetAttribute(matmul_tc_kernel<WT, NT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            bytes));
    attribute_set = true;
  }
  launch("matmul_tc_kernel", matmul_tc_kernel<WT, NT>, dim3(grid), dim3(256), bytes, s, o, W, xc, Tc, N, K, chunks, partials, tickets);
}

template <typename WT>
void launch_tc(cudaStream_t s, float* out, const float* x, const WT* W, int N, int K, int T, float* partials,
               int* tickets) {
  const TcPlan plan(N, K);
  const dim3 grid((unsigned)plan.row_groups, (unsigned)plan.slices);
  for (int t0 = 0; t0 < T; t0 += kMaxTokenTiles * 16) {
    const int Tc = T - t0 < kMaxTokenTiles * 16 ? T - t0 : kMaxTokenTiles * 16;
    const float* xc = x + (size_t)t0 * K;
    float* o = out + (size_t)t0 * N;
    const int ch = plan.chunks;
    switch ((Tc + 15) / 16) {
      case 1: launch_tc_tiles<WT, 1>(s, grid, o, W, xc, Tc, N, K, ch, partials, tickets); break;
      case 2: launch_tc_tiles<WT, 2>(s, grid, o, W, xc, Tc, N, K, ch, partials, tickets); break;
      case 3: launch_tc_tiles<WT, 3>(s, grid, o, W, xc, Tc, N, K, ch, partials, tickets); break;
      default: launch_tc_tiles<WT, 4>(s, grid, o, W, xc, Tc, N, K, ch, partials, tickets); break;
    }
    check_launch("matmul (tensor cores)");
  }
}

template <typename WT>
void launch_rows(cudaStream_t s, float* out, const float* x, const WT* W, int N, int K, int T) {
  launch("matmul_rows_kernel", matmul_rows_kernel<WT>, dim3(grid_for(N, kRowsWarps)), dim3(kRowsWarps * 32), 0, s, out, x, W, T, N, K);
  check_launch("matmul (CUDA cores)");
}

}  // namespace

bool matmul_uses_tensor_cores(DType dtype, int N, int K) {
  return (dtype == DType::F16 || dtype == DType::BF16) && N % 16 == 0 && K % 16 == 0;
}

size_t matmul_scratch_bytes(DType dtype, int N, int K, int T) {
  if (!matmul_uses_tensor_cores(dtype, N, K)) return 0;
  const size_t slices = (size_t)TcPlan(N, K).slices;
  if (slices == 1) return 0;
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
