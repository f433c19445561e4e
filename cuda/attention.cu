// Attention of T query rows over the KV cache with an arbitrary mask (tree verification) or causally.
//  1. (masked only) each row's visible slots, in slot order: vis (T, S), count (T).
//  2. For each (head, row, chunk of 256 visible slots): scores, max, exp, sum and the weighted sum of
//     V rows, all in a fixed order: a partial (acc[HS], max, sum).
//  3. Each (head, row) combines its chunks in order.
// A row that sees nothing outputs zeros (as the CPU twin does).
#include <algorithm>
#include <cmath>

#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {
namespace cuda {

namespace {

constexpr int kChunk = 256;
constexpr int kThreads = 128;
constexpr int kScanThreads = 256;

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

// S = slots of this batch (n_past + T; read from n_past_dev when given); vis rows are vis_stride long.
__global__ void visible_slots_kernel(int32_t* __restrict__ vis, int32_t* __restrict__ counts,
                                     const uint8_t* __restrict__ mask, int S, const int32_t* __restrict__ n_past_dev,
                                     int T, int vis_stride) {
  grid_dependency_wait();
  __shared__ int sums[kScanThreads];
  if (n_past_dev) S = *n_past_dev + T;
  const int t = blockIdx.x;
  const uint8_t* m = mask + (int64_t)t * S;
  const int per = (S + kScanThreads - 1) / kScanThreads;
  const int a = threadIdx.x * per, b = min(S, a + per);
  int c = 0;
  for (int i = a; i < b; i++) c += m[i] != 0;
  sums[threadIdx.x] = c;
  __syncthreads();
  for (int off = 1; off < kScanThreads; off <<= 1) {  // inclusive scan
    const int v = threadIdx.x >= off ? sums[threadIdx.x - off] : 0;
    __syncthreads();
    sums[threadIdx.x] += v;
    __syncthreads();
  }
  int at = sums[threadIdx.x] - c;
  for (int i = a; i < b; i++)
    if (m[i]) vis[(int64_t)t * vis_stride + at++] = i;
  if (threadIdx.x == kScanThreads - 1) counts[t] = sums[threadIdx.x];
}

// grid (NH, T, splits); shared: q (HS) + p (kChunk) + group sums (max(kThreads, HS)) + slots (kChunk
// ints) + red (32).
__global__ void __launch_bounds__(kThreads)
    attention_partial_kernel(float* __restrict__ part, const float* __restrict__ q, const float* __restrict__ k,
                             const float* __restrict__ v, const int32_t* __restrict__ vis,
                             const int32_t* __restrict__ counts, int n_past, const int32_t* __restrict__ n_past_dev,
                             int NH, int NKV, int HS, int vis_stride, int splits, float scale) {
  grid_dependency_wait();
  extern __shared__ float sh[];
  float* qs = sh;
  float* ps = qs + HS;
  int* slots = reinterpret_cast<int*>(ps + kChunk + (HS > kThreads ? HS : kThreads));
  float* red = reinterpret_cast<float*>(slots + kChunk);
  const int h = blockIdx.x, t = blockIdx.y, sp = blockIdx.z;
  const int KVD = NKV * HS, kvo = (h / (NH / NKV)) * HS;
  if (n_past_dev) n_past = *n_past_dev;
  const int cnt = vis ? counts[t] : n_past + t + 1;
  const int c0 = sp * kChunk, c1 = min(cnt, c0 + kChunk);
  float* dst = part + (((int64_t)t * NH + h) * splits + sp) * (HS + 2);
  if (c0 >= c1) {  // the whole block takes this branch
    for (int d = threadIdx.x; d < HS; d += blockDim.x) dst[d] = 0.f;
    if (threadIdx.x == 0) {
      dst[HS] = -INFINITY;
      dst[HS + 1] = 0.f;
    }
    return;
  }
  for (int d = threadIdx.x; d < HS; d += blockDim.x) qs[d] = q[((int64_t)t * NH + h) * HS + d];
  __syncthreads();
  const int n = c1 - c0;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  // Scores: 8 lanes per slot (4 slots per warp at a time), each lane over every 8th head dimension,
  // then a fixed-order reduction within the 8 lanes.
  const int sub = lane & 7, group = warp * 4 + (lane >> 3), groups = warps * 4;
  for (int i0 = 0; i0 < n; i0 += groups) {
    const int i = i0 + group;
    const bool active = i < n;
    const int slot = active ? (vis ? vis[(int64_t)t * vis_stride + c0 + i] : c0 + i) : 0;
    const float* kr = k + (int64_t)slot * KVD + kvo;
    float s = 0.f;
    if (active)
      for (int d = sub; d < HS; d += 8) s = fmaf(qs[d], kr[d], s);
    s += __shfl_xor_sync(0xffffffffu, s, 4);
    s += __shfl_xor_sync(0xffffffffu, s, 2);
    s += __shfl_xor_sync(0xffffffffu, s, 1);
    if (active && sub == 0) {
      slots[i] = slot;
      ps[i] = s * scale;
    }
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, ps[i]);
  mx = block_max(mx, red);
  float sum = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float e = expf(ps[i] - mx);
    ps[i] = e;
    sum += e;
  }
  sum = block_sum(sum, red);  // its barriers also publish ps
  // Weighted sum of V: G groups of HS threads each take a contiguous run of the slots; the groups'
  // sums are added in group order.
  const int G = HS <= (int)blockDim.x ? (int)blockDim.x / HS : 1;
  const int g = threadIdx.x / HS;
  float* gsum = ps + kChunk;  // (G, HS), after the slots (shared layout reserves it)
  if (g < G) {
    const int i0 = (int)((int64_t)n * g / G), i1 = (int)((int64_t)n * (g + 1) / G);
    for (int d = threadIdx.x % HS; d < HS; d += (HS <= (int)blockDim.x ? HS : (int)blockDim.x)) {
      float a = 0.f;
      for (int i = i0; i < i1; i++) a = fmaf(ps[i], v[(int64_t)slots[i] * KVD + kvo + d], a);
      gsum[g * HS + d] = a;
    }
  }
  __syncthreads();
  for (int d = threadIdx.x; d < HS; d += blockDim.x) {
    float a = 0.f;
    for (int j = 0; j < G; j++) a += gsum[j * HS + d];
    dst[d] = a;
  }
  if (threadIdx.x == 0) {
    dst[HS] = mx;
    dst[HS + 1] = sum;
  }
}

// grid (NH, T)
__global__ void attention_combine_kernel(float* __restrict__ out, const float* __restrict__ part, int NH, int HS,
                                         int splits) {
  grid_dependency_wait();
  const int h = blockIdx.x, t = blockIdx.y;
  const float* p = part + ((int64_t)t * NH + h) * splits * (HS + 2);
  float M = -INFINITY;
  for (int sp = 0; sp < splits; sp++) M = fmaxf(M, p[sp * (HS + 2) + HS]);
  for (int d = threadIdx.x; d < HS; d += blockDim.x) {
    float L = 0.f, A = 0.f;
    for (int sp = 0; sp < splits; sp++) {
      const float* ps = p + sp * (HS + 2);
      if (ps[HS] == -INFINITY) continue;
      const float w = expf(ps[HS] - M);
      L = fmaf(ps[HS + 1], w, L);
      A = fmaf(ps[d], w, A);
    }
    out[((int64_t)t * NH + h) * HS + d] = L > 0.f ? A / L : 0.f;
  }
}

}  // namespace

size_t attention_scratch_bytes(int T, int max_slots, int NH, int HS, bool masked) {
  const int S = max_slots, splits = (S + kChunk - 1) / kChunk;
  size_t bytes = align_up((size_t)T * NH * splits * (HS + 2) * sizeof(float));
  if (masked) bytes += align_up((size_t)T * S * sizeof(int32_t)) + align_up((size_t)T * sizeof(int32_t));
  return bytes;
}

void attention(cudaStream_t s, float* out, const float* q, const float* k_cache, const float* v_cache,
               const uint8_t* mask, int T, int n_past, const int32_t* n_past_dev, int max_slots, int NH, int NKV,
               int HS, void* scratch) {
  CHIMERA_CHECK(NH > 0 && NKV > 0 && NH % NKV == 0 && HS > 0 && T >= 0 && n_past >= 0, ErrorCode::InvalidArg,
                "bad attention shape NH=", NH, " NKV=", NKV, " HS=", HS, " T=", T, " n_past=", n_past);
  if (T == 0) return;
  const int S = max_slots, splits = (S + kChunk - 1) / kChunk;
  uint8_t* p = static_cast<uint8_t*>(scratch);
  float* part = reinterpret_cast<float*>(p);
  p += align_up((size_t)T * NH * splits * (HS + 2) * sizeof(float));
  int32_t *vis = nullptr, *counts = nullptr;
  if (mask) {
    vis = reinterpret_cast<int32_t*>(p);
    p += align_up((size_t)T * S * sizeof(int32_t));
    counts = reinterpret_cast<int32_t*>(p);
    launch("visible_slots_kernel", visible_slots_kernel, dim3(T), dim3(kScanThreads), 0, s, vis, counts, mask, n_past + T, n_past_dev, T, S);
  }
  const size_t shared = (size_t)HS * sizeof(float) + kChunk * (sizeof(float) + sizeof(int)) +
                        (size_t)std::max(HS, kThreads) * sizeof(float) + 32 * sizeof(float);
  CHIMERA_CHECK(shared <= 48 * 1024, ErrorCode::Unsupported, "CUDA attention: head size ", HS, " is too large");
  const float scale = 1.0f / sqrtf((float)HS);
  launch("attention_partial_kernel", attention_partial_kernel, dim3(dim3(NH, T, splits)), dim3(kThreads), shared, s, 
      part, q, k_cache, v_cache, vis, counts, n_past, n_past_dev, NH, NKV, HS, S, splits, scale);
  launch("attention_combine_kernel", attention_combine_kernel, dim3(dim3(NH, T)), dim3(HS >= 128 ? 128 : 64), 0, s, out, part, NH, HS, splits);
}

}  // namespace cuda
}  // namespace chimera
