// KV cache storage and its bookkeeping (append, truncate, compact to an accepted path).
#include "kv_cache.h"

#include "error.h"

namespace chimera {

KVCache::KVCache(Backend* backend, int L, int S, int KVD) : backend_(backend), L_(L), S_(S), KVD_(KVD) {
  CHIMERA_CHECK(S > 0 && L > 0 && KVD > 0, ErrorCode::InvalidArg, "KV cache: bad shape");
  const size_t bytes = (size_t)L * S * KVD * sizeof(float);
  k_ = static_cast<float*>(backend_->alloc(bytes));
  try {
    v_ = static_cast<float*>(backend_->alloc(bytes));
  } catch (...) {
    backend_->free(k_);
    throw;
  }
}

KVCache::~KVCache() {
  backend_->free(k_);
  backend_->free(v_);
}

void KVCache::grow(int T) {
  CHIMERA_CHECK(T >= 0 && n_ + T <= S_, ErrorCode::ContextFull, "KV cache full: ", n_, " + ", T, " > ", S_);
  n_ += T;
}

void KVCache::truncate(int n) {
  CHIMERA_CHECK(n >= 0 && n <= n_, ErrorCode::Internal, "KV cache truncate to ", n, " of ", n_);
  n_ = n;
}

void KVCache::compact(int start, const int32_t* src, int count) {
  CHIMERA_CHECK(start >= 0 && start + count <= n_, ErrorCode::Internal, "KV cache compact out of range");
  const size_t row = (size_t)KVD_ * sizeof(float);
  for (int i = 0; i < count; i++) {
    CHIMERA_CHECK(src[i] >= start + i && src[i] < n_, ErrorCode::Internal, "KV cache compact: bad slot ", src[i]);
    if (src[i] == start + i) continue;
    for (int l = 0; l < L_; l++) {
      backend_->copy_device(k(l) + (size_t)(start + i) * KVD_, k(l) + (size_t)src[i] * KVD_, row);
      backend_->copy_device(v(l) + (size_t)(start + i) * KVD_, v(l) + (size_t)src[i] * KVD_, row);
    }
  }
  n_ = start + count;
}

}  // namespace chimera
