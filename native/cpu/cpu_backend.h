// The CPU backend: the inference table (backend/backend.h) and training's table (backend/train_ops.h)
// over host memory, with the fastest kernels this CPU supports chosen at run time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "backend/train_ops.h"
#include "cpu/kernels_cpu.h"

namespace chimera {

class ThreadPool;

// The CPU backend. `pool` may be null (single-threaded). Chooses the fastest kernels the CPU supports
// at run time (see kernels_cpu.h); CHIMERA_CPU_KERNELS=reference|portable|avx2|avx512 forces a path.
class CpuBackend final : public Backend, public TrainOps {
 public:
  explicit CpuBackend(ThreadPool* pool);
  const char* name() const override { return "cpu"; }
  bool host_memory() const override { return true; }
  void* alloc(size_t bytes) override;
  void free(void* p) override;
  void copy_to_device(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy_device(void* dst, const void* src, size_t bytes) override;
  void embed(float* out, const TensorView& table, const int32_t* tokens, int T) override;
  void rmsnorm(float* out, const float* x, const float* w, int T, int C, float eps) override;
  void matmul(float* out, const float* x, const TensorView& W, int T) override;
  void matmul_group(float* const* outs, const TensorView* const* Ws, int count, const float* x, int T) override;
  void rope(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
            RopeLayout layout, const float* freq_factors = nullptr) override;
  void add_bias(float* x, const float* bias, int T, int N) override;
  void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const uint8_t* mask, int T,
                 int n_past, int NH, int NKV, int HS, const DeviceSlots* slots = nullptr) override;
  void attention_sequences(const AttentionSequence* seqs, int n, int NH, int NKV, int HS) override;
  void swiglu(float* out, const float* gate, const float* up, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  void store_rows(float* base, const float* src, int T, int row_floats, int at,
                  const DeviceSlots* slots = nullptr) override;
  void bias_silu_residual(float* out, const float* x, const float* r, const float* bias, int64_t n) override;
  void gather_rows(float* dst, const float* src, const int32_t* rows, int R, int C) override;
  void argmax_rows(int32_t* out, const float* x, int R, int V) override;
  void top_k_rows(int32_t* ids, float* vals, const float* x, int R, int V, int k, float penalty,
                  const int32_t* recent, int n_recent) override;
  void compact_rows(float* base, int64_t block_stride, int blocks, int row_floats, const int32_t* src, int dst_start,
                    int count) override;

  // Training (cpu_backward.cpp, cpu_attention_train.cpp, cpu_losses.cpp, cpu_optim.cpp).
  void linear_backward(float* dx, float* dW, const float* dy, const float* x, const TensorView& W, int T) override;
  void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int T, int C,
                        float eps) override;
  void rope_backward(float* dx, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                     RopeLayout layout) override;
  void attention_forward_train(float* out, float* probs, const float* q, const float* k, const float* v,
                               const uint8_t* mask, int T, int S, int NH, int NKV, int HS) override;
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q,
                          const float* k, const float* v, int T, int S, int NH, int NKV, int HS) override;
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                       int64_t n) override;
  void softmax_cross_entropy(float* dlogits, const float* logits, const int32_t* targets, int T, int V,
                             float grad_scale, double* loss_sum, int* counted, int* top1_correct) override;
  void kl_to_teacher(float* dlogits, const float* logits, const float* teacher_logits, const uint8_t* row_mask, int T,
                     int V, float temperature, float grad_scale, double* loss_sum) override;
  void mse(float* dx, const float* x, const float* target, int64_t n, float grad_scale, double* loss_sum) override;
  double sum_squares(const float* x, int64_t n) override;
  void scale(float* x, float s, int64_t n) override;
  void adamw_step(float* w, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int step) override;

  // Copies matrices of `w` into layouts of the faster kernels; matmul then reads a matrix's copy,
  // found by its address. With the AVX2 or AVX-512 path active:
  //  - Q8_0 matrices, unless CHIMERA_CPU_REPACK is 0: into the Q8_0x16 layout (q8_0x16.h) where the
  //    AVX-512 path is active and the CPU has VNNI, else into Q8_0x4 (q8_0x4.h);
  //  - on a CPU with AMX-BF16 that passes amx_self_check, BF16 matrices into AMX panels
  //    (kernels_amx.h); with CHIMERA_CPU_AMX=all also F16 and F32 ones (rounded to bf16);
  //    CHIMERA_CPU_AMX=0 turns AMX off.
  // Call before the backend is used from several threads. Returns the bytes of the copies.
  size_t prepare_weights(const ModelWeights& w);
  size_t repacked_bytes() const { return repacked_bytes_; }
  // The plain matrices that prepare_weights copied (their data and bytes): the matmuls no longer read
  // them, though other ops may (the embedding rows of a tied output matrix).
  std::vector<std::pair<const void*, size_t>> repacked_sources() const;
  bool uses_amx() const { return uses_amx_; }

 private:
  // The layout of a matrix's copy (None: the file's layout, no copy).
  enum class Layout { None, Q8x4, Q8x16, Amx, FloatPanels };
  struct Repacked {
    std::shared_ptr<uint8_t> data;
    Layout layout;
    size_t source_bytes;
  };
  // One matrix of a matmul call, ready to compute any range of its output rows on any thread, with x
  // already in the form its kernel takes (quantised xq, or bf16 xb for AMX), made once for every part.
  struct MatmulPart {
    Layout layout;
    KernelPath path;
    float* out;
    const float* x;
    const TensorView* W;
    int T;
    const uint8_t* packed;
    const Q8Activations* xq;
    const uint16_t* xb;
    void run(int64_t n0, int64_t n1) const;
  };
  ThreadPool* pool_;
  std::unordered_map<const void*, Repacked> repacked_;  // plain data -> its copy
  size_t repacked_bytes_ = 0;
  bool uses_amx_ = false;
};

}  // namespace chimera
