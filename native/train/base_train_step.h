// Forward and backward of a whole LLaMA model over one token sequence (next-token cross-entropy,
// causal attention), for training small base models natively. Written over the Backend table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "cpu/cpu_backend.h"
#include "model/model.h"
#include "train/optimizer.h"

namespace chimera {

// One trainable tensor of a base model, in a fixed order.
using BaseParam = TrainableParam;

// Allocates F32 weights for `cfg` in `storage`, initialised (seeded normal, std 0.02, residual
// projections scaled by 1/sqrt(2L), norms one), points `w` at them and returns the parameter table.
std::vector<BaseParam> init_base_weights(const ModelConfig& cfg, uint64_t seed, WeightStorage& storage,
                                         ModelWeights& w);

struct BaseLossStats {
  double ce_sum = 0;
  int counted = 0, correct = 0;
};

// tokens (T + 1): inputs tokens[0..T), targets tokens[1..T]. Accumulates gradients (one array per
// parameter, table order) of ce_scale * sum of the T cross-entropies.
void base_sequence_grads(const ModelConfig& cfg, const ModelWeights& w, const std::vector<BaseParam>& params,
                         std::vector<std::vector<float>>& grads, CpuBackend& be, const int32_t* tokens, int T,
                         float ce_scale, BaseLossStats& stats);

}  // namespace chimera
