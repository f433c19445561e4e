// The sampler's target distributions for rows of logits in backend memory, from the k candidates the
// backend selects (top_k_rows, with the repetition penalty applied there). Where the sampling
// parameters allow it (greedy with a penalty, or top-k up to kMaxCandidates), a device backend then
// copies R x k ids and values to the host instead of R x V logits, and the distributions are the same
// numbers target_distribution gives.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend_buffer.h"
#include "sampling/sampler.h"

namespace chimera {

class CandidateRows {
 public:
  // Selects the candidates of logits (R, V), row r penalised by its window recent[r * n_recent ..]
  // (host memory, ids < 0 are padding). False when the parameters need whole rows (then use
  // target_distribution on the logits).
  bool select(Backend& be, const float* logits, int R, int V, const SamplingParams& p, const int32_t* recent,
              int n_recent);
  // Row r's target distribution (after select returned true).
  void distribution(int r, const SamplingParams& p, TokenDistribution& out) const;

 private:
  int k_ = 0;
  BackendArray<int32_t> ids_, recent_;
  BackendArray<float> vals_;
  std::vector<int32_t> ids_host_;
  std::vector<float> vals_host_;
  const int32_t* ids_view_ = nullptr;
  const float* vals_view_ = nullptr;
};

}  // namespace chimera
