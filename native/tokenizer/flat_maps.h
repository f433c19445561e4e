// Open-addressing hash tables for the byte-level BPE hot loop: the merge table keyed by a pair of ids
// and the word table keyed by raw bytes. Both are built once at load and then only read; a lookup is
// one or two cache misses instead of the three or more of a node-based std::unordered_map.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"

namespace chimera {

inline uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline uint64_t hash_bytes(const char* s, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, s, 8);
    h = mix64(h ^ w);
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  std::memcpy(&w, s, n);
  return mix64(h ^ w);
}

inline size_t table_size_for(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;  // load factor <= 0.5 keeps probe runs short
  return cap;
}

// uint64 key -> V. The all-ones key is reserved for empty slots (pairs of int32 ids never make it).
template <typename V>
class FlatU64Map {
 public:
  void reserve(size_t n) {
    keys_.assign(table_size_for(n), kEmpty);
    values_.assign(keys_.size(), V());
  }
  // Keeps the first value for a repeated key; the table must have been reserved for all insertions.
  void insert(uint64_t key, const V& v) {
    for (size_t i = mix64(key) & (keys_.size() - 1);; i = (i + 1) & (keys_.size() - 1)) {
      if (keys_[i] == key) return;
      if (keys_[i] == kEmpty) {
        keys_[i] = key;
        values_[i] = v;
        return;
      }
    }
  }
  const V* find(uint64_t key) const {
    if (keys_.empty()) return nullptr;
    for (size_t i = mix64(key) & (keys_.size() - 1);; i = (i + 1) & (keys_.size() - 1)) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  std::vector<uint64_t> keys_;
  std::vector<V> values_;
};

// Byte string -> int32 id; the keys live in one arena.
class FlatWordMap {
 public:
  void reserve(size_t n) { slots_.assign(table_size_for(n), Slot()); }
  void insert(const std::string& key, int32_t id) {  // the first id wins
    const uint64_t h = hash_bytes(key.data(), key.size());
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        CHIMERA_CHECK(arena_.size() + key.size() <= UINT32_MAX, ErrorCode::Format,
                      "tokenizer: the vocabulary's pieces exceed 4 GiB");
        s = {h, (uint32_t)arena_.size(), (uint32_t)key.size(), id};
        arena_ += key;
        return;
      }
      if (s.hash == h && equal(s, key.data(), key.size())) return;
    }
  }
  int32_t find(const char* key, size_t n) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash_bytes(key, n);
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.hash == h && equal(s, key, n)) return s.id;
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0, len = 0;
    int32_t id = -1;
  };
  bool equal(const Slot& s, const char* key, size_t n) const {
    return s.len == n && std::memcmp(arena_.data() + s.offset, key, n) == 0;
  }
  std::vector<Slot> slots_;
  std::string arena_;
};

}  // namespace chimera
