// The GPU entry points of a build without CUDA (the CUDA build compiles cuda/cuda_backend.cu instead).
#ifndef CHIMERA_WITH_CUDA
#include "backend/gpu_backend.h"
#include "common/error.h"

namespace chimera {

bool gpu_backend_built() { return false; }

bool gpu_available(int, std::string* why) {
  if (why) *why = "this build of chimera-llm has no CUDA backend (it was built without nvcc)";
  return false;
}

namespace {
[[noreturn]] void no_cuda() {
  throw_error(ErrorCode::Cuda, "this build of chimera-llm has no CUDA backend (it was built without nvcc)");
}
}  // namespace

std::unique_ptr<Backend> create_gpu_backend(int) { no_cuda(); }
std::string gpu_device_name(Backend&) { no_cuda(); }
void gpu_fill_random_bf16(Backend&, void*, size_t, uint64_t, float) { no_cuda(); }
void gpu_synchronize(Backend&) { no_cuda(); }
double gpu_copy_bandwidth_gbs(Backend&, size_t) { no_cuda(); }

}  // namespace chimera
#endif
