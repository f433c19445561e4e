// Next-token statistics of token sequences, for training-free speculation (lookup decoding): for every
// context of n tokens (n = 1..max_n), how often each token followed it. Built from a session's own
// tokens as they arrive, or from a corpus, and saved to / loaded from a file.
//
// Contexts are keyed by a 64-bit hash of (n, tokens); a rare collision only gives a poor guess, which
// verification rejects (speculation stays lossless whatever the table says). Each context keeps its
// kMaxNext most frequent followers (a newcomer replaces the rarest when the list is full).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace chimera {

class NgramTable {
 public:
  static constexpr int kMaxNext = 8;
  explicit NgramTable(int max_n = 3, int vocab_size = 0);

  int max_n() const { return max_n_; }
  int vocab_size() const { return vocab_; }
  size_t contexts() const { return map_.size(); }

  // Every n-gram of t[0..n).
  void add_sequence(const int32_t* t, size_t n);
  // The n-grams that end at t[n - 1] (t is a sequence growing by one token per call).
  void add_last(const int32_t* t, size_t n);

  struct Next {
    int32_t token;
    float share;  // of the context's counted followers
    int order;    // n of the context that gave it
  };
  // The followers of the longest context (of t[0..n)'s last tokens) that has any, most frequent first,
  // at most k.
  void next(const int32_t* t, size_t n, int k, std::vector<Next>& out) const;

  // Binary file: magic, version, max_n, vocabulary size, then the contexts. load throws E_FORMAT on a
  // malformed file, E_NOT_FOUND when it cannot be opened.
  void save(const std::string& path) const;
  static NgramTable load(const std::string& path);
  // Whether the file at path starts with this format's magic.
  static bool is_table_file(const std::string& path);

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    std::vector<uint32_t> counts;
    uint32_t total = 0;
  };
  static uint64_t key(const int32_t* t, int n);
  void count(uint64_t k, int32_t next);
  int max_n_, vocab_;
  std::unordered_map<uint64_t, Entry> map_;
};

}  // namespace chimera
