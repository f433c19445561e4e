// The trainable tensors of native training (base models and drafts) and their optimiser step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ops.h"

namespace chimera {

// One trainable tensor: owned F32 memory, row-major (rows, cols).
struct TrainableParam {
  std::string name;
  float* data;
  int64_t rows, cols;
  bool is_vector;  // biases and norm gains: no weight decay
  int64_t size() const { return rows * cols; }
};

struct AdamWConfig {
  float beta1, beta2, eps, weight_decay;
};

// One optimiser step at `step` (from 1) with learning rate lr: the gradients are scaled down to global
// norm max_norm (clip_scale), then AdamW updates every parameter and its moments m, v (vectors get no
// weight decay).
void clipped_adamw_step(CpuBackend& be, const std::vector<TrainableParam>& params, std::vector<std::vector<float>>& grads,
                        std::vector<std::vector<float>>& m, std::vector<std::vector<float>>& v, float max_norm,
                        float lr, const AdamWConfig& cfg, int step);

}  // namespace chimera
