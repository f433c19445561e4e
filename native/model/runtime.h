// A model ready to run: the loaded weights plus the compute backend and its thread pool. Shared by
// every session of the model (sessions hold a shared_ptr, so a session keeps its model alive).
#pragma once
#include <memory>
#include <string>

#include "backend/backend.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"
#include "model/batch_scheduler.h"
#include "model/model.h"

namespace chimera {

// Where a model runs: Auto = the CUDA backend when this build has it and a GPU is present, else the CPU.
enum class GpuMode { Off, Auto, Cuda };

struct RuntimeOptions {
  LoadOptions load;
  int threads = 0;  // 0: the CPUs this process may use
  GpuMode gpu = GpuMode::Off;
  int gpu_device = 0;
  BatchLimits batch;  // continuous batching of the sessions' forward passes
};

class ModelRuntime {
 public:
  static std::shared_ptr<ModelRuntime> load(const std::string& path, const RuntimeOptions& opts);
  const Model& model() const { return *model_; }
  // The backend that runs inference: "cpu" or "cuda".
  Backend& backend() const { return *backend_; }
  // A CPU backend over the same thread pool (training runs here whatever the inference backend).
  CpuBackend& cpu_backend() const { return *cpu_backend_; }
  int threads() const { return pool_->size(); }
  // Bytes of weight copies in a faster layout for the CPU kernels (CpuBackend::prepare_weights).
  size_t repacked_bytes() const { return repacked_bytes_; }
  // Whether CPU matmuls run on the AMX tile unit (CpuBackend::prepare_weights).
  bool uses_amx() const { return uses_amx_; }
  // Where every session's forward passes go: concurrent sessions share passes (continuous batching).
  BatchScheduler& batcher() const { return *batcher_; }

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<CpuBackend> cpu_backend_;
  std::unique_ptr<Backend> gpu_backend_;
  Backend* backend_ = nullptr;
  std::unique_ptr<BatchScheduler> batcher_;
  size_t repacked_bytes_ = 0;
  bool uses_amx_ = false;
};

}  // namespace chimera
