// The teacher-forced forward and backward pass of the Chimera draft over one base-model sequence,
// laid out exactly as inference drafts (draft_state.h): for every anchor m and depth d, the query is
// the trigram vector g_p at position p = m + d; it sees the base hidden states h_0..h_{m-1}, the
// trigram vectors g_1..g_p and the chain's earlier predictions h^(0..d-1) (detached, as in the
// reference code); head d reads [h_{m-1} ; h^(d)_p] and is trained toward the base model's own
// choice at position p + 1. Loss = sum_d CE_d + lambda * MSE(h^(d)_p, h_p).
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "cpu/cpu_backend.h"
#include "spec/draft_model.h"

namespace chimera {

// One sequence of the training data with what the frozen base model computed on it.
struct DraftExample {
  const int32_t* tokens;  // (L)
  const float* hidden;    // (L, C) base final-normed hidden states
  const int32_t* labels;  // (L) labels[p] = the base's choice for position p (argmax at p-1); labels[0] = -1
  int L;
  // Optional soft targets: the base's logits (L, V) (row p predicts position p + 1). When set, heads are
  // trained by KL(base || head) at `soft_temperature` instead of cross-entropy to the labels.
  const float* teacher_logits = nullptr;
  float soft_temperature = 1.0f;
};

struct DraftLossStats {
  std::vector<double> ce_sum;  // (K) summed cross-entropy per head (KL with soft targets)
  std::vector<int> counted;    // (K) predictions per head
  std::vector<int> correct;    // (K) top-1 agreements with the base per head
  double mse_sum = 0;
  int64_t mse_count = 0;
  void reset(int K);
  void add(const DraftLossStats& o);
};

// Accumulates d(loss)/d(param) into grads (one array per parameter, in make_trainable order).
// ce_scale and mse_scale multiply each prediction's CE and each element's squared error.
void draft_example_grads(const Model& base, const DraftModel& draft, const std::vector<DraftParam>& params,
                         std::vector<std::vector<float>>& grads, CpuBackend& be, const DraftExample& ex,
                         float ce_scale, float mse_scale, DraftLossStats& stats);

}  // namespace chimera
