// An owned array in backend memory (RAII), and reading backend memory from the host without a copy
// when the backend's memory is host memory.
#pragma once
#include <cstddef>
#include <vector>

#include "backend/backend.h"

namespace chimera {

template <typename T>
class BackendArray {
 public:
  BackendArray() = default;
  BackendArray(Backend* be, size_t n) { reset(be, n); }
  ~BackendArray() { release(); }
  BackendArray(const BackendArray&) = delete;
  BackendArray& operator=(const BackendArray&) = delete;
  BackendArray(BackendArray&& o) noexcept : be_(o.be_), p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }

  // Reallocates to n elements (contents are not kept).
  void reset(Backend* be, size_t n) {
    release();
    be_ = be;
    p_ = static_cast<T*>(be_->alloc(n * sizeof(T)));
    n_ = n;
  }
  // Grows to at least n elements (contents are not kept when it grows).
  void ensure(Backend* be, size_t n) {
    if (!p_ || n_ < n || be_ != be) reset(be, n);
  }
  T* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  void release() {
    if (p_) be_->free(p_);
    p_ = nullptr;
    n_ = 0;
  }
  Backend* be_ = nullptr;
  T* p_ = nullptr;
  size_t n_ = 0;
};

// The n values at src (backend memory) as a host pointer: src itself on a host-memory backend,
// otherwise a copy in `staging`.
template <typename T>
const T* host_view(Backend& be, const T* src, size_t n, std::vector<T>& staging) {
  if (be.host_memory()) return src;
  staging.resize(n);
  be.copy_to_host(staging.data(), src, n * sizeof(T));
  return staging.data();
}

// Host values as backend memory: src itself on a host-memory backend, otherwise copied into dst.
template <typename T>
const T* device_view(Backend& be, const T* src, size_t n, BackendArray<T>& dst) {
  if (be.host_memory()) return src;
  dst.ensure(&be, n);
  be.copy_to_device(dst.data(), src, n * sizeof(T));
  return dst.data();
}

}  // namespace chimera
