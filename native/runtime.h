// A model ready to run: the loaded weights plus the compute backend and its thread pool. Shared by
// every session of the model (sessions hold a shared_ptr, so a session keeps its model alive).
#pragma once
#include <memory>
#include <string>

#include "model.h"
#include "ops.h"
#include "thread_pool.h"

namespace chimera {

struct RuntimeOptions {
  LoadOptions load;
  int threads = 0;  // 0: the CPUs this process may use
};

class ModelRuntime {
 public:
  static std::shared_ptr<ModelRuntime> load(const std::string& path, const RuntimeOptions& opts);
  const Model& model() const { return *model_; }
  Backend& backend() const { return *backend_; }
  int threads() const { return pool_->size(); }

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace chimera
