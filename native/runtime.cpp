// Loading a model together with its backend.
#include "runtime.h"

#include "error.h"

namespace chimera {

std::shared_ptr<ModelRuntime> ModelRuntime::load(const std::string& path, const RuntimeOptions& opts) {
  CHIMERA_CHECK(opts.threads >= 0 && opts.threads <= 1024, ErrorCode::InvalidArg, "threads must be in 0..1024, got ",
                opts.threads);
  auto rt = std::shared_ptr<ModelRuntime>(new ModelRuntime());
  rt->model_ = load_model(path, opts.load);
  const int threads = opts.threads > 0 ? opts.threads : available_cpus();
  rt->pool_ = std::make_unique<ThreadPool>(threads);
  rt->backend_ = std::make_unique<CpuBackend>(rt->pool_.get());
  return rt;
}

}  // namespace chimera
