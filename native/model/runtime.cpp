// Loading a model together with its backend.
#include "model/runtime.h"

#include "backend/gpu_backend.h"
#include "common/error.h"

namespace chimera {

std::shared_ptr<ModelRuntime> ModelRuntime::load(const std::string& path, const RuntimeOptions& opts) {
  CHIMERA_CHECK(opts.threads >= 0 && opts.threads <= 1024, ErrorCode::InvalidArg, "threads must be in 0..1024, got ",
                opts.threads);
  auto rt = std::shared_ptr<ModelRuntime>(new ModelRuntime());
  rt->model_ = load_model(path, opts.load);
  if (opts.load.check_tensors) check_tensor_values(*rt->model_);
  const int threads = opts.threads > 0 ? opts.threads : available_cpus();
  rt->pool_ = std::make_unique<ThreadPool>(threads);
  rt->cpu_backend_ = std::make_unique<CpuBackend>(rt->pool_.get());
  rt->backend_ = rt->cpu_backend_.get();
  if (opts.gpu != GpuMode::Off) {
    std::string why;
    if (gpu_available(opts.gpu_device, &why)) {
      rt->gpu_backend_ = create_gpu_backend(opts.gpu_device);
      rt->backend_ = rt->gpu_backend_.get();
    } else if (opts.gpu == GpuMode::Cuda) {
      throw_error(ErrorCode::Cuda, "gpu: 'cuda' was asked for but ", why);
    }
  }
  // The CPU runs inference: Q8_0 matrices get their AVX2 layout now, before any session exists.
  if (rt->backend_ == rt->cpu_backend_.get()) {
    CpuBackend& cpu = *rt->cpu_backend_;
    rt->repacked_bytes_ = cpu.prepare_weights(rt->model_->weights);
    rt->uses_amx_ = cpu.uses_amx();
    // The file's pages of the copied matrices leave the resident memory (a tied embedding table's rows
    // fault back in from the page cache when looked up).
    for (const auto& [data, bytes] : cpu.repacked_sources()) rt->model_->storage.drop_mapped_pages(data, bytes);
  }
  rt->batcher_ = std::make_unique<BatchScheduler>(*rt->model_, *rt->backend_, opts.batch);
  return rt;
}

}  // namespace chimera
