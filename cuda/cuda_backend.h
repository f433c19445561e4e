// The CUDA backend: the Backend table (native/backend/backend.h) on one GPU, one stream. Model
// weights stay where the Model keeps them (host mappings); the backend uploads each matrix on first use and keeps the device
// copy (Q8_0 matrices become F16). Buffers that are already device memory are used in place.
// Safe to share between threads: launches are serialised by a mutex onto the one stream (a recording
// holds it throughout, so no other thread's op lands in a graph).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"

namespace chimera {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  const char* name() const override { return "cuda"; }
  bool host_memory() const override { return false; }
  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }
  // Waits until every queued op has run.
  void synchronize();
  // Device copy of a weight matrix (uploaded on first use).
  TensorView device_weights(const TensorView& w);

  void* alloc(size_t bytes) override;
  void free(void* p) override;
  void copy_to_device(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy_device(void* dst, const void* src, size_t bytes) override;
  void embed(float* out, const TensorView& table, const int32_t* tokens, int T) override;
  void rmsnorm(float* out, const float* x, const float* w, int T, int C, float eps) override;
  void matmul(float* out, const float* x, const TensorView& W, int T) override;
  void matmul_group(float* const* outs, const TensorView* const* Ws, int count, const float* x, int T) override;
  void matmul_add(float* out, const float* x, const TensorView& W, int T, float* scratch) override;
  void rope(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
            RopeLayout layout, const float* freq_factors = nullptr) override;
  void add_bias(float* x, const float* bias, int T, int N) override;
  void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const uint8_t* mask, int T,
                 int n_past, int NH, int NKV, int HS, const DeviceSlots* slots = nullptr) override;
  void store_rows(float* base, const float* src, int T, int row_floats, int at,
                  const DeviceSlots* slots = nullptr) override;
  std::unique_ptr<OpGraph> record(const std::function<void()>& ops) override;
  void swiglu(float* out, const float* gate, const float* up, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  void bias_silu_residual(float* out, const float* x, const float* r, const float* bias, int64_t n) override;
  void gather_rows(float* dst, const float* src, const int32_t* rows, int R, int C) override;
  void compact_rows(float* base, int64_t block_stride, int blocks, int row_floats, const int32_t* src, int dst_start,
                    int count) override;
  void argmax_rows(int32_t* out, const float* x, int R, int V) override;
  void top_k_rows(int32_t* ids, float* vals, const float* x, int R, int V, int k, float penalty,
                  const int32_t* recent, int n_recent) override;

 private:
  struct DeviceCopy {
    void* dev = nullptr;
    size_t host_bytes = 0;
    DType dtype = DType::F32;
    bool owned = true;          // false: the caller's device memory, used in place
    uint8_t head[16] = {}, tail[16] = {};  // host bytes at upload (a reused host address re-uploads)
  };
  void use_device() const;
  const float* device_floats(const float* host, int64_t n);
  // Op scratch (mutex held; stream order keeps uses apart). Outgrown buffers are kept until the
  // backend goes, because recorded graphs may point into them.
  void* scratch(size_t bytes);

  int device_;
  cudaStream_t stream_ = nullptr;
  std::recursive_mutex mutex_;
  std::vector<void*> retired_;
  std::unordered_map<const void*, DeviceCopy> weights_;
  void* scratch_ = nullptr;
  int* tickets_ = nullptr;  // zeroed counters of the tensor-core matmul (kTickets)
  size_t scratch_bytes_ = 0;
};

}  // namespace chimera
