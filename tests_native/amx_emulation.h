// A software model of the AMX tile unit (palette 1: 8 tiles of up to 16 rows x 64 bytes) with the
// operations the AMX-BF16 matmul uses, so native/cpu/kernels_amx.cpp can be built and checked against the
// reference on CPUs without AMX (test_kernels_amx_emulated). TDPBF16PS follows Intel's pseudo-code:
// per output element and per pair of bf16 products, two FP32 multiply-adds in order.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace amx_emulation {

struct Tile {
  int rows = 0, colsb = 0;
  uint8_t data[16][64] = {};
};

inline Tile* tiles() {
  thread_local Tile t[8];
  return t;
}

inline void loadconfig(const void* cfg) {
  const uint8_t* c = static_cast<const uint8_t*>(cfg);
  if (c[0] != 1) throw std::runtime_error("amx emulation: palette must be 1");
  for (int t = 0; t < 8; t++) {
    uint16_t colsb;
    std::memcpy(&colsb, c + 16 + 2 * t, 2);
    tiles()[t].colsb = colsb;
    tiles()[t].rows = c[48 + t];
    if (colsb > 64 || c[48 + t] > 16) throw std::runtime_error("amx emulation: tile larger than 16 x 64 bytes");
  }
}

inline void release() {
  for (int t = 0; t < 8; t++) tiles()[t] = Tile{};
}

inline void loadd(int t, const void* base, long stride) {
  Tile& d = tiles()[t];
  for (int r = 0; r < d.rows; r++) std::memcpy(d.data[r], static_cast<const uint8_t*>(base) + r * stride, d.colsb);
}

inline void stored(int t, void* base, long stride) {
  const Tile& s = tiles()[t];
  for (int r = 0; r < s.rows; r++) std::memcpy(static_cast<uint8_t*>(base) + r * stride, s.data[r], s.colsb);
}

inline void zero(int t) { std::memset(tiles()[t].data, 0, sizeof(tiles()[t].data)); }

inline float bf16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  const uint32_t b = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// C (M x N fp32) += A (M x K pairs of bf16) . B (K x N pairs of bf16)
inline void dpbf16ps(int c, int a, int b) {
  Tile& C = tiles()[c];
  const Tile& A = tiles()[a];
  const Tile& B = tiles()[b];
  const int M = C.rows, N = C.colsb / 4, K = A.colsb / 4;
  if (A.rows != M || B.rows != K || B.colsb != C.colsb) throw std::runtime_error("amx emulation: tile shapes differ");
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      float acc;
      std::memcpy(&acc, C.data[m] + 4 * n, 4);
      for (int k = 0; k < K; k++) {
        acc += bf16(A.data[m] + 4 * k) * bf16(B.data[k] + 4 * n);
        acc += bf16(A.data[m] + 4 * k + 2) * bf16(B.data[k] + 4 * n + 2);
      }
      std::memcpy(C.data[m] + 4 * n, &acc, 4);
    }
}

}  // namespace amx_emulation
