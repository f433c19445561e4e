// Token sampling: greedy, or temperature with top-k, top-p, min-p and a repetition penalty, from a
// seeded, platform-independent RNG. The same distribution code serves plain sampling and (for
// speculative decoding) the per-node target distribution of lossless tree verification.
#pragma once
#include <cstdint>
#include <vector>

namespace chimera {

struct SamplingParams {
  float temperature = 0.8f;    // <= 0: greedy
  int top_k = 40;              // <= 0: off
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off
  float repeat_penalty = 1.0f; // 1: off
  int repeat_last_n = 64;      // window of recent tokens the penalty looks at
  uint64_t seed = 0;
};

// Throws E_INVALID_ARG naming the bad field.
void validate_sampling(const SamplingParams& p);

// splitmix64: tiny, fast and identical on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)

 private:
  uint64_t s_;
};

// A sparse probability distribution: ids with their probabilities, summing to 1, in decreasing order.
struct TokenDistribution {
  std::vector<int32_t> ids;
  std::vector<float> probs;
  float prob_of(int32_t id) const;
};

// Applies the repetition penalty (over `recent`), then greedy => a one-hot distribution on the argmax;
// otherwise temperature, top-k, top-p and min-p, renormalised. `scratch` avoids allocations.
void target_distribution(const float* logits, int V, const SamplingParams& p, const int32_t* recent, int n_recent,
                         TokenDistribution& out, std::vector<float>& scratch);

// True when the target distribution is one-hot on the argmax of the raw logits (greedy, no penalty):
// then only the argmax is needed, and a device backend can find it without copying the logits.
inline bool plain_greedy(const SamplingParams& p) { return p.temperature <= 0.0f && p.repeat_penalty == 1.0f; }

// The repetition penalty on logits l (V) in place: every distinct id of recent (n; ids outside 0..V-1
// are ignored) once, positive logits divided by the penalty, negative ones multiplied.
void apply_penalty(float* l, int V, float penalty, const int32_t* recent, int n);

// The penalty window of a context: its last min(n_recent, repeat_last_n) tokens when a penalty is on,
// else none.
inline int penalty_window(const SamplingParams& p, int n_recent) {
  return p.repeat_penalty == 1.0f ? 0 : (n_recent < p.repeat_last_n ? n_recent : p.repeat_last_n);
}

// The k (1..V) largest of logits (V) after the repetition penalty on recent (n_recent ids), by value
// descending, ties by id ascending: ids and vals (k each). `scratch` avoids allocations. The one
// selection behind target_distribution, CpuBackend::top_k_rows and the draft heads' guesses.
void top_k_candidates(const float* logits, int V, int k, float penalty, const int32_t* recent, int n_recent,
                      int32_t* ids, float* vals, std::vector<float>& scratch, std::vector<int32_t>& order);

// The most candidates a backend's top_k_rows is asked for.
constexpr int kMaxCandidates = 128;

// Whether the target distribution depends only on the k largest penalised logits, with k returned:
// greedy with a penalty (k = 1) or top-k in 1..kMaxCandidates below V. A device backend then selects
// k candidates and copies them instead of V logits.
bool candidates_suffice(const SamplingParams& p, int V, int* k);

// The target distribution from the k largest penalised logits (ids and values, by value descending,
// ties by id ascending): the same numbers as target_distribution, which ends in it.
void distribution_from_candidates(const int32_t* ids, const float* vals, int k, const SamplingParams& p,
                                  TokenDistribution& out);

// Draws from a distribution (greedy distributions have one entry).
int32_t sample_from(const TokenDistribution& dist, Rng& rng);

// Argmax of the (penalised) logits; the lowest id wins ties.
int32_t argmax(const float* logits, int V);

}  // namespace chimera
