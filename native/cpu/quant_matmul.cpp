// The matmul driver over Q4_0 / k-quant weights, Q8_K activation quantisation, and the portable
// kernels: the integer arithmetic of each block in plain C++ (quant_matmul.h). The AVX2 kernels in
// quant_matmul_avx2.cpp compute the same integer sums.
#include "cpu/quant_matmul.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/quant_blocks.h"

namespace chimera {

namespace {

// Bytes of weight rows per block of matmul_low_bit_rows: half of a 1 MB L2.
constexpr int64_t kLowBitBlockBytes = 512 * 1024;

float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}

float dot_q4_0(const uint8_t* w, int64_t K, const int8_t* xq, const float* xs) {
  float acc = 0.f;
  for (int64_t b = 0; b < K / 32; b++, w += kQ4_0BlockBytes, xq += 32) {
    int32_t s = 0;
    for (int i = 0; i < 16; i++) s += ((w[2 + i] & 0xF) - 8) * xq[i] + ((w[2 + i] >> 4) - 8) * xq[i + 16];
    acc += load_f16(w) * xs[b] * (float)s;
  }
  return acc;
}

// Q4_K and Q5_K: sum_j scale_j * (q . x over sub-block j), and the mins against the x sums per 16.
template <bool kFifthBit>
float dot_q45_k(const uint8_t* w, int64_t K, const int8_t* xq, const float* xd, const int16_t* bs) {
  constexpr int kBytes = kFifthBit ? kQ5KBlockBytes : kQ4KBlockBytes;
  constexpr int kScales = kFifthBit ? kQ5KScales : kQ4KScales;
  constexpr int kQs = kFifthBit ? kQ5KQs : kQ4KQs;
  float acc = 0.f;
  for (int64_t b = 0; b < K / kKBlockSize; b++, w += kBytes, xq += kKBlockSize, bs += 16) {
    int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; j++) {
      uint8_t sc, m;
      kquant_scale_min(j, w + kScales, &sc, &m);
      const uint8_t* qs = w + kQs + 32 * (j / 2);
      int32_t s = 0;
      for (int l = 0; l < 32; l++) {
        int q = (j & 1) ? qs[l] >> 4 : qs[l] & 0xF;
        if (kFifthBit) q |= ((w[kQ5KQh + l] >> j) & 1) << 4;
        s += q * xq[32 * j + l];
      }
      sumi += sc * s;
      summ += m * (bs[2 * j] + bs[2 * j + 1]);
    }
    acc += xd[b] * (load_f16(w) * (float)sumi - load_f16(w + 2) * (float)summ);
  }
  return acc;
}

float dot_q6_k(const uint8_t* w, int64_t K, const int8_t* xq, const float* xd, const int16_t* bs) {
  float acc = 0.f;
  for (int64_t b = 0; b < K / kKBlockSize; b++, w += kQ6KBlockBytes, xq += kKBlockSize, bs += 16) {
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + kQ6KScales);
    int32_t sumi = 0, sumb = 0;
    for (int half = 0; half < 2; half++) {
      const uint8_t* ql = w + kQ6KQl + 64 * half;
      const uint8_t* qh = w + kQ6KQh + 32 * half;
      int32_t s[8] = {};  // per 16 values of this half: 4 quarters of 32, each 2 scales
      for (int l = 0; l < 32; l++) {
        const int q1 = (ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4);
        const int q2 = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
        const int q3 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        const int q4 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        const int8_t* x = xq + 128 * half + l;
        s[0 + l / 16] += q1 * x[0];
        s[2 + l / 16] += q2 * x[32];
        s[4 + l / 16] += q3 * x[64];
        s[6 + l / 16] += q4 * x[96];
      }
      for (int i = 0; i < 8; i++) sumi += sc[8 * half + i] * s[i];
    }
    for (int i = 0; i < 16; i++) sumb += sc[i] * bs[i];
    acc += xd[b] * load_f16(w + kQ6KD) * (float)(sumi - 32 * sumb);
  }
  return acc;
}

}  // namespace

namespace inner {

void low_bit_dot_portable(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, int nt,
                          float* res) {
  for (int i = 0; i < nt; i++) {
    const int64_t t = t0 + i;
    const int8_t* q = xq.q + t * K;
    switch (dt) {
      case DType::Q4_0: res[i] = dot_q4_0(row, K, q, xq.s + t * (K / 32)); break;
      case DType::Q4_K: res[i] = dot_q45_k<false>(row, K, q, xq.d256 + t * (K / 256), xq.bsum16 + t * (K / 16)); break;
      case DType::Q5_K: res[i] = dot_q45_k<true>(row, K, q, xq.d256 + t * (K / 256), xq.bsum16 + t * (K / 16)); break;
      case DType::Q6_K: res[i] = dot_q6_k(row, K, q, xq.d256 + t * (K / 256), xq.bsum16 + t * (K / 16)); break;
      default: throw_error(ErrorCode::Internal, "low-bit matmul over ", dtype_name(dt));
    }
  }
}

}  // namespace inner

void matmul_low_bit_rows(KernelPath path, float* out, const TensorView& W, int T, int64_t n0, int64_t n1,
                         const Q8Activations& xq) {
  const int64_t K = W.cols, N = W.rows, block = dtype_block_elems(W.dtype);
  CHIMERA_CHECK(dtype_is_low_bit(W.dtype) && K % block == 0, ErrorCode::Tensor, dtype_name(W.dtype),
                " matrix with ", K, " columns (not a multiple of ", block, ")");
  const bool k_quant = block == kKBlockSize;
  CHIMERA_CHECK(xq.q && (k_quant ? xq.d256 && xq.bsum16 && xq.xsum16 && xq.xsum32 : xq.s != nullptr),
                ErrorCode::Internal,
                "low-bit matmul without x quantised for ", dtype_name(W.dtype));
  const bool avx2 = uses_avx2_loops(path) && cpu_supports(KernelPath::Avx2);
  const bool vnni = path == KernelPath::Avx512 && inner::low_bit_vnni_supported();
  // Blocks of weight rows that stay in L2 while every group of input rows (in L1) passes over them.
  const int64_t block_rows = std::max<int64_t>(1, kLowBitBlockBytes / (int64_t)dtype_row_bytes(W.dtype, (size_t)K));
  float res[inner::kLowBitMaxRows];
  for (int64_t nb0 = n0; nb0 < n1; nb0 += block_rows) {
    const int64_t nb1 = std::min(n1, nb0 + block_rows);
    for (int t0 = 0; t0 < T; t0 += inner::kLowBitMaxRows) {
      const int nt = std::min(inner::kLowBitMaxRows, T - t0);
      for (int64_t n = nb0; n < nb1; n++) {
        const uint8_t* row = W.row(n);
        if (vnni) inner::low_bit_dot_vnni(W.dtype, row, K, xq, t0, nt, res);
        else if (avx2) inner::low_bit_dot_avx2(W.dtype, row, K, xq, t0, nt, res);
        else inner::low_bit_dot_portable(W.dtype, row, K, xq, t0, nt, res);
        for (int i = 0; i < nt; i++) out[(int64_t)(t0 + i) * N + n] = res[i];
      }
    }
  }
}

namespace inner {

// As ggml's Q8_K: the first value of largest magnitude, with its sign, maps to -127 (so d may be
// negative), and d = 1 / iscale stays F32; rounding is to nearest even.
void quantize_q8k_block_portable(const float* x, int8_t* q, float* d, int16_t* bsum16) {
  float amax = 0.f, max = 0.f;
  for (int i = 0; i < kKBlockSize; i++) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  const float iscale = amax > 0.f ? -127.f / max : 0.f;
  *d = amax > 0.f ? 1.f / iscale : 0.f;
  for (int g = 0; g < 16; g++) {
    int32_t total = 0;
    for (int i = 16 * g; i < 16 * g + 16; i++) {
      const int8_t v = (int8_t)std::min(127L, std::lrintf(iscale * x[i]));
      q[i] = v;
      total += v;
    }
    bsum16[g] = (int16_t)total;
  }
}

}  // namespace inner

void quantize_q8k_activations(const float* x, int T, int64_t K, int8_t* q, float* d256, int16_t* bsum16) {
  CHIMERA_CHECK(K % kKBlockSize == 0, ErrorCode::Internal, "Q8_K activations of ", K, " columns");
  const bool avx2 = uses_avx2_loops(active_kernel_path()) && cpu_supports(KernelPath::Avx2);
  for (int64_t b = 0; b < (int64_t)T * (K / kKBlockSize); b++) {
    const float* xb = x + b * kKBlockSize;
    if (avx2) inner::quantize_q8k_block_avx2(xb, q + b * kKBlockSize, d256 + b, bsum16 + b * 16);
    else inner::quantize_q8k_block_portable(xb, q + b * kKBlockSize, d256 + b, bsum16 + b * 16);
  }
}

Q8Activations quantize_q8k_activations(const float* x, int T, int64_t K) {
  thread_local std::vector<int8_t> q;
  thread_local std::vector<float> d;
  thread_local std::vector<int16_t> bs;
  thread_local std::vector<float> xs16, xs32;
  q.resize((size_t)T * K);
  d.resize((size_t)T * K / kKBlockSize);
  bs.resize((size_t)T * K / 16);
  quantize_q8k_activations(x, T, K, q.data(), d.data(), bs.data());
  xs16.resize(bs.size());
  xs32.resize(bs.size() / 2);
  for (size_t i = 0; i < bs.size(); i++) xs16[i] = d[i / 16] * (float)bs[i];
  for (size_t i = 0; i < xs32.size(); i++) xs32[i] = d[i / 8] * (float)(bs[2 * i] + bs[2 * i + 1]);
  Q8Activations a;
  a.q = q.data();
  a.d256 = d.data();
  a.bsum16 = bs.data();
  a.xsum16 = xs16.data();
  a.xsum32 = xs32.data();
  return a;
}

Q8Activations quantize_activations_for(const TensorView& W, const float* x, int T) {
  if (dtype_block_elems(W.dtype) == kKBlockSize) return quantize_q8k_activations(x, T, W.cols);
  return quantize_q8_activations(x, T, W.cols);
}

}  // namespace chimera
