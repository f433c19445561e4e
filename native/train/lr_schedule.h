// Learning-rate schedule and gradient clipping factor for native training: linear warm-up then cosine
// decay, and the global-norm clipping scale.
#pragma once
#include <cmath>

namespace chimera {

// The learning rate at `step` (from 0): linear warm-up from 0 at step 0 to lr_max at warmup_steps, then a
// cosine decay from lr_max to lr_min at total_steps; lr_min from then on.
inline float cosine_lr(int step, int warmup_steps, int total_steps, float lr_max, float lr_min) {
  if (step < 0) step = 0;
  if (step < warmup_steps) return (float)((double)lr_max * step / warmup_steps);
  if (step >= total_steps) return lr_min;
  const double ratio = (double)(step - warmup_steps) / (double)(total_steps - warmup_steps);  // [0, 1)
  const double pi = 3.14159265358979323846;
  return (float)(lr_min + 0.5 * (1.0 + std::cos(pi * ratio)) * ((double)lr_max - lr_min));
}

// The factor that scales gradients with global squared norm `global_sq_norm` down to norm max_norm:
// min(1, max_norm / norm). max_norm <= 0 turns clipping off (1). A non-finite norm gives 0: the step's
// gradients are unusable and the caller should skip it.
inline float clip_scale(double global_sq_norm, float max_norm) {
  if (!std::isfinite(global_sq_norm)) return 0.f;
  if (max_norm <= 0.f) return 1.f;
  const double norm = std::sqrt(global_sq_norm);
  return norm > max_norm ? (float)(max_norm / norm) : 1.f;
}

}  // namespace chimera
