// Plain dequantisers and quantisers of the Q4_0 / Q4_K / Q5_K / Q6_K block formats (quant_blocks.h).
// The quantisers pick each block's scales from its range and round to nearest; llama-quantize searches
// harder for scales, which changes the values stored, never how they decode.
#include "common/quant_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/dtype.h"

namespace chimera {

namespace {

float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}

void store_f16(uint8_t* p, float f) {
  const uint16_t h = f32_to_fp16(f);
  std::memcpy(p, &h, 2);
}

int nearest(float x) { return (int)std::lrintf(x); }

// Q4_K / Q5_K scales: for each 32-value sub-block, w ~ scale * q - min with q in [0, qmax]; the 8 scales
// and mins are stored as 6-bit multiples of the block's d and dmin. Fills the 12 packed bytes, d, dmin and
// the per-sub-block q values L (256).
void quantize_kquant_affine(const float* x, int qmax, uint8_t* d_dmin, uint8_t* packed, uint8_t* L) {
  float scale[8], min[8], max_scale = 0.f, max_min = 0.f;
  for (int j = 0; j < 8; j++) {
    const float* xs = x + 32 * j;
    float lo = *std::min_element(xs, xs + 32), hi = *std::max_element(xs, xs + 32);
    lo = std::min(lo, 0.f);  // the min is subtracted: a non-negative block keeps min 0
    scale[j] = (hi - lo) / (float)qmax;
    min[j] = -lo;
    max_scale = std::max(max_scale, scale[j]);
    max_min = std::max(max_min, min[j]);
  }
  const float inv_scale = max_scale > 0.f ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0.f ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; j++) {
    ls[j] = (uint8_t)std::min(63, nearest(inv_scale * scale[j]));
    lm[j] = (uint8_t)std::min(63, nearest(inv_min * min[j]));
  }
  std::memset(packed, 0, 12);
  for (int j = 0; j < 8; j++) {
    if (j < 4) {
      packed[j] = ls[j];
      packed[j + 4] = lm[j];
    } else {
      packed[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      packed[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
      packed[j] |= (uint8_t)((lm[j] >> 4) << 6);
    }
  }
  store_f16(d_dmin, max_scale / 63.f);
  store_f16(d_dmin + 2, max_min / 63.f);
  // Quantise against the scales as stored (rounded to 6 bits and F16), so decoding meets the values chosen.
  const float d = load_f16(d_dmin), dmin = load_f16(d_dmin + 2);
  for (int j = 0; j < 8; j++) {
    uint8_t sc, m;
    kquant_scale_min(j, packed, &sc, &m);
    const float ds = d * sc, dm = dmin * m;
    for (int i = 0; i < 32; i++) {
      const int q = ds > 0.f ? nearest((x[32 * j + i] + dm) / ds) : 0;
      L[32 * j + i] = (uint8_t)std::max(0, std::min(qmax, q));
    }
  }
}

// Low nibbles of each 64 values: sub-block 2j in the low half of 32 bytes, 2j + 1 in the high half.
void pack_nibbles_64(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kKBlockSize; j += 64)
    for (int l = 0; l < 32; l++) qs[j / 2 + l] = (uint8_t)((L[j + l] & 0xF) | ((L[j + l + 32] & 0xF) << 4));
}

}  // namespace

void dequantize_q4_0(const uint8_t* b, float* out, size_t n) {
  for (size_t blk = 0; blk < n / 32; blk++, b += kQ4_0BlockBytes, out += 32) {
    const float d = load_f16(b);
    for (int i = 0; i < 16; i++) {
      out[i] = d * (float)((b[2 + i] & 0xF) - 8);
      out[i + 16] = d * (float)((b[2 + i] >> 4) - 8);
    }
  }
}

void quantize_q4_0(const float* x, uint8_t* b, size_t n) {
  for (size_t blk = 0; blk < n / 32; blk++, b += kQ4_0BlockBytes, x += 32) {
    float amax = 0.f, max = 0.f;  // the value of largest magnitude, with its sign, maps to -8
    for (int i = 0; i < 32; i++) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    }
    store_f16(b, max / -8.f);
    const float d = load_f16(b), id = d != 0.f ? 1.f / d : 0.f;
    for (int i = 0; i < 16; i++) {
      const int q0 = std::max(0, std::min(15, nearest(x[i] * id) + 8));
      const int q1 = std::max(0, std::min(15, nearest(x[i + 16] * id) + 8));
      b[2 + i] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}

void dequantize_q4_k(const uint8_t* b, float* out, size_t n) {
  for (size_t blk = 0; blk < n / kKBlockSize; blk++, b += kQ4KBlockBytes, out += kKBlockSize) {
    const float d = load_f16(b), dmin = load_f16(b + 2);
    const uint8_t* qs = b + kQ4KQs;
    for (int j = 0; j < 8; j += 2, qs += 32) {
      uint8_t s0, m0, s1, m1;
      kquant_scale_min(j, b + kQ4KScales, &s0, &m0);
      kquant_scale_min(j + 1, b + kQ4KScales, &s1, &m1);
      for (int l = 0; l < 32; l++) {
        out[32 * j + l] = d * s0 * (float)(qs[l] & 0xF) - dmin * m0;
        out[32 * j + 32 + l] = d * s1 * (float)(qs[l] >> 4) - dmin * m1;
      }
    }
  }
}

void quantize_q4_k(const float* x, uint8_t* b, size_t n) {
  uint8_t L[kKBlockSize];
  for (size_t blk = 0; blk < n / kKBlockSize; blk++, b += kQ4KBlockBytes, x += kKBlockSize) {
    quantize_kquant_affine(x, 15, b, b + kQ4KScales, L);
    pack_nibbles_64(L, b + kQ4KQs);
  }
}

void dequantize_q5_k(const uint8_t* b, float* out, size_t n) {
  for (size_t blk = 0; blk < n / kKBlockSize; blk++, b += kQ5KBlockBytes, out += kKBlockSize) {
    const float d = load_f16(b), dmin = load_f16(b + 2);
    const uint8_t* qh = b + kQ5KQh;
    const uint8_t* qs = b + kQ5KQs;
    for (int j = 0; j < 8; j += 2, qs += 32) {
      uint8_t s0, m0, s1, m1;
      kquant_scale_min(j, b + kQ5KScales, &s0, &m0);
      kquant_scale_min(j + 1, b + kQ5KScales, &s1, &m1);
      for (int l = 0; l < 32; l++) {
        const int q0 = (qs[l] & 0xF) | (((qh[l] >> j) & 1) << 4);
        const int q1 = (qs[l] >> 4) | (((qh[l] >> (j + 1)) & 1) << 4);
        out[32 * j + l] = d * s0 * (float)q0 - dmin * m0;
        out[32 * j + 32 + l] = d * s1 * (float)q1 - dmin * m1;
      }
    }
  }
}

void quantize_q5_k(const float* x, uint8_t* b, size_t n) {
  uint8_t L[kKBlockSize];
  for (size_t blk = 0; blk < n / kKBlockSize; blk++, b += kQ5KBlockBytes, x += kKBlockSize) {
    quantize_kquant_affine(x, 31, b, b + kQ5KScales, L);
    uint8_t* qh = b + kQ5KQh;
    std::memset(qh, 0, 32);
    for (int j = 0; j < 8; j++)
      for (int l = 0; l < 32; l++) qh[l] |= (uint8_t)((L[32 * j + l] >> 4) << j);
    pack_nibbles_64(L, b + kQ5KQs);
  }
}

void dequantize_q6_k(const uint8_t* b, float* out, size_t n) {
  for (size_t blk = 0; blk < n / kKBlockSize; blk++, b += kQ6KBlockBytes, out += kKBlockSize) {
    const float d = load_f16(b + kQ6KD);
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + kQ6KScales);
    for (int half = 0; half < 2; half++) {
      const uint8_t* ql = b + kQ6KQl + 64 * half;
      const uint8_t* qh = b + kQ6KQh + 32 * half;
      const int8_t* s = sc + 8 * half;
      float* y = out + 128 * half;
      for (int l = 0; l < 32; l++) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * s[is + 0] * (float)q1;
        y[l + 32] = d * s[is + 2] * (float)q2;
        y[l + 64] = d * s[is + 4] * (float)q3;
        y[l + 96] = d * s[is + 6] * (float)q4;
      }
    }
  }
}

void quantize_q6_k(const float* x, uint8_t* b, size_t n) {
  for (size_t blk = 0; blk < n / kKBlockSize; blk++, b += kQ6KBlockBytes, x += kKBlockSize) {
    // Per 16 values the signed value of largest magnitude maps to -32; the 16 scales share an F16 d.
    float scale[16], max_scale = 0.f, amax_scale = 0.f;
    for (int s = 0; s < 16; s++) {
      float amax = 0.f, max = 0.f;
      for (int i = 0; i < 16; i++) {
        if (std::fabs(x[16 * s + i]) > amax) {
          amax = std::fabs(x[16 * s + i]);
          max = x[16 * s + i];
        }
      }
      scale[s] = max / -32.f;
      if (std::fabs(scale[s]) > amax_scale) {
        amax_scale = std::fabs(scale[s]);
        max_scale = scale[s];
      }
    }
    const float iscale = max_scale != 0.f ? -128.f / max_scale : 0.f;
    int8_t* sc = reinterpret_cast<int8_t*>(b + kQ6KScales);
    for (int s = 0; s < 16; s++) sc[s] = (int8_t)std::min(127, nearest(iscale * scale[s]));
    store_f16(b + kQ6KD, iscale != 0.f ? 1.f / iscale : 0.f);
    const float d = load_f16(b + kQ6KD);
    uint8_t L[kKBlockSize];
    for (int s = 0; s < 16; s++) {
      const float ds = d * sc[s];
      for (int i = 0; i < 16; i++) {
        const int q = ds != 0.f ? nearest(x[16 * s + i] / ds) : 0;
        L[16 * s + i] = (uint8_t)(std::max(-32, std::min(31, q)) + 32);
      }
    }
    for (int half = 0; half < 2; half++) {
      uint8_t* ql = b + kQ6KQl + 64 * half;
      uint8_t* qh = b + kQ6KQh + 32 * half;
      const uint8_t* Lh = L + 128 * half;
      for (int l = 0; l < 32; l++) {
        ql[l] = (uint8_t)((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
        ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
        qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
      }
    }
  }
}

}  // namespace chimera
