// Row argmax (greedy decoding and greedy tree acceptance on the device): one block per row.
#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {
namespace cuda {

__global__ void argmax_rows_kernel(int32_t* __restrict__ out, const float* __restrict__ x, int V) {
  grid_dependency_wait();
  __shared__ float best_v[256];
  __shared__ int best_i[256];
  const float* row = x + (int64_t)blockIdx.x * V;
  float bv = -INFINITY;
  int bi = -1;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = row[i];
    if (bi < 0 || v > bv) { bv = v; bi = i; }  // strided ascending: the first maximum of this thread
  }
  best_v[threadIdx.x] = bv;
  best_i[threadIdx.x] = bi;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      const float ov = best_v[threadIdx.x + stride];
      const int oi = best_i[threadIdx.x + stride];
      const float mv = best_v[threadIdx.x];
      const int mi = best_i[threadIdx.x];
      if (oi >= 0 && (mi < 0 || ov > mv || (ov == mv && oi < mi))) {
        best_v[threadIdx.x] = ov;
        best_i[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = best_i[0];
}

void argmax_rows(cudaStream_t s, int32_t* out, const float* x, int R, int V) {
  if (R <= 0) return;
  launch("argmax_rows_kernel", argmax_rows_kernel, dim3(R), dim3(256), 0, s, out, x, V);
}

}  // namespace cuda
}  // namespace chimera
