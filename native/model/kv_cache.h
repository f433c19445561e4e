// The key/value cache of one sequence: per layer, S slots of KVD floats for K (already rotated) and V.
// Slot i holds the token at position i of the accepted text; a forward batch appends T slots, and
// speculative verification compacts the accepted tree path back into consecutive slots.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace chimera {

class KVCache {
 public:
  KVCache(Backend* backend, int L, int S, int KVD);
  ~KVCache();
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;

  int capacity() const { return S_; }
  int size() const { return n_; }
  int KVD() const { return KVD_; }
  float* k(int layer) { return k_ + (size_t)layer * S_ * KVD_; }  // (S, KVD)
  float* v(int layer) { return v_ + (size_t)layer * S_ * KVD_; }  // (S, KVD)
  const float* k(int layer) const { return k_ + (size_t)layer * S_ * KVD_; }
  const float* v(int layer) const { return v_ + (size_t)layer * S_ * KVD_; }
  size_t bytes() const { return 2 * (size_t)L_ * S_ * KVD_ * sizeof(float); }

  // Marks T more slots as filled (the forward pass has written them).
  void grow(int T);
  // Forgets every slot from n on.
  void truncate(int n);
  // Keeps slots [0, start) and moves slots src[0..count) (each >= start, increasing) to start+i.
  void compact(int start, const int32_t* src, int count);

 private:
  Backend* backend_;
  int L_, S_, KVD_;
  float* k_ = nullptr;  // (L, S, KVD)
  float* v_ = nullptr;  // (L, S, KVD)
  int n_ = 0;
};

}  // namespace chimera
