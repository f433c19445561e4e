// The clipped AdamW step shared by the base-model and draft trainers.
#include "train/optimizer.h"

#include "train/lr_schedule.h"

namespace chimera {

void clipped_adamw_step(CpuBackend& be, const std::vector<TrainableParam>& params, std::vector<std::vector<float>>& grads,
                        std::vector<std::vector<float>>& m, std::vector<std::vector<float>>& v, float max_norm,
                        float lr, const AdamWConfig& cfg, int step) {
  double sq = 0;
  for (auto& g : grads) sq += be.sum_squares(g.data(), (int64_t)g.size());
  const float clip = clip_scale(sq, max_norm);
  for (size_t i = 0; i < params.size(); i++) {
    if (clip < 1.0f) be.scale(grads[i].data(), clip, (int64_t)grads[i].size());
    be.adamw_step(params[i].data, grads[i].data(), m[i].data(), v[i].data(), params[i].size(), lr, cfg.beta1,
                  cfg.beta2, cfg.eps, params[i].is_vector ? 0.0f : cfg.weight_decay, step);
  }
}

}  // namespace chimera
