// CPU kernels: a plain reference for each op (the ground truth in tests) and fast paths (portable
// blocked C++, AVX2/FMA/F16C, and AVX-512F for F32/F16/BF16 matmuls), chosen at run time by CPU
// feature detection.
//
// The reference functions are single-threaded and simple. The fast matmul works on a row range of W
// so the backend can split W's rows over threads; each weight row is streamed once per call and
// reused for all T input rows.
#pragma once
#include <cstdint>

#include "common/model_config.h"
#include "common/weights.h"

namespace chimera {

// Avx512 runs the AVX-512F matmul tiles for F32, F16 and BF16 and the AVX2 loops for the rest (Q8_0,
// attention): a CPU with it has AVX2 too.
enum class KernelPath { Reference = 0, Portable = 1, Avx2 = 2, Avx512 = 3 };

// The path in use: the best the CPU supports, or the one CHIMERA_CPU_KERNELS forces
// (reference|portable|avx2|avx512; forcing a path the CPU lacks falls back to the best available).
KernelPath active_kernel_path();
const char* kernel_path_name(KernelPath p);
bool cpu_supports(KernelPath p);
// Whether the path runs the AVX2 integer loops for Q8_0 (x quantised to Q8 blocks, Q8_0x4 or Q8_0x16 weights).
inline bool uses_avx2_loops(KernelPath p) { return p == KernelPath::Avx2 || p == KernelPath::Avx512; }

// ---- reference (plain loops, F32 accumulation in double where it matters for tests) ----
void matmul_forward_reference(float* out, const float* x, const TensorView& W, int T);  // out (T,N) = x (T,K) W^T
// The same for W rows [n0, n1) only (out row stride W.rows).
void matmul_rows_reference(float* out, const float* x, const TensorView& W, int T, int64_t n0, int64_t n1);
void rmsnorm_forward_reference(float* out, const float* x, const float* w, int T, int C, float eps);
// freq_factors (rope_dims/2, or nullptr): pair i's angle is divided by freq_factors[i] (Backend::rope).
void rope_forward_reference(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                            RopeLayout layout, const float* freq_factors = nullptr);
void attention_forward_reference(float* out, const float* q, const float* k_cache, const float* v_cache,
                                 const uint8_t* mask, int T, int n_past, int NH, int NKV, int HS);
void swiglu_forward_reference(float* out, const float* gate, const float* up, int64_t n);

// ---- fast paths ----
// out (T, N) for W rows [n0, n1) only: out[t*N + n] for n in range. Row stride of out is W.rows.
// Q8_0 matrices on the AVX2 path multiply x quantised to Q8 blocks (quantize_q8_activations), with
// exact integer dot products per block, as llama.cpp does; Q4_0 and the k-quants do so on every path but
// the reference (cpu/quant_matmul.h); the float dtypes use x as is.
// x quantised to Q8 blocks (quantize_q8_activations), for the matmuls that work on it.
// The k-quant weights (Q4_K, Q5_K, Q6_K) take x as Q8_K instead (quantize_q8k_activations): one scale
// per 256 values and the sums of each 16, with s and sum left empty.
struct Q8Activations {
  const int8_t* q = nullptr;      // (T, K)
  const float* s = nullptr;       // (T, K / 32)
  const int32_t* sum = nullptr;   // (T, K / 32) each block's sum of q (the VNNI kernels' offset)
  const float* d256 = nullptr;    // (T, K / 256) Q8_K: the scale of each 256 values
  const int16_t* bsum16 = nullptr;  // (T, K / 16) Q8_K: each 16 values' sum of q
  // The same sums times their 256-block's scale, as floats: the x side of the k-quants' mins and offsets.
  const float* xsum32 = nullptr;    // (T, K / 32) d256 * (the sum of q over each 32)
  const float* xsum16 = nullptr;    // (T, K / 16) d256 * bsum16
};
// Whether matmul_rows(path, .., W, ..) multiplies x quantised to Q8 blocks; a caller that splits one
// matmul over threads then quantises once (quantize_activations_for) and passes it to every part (else
// each part does).
bool matmul_quantises_x(KernelPath path, const TensorView& W);
// x (T, W.cols) quantised the way W's matmul takes it (Q8 blocks of 32, or Q8_K for the k-quants), into
// buffers of the calling thread valid until its next call.
Q8Activations quantize_activations_for(const TensorView& W, const float* x, int T);
void matmul_rows(KernelPath path, float* out, const float* x, const TensorView& W, int T, int64_t n0, int64_t n1,
                 const Q8Activations* xq = nullptr);
// Attention for query rows [t0, t1) and query heads [h0, h1) (h1 = -1: all heads); same contract as the
// reference. A head range lets a decode step (T = 1) be split over threads.
void attention_rows(KernelPath path, float* out, const float* q, const float* k_cache, const float* v_cache,
                    const uint8_t* mask, int T, int n_past, int NH, int NKV, int HS, int t0, int t1, int h0 = 0,
                    int h1 = -1);
// RoPE on x (T, n_heads * HS) in place, by +angle (direction 1) or -angle (direction -1, the backward).
void rope_rotate_cpu(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                     RopeLayout layout, int direction, const float* freq_factors = nullptr);
// x (T, K) -> per 32 elements a scale d = max |x| / 127 (s, T x K/32) and round(x / d) (q, T x K),
// and when `sum` is given each block's sum of q (T x K/32). K must be a multiple of 32.
void quantize_q8_activations(const float* x, int T, int64_t K, int8_t* q, float* s, int32_t* sum = nullptr);
// The same into buffers of the calling thread, valid until its next call.
Q8Activations quantize_q8_activations(const float* x, int T, int64_t K);
// x (T, K) -> Q8_K as ggml makes it: per 256 elements the value of largest magnitude m maps to -127,
// d = -m / 127 (d256, T x K/256, may be negative), q = round(x / d) (q, T x K)
// and the sum of q over each 16 (bsum16, T x K/16). K must be a multiple of 256.
void quantize_q8k_activations(const float* x, int T, int64_t K, int8_t* q, float* d256, int16_t* bsum16);
Q8Activations quantize_q8k_activations(const float* x, int T, int64_t K);
// Dot product of an F32 vector with n elements of a weight row (any dtype).
float dot_row(KernelPath path, const float* x, const TensorView& W, int64_t row, int64_t n);

}  // namespace chimera
