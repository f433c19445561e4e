// RoPE: one thread per rotated pair; angles in double like the CPU twin (pos * freq reaches 1e5 rad).
// Optional per-pair frequency divisors (Llama 3.x rope_freqs), as in CpuBackend::rope.
#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {
namespace cuda {

__global__ void rope_kernel(float* __restrict__ x, const int32_t* __restrict__ pos, int T, int n_heads, int HS,
                            int rope_dims, double theta, bool interleaved, const float* __restrict__ freq_factors) {
  grid_dependency_wait();
  const int half = rope_dims / 2;
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= (int64_t)T * n_heads * half) return;
  const int i = (int)(idx % half);
  const int64_t th = idx / half;
  const int h = (int)(th % n_heads), t = (int)(th / n_heads);
  const double freq = pow(theta, -2.0 * i / rope_dims) / (freq_factors ? (double)freq_factors[i] : 1.0);
  const double angle = (double)pos[t] * freq;
  double sn, cs;
  sincos(angle, &sn, &cs);
  const float c = (float)cs, s = (float)sn;
  float* xh = x + ((int64_t)t * n_heads + h) * HS;
  const int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
  const float x0 = xh[i0], x1 = xh[i1];
  xh[i0] = x0 * c - x1 * s;
  xh[i1] = x0 * s + x1 * c;
}

void rope(cudaStream_t s, float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
          bool interleaved, const float* freq_factors) {
  CHIMERA_CHECK(rope_dims >= 0 && rope_dims <= HS && rope_dims % 2 == 0, ErrorCode::InvalidArg, "rope_dims ",
                rope_dims, " must be even and at most the head size ", HS);
  const int64_t n = (int64_t)T * n_heads * (rope_dims / 2);
  if (n == 0) return;
  launch("rope_kernel", rope_kernel, dim3(grid_for(n, 256)), dim3(256), 0, s, x, pos, T, n_heads, HS, rope_dims, (double)theta, interleaved, freq_factors);
}

}  // namespace cuda
}  // namespace chimera
