// The AMX-BF16 matmul (native/cpu/kernels_amx.cpp) on a software model of the tile unit
// (amx_emulation.h): weight panels, bf16 input rows and the tile loop against the reference, for
// awkward shapes (rows not a multiple of 16, K not a multiple of 32, T across the 16- and 32-row
// blocks) and any row range; a row's result is the same for every T. test_kernels runs the native
// loop the same way where the CPU has AMX.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#define CHIMERA_AMX_EMULATED 1
#include "cpu/kernels_amx.cpp"

#include "check.h"
#include "cpu/kernels_cpu.h"

using namespace chimera;

namespace {

float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

}  // namespace

int main() {
  test::Rng rng(61);
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    std::vector<float> got, ref;
    bool independent = true, split_same = true;
    for (int64_t N : {(int64_t)1, (int64_t)15, (int64_t)17, (int64_t)40})
      for (int64_t K : {(int64_t)1, (int64_t)31, (int64_t)33, (int64_t)100, (int64_t)2080}) {
        const std::vector<float> wf = test::random_floats(rng, (size_t)(N * K));
        const size_t row_bytes = dtype_row_bytes(dt, (size_t)K);
        std::vector<uint8_t> w(row_bytes * (size_t)N + 1);
        for (int64_t n = 0; n < N; n++) row_from_f32(dt, wf.data() + n * K, w.data() + n * row_bytes, (size_t)K);
        const TensorView W{dt, w.data(), N, K};
        std::vector<uint8_t> panels(amx_panels_bytes(N, K));
        repack_amx_panels(W, panels.data());
        // The reference: weights and inputs rounded to bf16, products summed in double.
        std::vector<float> wr((size_t)(N * K));
        for (int64_t n = 0; n < N; n++) {
          row_to_f32(dt, W.row(n), wr.data() + n * K, (size_t)K);
          for (int64_t k = 0; k < K; k++) wr[(size_t)(n * K + k)] = round_bf16(wr[(size_t)(n * K + k)]);
        }
        const std::vector<float> x = test::random_floats(rng, (size_t)(64 * K));
        std::vector<float> first((size_t)N);
        for (int T : {1, 2, 16, 17, 26, 33, 64}) {
          std::vector<uint16_t> xb;
          round_rows_bf16(x.data(), T, K, xb);
          std::vector<float> out((size_t)T * N, std::nanf(""));
          emulated::matmul_amx_rows(out.data(), xb.data(), panels.data(), N, K, T, 0, N);
          for (int t = 0; t < T; t++)
            for (int64_t n = 0; n < N; n++) {
              double s = 0;
              for (int64_t k = 0; k < K; k++) s += (double)round_bf16(x[t * K + k]) * wr[(size_t)(n * K + k)];
              got.push_back(out[(size_t)(t * N + n)]);
              ref.push_back((float)s);
            }
          if (T == 1) first.assign(out.begin(), out.begin() + N);
          independent = independent && std::memcmp(first.data(), out.data(), sizeof(float) * N) == 0;
          std::vector<float> pieces((size_t)T * N, std::nanf(""));
          for (int64_t n0 = 0; n0 < N;) {
            const int64_t n1 = std::min<int64_t>(N, n0 + 1 + rng.below(20));
            emulated::matmul_amx_rows(pieces.data(), xb.data(), panels.data(), N, K, T, n0, n1);
            n0 = n1;
          }
          split_same = split_same && std::memcmp(pieces.data(), out.data(), sizeof(float) * T * N) == 0;
        }
      }
    const std::string label = std::string("amx (emulated) ") + dtype_name(dt) + " weights vs reference";
    test::compare(label.c_str(), got.data(), ref.data(), got.size(), 1e-4f, 1e-4f);
    std::printf("amx (emulated) %s: row 0 equal for every T: %s; any row split equal: %s\n", dtype_name(dt),
                independent ? "yes" : "NO", split_same ? "yes" : "NO");
    EXPECT(independent);
    EXPECT(split_same);
  }
  return test::finish("test_kernels_amx_emulated");
}
