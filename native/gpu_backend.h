// The CUDA backend's entry points. In a build without CUDA they report that the backend is absent;
// with CUDA they are implemented in cuda/cuda_backend.cu.
#pragma once
#include <memory>
#include <string>

#include "ops.h"

namespace chimera {

// True when this build includes the CUDA backend.
bool gpu_backend_built();
// True when the CUDA backend can run on `device`; otherwise false with the reason in *why.
bool gpu_available(int device, std::string* why);
// A CUDA backend on `device` (throws E_CUDA when it cannot start).
std::unique_ptr<Backend> create_gpu_backend(int device);

}  // namespace chimera
