// Launchers of the CUDA kernels, one op per .cu file. Each op's CPU twin is the CpuBackend op of the
// same name (ops.h); tests_native/test_cuda_ops.cpp compares the two. All pointers are device memory
// unless marked "host"; every launcher enqueues on `stream` and returns without waiting.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace chimera {
namespace cuda {

// embedding.cu: out (T, C) = rows tokens (T) of table (V, C) (F32, F16 or BF16) as F32.
void embed(cudaStream_t s, float* out, DType dtype, const void* table, int C, const int32_t* tokens, int T);

// rmsnorm.cu: out (T, C) = x / rms(x) * w.
void rmsnorm(cudaStream_t s, float* out, const float* x, const float* w, int T, int C, float eps);

// rope.cu: rotates the first rope_dims of each of n_heads heads of x (T, n_heads * HS) in place; pair i's
// angle divided by freq_factors[i] (rope_dims / 2 values; nullptr: none).
void rope(cudaStream_t s, float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
          bool interleaved, const float* freq_factors = nullptr);

// matmul.cu: out (T, N) = x (T, K) @ W^T, W (N, K) in F32, F16 or BF16. F16/BF16 matrices whose N and K
// are multiples of 16 run on tensor cores (x rounded to the weight type, F32 accumulation); others on
// CUDA cores in F32. Either way a row's result does not depend on T or on the other rows.
// The tensor-core path needs matmul_scratch_bytes of scratch (partial sums) and
// matmul_tickets_needed(N) zeroed ints that it leaves zeroed.
size_t matmul_scratch_bytes(DType dtype, int N, int K, int T);
// Tensor-core matrices only (matmul_uses_tensor_cores), 1 to 3 of one dtype over the same x (T, K):
// outs[j] (T, N[j]) = x @ Ws[j]^T, or += with accumulate. Scratch: matmul_group_scratch_bytes; tickets:
// the sum of matmul_tickets_needed(N[j]).
size_t matmul_group_scratch_bytes(const int* N, int count, int K, int T);
void matmul_group(cudaStream_t s, float* const* outs, const void* const* Ws, const int* N, int count, DType dtype,
                  const float* x, int K, int T, bool accumulate, float* partials, int* tickets);
int matmul_tickets_needed(int N);
void matmul(cudaStream_t s, float* out, const float* x, DType dtype, const void* W, int N, int K, int T,
            float* partials, int* tickets);
bool matmul_uses_tensor_cores(DType dtype, int N, int K);

// attention.cu: attention of T query rows over n_past + T cache slots; mask (T, n_past + T) or null
// for causal. Each row sums its visible slots in slot order, split into fixed chunks of that order, so
// a row's result depends only on the slots it sees (tree rows equal plain decoding bit for bit).
// max_slots >= n_past + T sizes the launch; with n_past_dev the kernels read n_past there (a recorded
// graph then serves any n_past up to max_slots - T).
size_t attention_scratch_bytes(int T, int max_slots, int NH, int HS, bool masked);
void attention(cudaStream_t s, float* out, const float* q, const float* k_cache, const float* v_cache,
               const uint8_t* mask, int T, int n_past, const int32_t* n_past_dev, int max_slots, int NH, int NKV,
               int HS, void* scratch);

// elementwise.cu
void swiglu(cudaStream_t s, float* out, const float* gate, const float* up, int64_t n);
void add(cudaStream_t s, float* x, const float* y, int64_t n);
void bias_silu_residual(cudaStream_t s, float* out, const float* x, const float* r, const float* bias, int64_t n);
// x (T, N) += bias (N) on every row.
void add_bias(cudaStream_t s, float* x, const float* bias, int T, int N);

// rows.cu: row gathers. compact_rows takes its source rows in device memory (src_rows, count) and
// needs scratch of compact_rows_scratch_bytes.
// rows [at, at + T) of base = src (T, row_floats); at = *at_dev when at_dev is given.
void store_rows(cudaStream_t s, float* base, const float* src, int T, int row_floats, int at, const int32_t* at_dev);
void gather_rows(cudaStream_t s, float* dst, const float* src, const int32_t* rows, int R, int C);
size_t compact_rows_scratch_bytes(int blocks, int row_floats, int count);
void compact_rows(cudaStream_t s, float* base, int64_t block_stride, int blocks, int row_floats,
                  const int32_t* src_rows, int dst_start, int count, float* scratch);

// argmax.cu: out (R) = the index of the largest of each row of x (R, V); the lowest index wins ties.
void argmax_rows(cudaStream_t s, int32_t* out, const float* x, int R, int V);

// top_k.cu: ids, vals (R, k) = the k largest of each row of x (R, V) after the repetition penalty on
// row r's ids recent[r * n_recent ..] (penalty 1 or n_recent 0: none); value descending, ties by id.
void top_k_rows(cudaStream_t s, int32_t* ids, float* vals, const float* x, int R, int V, int k, float penalty,
                const int32_t* recent, int n_recent);

}  // namespace cuda
}  // namespace chimera
