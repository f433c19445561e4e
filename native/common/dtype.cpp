// Names, sizes and row conversions of the weight element types.
#include "common/dtype.h"

#include <algorithm>
#include <cmath>

#include "common/quant_blocks.h"

namespace chimera {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
    case DType::Q4_K: return "Q4_K";
    case DType::Q5_K: return "Q5_K";
    case DType::Q6_K: return "Q6_K";
  }
  return "?";
}

int dtype_block_elems(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0: return 32;
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K: return kKBlockSize;
    default: return 1;
  }
}

size_t dtype_row_bytes(DType t, size_t n) {
  switch (t) {
    case DType::F32: return n * 4;
    case DType::F16:
    case DType::BF16: return n * 2;
    case DType::Q8_0: return (n / kQ8BlockSize) * kQ8BlockBytes;
    case DType::Q4_0: return (n / 32) * kQ4_0BlockBytes;
    case DType::Q4_K: return (n / kKBlockSize) * kQ4KBlockBytes;
    case DType::Q5_K: return (n / kKBlockSize) * kQ5KBlockBytes;
    case DType::Q6_K: return (n / kKBlockSize) * kQ6KBlockBytes;
  }
  return 0;
}

void row_from_f32(DType t, const float* src, void* row, size_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(row, src, n * 4);
      return;
    case DType::F16:
    case DType::BF16: {
      uint16_t* h = static_cast<uint16_t*>(row);
      for (size_t i = 0; i < n; i++) h[i] = t == DType::F16 ? f32_to_fp16(src[i]) : f32_to_bf16(src[i]);
      return;
    }
    case DType::Q8_0: {
      uint8_t* b = static_cast<uint8_t*>(row);
      for (size_t blk = 0; blk < n / kQ8BlockSize; blk++) {
        const float* x = src + blk * kQ8BlockSize;
        float amax = 0.f;
        for (int i = 0; i < kQ8BlockSize; i++) amax = std::max(amax, std::fabs(x[i]));
        const float d = amax / 127.f, id = d > 0.f ? 1.f / d : 0.f;
        const uint16_t d16 = f32_to_fp16(d);
        std::memcpy(b + blk * kQ8BlockBytes, &d16, 2);
        int8_t* q = reinterpret_cast<int8_t*>(b + blk * kQ8BlockBytes + 2);
        for (int i = 0; i < kQ8BlockSize; i++) q[i] = (int8_t)std::lrintf(x[i] * id);
      }
      return;
    }
    case DType::Q4_0: return quantize_q4_0(src, static_cast<uint8_t*>(row), n);
    case DType::Q4_K: return quantize_q4_k(src, static_cast<uint8_t*>(row), n);
    case DType::Q5_K: return quantize_q5_k(src, static_cast<uint8_t*>(row), n);
    case DType::Q6_K: return quantize_q6_k(src, static_cast<uint8_t*>(row), n);
  }
}

void row_to_f32(DType t, const void* row, float* out, size_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(out, row, n * 4);
      return;
    case DType::F16: {
      const uint16_t* h = static_cast<const uint16_t*>(row);
      for (size_t i = 0; i < n; i++) out[i] = fp16_to_f32(h[i]);
      return;
    }
    case DType::BF16: {
      const uint16_t* h = static_cast<const uint16_t*>(row);
      for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(h[i]);
      return;
    }
    case DType::Q8_0: {
      const uint8_t* b = static_cast<const uint8_t*>(row);
      for (size_t blk = 0; blk < n / kQ8BlockSize; blk++) {
        uint16_t d16;
        std::memcpy(&d16, b + blk * kQ8BlockBytes, 2);
        const float d = fp16_to_f32(d16);
        const int8_t* q = reinterpret_cast<const int8_t*>(b + blk * kQ8BlockBytes + 2);
        for (int i = 0; i < kQ8BlockSize; i++) out[blk * kQ8BlockSize + i] = d * q[i];
      }
      return;
    }
    case DType::Q4_0: return dequantize_q4_0(static_cast<const uint8_t*>(row), out, n);
    case DType::Q4_K: return dequantize_q4_k(static_cast<const uint8_t*>(row), out, n);
    case DType::Q5_K: return dequantize_q5_k(static_cast<const uint8_t*>(row), out, n);
    case DType::Q6_K: return dequantize_q6_k(static_cast<const uint8_t*>(row), out, n);
  }
}

}  // namespace chimera
