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
  return test::finish("test_kernels_avx512_emulated");
}

#else
int main() {
  std::printf("test_kernels_avx512_emulated: skipped (SIMDe headers not found; Debian: libsimde-dev)\n");
  return test::kSkip;
}
#endif
