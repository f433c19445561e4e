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

int row_groups_of(int N) { return (N + kBlockRows - 1) / kBlockRows; }

// Up to three matrices over the same x in one launch (Q, K, V; gate, up), and whether the result is
// added to out (a residual) instead of replacing it.
constexpr int kMaxJobs = 3;
struct TcJobs {
  const void* W[kMaxJobs];
  float* out[kMaxJobs];
  int N[kMaxJobs];
  int rg_begin[kMaxJobs + 1];
  size_t part_offset[kMaxJobs];  // floats into the partial buffer
  int count;
  int accumulate;
};

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
  // row_groups: of every matrix of the launch together.
  TcPlan(int groups, int K) {
    row_groups = groups;
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

// The chunk's columns of x, rounded to WT, zero beyond K; token rows T..NT*16 are zeroed only when
// `pad` (the first chunk: later chunks never write them). Four columns per load and one 8-byte store
// when x is 16-byte aligned (K is a multiple of 16, so every row then is).
template <typename WT, int NT>
__device__ __forceinline__ void stage_x(WT* stage, const float* __restrict__ x, int T, int K, int chunk, bool vec4,
                                        bool pad) {
  constexpr int kCols = kSliceSteps * 16;
  const int c0 = chunk * kCols, cols = min(kCols, K - c0);
  const int rows = pad ? NT * 16 : (T < NT * 16 ? T : NT * 16);
  if (vec4) {
    for (int idx = threadIdx.x; idx < rows * (kCols / 4); idx += blockDim.x) {
      const int t = idx / (kCols / 4), c = (idx % (kCols / 4)) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (t < T && c < cols) v = __ldg(reinterpret_cast<const float4*>(x + (size_t)t * K + c0 + c));
      union {
        WT h[4];
        uint2 u;
      } pack;
      pack.h[0] = from_f32<WT>(v.x);
      pack.h[1] = from_f32<WT>(v.y);
      pack.h[2] = from_f32<WT>(v.z);
      pack.h[3] = from_f32<WT>(v.w);
      *reinterpret_cast<uint2*>(stage + t * kStageLd + c) = pack.u;
    }
    return;
  }
  for (int idx = threadIdx.x; idx < rows * kCols; idx += blockDim.x) {
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
    matmul_tc_kernel(TcJobs jobs, const float* __restrict__ x, int T, int K, int chunks, float* __restrict__ partials,
                     int* __restrict__ tickets) {
  using namespace nvcuda;
  // This block's matrix: blocks [rg_begin[j], rg_begin[j+1]) of the grid's x dimension are job j's.
  // (Selected without indexing the parameter arrays, which would copy them to local memory.)
  const int bx = (int)blockIdx.x;
  const int j = (jobs.count > 2 && bx >= jobs.rg_begin[2]) ? 2 : (jobs.count > 1 && bx >= jobs.rg_begin[1]) ? 1 : 0;
  const WT* __restrict__ W = static_cast<const WT*>(j == 0 ? jobs.W[0] : j == 1 ? jobs.W[1] : jobs.W[2]);
  float* __restrict__ out = j == 0 ? jobs.out[0] : j == 1 ? jobs.out[1] : jobs.out[2];
  const int N = j == 0 ? jobs.N[0] : j == 1 ? jobs.N[1] : jobs.N[2];
  const int rg0 = j == 0 ? 0 : j == 1 ? jobs.rg_begin[1] : jobs.rg_begin[2];
  partials += j == 0 ? jobs.part_offset[0] : j == 1 ? jobs.part_offset[1] : jobs.part_offset[2];
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ int is_last;
  WT* wtile = reinterpret_cast<WT*>(smem);   // (64, kStageLd): this chunk's weights
  WT* stage = wtile + kBlockRows * kStageLd;  // (NT * 16, kStageLd): this chunk's x
  float* red = reinterpret_cast<float*>(smem);  // after the loop: (8 warps, NT, 16 x 16)
  const int warp = threadIdx.x >> 5;
  const int rt = warp & 3, kh = warp >> 2;  // row tile, half of each chunk
  const int n0 = (bx - rg0) * kBlockRows;
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
    stage_x<WT, NT>(stage, x, T, K, c, vec4, c == c_begin);
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
  const bool direct = slices == 1;
  float* dst = direct ? out : partials + (size_t)slice * T * N;
  for (int idx = threadIdx.x; idx < 4 * NT * 256; idx += blockDim.x) {
    const int tile = idx / (NT * 256), rem = idx % (NT * 256);
    const int i = rem >> 8, r = (rem >> 4) & 15, c = rem & 15;
    const int t = i * 16 + c, n = n0 + tile * 16 + r;
    if (t < T && n < N) {
      const float v = red[(tile * NT + i) * 256 + r * 16 + c] + red[((4 + tile) * NT + i) * 256 + r * 16 + c];
      float& o = dst[(size_t)t * N + n];
      o = direct && jobs.accumulate ? o + v : v;
    }
  }
  if (direct) return;
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
    float& o = out[(size_t)t * N + n];
    o = jobs.accumulate ? o + sum : sum;
  }
  if (threadIdx.x == 0) tickets[blockIdx.x] = 0;
}

template <typename WT, int NT>
void launch_tc_tiles(cudaStream_t s, const dim3& grid, const TcJobs& jobs, const float* xc, int Tc, int K, int chunks,
                     float* partials, int* tickets) {
  constexpr int bytes = tc_smem_bytes<NT>();
  static bool attribute_set = false;  // once per instantiation (callers hold the backend's mutex)
  if (!attribute_set) {
    CHIMERA_CUDA_CHECK(cudaFuncSetAttribute(matmul_tc_kernel<WT, NT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            bytes));
    attribute_set = true;
  }
  launch("matmul_tc_kernel", matmul_tc_kernel<WT, NT>, grid, dim3(256), bytes, s, jobs, xc, Tc, K, chunks, partials,
         tickets);
}

// jobs' W, out, N and count set; fills the row-group table and partial offsets, then runs x in chunks
// of 64 rows.
template <typename WT>
void launch_tc(cudaStream_t s, TcJobs jobs, const float* x, int K, int T, float* partials, int* tickets) {
  jobs.rg_begin[0] = 0;
  for (int j = 0; j < jobs.count; j++) jobs.rg_begin[j + 1] = jobs.rg_begin[j] + row_groups_of(jobs.N[j]);
  const TcPlan plan(jobs.rg_begin[jobs.count], K);
  const int rows = T < kMaxTokenTiles * 16 ? T : kMaxTokenTiles * 16;
  size_t offset = 0;
  for (int j = 0; j < jobs.count; j++) {
    jobs.part_offset[j] = offset;
    offset += (size_t)plan.slices * rows * jobs.N[j];
  }
  const dim3 grid((unsigned)plan.row_groups, (unsigned)plan.slices);
  for (int t0 = 0; t0 < T; t0 += kMaxTokenTiles * 16) {
    const int Tc = T - t0 < kMaxTokenTiles * 16 ? T - t0 : kMaxTokenTiles * 16;
    TcJobs chunk = jobs;
    for (int j = 0; j < jobs.count; j++) chunk.out[j] = jobs.out[j] + (size_t)t0 * jobs.N[j];
    const float* xc = x + (size_t)t0 * K;
    const int ch = plan.chunks;
    switch ((Tc + 15) / 16) {
      case 1: launch_tc_tiles<WT, 1>(s, grid, chunk, xc, Tc, K, ch, partials, tickets); break;
      case 2: launch_tc_tiles<WT, 2>(s, grid, chunk, xc, Tc, K, ch, partials, tickets); break;
      case 3: launch_tc_tiles<WT, 3>(s, grid, chunk, xc, Tc, K, ch, partials, tickets); break;
      default: launch_tc_tiles<WT, 4>(s, grid, chunk, xc, Tc, K, ch, partials, tickets); break;
    }
  }
}

template <typename WT>
void launch_rows(cudaStream_t s, float* out, const float* x, const WT* W, int N, int K, int T) {
  launch("matmul_rows_kernel", matmul_rows_kernel<WT>, dim3(grid_for(N, kRowsWarps)), dim3(kRowsWarps * 32), 0, s, out, x, W, T, N, K);
}

}  // namespace

bool matmul_uses_tensor_cores(DType dtype, int N, int K) {
  return (dtype == DType::F16 || dtype == DType::BF16) && N % 16 == 0 && K % 16 == 0;
}

size_t matmul_group_scratch_bytes(const int* N, int count, int K, int T) {
  int groups = 0;
  size_t rows_total = 0;
  for (int j = 0; j < count; j++) {
    groups += row_groups_of(N[j]);
    rows_total += (size_t)N[j];
  }
  const TcPlan plan(groups, K);
  if (plan.slices == 1) return 0;
  const size_t rows = T < kMaxTokenTiles * 16 ? (size_t)T : (size_t)kMaxTokenTiles * 16;
  return (size_t)plan.slices * rows * rows_total * sizeof(float);
}

size_t matmul_scratch_bytes(DType dtype, int N, int K, int T) {
  if (!matmul_uses_tensor_cores(dtype, N, K)) return 0;
  return matmul_group_scratch_bytes(&N, 1, K, T);
}

int matmul_tickets_needed(int N) { return row_groups_of(N); }

void matmul_group(cudaStream_t s, float* const* outs, const void* const* Ws, const int* N, int count, DType dtype,
                  const float* x, int K, int T, bool accumulate, float* partials, int* tickets) {
  CHIMERA_CHECK(count >= 1 && count <= kMaxJobs, ErrorCode::Internal, "matmul group of ", count);
  if (T <= 0) return;
  TcJobs jobs = {};
  jobs.count = count;
  jobs.accumulate = accumulate ? 1 : 0;
  for (int j = 0; j < count; j++) {
    jobs.W[j] = Ws[j];
    jobs.out[j] = outs[j];
    jobs.N[j] = N[j];
  }
  if (dtype == DType::F16) return launch_tc<__half>(s, jobs, x, K, T, partials, tickets);
  if (dtype == DType::BF16) return launch_tc<__nv_bfloat16>(s, jobs, x, K, T, partials, tickets);
  throw_error(ErrorCode::Internal, "tensor-core matmul group over ", dtype_name(dtype));
}

void matmul(cudaStream_t s, float* out, const float* x, DType dtype, const void* W, int N, int K, int T,
            float* partials, int* tickets) {
  if (T <= 0 || N <= 0) return;
  if (matmul_uses_tensor_cores(dtype, N, K))
    return matmul_group(s, &out, &W, &N, 1, dtype, x, K, T, false, partials, tickets);
  switch (dtype) {
    case DType::F32: return launch_rows(s, out, x, static_cast<const float*>(W), N, K, T);
    case DType::F16: return launch_rows(s, out, x, static_cast<const __half*>(W), N, K, T);
    case DType::BF16: return launch_rows(s, out, x, static_cast<const __nv_bfloat16*>(W), N, K, T);
    default: throw_error(ErrorCode::Unsupported, "CUDA matmul over ", dtype_name(dtype), " weights");
  }
}

}  // namespace cuda
}  // namespace chimera
