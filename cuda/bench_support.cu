// Device helpers for benchmarks: device name, random BF16 weights made on the device, a copy-bandwidth
// probe (the achievable memory bandwidth that decode is measured against).
#include <chrono>
#include <string>

#include "backend/gpu_backend.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace chimera {

namespace {

CudaBackend& cuda_of(Backend& be) {
  auto* c = dynamic_cast<CudaBackend*>(&be);
  if (!c) throw_error(ErrorCode::Cuda, "a CUDA backend is needed here, got ", be.name());
  return *c;
}

__global__ void fill_random_bf16_kernel(__nv_bfloat16* dst, size_t n, uint64_t seed, float scale) {
  cuda::grid_dependency_wait();
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);  // splitmix64 of the index
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = (float)(z >> 40) * (1.0f / 16777216.0f);
    dst[i] = __float2bfloat16_rn((2.f * u - 1.f) * scale);
  }
}

}  // namespace

std::string gpu_device_name(Backend& be) {
  cudaDeviceProp p;
  CHIMERA_CUDA_CHECK(cudaGetDeviceProperties(&p, cuda_of(be).device()));
  return p.name;
}

void gpu_fill_random_bf16(Backend& be, void* dst, size_t n, uint64_t seed, float scale) {
  CudaBackend& c = cuda_of(be);
  cuda::launch("fill_random_bf16_kernel", fill_random_bf16_kernel, dim3(1024), dim3(256), 0, c.stream(), static_cast<__nv_bfloat16*>(dst), n, seed, scale);
}

void gpu_synchronize(Backend& be) { cuda_of(be).synchronize(); }

double gpu_copy_bandwidth_gbs(Backend& be, size_t bytes) {
  CudaBackend& c = cuda_of(be);
  void* a = c.alloc(bytes);
  void* b = c.alloc(bytes);
  double best = 0;
  for (int rep = 0; rep < 6; rep++) {
    c.synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    c.copy_device(b, a, bytes);
    c.synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::max(best, 2.0 * bytes / s / 1e9);
  }
  c.free(a);
  c.free(b);
  return best;
}

}  // namespace chimera
