// Row gathers: output rows of a batch, and compaction of an accepted tree path in the KV cache and the
// hidden states (through scratch, because a destination row may be another row's source).
#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {
namespace cuda {

__global__ void gather_rows_kernel(float* __restrict__ dst, const float* __restrict__ src,
                                   const int32_t* __restrict__ rows, int C) {
  grid_dependency_wait();
  const int r = blockIdx.x;
  const float* s = src + (int64_t)rows[r] * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dst[(int64_t)r * C + c] = s[c];
}

// blockIdx.x = row i, blockIdx.y = block b.
__global__ void rows_to_scratch_kernel(float* __restrict__ scratch, const float* __restrict__ base,
                                       int64_t block_stride, int row_floats, const int32_t* __restrict__ src,
                                       int count) {
  grid_dependency_wait();
  const int i = blockIdx.x, b = blockIdx.y;
  const float* s = base + b * block_stride + (int64_t)src[i] * row_floats;
  float* d = scratch + ((int64_t)b * count + i) * row_floats;
  for (int c = threadIdx.x; c < row_floats; c += blockDim.x) d[c] = s[c];
}

__global__ void scratch_to_rows_kernel(float* __restrict__ base, const float* __restrict__ scratch,
                                       int64_t block_stride, int row_floats, int dst_start, int count) {
  grid_dependency_wait();
  const int i = blockIdx.x, b = blockIdx.y;
  const float* s = scratch + ((int64_t)b * count + i) * row_floats;
  float* d = base + b * block_stride + (int64_t)(dst_start + i) * row_floats;
  for (int c = threadIdx.x; c < row_floats; c += blockDim.x) d[c] = s[c];
}

__global__ void store_rows_kernel(float* __restrict__ base, const float* __restrict__ src, int row_floats, int at,
                                  const int32_t* __restrict__ at_dev) {
  grid_dependency_wait();
  const int r = blockIdx.x;
  const int64_t row = (int64_t)(at_dev ? *at_dev : at) + r;
  for (int c = threadIdx.x; c < row_floats; c += blockDim.x) base[row * row_floats + c] = src[(int64_t)r * row_floats + c];
}

void store_rows(cudaStream_t s, float* base, const float* src, int T, int row_floats, int at, const int32_t* at_dev) {
  if (T <= 0) return;
  launch("store_rows_kernel", store_rows_kernel, dim3(T), dim3(row_floats >= 256 ? 256 : 64), 0, s, base, src, row_floats, at, at_dev);
}

void gather_rows(cudaStream_t s, float* dst, const float* src, const int32_t* rows, int R, int C) {
  if (R <= 0) return;
  launch("gather_rows_kernel", gather_rows_kernel, dim3(R), dim3(C >= 256 ? 256 : 64), 0, s, dst, src, rows, C);
}

size_t compact_rows_scratch_bytes(int blocks, int row_floats, int count) {
  return (size_t)blocks * count * row_floats * sizeof(float);
}

void compact_rows(cudaStream_t s, float* base, int64_t block_stride, int blocks, int row_floats,
                  const int32_t* src_rows, int dst_start, int count, float* scratch) {
  if (count <= 0 || blocks <= 0) return;
  const dim3 grid((unsigned)count, (unsigned)blocks);
  const int threads = row_floats >= 256 ? 256 : 64;
  launch("rows_to_scratch_kernel", rows_to_scratch_kernel, dim3(grid), dim3(threads), 0, s, scratch, base, block_stride, row_floats, src_rows, count);
  launch("scratch_to_rows_kernel", scratch_to_rows_kernel, dim3(grid), dim3(threads), 0, s, base, scratch, block_stride, row_floats, dst_start, count);
}

}  // namespace cuda
}  // namespace chimera
