// Tests of the Q4_0 / Q4_K / Q5_K / Q6_K block formats and their matmul kernels (quant_matmul.h).
//
// - Layout: blocks written byte by byte from the format's definition decode to the values it defines
//   (so the quantiser and dequantiser cannot agree on a wrong layout), and the quantisers round-trip
//   random rows within a relative L2 error per type.
// - Kernels, every path this CPU has (portable, AVX2, AVX-512 running AVX2), on awkward shapes:
//   (a) against the "quantised reference": the decoded weights times the decoded quantised x in double,
//       |diff| <= 1e-4 + 1e-4 |ref| (the integer sums are exact; only float accumulation differs);
//   (b) against the dequantise-then-F32 reference (matmul_rows_reference with x as is), within the bound
//       that x's rounding allows: sum over x's blocks of (d_x / 2) * sum |w| (+1e-4);
//   (c) each row of a T-row call equals the same row of a 1-row call, and of a call split over a
//       thread pool at odd boundaries, bit for bit (tree rows == decode rows);
//   (d) CpuBackend (the active path, with and without a pool) gives the direct result bit for bit.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "common/error.h"
#include "common/quant_blocks.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"
#include "cpu/kernels_cpu.h"
#include "cpu/quant_matmul.h"

using namespace chimera;

namespace {

const DType kTypes[] = {DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<KernelPath> fast_paths() {
  std::vector<KernelPath> p{KernelPath::Portable};
  if (cpu_supports(KernelPath::Avx2)) p.push_back(KernelPath::Avx2);
  if (cpu_supports(KernelPath::Avx512)) p.push_back(KernelPath::Avx512);
  return p;
}

void put_f16(uint8_t* p, float f) {
  const uint16_t h = f32_to_fp16(f);
  std::memcpy(p, &h, 2);
}

// Blocks built from the format definitions (ggml's block_q4_K etc.), checked value by value.
void test_layouts_by_hand() {
  {  // Q4_0: d = 0.5; byte i = (i % 16) | (15 - i % 16) << 4
    uint8_t b[kQ4_0BlockBytes];
    put_f16(b, 0.5f);
    for (int i = 0; i < 16; i++) b[2 + i] = (uint8_t)(i | ((15 - i) << 4));
    float y[32];
    row_to_f32(DType::Q4_0, b, y, 32);
    bool ok = true;
    for (int i = 0; i < 16; i++) ok = ok && y[i] == 0.5f * (i - 8) && y[i + 16] == 0.5f * (15 - i - 8);
    EXPECT(ok);
  }
  {  // Q4_K: scales j < 4 in bytes 0..3 (low 6 bits), mins in 4..7; j >= 4 split over byte j + 4 (low
     // nibble scale, high nibble min) and the top 2 bits of bytes j - 4 (scale) and j (min).
    uint8_t b[kQ4KBlockBytes] = {};
    put_f16(b, 0.25f);
    put_f16(b + 2, 0.125f);
    const uint8_t sc[8] = {1, 2, 3, 4, 17, 35, 50, 63}, mn[8] = {5, 6, 7, 8, 19, 33, 48, 62};
    uint8_t* s = b + kQ4KScales;
    for (int j = 0; j < 4; j++) {
      s[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
      s[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
      s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
    for (int i = 0; i < 128; i++) b[kQ4KQs + i] = (uint8_t)((i * 7) & 0xFF);
    float y[256];
    row_to_f32(DType::Q4_K, b, y, 256);
    bool ok = true;
    for (int v = 0; v < 256; v++) {
      const int j = v / 32, l = v % 32, byte = b[kQ4KQs + 32 * (j / 2) + l];
      const int q = (j & 1) ? byte >> 4 : byte & 0xF;
      ok = ok && std::fabs(y[v] - (0.25f * sc[j] * q - 0.125f * mn[j])) < 1e-6f;
    }
    EXPECT(ok);
  }
  {  // Q6_K: value 128h + 32k + l (k = 0..3) takes nibble (k & 1 ? ql[64h + 32 + l] : ql[64h + l]) >> 4 (k >= 2)
     // and bits 2k of qh[32h + l]; scale index 8h + 2k + l / 16.
    uint8_t b[kQ6KBlockBytes];
    for (int i = 0; i < 128; i++) b[kQ6KQl + i] = (uint8_t)((i * 13 + 5) & 0xFF);
    for (int i = 0; i < 64; i++) b[kQ6KQh + i] = (uint8_t)((i * 29 + 3) & 0xFF);
    for (int i = 0; i < 16; i++) b[kQ6KScales + i] = (uint8_t)(int8_t)(i * 9 - 70);
    put_f16(b + kQ6KD, 0.0625f);
    float y[256];
    row_to_f32(DType::Q6_K, b, y, 256);
    bool ok = true;
    for (int v = 0; v < 256; v++) {
      const int h = v / 128, k = (v % 128) / 32, l = v % 32;
      const int lo_byte = b[kQ6KQl + 64 * h + 32 * (k & 1) + l];
      const int lo = k >= 2 ? lo_byte >> 4 : lo_byte & 0xF;
      const int hi = (b[kQ6KQh + 32 * h + l] >> (2 * k)) & 3;
      const int sc = (int8_t)b[kQ6KScales + 8 * h + 2 * k + l / 16];
      ok = ok && y[v] == 0.0625f * sc * (float)((lo | (hi << 4)) - 32);
    }
    EXPECT(ok);
  }
  {  // Q5_K: as Q4_K, plus bit j of qh[l] as the fifth bit of value l of sub-block j
    uint8_t b[kQ5KBlockBytes] = {};
    put_f16(b, 1.f);
    put_f16(b + 2, 0.f);
    for (int j = 0; j < 4; j++) b[kQ5KScales + j] = 1;  // scales 1 for j < 4, 0 above
    for (int l = 0; l < 32; l++) b[kQ5KQh + l] = (uint8_t)(l * 37);
    for (int i = 0; i < 128; i++) b[kQ5KQs + i] = (uint8_t)(i * 11);
    float y[256];
    row_to_f32(DType::Q5_K, b, y, 256);
    bool ok = true;
    for (int v = 0; v < 128; v++) {
      const int j = v / 32, l = v % 32, byte = b[kQ5KQs + 32 * (j / 2) + l];
      const int q = ((j & 1) ? byte >> 4 : byte & 0xF) | (((b[kQ5KQh + l] >> j) & 1) << 4);
      ok = ok && y[v] == (float)q;
    }
    for (int v = 128; v < 256; v++) ok = ok && y[v] == 0.f;
    EXPECT(ok);
  }
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); i++) {
    d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    n += (double)b[i] * b[i];
  }
  return std::sqrt(d / n);
}

void test_round_trip() {
  test::Rng rng(11);
  const int64_t n = 256 * 64;
  // Uniform values in [-1, 1]: the step is range / (levels - 1) per (sub-)block, so the rounding error
  // is about step / sqrt(12) relative to the values' RMS 1/sqrt(3).
  const double bound[] = {0.11, 0.10, 0.05, 0.03};
  for (int i = 0; i < 4; i++) {
    const DType dt = kTypes[i];
    std::vector<float> x = test::random_floats(rng, (size_t)n), y((size_t)n);
    x[5] = 0.f;  // an all-equal sub-block would divide by zero: make one block constant
    for (int k = 256; k < 512; k++) x[(size_t)k] = 0.3f;
    std::vector<uint8_t> blocks(dtype_row_bytes(dt, (size_t)n));
    row_from_f32(dt, x.data(), blocks.data(), (size_t)n);
    row_to_f32(dt, blocks.data(), y.data(), (size_t)n);
    const double e = rel_l2(y, x);
    std::printf("round trip %-5s relative L2 error %.4f (bound %.2f)\n", dtype_name(dt), e, bound[i]);
    EXPECT(e < bound[i]);
    double const_err = 0;
    for (int k = 256; k < 512; k++) const_err = std::max(const_err, std::fabs((double)y[(size_t)k] - 0.3));
    EXPECT(const_err < 0.02);
  }
}

struct Case {
  DType dt;
  int64_t N, K;
  int T;
};

std::vector<float> decode_matrix(const TensorView& W) {
  std::vector<float> w((size_t)(W.rows * W.cols));
  for (int64_t n = 0; n < W.rows; n++) row_to_f32(W.dtype, W.row(n), w.data() + n * W.cols, (size_t)W.cols);
  return w;
}

// x as the kernels see it: quantised, decoded to floats; and each x row's rounding bound per column block.
std::vector<float> decoded_activations(const TensorView& W, const std::vector<float>& x, int T,
                                       std::vector<float>* half_step) {
  const int64_t K = W.cols;
  const Q8Activations a = quantize_activations_for(W, x.data(), T);
  std::vector<float> xh(x.size());
  half_step->assign(x.size(), 0.f);
  for (int64_t i = 0; i < (int64_t)x.size(); i++) {
    const int64_t t = i / K, k = i % K;
    const float d = a.d256 ? a.d256[t * (K / 256) + k / 256] : a.s[t * (K / 32) + k / 32];
    xh[(size_t)i] = d * (float)a.q[i];
    (*half_step)[(size_t)i] = 0.5f * std::fabs(d);
  }
  return xh;
}

void run_case(const Case& c, ThreadPool& pool, int* failures_before) {
  test::Rng rng((uint64_t)(c.N * 131 + c.K * 7 + c.T + (int)c.dt * 1000));
  std::vector<uint8_t> bytes(dtype_row_bytes(c.dt, (size_t)c.K) * (size_t)c.N);
  const std::vector<float> wf = test::random_floats(rng, (size_t)(c.N * c.K));
  for (int64_t n = 0; n < c.N; n++)
    row_from_f32(c.dt, wf.data() + n * c.K, bytes.data() + n * dtype_row_bytes(c.dt, (size_t)c.K), (size_t)c.K);
  const TensorView W{c.dt, bytes.data(), c.N, c.K};
  const std::vector<float> x = test::random_floats(rng, (size_t)(c.T * c.K), -2.f, 2.f);
  const std::vector<float> w = decode_matrix(W);
  std::vector<float> half_step;
  const std::vector<float> xh = decoded_activations(W, x, c.T, &half_step);
  // References: quantised x in double; the F32 reference with x as is, and its allowed distance.
  std::vector<float> ref_q((size_t)(c.T * c.N)), ref_f((size_t)(c.T * c.N)), allow((size_t)(c.T * c.N));
  matmul_rows_reference(ref_f.data(), x.data(), W, c.T, 0, c.N);
  for (int t = 0; t < c.T; t++) {
    for (int64_t n = 0; n < c.N; n++) {
      double s = 0, a = 0;
      for (int64_t k = 0; k < c.K; k++) {
        s += (double)xh[(size_t)(t * c.K + k)] * w[(size_t)(n * c.K + k)];
        a += (double)half_step[(size_t)(t * c.K + k)] * std::fabs(w[(size_t)(n * c.K + k)]);
      }
      ref_q[(size_t)(t * c.N + n)] = (float)s;
      allow[(size_t)(t * c.N + n)] = (float)(a + 1e-4);
    }
  }
  const std::string name = std::string(dtype_name(c.dt)) + " T=" + std::to_string(c.T) + " N=" +
                           std::to_string(c.N) + " K=" + std::to_string(c.K);
  for (KernelPath path : fast_paths()) {
    const std::string label = name + " " + kernel_path_name(path);
    std::vector<float> out((size_t)(c.T * c.N), NAN), one((size_t)c.N, NAN), split(out.size(), NAN);
    matmul_rows(path, out.data(), x.data(), W, c.T, 0, c.N);
    if (!test::compare((label + " vs quantised ref").c_str(), out.data(), ref_q.data(), out.size(), 1e-4f, 1e-4f))
      continue;
    bool within = true;
    for (size_t i = 0; i < out.size(); i++) within = within && std::fabs(out[i] - ref_f[i]) <= allow[i];
    if (!within) std::fprintf(stderr, "%s: beyond x's rounding bound from the F32 reference\n", label.c_str());
    EXPECT(within);
    bool same = true;
    for (int t = 0; t < c.T; t++) {
      matmul_rows(path, one.data(), x.data() + t * c.K, W, 1, 0, c.N);
      same = same && std::memcmp(one.data(), out.data() + t * c.N, sizeof(float) * (size_t)c.N) == 0;
    }
    pool.parallel_for(c.N, 1, [&](int64_t n0, int64_t n1, int) {
      matmul_rows(path, split.data(), x.data(), W, c.T, n0, n1);
    });
    same = same && std::memcmp(split.data(), out.data(), sizeof(float) * out.size()) == 0;
    if (!same) std::fprintf(stderr, "%s: a row differs between T, or between row splits\n", label.c_str());
    EXPECT(same);
  }
  std::vector<float> direct((size_t)(c.T * c.N)), via((size_t)(c.T * c.N));
  matmul_rows(active_kernel_path(), direct.data(), x.data(), W, c.T, 0, c.N);
  CpuBackend serial(nullptr), pooled(&pool);
  for (CpuBackend* be : {&serial, &pooled}) {
    std::fill(via.begin(), via.end(), NAN);
    be->matmul(via.data(), x.data(), W, c.T);
    EXPECT(std::memcmp(via.data(), direct.data(), sizeof(float) * via.size()) == 0);
  }
  (void)failures_before;
}

void test_matmuls(ThreadPool& pool) {
  const int Ts[] = {1, 2, 3, 4, 5, 8, 9, 16, 19};
  int before = test::failures();
  for (DType dt : kTypes) {
    const bool k = dtype_block_elems(dt) == 256;
    const std::vector<int64_t> Ks = k ? std::vector<int64_t>{256, 768, 2816} : std::vector<int64_t>{32, 96, 800};
    for (int64_t N : {1, 7, 37})
      for (int64_t K : Ks)
        for (int T : Ts) run_case({dt, N, K, T}, pool, &before);
  }
}

// The AVX2 Q8_K quantiser gives the plain loop's bytes, scale and sums exactly (ties of magnitude and
// sign included: the first value of largest magnitude picks the scale).
void test_q8k_quantiser() {
  if (!cpu_supports(KernelPath::Avx2)) return;
  test::Rng rng(5);
  int mismatches = 0;
  for (int c = 0; c < 200; c++) {
    std::vector<float> x = test::random_floats(rng, 256, -3.f, 3.f);
    if (c % 5 == 1) x[(size_t)rng.below(256)] = -3.5f, x[(size_t)rng.below(256)] = 3.5f;  // +-max tie
    if (c % 5 == 2) std::fill(x.begin(), x.end(), 0.f);
    if (c % 5 == 3) for (float& v : x) v = std::round(v * 4.f) / 4.f;  // exact halves after scaling
    int8_t qa[256], qb[256];
    float da = 1.f, db = 2.f;
    int16_t sa[16], sb[16];
    inner::quantize_q8k_block_portable(x.data(), qa, &da, sa);
    inner::quantize_q8k_block_avx2(x.data(), qb, &db, sb);
    if (std::memcmp(qa, qb, 256) != 0 || std::memcmp(&da, &db, 4) != 0 || std::memcmp(sa, sb, sizeof sa) != 0) mismatches++;
  }
  std::printf("Q8_K quantiser: AVX2 vs plain, %d of 200 blocks differ\n", mismatches);
  EXPECT(mismatches == 0);
}

void test_bad_shapes() {
  std::vector<uint8_t> bytes(4096);
  std::vector<float> x(512), out(8);
  const TensorView W{DType::Q4_K, bytes.data(), 2, 300};  // 300 columns: not whole super-blocks
  EXPECT_THROWS_CODE(matmul_rows(active_kernel_path(), out.data(), x.data(), W, 1, 0, 2), ErrorCode::Tensor);
  EXPECT(dtype_row_bytes(DType::Q4_K, 512) == 2 * (size_t)kQ4KBlockBytes);
  EXPECT(dtype_row_bytes(DType::Q6_K, 256) == (size_t)kQ6KBlockBytes);
  EXPECT(dtype_row_bytes(DType::Q4_0, 64) == 2 * (size_t)kQ4_0BlockBytes);
}

}  // namespace

int main() {
  std::printf("kernel paths: active %s\n", kernel_path_name(active_kernel_path()));
  try {
    test_layouts_by_hand();
    test_round_trip();
    ThreadPool pool(2);
    test_matmuls(pool);
    test_q8k_quantiser();
    test_bad_shapes();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    test::failures()++;
  }
  return test::finish("test_quant_kernels");
}
