// Shared helpers of the CUDA kernels: error checks, element conversions and block reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/error.h"

#define CHIMERA_CUDA_CHECK(expr)                                                                      \
  do {                                                                                                \
    const cudaError_t chimera_err_ = (expr);                                                          \
    if (chimera_err_ != cudaSuccess)                                                                  \
      ::chimera::throw_error(::chimera::ErrorCode::Cuda, #expr, " failed: ", cudaGetErrorString(chimera_err_)); \
  } while (0)

namespace chimera {
namespace cuda {

inline unsigned grid_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

// Programmatic dependent launch (Hopper and newer): each kernel may be launched while the previous one
// finishes; it runs what does not depend on earlier kernels (a matmul's weight loads), then waits in
// grid_dependency_wait() until they are complete and their writes visible. Every kernel launched by
// launch() calls it before touching data other kernels write. Set by the backend (off before sm_90,
// or with CHIMERA_CUDA_PDL=0).
bool& pdl_enabled();

__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

// kernel<<<grid, block, shared, s>>>(args...), with programmatic dependent launch where enabled.
template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared, cudaStream_t s,
            Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = shared;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);
  if (e != cudaSuccess) throw_error(ErrorCode::Cuda, "kernel ", name, " failed to launch: ", cudaGetErrorString(e));
}

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <typename Op>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Reduction over the block in a fixed order (deterministic). `red` holds blockDim.x / 32 floats;
// every thread gets the result. blockDim.x must be a multiple of 32.
template <typename Op>
__device__ __forceinline__ float block_reduce(float v, float* red, Op op) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_reduce(v, op);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float r = red[0];
  for (int w = 1; w < warps; w++) r = op(r, red[w]);
  return r;
}

__device__ __forceinline__ float warp_sum(float v) { return warp_reduce(v, SumOp()); }
__device__ __forceinline__ float block_sum(float v, float* red) { return block_reduce(v, red, SumOp()); }
__device__ __forceinline__ float block_max(float v, float* red) { return block_reduce(v, red, MaxOp()); }

}  // namespace cuda
}  // namespace chimera
