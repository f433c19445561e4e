// The compute operations of a forward pass, as a small backend table. The CPU backend implements it
// here; a CUDA backend implements the same table, so model, draft, tree and training code are written
// once. All float buffers are backend memory; shapes use the letters of shapes.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "model_config.h"
#include "weights.h"

namespace chimera {

class ThreadPool;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Memory.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p) = 0;
  virtual void copy_to_device(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_device(void* dst, const void* src, size_t bytes) = 0;

  // out (T, C) = rows `tokens` (T) of the table (V, C), converted to F32.
  virtual void embed(float* out, const TensorView& table, const int32_t* tokens, int T) = 0;
  // out (T, C) = x / rms(x) * w, per row.
  virtual void rmsnorm(float* out, const float* x, const float* w, int T, int C, float eps) = 0;
  // out (T, N) = x (T, K) @ W^T, W (N, K) of any weight dtype.
  virtual void matmul(float* out, const float* x, const TensorView& W, int T) = 0;
  // Rotates heads in place: x (T, n_heads * HS) at positions pos (T); the first `rope_dims` of each head.
  virtual void rope(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                    RopeLayout layout) = 0;
  // Attention of T new query rows over S' = n_past + T cache slots.
  //   out (T, NH*HS); q (T, NH*HS), already rotated; k_cache, v_cache (slots, KVD) of this layer;
  //   mask (T, n_past + T), 1 = may attend, or nullptr for causal (row i sees slots < n_past + i + 1).
  virtual void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const uint8_t* mask,
                         int T, int n_past, int NH, int NKV, int HS) = 0;
  // out (n) = silu(gate) * up.
  virtual void swiglu(float* out, const float* gate, const float* up, int64_t n) = 0;
  // x (n) += y (n).
  virtual void add(float* x, const float* y, int64_t n) = 0;
};

// The CPU backend. `pool` may be null (single-threaded). Chooses the fastest kernels the CPU supports
// at run time (see kernels_cpu.h); CHIMERA_CPU_KERNELS=reference|portable|avx2 forces a path.
class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(ThreadPool* pool);
  const char* name() const override { return "cpu"; }
  void* alloc(size_t bytes) override;
  void free(void* p) override;
  void copy_to_device(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy_device(void* dst, const void* src, size_t bytes) override;
  void embed(float* out, const TensorView& table, const int32_t* tokens, int T) override;
  void rmsnorm(float* out, const float* x, const float* w, int T, int C, float eps) override;
  void matmul(float* out, const float* x, const TensorView& W, int T) override;
  void rope(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
            RopeLayout layout) override;
  void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const uint8_t* mask, int T,
                 int n_past, int NH, int NKV, int HS) override;
  void swiglu(float* out, const float* gate, const float* up, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;

 private:
  ThreadPool* pool_;
};

}  // namespace chimera
