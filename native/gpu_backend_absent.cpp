// The GPU entry points of a build without CUDA (the CUDA build compiles cuda/cuda_backend.cu instead).
#ifndef CHIMERA_WITH_CUDA
#include "error.h"
#include "gpu_backend.h"

namespace chimera {

bool gpu_backend_built() { return false; }

bool gpu_available(int, std::string* why) {
  if (why) *why = "this build of chimera-llm has no CUDA backend (it was built without nvcc)";
  return false;
}

std::unique_ptr<Backend> create_gpu_backend(int) {
  throw_error(ErrorCode::Cuda, "this build of chimera-llm has no CUDA backend (it was built without nvcc)");
}

}  // namespace chimera
#endif
