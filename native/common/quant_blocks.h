// The 4- to 6-bit block formats of ggml that downloaded GGUFs use (Q4_0 and the k-quants Q4_K, Q5_K,
// Q6_K): their byte layouts, the plain dequantisers (the reference every kernel is checked against) and
// quantisers (for writing test and benchmark models, and for drafts stored in these types).
//
// Layouts, per block (little-endian, as ggml writes them):
//   Q4_0  32 values, 18 bytes: F16 d, 16 bytes of nibbles. Value i < 16 is low nibble i, value i + 16
//         the high nibble; w = d * (q - 8).
//   Q4_K  256 values, 144 bytes: F16 d, F16 dmin, 12 bytes of packed 6-bit (scale, min) for 8 sub-blocks
//         of 32, 128 bytes of nibbles. Each 64 values share 32 bytes: the low nibbles are sub-block 2j, the
//         high nibbles sub-block 2j + 1; w = d * scale_j * q - dmin * min_j.
//   Q5_K  256 values, 176 bytes: as Q4_K with 32 bytes of fifth bits (qh) before the nibbles; value l of
//         sub-block j takes bit j of qh[l].
//   Q6_K  256 values, 210 bytes: 128 bytes of low nibbles (ql), 64 bytes of high 2-bit pairs (qh), 16
//         int8 scales (one per 16 values), F16 d; w = d * scale_s * (q - 32).
#pragma once
#include <cstddef>
#include <cstdint>

namespace chimera {

constexpr int kQ4_0BlockBytes = 18;  // 32 values
constexpr int kKBlockSize = 256;     // values per k-quant super-block
constexpr int kQ4KBlockBytes = 144;
constexpr int kQ5KBlockBytes = 176;
constexpr int kQ6KBlockBytes = 210;

// Byte offsets inside a k-quant block.
constexpr int kQ4KScales = 4, kQ4KQs = 16;                // Q4_K: d, dmin at 0 and 2
constexpr int kQ5KScales = 4, kQ5KQh = 16, kQ5KQs = 48;   // Q5_K: d, dmin at 0 and 2
constexpr int kQ6KQl = 0, kQ6KQh = 128, kQ6KScales = 192, kQ6KD = 208;

// The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of a Q4_K / Q5_K block.
inline void kquant_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// n values (a multiple of the block size) from blocks to floats, and back.
void dequantize_q4_0(const uint8_t* blocks, float* out, size_t n);
void dequantize_q4_k(const uint8_t* blocks, float* out, size_t n);
void dequantize_q5_k(const uint8_t* blocks, float* out, size_t n);
void dequantize_q6_k(const uint8_t* blocks, float* out, size_t n);
void quantize_q4_0(const float* x, uint8_t* blocks, size_t n);
void quantize_q4_k(const float* x, uint8_t* blocks, size_t n);
void quantize_q5_k(const float* x, uint8_t* blocks, size_t n);
void quantize_q6_k(const float* x, uint8_t* blocks, size_t n);

}  // namespace chimera
