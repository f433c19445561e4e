// The AVX-512 matmul tiles (native/cpu/kernels_avx512.cpp) built against SIMDe's portable AVX-512, so that
// their arithmetic (loads, F16/BF16 conversion, accumulation, horizontal sums, tails) is checked on
// any CPU, also where the real instructions are missing (test_kernels runs the native build where
// the CPU has AVX-512F). Every register-tile shape, K with and without tails, against the reference;
// and a row's result must not depend on the tile it was computed in. Skips without SIMDe's headers
// (Debian: libsimde-dev).
#include <cstdio>

#include "check.h"

#if __has_include(<simde/x86/avx512.h>)
#define CHIMERA_AVX512_EMULATED 1
#include "cpu/kernels_avx512.cpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "cpu/kernels_cpu.h"

using namespace chimera;


// The float panel tiles (float_panels.h): every tile shape (nt rows by panel_tile_width(nt) or 1 panels)
// over K split in two (the second part continuing the sums in out), against the reference; and every
// (input row, weight row) must equal its value from a 1 x 1 tile, bit for bit.
void test_panel_tiles(test::Rng& rng) {
  constexpr int kR = inner::kPanelRows, kMaxT = inner::kPanelMaxTileRows, kMaxV = inner::panel_tile_width(1);
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    std::vector<float> got, ref;
    bool independent = true;
    for (int64_t K : {(int64_t)1, (int64_t)3, (int64_t)64, (int64_t)131}) {
      const int64_t N = kMaxV * kR, e = dt == DType::F32 ? 4 : 2;
      const std::vector<float> wf = test::random_floats(rng, (size_t)(N * K));
      const std::vector<float> x = test::random_floats(rng, (size_t)(kMaxT * K));
      // Panels by hand: element (row 16p + r, k) at panel p, 16k + r.
      std::vector<uint8_t> w((size_t)(N * K * e));
      std::vector<float> wd((size_t)(N * K));
      for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
          uint8_t* dst = w.data() + ((n / kR) * kR * K + k * kR + n % kR) * e;
          row_from_f32(dt, &wf[(size_t)(n * K + k)], dst, 1);
          row_to_f32(dt, dst, &wd[(size_t)(n * K + k)], 1);
        }
      auto run = [&](int nt, int nv) {
        std::vector<float> out((size_t)kMaxT * N, std::nanf(""));
        inner::MatmulTile a{x.data(), K, w.data(), kR * K * e, 0, K / 2, out.data(), N, false};
        inner::emulated::matmul_panel_tile_avx512(dt, nt, nv, a);
        a.k0 = K / 2;
        a.k1 = K;
        a.accumulate = true;
        a.prefetch = kR * K * e;
        inner::emulated::matmul_panel_tile_avx512(dt, nt, nv, a);
        return out;
      };
      std::vector<float> alone((size_t)kMaxT * kR);
      for (int t = 0; t < kMaxT; t++) {
        inner::MatmulTile a{x.data() + t * K, K, w.data(), kR * K * e, 0, K, alone.data() + t * kR, kR, false};
        inner::emulated::matmul_panel_tile_avx512(dt, 1, 1, a);
      }
      for (int nt = 1; nt <= kMaxT; nt++)
        for (int nv : {1, inner::panel_tile_width(nt)}) {
          const std::vector<float> out = run(nt, nv);
          for (int t = 0; t < nt; t++)
            for (int64_t n = 0; n < nv * kR; n++) {
              double s = 0;
              for (int64_t k = 0; k < K; k++) s += (double)x[(size_t)(t * K + k)] * wd[(size_t)(n * K + k)];
              got.push_back(out[(size_t)(t * N + n)]);
              ref.push_back((float)s);
              if (n < kR) independent = independent && out[(size_t)(t * N + n)] == alone[(size_t)(t * kR + n)];
            }
        }
    }
    const std::string label = std::string("avx512 (SIMDe) panel tiles ") + dtype_name(dt) + " vs reference";
    test::compare(label.c_str(), got.data(), ref.data(), got.size(), 1e-4f, 1e-4f);
    std::printf("avx512 (SIMDe) panel tiles %s: every (t, n) equals a 1 x 1 tile's: %s\n", dtype_name(dt),
                independent ? "yes" : "NO");
    EXPECT(independent);
  }
}

int main() {
  test::Rng rng(51);
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    std::vector<float> got, ref;
    bool independent = true;
    for (int64_t K : {(int64_t)1, (int64_t)15, (int64_t)16, (int64_t)17, (int64_t)100, (int64_t)257,
                      (int64_t)2048}) {
      const int NT = 4, NN = 4;
      const std::vector<float> wf = test::random_floats(rng, (size_t)(NN * K));
      const std::vector<float> x = test::random_floats(rng, (size_t)(NT * K));
      const int64_t ldw = (int64_t)dtype_row_bytes(dt, (size_t)K);
      std::vector<uint8_t> w((size_t)(NN * ldw));
      for (int n = 0; n < NN; n++) row_from_f32(dt, wf.data() + n * K, w.data() + n * ldw, (size_t)K);
      // The reference from the decoded weights, in double.
      std::vector<float> wd((size_t)(NN * K));
      for (int n = 0; n < NN; n++) row_to_f32(dt, w.data() + n * ldw, wd.data() + n * K, (size_t)K);
      // An nt x nn tile over half of K, then the rest accumulated (the tile's k0 / accumulate contract).
      auto run = [&](int nt, int nn) {
        std::vector<float> out((size_t)NT * NN, std::nanf(""));
        const int64_t split = K / 2;
        inner::MatmulTile a{x.data(), K, w.data(), ldw, 0, split, out.data(), NN, false};
        inner::emulated::matmul_tile_avx512(dt, nt, nn, a);
        a.k0 = split;
        a.k1 = K;
        a.accumulate = true;
        inner::emulated::matmul_tile_avx512(dt, nt, nn, a);
        return out;
      };
      const std::vector<float> full = run(NT, NN);
      for (int nt = 1; nt <= NT; nt++)
        for (int nn = 1; nn <= NN; nn++) {
          const std::vector<float> out = run(nt, nn);
          for (int t = 0; t < nt; t++)
            for (int n = 0; n < nn; n++) {
              double s = 0;
              for (int64_t k = 0; k < K; k++) s += (double)x[t * K + k] * wd[n * K + k];
              got.push_back(out[t * NN + n]);
              ref.push_back((float)s);
              // Each (t, n) equals its value in the full 4 x 4 tile, bit for bit.
              independent = independent && out[t * NN + n] == full[t * NN + n];
            }
        }
    }
    const std::string label = std::string("avx512 (SIMDe) tile ") + dtype_name(dt) + " vs reference";
    test::compare(label.c_str(), got.data(), ref.data(), got.size(), 1e-4f, 1e-4f);
    std::printf("avx512 (SIMDe) tile %s: every (t, n) equals the 4 x 4 tile's: %s\n", dtype_name(dt),
                independent ? "yes" : "NO");
    EXPECT(independent);
  }
  test_panel_tiles(rng);
  return test::finish("test_kernels_avx512_emulated");
}

#else
int main() {
  std::printf("test_kernels_avx512_emulated: skipped (SIMDe headers not found; Debian: libsimde-dev)\n");
  return test::kSkip;
}
#endif
