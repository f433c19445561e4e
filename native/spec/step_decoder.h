// What a session's speculation looks like to the session, whatever proposes the trees (a Chimera
// draft: SpeculativeDecoder; lookup without a draft: LookupDecoder). The session asks which tree to
// run next, runs plain steps itself, and reports what it timed.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sampling/sampler.h"
#include "spec/batch_context.h"
#include "spec/tree_step.h"

namespace chimera {

struct SpeculativeStats {
  int steps = 0;
  int drafted_tokens = 0;                 // tokens emitted by speculative steps (accepted + bonus)
  std::vector<int64_t> accepted_by_depth;  // (depth) steps whose accepted path reached depth d+1
  std::vector<int64_t> steps_by_tree;      // (trees) steps that used each tree
  double ms_draft = 0, ms_verify = 0;      // proposing the tree (drafting, lookup), verifying it
  double ms_sync = 0;            // the part of ms_draft spent catching the draft up with the context
  int64_t synced_positions = 0;  // positions caught up
  bool lookup = false;           // accepted_by_source is counted (lookup; set by the session)
  std::array<int64_t, 3> accepted_by_source{};  // accepted tokens proposed by prompt lookup, session, corpus n-grams
  bool draft_and_lookup = false;                // accepted_from_draft is counted
  int64_t accepted_from_draft = 0;              // with a draft and lookup: accepted tokens the draft proposed
};

// An accepted node's sources, as bits: 1 << LookupOrigin (prompt, session, corpus), and
// kDraftOriginBit when the draft proposed it.
constexpr uint8_t kDraftOriginBit = 0x80;

// Counts a verified step of tree `tree` (of n_trees) whose compiled tree is `depth` deep.
inline void count_step(SpeculativeStats& s, int tree, int n_trees, int depth, const TreeAcceptance& acc,
                       size_t emitted) {
  s.steps++;
  s.drafted_tokens += (int)emitted;
  if (s.accepted_by_depth.size() < (size_t)depth) s.accepted_by_depth.resize((size_t)depth, 0);
  if (s.steps_by_tree.size() < (size_t)n_trees) s.steps_by_tree.resize((size_t)n_trees, 0);
  s.steps_by_tree[(size_t)tree]++;
  for (size_t d = 0; d + 1 < acc.path.size(); d++) s.accepted_by_depth[d]++;
}

// Counts one accepted token for each of its sources.
inline void count_sources(SpeculativeStats& s, uint8_t origins) {
  if (origins & kDraftOriginBit) s.accepted_from_draft++;
  for (size_t o = 0; o < s.accepted_by_source.size(); o++)
    if (origins & (1u << o)) s.accepted_by_source[o]++;
}

class StepDecoder {
 public:
  virtual ~StepDecoder() = default;
  // The trees steps_by_tree counts, by name.
  virtual std::vector<std::string> tree_names() const = 0;
  // Rows a speculative step may verify (the workspace must hold them).
  virtual int max_tree_size() const = 0;
  // Whether steps need the final hidden states of cached positions (BaseSide::hidden).
  virtual bool needs_hidden() const = 0;
  // Lookup candidates feed the trees (stats count accepted tokens by source), and a draft's too.
  virtual bool uses_lookup() const = 0;
  virtual bool uses_draft() const = 0;
  // The tree for the next step, or -1 for a plain step. history = the cached m tokens + the root; the
  // cache's capacity bounds the tree.
  virtual int choose(const std::vector<int32_t>& history, int m, int capacity) = 0;
  // One speculative step with tree t (from choose); timings go to stats.
  virtual std::vector<int32_t> step(int t, BaseSide base, const std::vector<int32_t>& history,
                                    const SamplingParams& sampling, Rng& rng, SpeculativeStats& stats) = 0;
  // The session's plain step after choose returned -1 took ms.
  virtual void plain_step_done(double ms) = 0;
  // A base forward over T rows took ms (prompt batches and plain steps).
  virtual void observe_forward(int T, double ms) = 0;
  // The context was cut to `keep` positions.
  virtual void truncate(int keep) = 0;
  // Rows the last speculative step verified.
  virtual int last_rows() const = 0;
  // What the next step shares its forward pass with (set before each choose).
  void set_batch(const BatchContext& c) { batch_ = c; }

 protected:
  BatchContext batch_;
};

}  // namespace chimera
