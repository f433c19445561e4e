// Training-free candidates for a token tree (lookup decoding): from the session's own tokens (prompt
// and output) and, optionally, from an n-gram cache of a corpus. Three sources:
//
//  - prompt lookup: the continuation after the most recent earlier occurrence of the longest recent
//    suffix (2 to kMaxMatch tokens) of the session's tokens: one chain;
//  - session n-grams: the most frequent followers of each node's context in the session's tokens;
//  - corpus n-grams: the same from a corpus table (NgramTable), when given.
//
// They fill one tree, best first by each node's modelled chance of acceptance (the product over its
// path of a per-(source, bucket) acceptance learned from verification outcomes: a prompt match's length
// or an n-gram follower's share picks the bucket). Where sources agree on a node it is one node. Nodes
// come out in that order, so every prefix of the list is a tree, and the caller picks the size whose
// modelled tokens per second are best. Lookup tokens have no draft probability: verification treats
// them as deterministic proposals, which the recursive rejection over the tree already does.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "spec/ngram_table.h"

namespace chimera {

enum class LookupOrigin : int { Prompt = 0, Session = 1, Corpus = 2 };
constexpr int kLookupOrigins = 3;
const char* lookup_origin_name(LookupOrigin o);

// Candidate nodes, best first; node 0 is the root (the last token of the history).
struct LookupTree {
  std::vector<int32_t> token;
  std::vector<int> parent;        // -1 for the root
  std::vector<int> depth;         // 0 for the root
  std::vector<float> p;           // modelled chance of acceptance (the root: 1)
  std::vector<uint8_t> origins;   // bit o set: source o proposed the node
  std::vector<uint8_t> bucket;    // (origin-specific) acceptance bucket the node was priced with, per origin
  void clear();
  int size() const { return (int)token.size(); }
};

class LookupSource {
 public:
  static constexpr int kMaxMatch = 6;  // longest suffix prompt lookup matches
  static constexpr int kBuckets = 6;

  // corpus: an n-gram table of a corpus (may be null).
  explicit LookupSource(std::shared_ptr<const NgramTable> corpus, int session_order = 3);

  // The session's tokens are now `history` (a longer history extends the statistics; a shorter or
  // different one rebuilds them from it).
  void sync(const std::vector<int32_t>& history);
  // Up to max_nodes nodes (the root included), at most max_depth deep, for the history (synced).
  void build(const std::vector<int32_t>& history, int max_nodes, int max_depth, LookupTree& out);
  // The verified outcome: `path` = accepted nodes of `tree` (root first). Updates the acceptance model.
  void observe(const LookupTree& tree, const std::vector<int>& path);
  // The modelled acceptance of (origin, bucket).
  double acceptance(LookupOrigin o, int bucket) const;

 private:
  struct Positions {
    int last = -1, previous = -1;  // end positions (exclusive) of the two latest occurrences
  };
  void add_position(size_t end);  // the grams ending at history_[end - 1]
  void reset_from(const std::vector<int32_t>& history);

  std::shared_ptr<const NgramTable> corpus_;
  NgramTable session_;
  std::vector<int32_t> history_;  // what the statistics cover
  std::unordered_map<uint64_t, Positions> grams_;  // prompt lookup: (L, tokens) -> latest end positions
  std::array<std::array<double, kBuckets>, kLookupOrigins> hits_{}, trials_{};
  // build() scratch
  std::vector<int32_t> ctx_;
  std::vector<NgramTable::Next> next_;
};

}  // namespace chimera
