// Weight element types and the scalar conversions between them. Compute is always F32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace chimera {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, Q4_0 = 4, Q4_K = 5, Q5_K = 6, Q6_K = 7 };

const char* dtype_name(DType t);

// Values per block: 1 for the float types, 32 for Q8_0 and Q4_0, 256 for the k-quants (quant_blocks.h).
int dtype_block_elems(DType t);
// The 4- to 6-bit block types (quant_blocks.h), whose matmuls have their own kernels (cpu/quant_matmul.h).
inline bool dtype_is_low_bit(DType t) {
  return t == DType::Q4_0 || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
}
// Whether t stores blocks (any type but F32, F16 and BF16).
inline bool dtype_is_quantized(DType t) { return t == DType::Q8_0 || dtype_is_low_bit(t); }

// Q8_0 (ggml layout): blocks of 32 weights, each an F16 scale followed by 32 int8 values (34 bytes).
constexpr int kQ8BlockSize = 32;
constexpr int kQ8BlockBytes = 34;

// Bytes taken by `n` consecutive elements of a row (n a multiple of dtype_block_elems).
size_t dtype_row_bytes(DType t, size_t n);

inline float fp16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) { mant <<= 1; exp--; }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even.
inline uint16_t f32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
  if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  // overflow to inf
  if (absx < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    if (absx < 0x33000000u) return (uint16_t)sign;
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // 14..24: units of 2^-24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (r & 1))) r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = absx - 0x38000000u;  // rebias exponent 127 -> 15
  const uint32_t rem = r & 0x1fff;
  r >>= 13;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
  return (uint16_t)(sign | r);
}

inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

// Converts `n` elements of a row of type `t` starting at element 0 to F32.
void row_to_f32(DType t, const void* row, float* out, size_t n);
// The inverse: n floats written as a row of type t (n a multiple of dtype_block_elems; Q8_0: per block the
// scale max |x| / 127 as F16, values rounded to nearest, as ggml quantises; the others: quant_blocks.h).
void row_from_f32(DType t, const float* src, void* row, size_t n);

}  // namespace chimera
