// Target distributions from backend-selected candidates (candidates.h).
#include "sampling/candidates.h"

namespace chimera {

bool CandidateRows::select(Backend& be, const float* logits, int R, int V, const SamplingParams& p,
                           const int32_t* recent, int n_recent) {
  int k = 0;
  if (R <= 0 || !candidates_suffice(p, V, &k)) return false;
  k_ = k;
  if (p.repeat_penalty == 1.0f) n_recent = 0;
  const int32_t* recent_dev = nullptr;
  if (n_recent > 0) {
    recent_.ensure(&be, (size_t)R * n_recent);
    be.copy_to_device(recent_.data(), recent, sizeof(int32_t) * R * n_recent);
    recent_dev = recent_.data();
  }
  ids_.ensure(&be, (size_t)R * k);
  vals_.ensure(&be, (size_t)R * k);
  be.top_k_rows(ids_.data(), vals_.data(), logits, R, V, k, p.repeat_penalty, recent_dev, n_recent);
  ids_view_ = host_view(be, (const int32_t*)ids_.data(), (size_t)R * k, ids_host_);
  vals_view_ = host_view(be, (const float*)vals_.data(), (size_t)R * k, vals_host_);
  return true;
}

void CandidateRows::distribution(int r, const SamplingParams& p, TokenDistribution& out) const {
  distribution_from_candidates(ids_view_ + (size_t)r * k_, vals_view_ + (size_t)r * k_, k_, p, out);
}

}  // namespace chimera
