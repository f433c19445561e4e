// Embedding gather: one block per token row.
#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {
namespace cuda {

template <typename T>
__global__ void embed_kernel(float* __restrict__ out, const T* __restrict__ table, int C,
                             const int32_t* __restrict__ tokens) {
  grid_dependency_wait();
  const int t = blockIdx.x;
  const T* row = table + (size_t)tokens[t] * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) out[(size_t)t * C + c] = to_f32(row[c]);
}

void embed(cudaStream_t s, float* out, DType dtype, const void* table, int C, const int32_t* tokens, int T) {
  if (T <= 0) return;
  const int threads = C >= 256 ? 256 : 64;
  switch (dtype) {
    case DType::F32: launch("embed_kernel", embed_kernel<float>, dim3(T), dim3(threads), 0, s, out, static_cast<const float*>(table), C, tokens); break;
    case DType::F16: launch("embed_kernel", embed_kernel<__half>, dim3(T), dim3(threads), 0, s, out, static_cast<const __half*>(table), C, tokens); break;
    case DType::BF16:
      launch("embed_kernel", embed_kernel<__nv_bfloat16>, dim3(T), dim3(threads), 0, s, out, static_cast<const __nv_bfloat16*>(table), C, tokens);
      break;
    default: throw_error(ErrorCode::Unsupported, "CUDA embedding of a ", dtype_name(dtype), " table");
  }
}

}  // namespace cuda
}  // namespace chimera
