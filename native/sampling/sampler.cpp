// Sampling transforms and draws. The order (penalty, temperature, top-k, top-p, min-p) follows
// llama.cpp's default chain so that users get the distributions they expect.
#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"

namespace chimera {

void validate_sampling(const SamplingParams& p) {
  CHIMERA_CHECK(std::isfinite(p.temperature) && p.temperature >= 0, ErrorCode::InvalidArg,
                "temperature must be a finite number >= 0, got ", p.temperature);
  CHIMERA_CHECK(p.top_k >= 0, ErrorCode::InvalidArg, "topK must be >= 0, got ", p.top_k);
  CHIMERA_CHECK(std::isfinite(p.top_p) && p.top_p > 0 && p.top_p <= 1, ErrorCode::InvalidArg,
                "topP must be in (0, 1], got ", p.top_p);
  CHIMERA_CHECK(std::isfinite(p.min_p) && p.min_p >= 0 && p.min_p < 1, ErrorCode::InvalidArg,
                "minP must be in [0, 1), got ", p.min_p);
  CHIMERA_CHECK(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0, ErrorCode::InvalidArg,
                "repeatPenalty must be > 0, got ", p.repeat_penalty);
  CHIMERA_CHECK(p.repeat_last_n >= 0, ErrorCode::InvalidArg, "repeatLastN must be >= 0, got ", p.repeat_last_n);
}

float TokenDistribution::prob_of(int32_t id) const {
  for (size_t i = 0; i < ids.size(); i++)
    if (ids[i] == id) return probs[i];
  return 0.0f;
}

[[noreturn]] static void throw_non_finite_logits() {
  throw_error(ErrorCode::Numeric,
              "the model produced non-finite logits (NaN or infinity): its weights are corrupt or stored as another "
              "type than the file says; loadModel(path, { checkTensors: true }) names the tensor");
}

int32_t argmax(const float* logits, int V) {
  int32_t best = 0;
  for (int i = 1; i < V; i++)
    if (logits[i] > logits[best]) best = i;
  // NaN never wins a comparison, so NaN logits leave best at a NaN entry only when no value beats it.
  if (!std::isfinite(logits[best])) throw_non_finite_logits();
  return best;
}

void apply_penalty(float* l, int V, float penalty, const int32_t* recent, int n) {
  if (penalty == 1.0f || n <= 0) return;
  // Each distinct token is penalised once, however often it occurred.
  std::vector<int32_t> seen(recent, recent + n);
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (int32_t id : seen) {
    if (id < 0 || id >= V) continue;
    l[id] = l[id] > 0 ? l[id] / penalty : l[id] * penalty;
  }
}

bool candidates_suffice(const SamplingParams& p, int V, int* k) {
  if (p.temperature <= 0.0f) {
    *k = 1;
    return V >= 1;
  }
  *k = p.top_k;
  return p.top_k > 0 && p.top_k <= kMaxCandidates && p.top_k < V;
}

void top_k_candidates(const float* logits, int V, int k, float penalty, const int32_t* recent, int n_recent,
                      int32_t* ids, float* vals, std::vector<float>& l, std::vector<int32_t>& order) {
  l.assign(logits, logits + V);
  apply_penalty(l.data(), V, penalty, recent, n_recent);
  // NaN would break the sort's ordering; as -inf it never wins, and an all-NaN row is caught by the
  // distribution's finiteness check.
  for (float& x : l)
    if (std::isnan(x)) x = -INFINITY;
  order.resize((size_t)V);
  std::iota(order.begin(), order.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), by_logit);
  for (int i = 0; i < k; i++) {
    ids[i] = order[i];
    vals[i] = l[order[i]];
  }
}

void target_distribution(const float* logits, int V, const SamplingParams& p, const int32_t* recent, int n_recent,
                         TokenDistribution& out, std::vector<float>& l) {
  out.ids.clear();
  out.probs.clear();
  const int n_pen = penalty_window(p, n_recent);
  if (p.temperature <= 0.0f && n_pen == 0) {  // plain greedy: no copy
    out.ids.push_back(argmax(logits, V));
    out.probs.push_back(1.0f);
    return;
  }
  int k = V;
  if (p.temperature <= 0.0f) k = 1;
  else if (p.top_k > 0 && p.top_k < V) k = p.top_k;
  thread_local std::vector<int32_t> ids, order;
  thread_local std::vector<float> vals;
  ids.resize((size_t)k);
  vals.resize((size_t)k);
  top_k_candidates(logits, V, k, p.repeat_penalty, recent + (n_recent - n_pen), n_pen, ids.data(), vals.data(), l,
                   order);
  distribution_from_candidates(ids.data(), vals.data(), k, p, out);
}

void distribution_from_candidates(const int32_t* ids, const float* vals, int k, const SamplingParams& p,
                                  TokenDistribution& out) {
  out.ids.assign(ids, ids + k);
  out.probs.clear();
  if (p.temperature <= 0.0f || k == 1) {
    if (!std::isfinite(vals[0])) throw_non_finite_logits();
    out.ids.resize(1);
    out.probs.push_back(1.0f);
    return;
  }
  const double inv_t = 1.0 / p.temperature;
  const double max_l = vals[0];
  if (!std::isfinite(max_l)) throw_non_finite_logits();
  std::vector<double> pr((size_t)k);
  double sum = 0;
  for (int i = 0; i < k; i++) sum += (pr[i] = std::exp((vals[i] - max_l) * inv_t));
  if (!std::isfinite(sum)) throw_non_finite_logits();
  for (double& x : pr) x /= sum;

  size_t keep = (size_t)k;
  if (p.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
    double cum = 0;
    for (size_t i = 0; i < keep; i++) {
      cum += pr[i];
      if (cum >= p.top_p) { keep = i + 1; break; }
    }
  }
  if (p.min_p > 0.0f) {
    const double floor_p = p.min_p * pr[0];
    size_t m = 1;
    while (m < keep && pr[m] >= floor_p) m++;
    keep = m;
  }
  out.ids.resize(keep);
  double kept = 0;
  for (size_t i = 0; i < keep; i++) kept += pr[i];
  out.probs.resize(keep);
  for (size_t i = 0; i < keep; i++) out.probs[i] = (float)(pr[i] / kept);
}

int32_t sample_from(const TokenDistribution& dist, Rng& rng) {
  if (dist.ids.size() == 1) return dist.ids[0];
  const double u = rng.uniform();
  double cum = 0;
  for (size_t i = 0; i < dist.ids.size(); i++) {
    cum += dist.probs[i];
    if (u < cum) return dist.ids[i];
  }
  return dist.ids.back();  // rounding left a sliver of mass at the end
}

}  // namespace chimera
