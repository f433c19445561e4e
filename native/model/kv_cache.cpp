// KV cache storage and its bookkeeping (append, truncate, compact to an accepted path).
#include "model/kv_cache.h"

#include "common/error.h"

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
  for (int i = 0; i < count; i++)
    CHIMERA_CHECK(src[i] >= start + i && src[i] < n_ && (i == 0 || src[i] > src[i - 1]), ErrorCode::Internal,
                  "KV cache compact: bad slot ", src[i]);
  const int64_t stride = (int64_t)S_ * KVD_;
  backend_->compact_rows(k_, stride, L_, KVD_, src, start, count);
  backend_->compact_rows(v_, stride, L_, KVD_, src, start, count);
  n_ = start + count;
}

}  // namespace chimera
