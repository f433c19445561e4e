// The trainable tensors of native training (base models and drafts) and their optimiser step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "cpu/cpu_backend.h"

namespace chimera {

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
