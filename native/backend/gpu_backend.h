// The CUDA backend's entry points. In a build without CUDA they report that the backend is absent;
// with CUDA they are implemented in cuda/cuda_backend.cu.
#pragma once
#include <memory>
#include <string>

#include "backend/backend.h"

namespace chimera {

// True when this build includes the CUDA backend.
bool gpu_backend_built();
// True when the CUDA backend can run on `device`; otherwise false with the reason in *why.
bool gpu_available(int device, std::string* why);
// A CUDA backend on `device` (throws E_CUDA when it cannot start).
std::unique_ptr<Backend> create_gpu_backend(int device);

// For benchmarks on a CUDA backend (throw E_CUDA on other backends):
// the device's name; fills n BF16 values at dst (device memory) with uniform [-scale, scale) noise
// from `seed`; waits for every queued op; times a device-to-device copy (GB/s of bytes read + written).
std::string gpu_device_name(Backend& be);
void gpu_fill_random_bf16(Backend& be, void* dst, size_t n, uint64_t seed, float scale);
void gpu_synchronize(Backend& be);
double gpu_copy_bandwidth_gbs(Backend& be, size_t bytes);

}  // namespace chimera
