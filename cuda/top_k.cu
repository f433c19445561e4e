// Top-k candidates of each row after the repetition penalty (sampling on the device: the sampler's
// distribution needs only these, so k values cross to the host instead of V logits). One block per
// row; the penalised ids are marked in a shared-memory bitmap, and k rounds of a block-wide
// (value descending, id ascending) maximum pick the candidates in order, each round among the
// elements that come after the previous pick. The CPU twin is CpuBackend::top_k_rows.
#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {
namespace cuda {

namespace {

constexpr int kThreads = 512;
// Vocabularies up to this size keep the penalty marks as a bitmap in shared memory (32 KB); larger
// ones look each element up in the recent list.
constexpr int kBitmapMaxV = 262144;

// (value descending, id ascending): whether (v, i) comes before (w, j); an empty slot (id < 0) never does.
__device__ __forceinline__ bool before(float v, int i, float w, int j) {
  if (i < 0) return false;
  if (j < 0) return true;
  return v > w || (v == w && i < j);
}

__global__ void top_k_rows_kernel(int32_t* __restrict__ ids, float* __restrict__ vals, const float* __restrict__ x,
                                  int V, int k, float penalty, const int32_t* __restrict__ recent, int n_recent,
                                  bool bitmap) {
  grid_dependency_wait();
  extern __shared__ uint32_t marks[];
  __shared__ float warp_v[kThreads / 32];
  __shared__ int warp_i[kThreads / 32];
  __shared__ float last_v;
  __shared__ int last_i;
  const int r = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float* row = x + (int64_t)r * V;
  const int32_t* rec = n_recent > 0 ? recent + (int64_t)r * n_recent : nullptr;
  const bool pen = penalty != 1.0f && rec != nullptr;
  if (pen && bitmap) {
    const int words = (V + 31) / 32;
    for (int w = threadIdx.x; w < words; w += blockDim.x) marks[w] = 0u;
    __syncthreads();
    for (int j = threadIdx.x; j < n_recent; j += blockDim.x) {
      const int id = rec[j];
      if (id >= 0 && id < V) atomicOr(&marks[id >> 5], 1u << (id & 31));
    }
  }
  if (threadIdx.x == 0) {
    last_v = INFINITY;
    last_i = -1;
  }
  __syncthreads();
  auto value = [&](int i) {
    float v = row[i];
    if (pen) {
      bool marked = false;
      if (bitmap) {
        marked = (marks[i >> 5] >> (i & 31)) & 1u;
      } else {
        for (int j = 0; j < n_recent && !marked; j++) marked = rec[j] == i;
      }
      if (marked) v = v > 0.0f ? v / penalty : v * penalty;
    }
    return v;
  };
  for (int round = 0; round < k; round++) {
    const float pv = last_v;
    const int pi = last_i;
    float bv = -INFINITY;
    int bi = -1;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
      const float v = value(i);
      if (!before(pv, pi, v, i)) continue;  // at or before the previous pick: taken already
      if (before(v, i, bv, bi)) {
        bv = v;
        bi = i;
      }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      const float ov = __shfl_down_sync(0xffffffffu, bv, off);
      const int oi = __shfl_down_sync(0xffffffffu, bi, off);
      if (before(ov, oi, bv, bi)) {
        bv = ov;
        bi = oi;
      }
    }
    if (lane == 0) {
      warp_v[warp] = bv;
      warp_i[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < (int)(blockDim.x >> 5); w++)
        if (before(warp_v[w], warp_i[w], bv, bi)) {
          bv = warp_v[w];
          bi = warp_i[w];
        }
      ids[(int64_t)r * k + round] = bi;
      vals[(int64_t)r * k + round] = bv;
      last_v = bv;
      last_i = bi;
    }
    __syncthreads();
  }
}

}  // namespace

void top_k_rows(cudaStream_t s, int32_t* ids, float* vals, const float* x, int R, int V, int k, float penalty,
                const int32_t* recent, int n_recent) {
  if (R <= 0) return;
  const bool bitmap = V <= kBitmapMaxV;
  const size_t smem = bitmap && penalty != 1.0f && n_recent > 0 ? (size_t)(V + 31) / 32 * sizeof(uint32_t) : 0;
  launch("top_k_rows_kernel", top_k_rows_kernel, dim3(R), dim3(kThreads), smem, s, ids, vals, x, V, k, penalty,
         recent, n_recent, bitmap);
}

}  // namespace cuda
}  // namespace chimera
