// Element-wise ops: SwiGLU, residual add, the trigram encoder's bias + SiLU + residual, and a row bias
// (qwen2's Q/K/V biases).
#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {
namespace cuda {

__global__ void swiglu_kernel(float* out, const float* gate, const float* up, int64_t n) {
  grid_dependency_wait();
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  grid_dependency_wait();
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

__global__ void bias_silu_residual_kernel(float* out, const float* x, const float* r, const float* bias, int64_t n) {
  grid_dependency_wait();
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    const float z = r[i] + bias[i];
    out[i] = x[i] + z / (1.0f + expf(-z));
  }
}

__global__ void add_bias_kernel(float* x, const float* bias, int N, int64_t n) {
  grid_dependency_wait();
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += bias[i % N];
}

void swiglu(cudaStream_t s, float* out, const float* gate, const float* up, int64_t n) {
  if (n <= 0) return;
  launch("swiglu_kernel", swiglu_kernel, dim3(grid_for(n, 256)), dim3(256), 0, s, out, gate, up, n);
}

void add(cudaStream_t s, float* x, const float* y, int64_t n) {
  if (n <= 0) return;
  launch("add_kernel", add_kernel, dim3(grid_for(n, 256)), dim3(256), 0, s, x, y, n);
}

void bias_silu_residual(cudaStream_t s, float* out, const float* x, const float* r, const float* bias, int64_t n) {
  if (n <= 0) return;
  launch("bias_silu_residual_kernel", bias_silu_residual_kernel, dim3(grid_for(n, 256)), dim3(256), 0, s, out, x, r, bias, n);
}

void add_bias(cudaStream_t s, float* x, const float* bias, int T, int N) {
  const int64_t n = (int64_t)T * N;
  if (n <= 0) return;
  launch("add_bias_kernel", add_bias_kernel, dim3(grid_for(n, 256)), dim3(256), 0, s, x, bias, N, n);
}

}  // namespace cuda
}  // namespace chimera
