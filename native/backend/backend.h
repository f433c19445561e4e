// The compute operations of inference, as a small backend table (class Backend): the CPU backend
// (cpu/cpu_backend.h) and the CUDA backend (cuda/) implement it, so model, draft and tree code are
// written once. Training's operations are a CPU-only table of their own (train_ops.h). Every pointer
// argument is backend memory (index arrays included) unless its comment says "host"; weights
// (TensorView, norm gains) are passed as the host views a Model holds, and a device backend keeps its
// own copy of each. Shapes use the letters of common/shapes.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "common/model_config.h"
#include "common/weights.h"

namespace chimera {

class ThreadPool;

// The number of cached slots as device-side data: kernels read n_past from `n_past` (backend memory)
// rather than the host argument, and size their launches for up to max_slots slots, so that a
// recorded op graph (OpGraph) stays valid as the cache grows. Host-memory backends ignore it.
struct DeviceSlots {
  const int32_t* n_past = nullptr;
  int max_slots = 0;
};

// A recorded sequence of ops that a device backend replays with one launch (a CUDA graph).
class OpGraph {
 public:
  virtual ~OpGraph() = default;
  virtual void replay() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // True when backend memory is ordinary host memory (the host may read and write it directly).
  virtual bool host_memory() const = 0;

  // Memory.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p) = 0;
  virtual void copy_to_device(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_device(void* dst, const void* src, size_t bytes) = 0;

  // out (T, C) = rows `tokens` (T) of the table (V, C), converted to F32.
  virtual void embed(float* out, const TensorView& table, const int32_t* tokens, int T) = 0;
  // out (T, C) = x / rms(x) * w, per row; out may be x (in place). Also the per-head Q/K norm of qwen3,
  // as T*NH rows of HS.
  virtual void rmsnorm(float* out, const float* x, const float* w, int T, int C, float eps) = 0;
  // out (T, N) = x (T, K) @ W^T, W (N, K) of any weight dtype.
  virtual void matmul(float* out, const float* x, const TensorView& W, int T) = 0;
  // Several matrices over the same x (T, K), e.g. Q, K and V: outs[i] (T, Ws[i]->rows) = x @ Ws[i]^T,
  // count <= 3. A device backend may run them as one launch.
  virtual void matmul_group(float* const* outs, const TensorView* const* Ws, int count, const float* x, int T) {
    for (int i = 0; i < count; i++) matmul(outs[i], x, *Ws[i], T);
  }
  // out (T, N) += x (T, K) @ W^T (a residual add); scratch (T, N) may be used on the way.
  virtual void matmul_add(float* out, const float* x, const TensorView& W, int T, float* scratch) {
    matmul(scratch, x, W, T);
    add(out, scratch, (int64_t)T * W.rows);
  }
  // Rotates heads in place: x (T, n_heads * HS) at positions pos (T); the first `rope_dims` of each head.
  // Pair i turns by pos * theta^(-2i/rope_dims) / freq_factors[i] (freq_factors: a weight vector of
  // rope_dims/2, or nullptr for all ones; ModelConfig::rope_freq_factors).
  virtual void rope(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                    RopeLayout layout, const float* freq_factors = nullptr) = 0;
  // x (T, N) += bias (N) on every row; bias is a weight vector (the Q/K/V biases of qwen2).
  virtual void add_bias(float* x, const float* bias, int T, int N) = 0;
  // Attention of T new query rows over S' = n_past + T cache slots.
  //   out (T, NH*HS); q (T, NH*HS), already rotated; k_cache, v_cache (slots, KVD) of this layer;
  //   mask (T, n_past + T), 1 = may attend, or nullptr for causal (row i sees slots < n_past + i + 1).
  //   slots: optional device-side n_past (see DeviceSlots); the host n_past must equal it.
  virtual void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const uint8_t* mask,
                         int T, int n_past, int NH, int NKV, int HS, const DeviceSlots* slots = nullptr) = 0;
  // attention() for each of several sequences' rows (continuous batching), each over its own cache;
  // a backend may run them together. Results equal one attention() call per sequence.
  struct AttentionSequence {
    float* out;
    const float* q;
    const float *k_cache, *v_cache;
    const uint8_t* mask;
    int T, n_past;
  };
  virtual void attention_sequences(const AttentionSequence* seqs, int n, int NH, int NKV, int HS) {
    for (int i = 0; i < n; i++) {
      const AttentionSequence& s = seqs[i];
      attention(s.out, s.q, s.k_cache, s.v_cache, s.mask, s.T, s.n_past, NH, NKV, HS);
    }
  }
  // out (n) = silu(gate) * up.
  virtual void swiglu(float* out, const float* gate, const float* up, int64_t n) = 0;
  // x (n) += y (n).
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // out (n) = x + silu(r + bias) (the trigram encoder's residual block); out may alias x or r.
  virtual void bias_silu_residual(float* out, const float* x, const float* r, const float* bias, int64_t n) = 0;
  // Rows [at, at + T) of base (any, row_floats) = src (T, row_floats); `at` is *slots->n_past when
  // slots is given (device backends), else the host value.
  virtual void store_rows(float* base, const float* src, int T, int row_floats, int at,
                          const DeviceSlots* slots = nullptr) = 0;
  // Records the ops that `ops` issues into a graph to replay later (nullptr: this backend has none).
  // Between record and replay, only device-side data (buffer contents) may change.
  virtual std::unique_ptr<OpGraph> record(const std::function<void()>& ops) { return nullptr; }
  // out (R) = the index of the largest value of each row of x (R, V); the lowest index wins ties.
  virtual void argmax_rows(int32_t* out, const float* x, int R, int V) = 0;
  // The k (1..V) largest values of each row of x (R, V) after the repetition penalty (sampler.h's
  // apply_penalty with row r's ids recent[r * n_recent ..], n_recent >= 0, ids outside 0..V-1
  // ignored; penalty 1: none): ids and vals (R, k), by value descending, ties by id ascending.
  virtual void top_k_rows(int32_t* ids, float* vals, const float* x, int R, int V, int k, float penalty,
                          const int32_t* recent, int n_recent) = 0;
  // dst (R, C) = rows `rows` (R) of src (any, C).
  virtual void gather_rows(float* dst, const float* src, const int32_t* rows, int R, int C) = 0;
  // In each of `blocks` blocks at base + b * block_stride (floats): row dst_start + i (i < count) takes
  // the old row src[i] (host array; increasing, src[i] >= dst_start + i). Rows are row_floats long.
  virtual void compact_rows(float* base, int64_t block_stride, int blocks, int row_floats, const int32_t* src,
                            int dst_start, int count) = 0;
};

}  // namespace chimera
