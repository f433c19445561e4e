// Tests of the CPU kernels and the thread pool. Every kernel path this CPU supports is checked against
// the reference kernels: directly over all rows, split over a 2-thread pool at odd boundaries, and
// through CpuBackend (which runs the active path) with and without a pool. Rope is also checked against
// its closed formula, and the pool against its scheduling, exception and coverage guarantees.
//
// Tolerances: the fast paths read exactly the quantised weights the reference reads (weights are built
// from random floats and then stored as F16/BF16/Q8_0), so every dtype uses the F32 tolerance; Q8_0 on
// the AVX2 path quantises x to Q8 blocks, and its reference does the same first. The only difference
// is float vs double accumulation: |diff| <= 1e-4 + 1e-4 |ref| for K <= 257, and for the
// few K = 4100 cases (sums of 4100 products of values in [-1, 1] are ~30 at most). Attention:
// 1e-5 + 1e-4 |ref|. Rope, rmsnorm, swiglu: 1e-5 + 1e-5 |ref|. Dtype conversion: exact.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "check.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"
#include "cpu/float_panels.h"
#include "cpu/kernels_amx.h"
#include "cpu/kernels_cpu.h"
#include "cpu/q8_0x16.h"
#include "cpu/q8_0x4.h"

using namespace chimera;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<KernelPath> fast_paths() {
  std::vector<KernelPath> p{KernelPath::Portable};
  if (cpu_supports(KernelPath::Avx2)) p.push_back(KernelPath::Avx2);
  if (cpu_supports(KernelPath::Avx512)) p.push_back(KernelPath::Avx512);  // else see test_kernels_avx512_emulated
  return p;
}

// Many cases checked silently, one summary line per group; a failing case prints its own line.
struct Group {
  std::string label;
  float atol, rtol;
  std::vector<float> got, ref;

  void add(const std::string& case_label, const std::vector<float>& g, const std::vector<float>& r) {
    bool ok = g.size() == r.size();
    for (size_t i = 0; ok && i < g.size(); i++)
      ok = std::fabs((double)g[i] - r[i]) <= atol + rtol * std::fabs((double)r[i]);
    if (!ok)
      test::compare((label + " " + case_label).c_str(), g.data(), r.data(), std::min(g.size(), r.size()), atol, rtol);
    got.insert(got.end(), g.begin(), g.end());
    ref.insert(ref.end(), r.begin(), r.end());
  }
  void report() const { test::compare(label.c_str(), got.data(), ref.data(), got.size(), atol, rtol); }
};

// ---- weights ----

void quantize_row(DType dt, const float* src, uint8_t* dst, int64_t K) {
  if (dt == DType::F32) {
    std::memcpy(dst, src, (size_t)K * 4);
  } else if (dt == DType::F16 || dt == DType::BF16) {
    for (int64_t k = 0; k < K; k++) {
      const uint16_t h = dt == DType::F16 ? f32_to_fp16(src[k]) : f32_to_bf16(src[k]);
      std::memcpy(dst + 2 * k, &h, 2);
    }
  } else {  // Q8_0: scale = max |x| / 127 per block, stored as F16
    for (int64_t b = 0; b < K / kQ8BlockSize; b++) {
      const float* s = src + b * kQ8BlockSize;
      float amax = 0.f;
      for (int i = 0; i < kQ8BlockSize; i++) amax = std::max(amax, std::fabs(s[i]));
      const uint16_t d16 = f32_to_fp16(amax / 127.f);
      const float d = fp16_to_f32(d16);
      uint8_t* blk = dst + b * kQ8BlockBytes;
      std::memcpy(blk, &d16, 2);
      for (int i = 0; i < kQ8BlockSize; i++) {
        const float q = d > 0.f ? std::nearbyint(s[i] / d) : 0.f;
        blk[2 + i] = (uint8_t)(int8_t)std::max(-127.f, std::min(127.f, q));
      }
    }
  }
}

struct Weights {
  std::vector<uint8_t> bytes;
  TensorView view;
};

Weights make_weights(test::Rng& rng, DType dt, int64_t N, int64_t K) {
  Weights w;
  const size_t row_bytes = dtype_row_bytes(dt, (size_t)K);
  w.bytes.resize(row_bytes * (size_t)N + 1);  // +1: a non-empty buffer even for K = 0
  const std::vector<float> f = test::random_floats(rng, (size_t)(N * K));
  for (int64_t n = 0; n < N; n++) quantize_row(dt, f.data() + n * K, w.bytes.data() + n * row_bytes, K);
  w.view = TensorView{dt, w.bytes.data(), N, K};
  return w;
}

// ---- matmul ----

// The reference result a path must give: x as is, or for Q8_0 on the AVX2 path x quantised to Q8
// blocks first (that path's integer dot products are then exact up to float rounding).
std::vector<float> reference_for(KernelPath path, DType dt, const TensorView& W, const std::vector<float>& x, int T) {
  std::vector<float> ref((size_t)T * W.rows);
  if (uses_avx2_loops(path) && dt == DType::Q8_0) {
    std::vector<int8_t> q(x.size());
    std::vector<float> sc(x.size() / kQ8BlockSize), xh(x.size());
    quantize_q8_activations(x.data(), T, W.cols, q.data(), sc.data());
    for (size_t i = 0; i < x.size(); i++) xh[i] = (float)q[i] * sc[i / kQ8BlockSize];
    matmul_forward_reference(ref.data(), xh.data(), W, T);
  } else {
    matmul_forward_reference(ref.data(), x.data(), W, T);
  }
  return ref;
}

void run_matmul_case(DType dt, int64_t N, int64_t K, int T, const Weights& W, const std::vector<float>& x,
                     ThreadPool& pool, std::vector<Group>& groups) {
  std::vector<float> out;
  const std::string name = "T=" + std::to_string(T) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
  size_t g = 0;
  for (KernelPath path : fast_paths()) {
    const std::vector<float> ref = reference_for(path, dt, W.view, x, T);
    out.assign(ref.size(), kNaN);  // NaN marks elements nobody wrote
    matmul_rows(path, out.data(), x.data(), W.view, T, 0, N);
    groups[g++].add(name, out, ref);
    out.assign(ref.size(), kNaN);
    pool.parallel_for(N, 1, [&](int64_t n0, int64_t n1, int) {
      matmul_rows(path, out.data(), x.data(), W.view, T, n0, n1);
    });
    groups[g++].add(name, out, ref);
  }
  const std::vector<float> ref = reference_for(active_kernel_path(), dt, W.view, x, T);
  CpuBackend serial(nullptr), pooled(&pool);
  for (CpuBackend* be : {&serial, &pooled}) {
    out.assign(ref.size(), kNaN);
    be->matmul(out.data(), x.data(), W.view, T);
    groups[g++].add(name, out, ref);
  }
}

void test_matmul(ThreadPool& pool) {
  const int Ts[] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 16, 26, 33, 64};
  const int64_t Ns[] = {1, 7, 64, 97};
  const std::vector<int64_t> Ks{8, 31, 64, 100, 172, 257}, Ks_q8{32, 64, 96, 256};
  test::Rng rng(11);
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    std::vector<Group> groups;
    const std::string d = std::string("matmul ") + dtype_name(dt);
    for (KernelPath path : fast_paths()) {
      groups.push_back({d + " " + kernel_path_name(path) + " all rows", 1e-4f, 1e-4f, {}, {}});
      groups.push_back({d + " " + kernel_path_name(path) + " split (2 threads)", 1e-4f, 1e-4f, {}, {}});
    }
    const std::string be = d + " CpuBackend(" + kernel_path_name(active_kernel_path()) + ")";
    groups.push_back({be + " serial", 1e-4f, 1e-4f, {}, {}});
    groups.push_back({be + " 2 threads", 1e-4f, 1e-4f, {}, {}});
    for (int64_t K : dt == DType::Q8_0 ? Ks_q8 : Ks)
      for (int64_t N : Ns) {
        const Weights W = make_weights(rng, dt, N, K);
        for (int T : Ts) run_matmul_case(dt, N, K, T, W, test::random_floats(rng, (size_t)(T * K)), pool, groups);
      }
    // K longer than one K chunk of the tiled kernels (2048), so partial sums are accumulated across chunks.
    const int64_t long_k = dt == DType::Q8_0 ? 4128 : 4100;
    const Weights W = make_weights(rng, dt, 33, long_k);
    for (int T : {1, 5, 26})
      run_matmul_case(dt, 33, long_k, T, W, test::random_floats(rng, (size_t)(T * long_k)), pool, groups);
    for (const Group& g : groups) g.report();
  }
}

// Lossless speculation on the CPU: a row's result must not depend on how many rows share the call
// (a tree row must equal the plain decode step bit for bit), also when K spans several K chunks.
void test_matmul_row_independence(ThreadPool& pool) {
  test::Rng rng(23);
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    for (int64_t K : {(int64_t)96, (int64_t)2080, (int64_t)5632}) {
      const int64_t N = 37;
      const Weights W = make_weights(rng, dt, N, K);
      const std::vector<float> x = test::random_floats(rng, (size_t)(64 * K));
      for (KernelPath path : fast_paths()) {
        std::vector<float> one((size_t)N), many((size_t)64 * N), alone((size_t)64 * N);
        matmul_rows(path, one.data(), x.data(), W.view, 1, 0, N);
        for (int t = 0; t < 64; t++)  // each row by itself
          matmul_rows(path, alone.data() + (size_t)t * N, x.data() + (size_t)t * K, W.view, 1, 0, N);
        bool same = true;
        // Register tiles of 4 input rows and a last tile of up to 6 (AVX-512), in the streamed (T <= 8)
        // and the blocked (T > 8) drivers.
        for (int T : {2, 4, 5, 6, 7, 8, 9, 10, 11, 13, 16, 26, 64}) {
          matmul_rows(path, many.data(), x.data(), W.view, T, 0, N);
          same = same && std::memcmp(alone.data(), many.data(), sizeof(float) * N * T) == 0;
        }
        if (path == active_kernel_path()) {  // and through the backend, split over the pool
          CpuBackend pooled(&pool);
          pooled.matmul(many.data(), x.data(), W.view, 26);
          same = same && std::memcmp(one.data(), many.data(), sizeof(float) * N) == 0;
        }
        std::printf("matmul %s %s K=%lld: every row at T = 2..64 %s T = 1\n", dtype_name(dt), kernel_path_name(path),
                    (long long)K, same ? "equals" : "DIFFERS FROM");
        EXPECT(same);
      }
    }
  }
}

// The T x N output of a matmul computed in pieces of 1 to max_piece rows (starting and ending anywhere),
// each by run(out, n0, n1).
std::vector<float> in_pieces(test::Rng& rng, int64_t N, int T, int max_piece,
                             const std::function<void(float*, int64_t, int64_t)>& run) {
  std::vector<float> out((size_t)T * N, kNaN);
  for (int64_t n0 = 0; n0 < N;) {
    const int64_t n1 = std::min<int64_t>(N, n0 + 1 + rng.below(max_piece));
    run(out.data(), n0, n1);
    n0 = n1;
  }
  return out;
}

// W as the output matrix of a model on a pooled backend that prepared its weights: the bytes it copied,
// whether it uses AMX, and its matmul of x (T rows).
struct BackendMatmul {
  size_t bytes;
  bool uses_amx;
  std::vector<float> out;
};
BackendMatmul backend_matmul(ThreadPool& pool, const TensorView& W, const std::vector<float>& x, int T) {
  ModelWeights mw;
  mw.output = W;
  CpuBackend pooled(&pool);
  BackendMatmul r{pooled.prepare_weights(mw), pooled.uses_amx(), std::vector<float>((size_t)T * W.rows, kNaN)};
  pooled.matmul(r.out.data(), x.data(), W, T);
  return r;
}

bool repacking_turned_off() {
  const char* repack = std::getenv("CHIMERA_CPU_REPACK");
  return repack && std::string(repack) == "0";
}

// A repacked Q8_0 layout (Q8_0x4 of the AVX2 path, Q8_0x16 of AVX-512 VNNI): the repacked bytes decode
// to the same elements, the matmul matches the reference over awkward shapes (rows not a multiple of
// the group, K not a multiple of the chunk) and any row range, a row's result is the same bit for bit
// for every T and every split, and the backend reads the copy once prepare_weights has made it (when
// this layout is the one it makes here).
struct Q8Layout {
  const char* name;
  void (*repack)(const TensorView&, uint8_t*);
  float (*element)(const uint8_t*, int64_t, int64_t, int64_t, int64_t);
  void (*matmul)(float*, const float*, const Q8Activations&, const uint8_t*, int64_t, int64_t, int, int64_t, int64_t);
  bool backend_uses;
};

void test_q8_layout(ThreadPool& pool, const Q8Layout& L) {
  test::Rng rng(31);
  Group group{std::string("matmul ") + L.name + " vs reference (x as Q8)", 1e-4f, 1e-4f, {}, {}};
  bool layout_ok = true, independent = true, backend_same = true;
  for (int64_t K : {(int64_t)32, (int64_t)96, (int64_t)256, (int64_t)288, (int64_t)2080}) {
    for (int64_t N : {(int64_t)1, (int64_t)3, (int64_t)4, (int64_t)5, (int64_t)13, (int64_t)36, (int64_t)50}) {
      const Weights W = make_weights(rng, DType::Q8_0, N, K);
      std::vector<uint8_t> packed(W.view.bytes() + 1);
      L.repack(W.view, packed.data());
      std::vector<float> plain_row((size_t)K);
      for (int64_t n = 0; n < N; n++) {
        row_to_f32(DType::Q8_0, W.view.row(n), plain_row.data(), (size_t)K);
        for (int64_t k = 0; k < K; k++)
          layout_ok = layout_ok && L.element(packed.data(), N, K, n, k) == plain_row[(size_t)k];
      }
      const std::vector<float> x = test::random_floats(rng, (size_t)(64 * K));
      std::vector<float> one((size_t)N);
      for (int T : {1, 2, 3, 5, 8, 9, 26, 64}) {
        const Q8Activations xq = quantize_q8_activations(x.data(), T, K);
        std::vector<float> out((size_t)T * N, kNaN);
        L.matmul(out.data(), x.data(), xq, packed.data(), N, K, T, 0, N);
        group.add("T=" + std::to_string(T) + " N=" + std::to_string(N) + " K=" + std::to_string(K), out,
                  reference_for(KernelPath::Avx2, DType::Q8_0, W.view, x, T));
        if (T == 1) one.assign(out.begin(), out.begin() + N);
        independent = independent && std::memcmp(one.data(), out.data(), sizeof(float) * N) == 0;
        // The same rows in pieces that start and end inside row groups.
        const std::vector<float> pieces = in_pieces(rng, N, T, 20, [&](float* o, int64_t n0, int64_t n1) {
          L.matmul(o, x.data(), xq, packed.data(), N, K, T, n0, n1);
        });
        independent = independent && std::memcmp(pieces.data(), out.data(), sizeof(float) * T * N) == 0;
        if (T == 26) {
          const BackendMatmul be = backend_matmul(pool, W.view, x, T);
          if (!uses_avx2_loops(active_kernel_path()) || repacking_turned_off())
            backend_same = backend_same && be.bytes == 0;  // another path, or repacking turned off
          else if (L.backend_uses)
            backend_same = backend_same && be.bytes == W.view.bytes() &&
                           std::memcmp(be.out.data(), out.data(), sizeof(float) * T * N) == 0;
        }
      }
    }
  }
  group.report();
  std::printf("%s: layout decodes to the plain elements: %s; rows equal for every T and split: %s; "
              "backend reads the copy: %s\n",
              L.name, layout_ok ? "yes" : "NO", independent ? "yes" : "NO",
              L.backend_uses ? (backend_same ? "yes" : "NO") : "not its layout here");
  EXPECT(layout_ok);
  EXPECT(independent);
  EXPECT(backend_same);
}

void test_q8_layouts(ThreadPool& pool) {
  if (!cpu_supports(KernelPath::Avx2)) {
    std::printf("q8_0x4, q8_0x16: skipped (this CPU has no AVX2)\n");
    return;
  }
  const bool x16 = active_kernel_path() == KernelPath::Avx512 && q8_0x16_supported();
  test_q8_layout(pool, {"Q8_0x4", repack_q8_0x4, q8_0x4_element, matmul_q8_0x4_rows, !x16});
  if (q8_0x16_supported())
    test_q8_layout(pool, {"Q8_0x16", repack_q8_0x16, q8_0x16_element, matmul_q8_0x16_rows, x16});
  else
    std::printf("Q8_0x16: skipped (this CPU has no AVX-512 VNNI)\n");
}

// The float panel layout of the AVX-512 path (float_panels.h): the repacked bytes decode to the plain
// elements, the matmul matches the reference over awkward shapes (rows not a multiple of 16, so a padded
// last panel; K with no step; T across the one-sweep and the blocked drivers; K over several blocks) and
// any row range, a row's result is the same bit for bit for every T and every split, and the backend
// reads the copy.
void test_float_panels(ThreadPool& pool) {
  if (!float_panels_supported()) {
    std::printf("float panels: skipped (this CPU has no AVX-512; test_kernels_avx512_emulated checks the tiles)\n");
    return;
  }
  test::Rng rng(37);
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    Group group{std::string("matmul float panels ") + dtype_name(dt) + " vs reference", 1e-4f, 1e-4f, {}, {}};
    bool layout_ok = true, independent = true, backend_same = true;
    for (int64_t K : {(int64_t)1, (int64_t)17, (int64_t)100, (int64_t)513, (int64_t)1100}) {
      for (int64_t N : {(int64_t)1, (int64_t)15, (int64_t)16, (int64_t)17, (int64_t)50, (int64_t)160}) {
        const Weights W = make_weights(rng, dt, N, K);
        std::vector<uint8_t> packed(float_panels_bytes(dt, N, K) + 1);
        repack_float_panels(W.view, packed.data(), 0, N);
        std::vector<float> plain_row((size_t)K);
        for (int64_t n = 0; n < N; n++) {
          row_to_f32(dt, W.view.row(n), plain_row.data(), (size_t)K);
          for (int64_t k = 0; k < K; k++)
            layout_ok = layout_ok && float_panels_element(dt, packed.data(), N, K, n, k) == plain_row[(size_t)k];
        }
        const std::vector<float> x = test::random_floats(rng, (size_t)(40 * K));
        // Each row alone: what every T and split must give.
        std::vector<float> alone((size_t)40 * N, kNaN);
        for (int t = 0; t < 40; t++)
          matmul_float_panels_rows(dt, alone.data() + (size_t)t * N, x.data() + (size_t)t * K, packed.data(), N, K, 1,
                                   0, N);
        for (int T : {1, 2, 3, 5, 8, 9, 13, 14, 15, 16, 29, 40}) {
          std::vector<float> out((size_t)T * N, kNaN);
          matmul_float_panels_rows(dt, out.data(), x.data(), packed.data(), N, K, T, 0, N);
          group.add("T=" + std::to_string(T) + " N=" + std::to_string(N) + " K=" + std::to_string(K), out,
                    reference_for(KernelPath::Avx512, dt, W.view, x, T));
          independent = independent && std::memcmp(alone.data(), out.data(), sizeof(float) * T * N) == 0;
          // The same rows in pieces that start and end inside panels.
          const std::vector<float> pieces = in_pieces(rng, N, T, 40, [&](float* o, int64_t n0, int64_t n1) {
            matmul_float_panels_rows(dt, o, x.data(), packed.data(), N, K, T, n0, n1);
          });
          independent = independent && std::memcmp(pieces.data(), out.data(), sizeof(float) * T * N) == 0;
          if (T == 29) {
            const BackendMatmul be = backend_matmul(pool, W.view, x, T);
            if (active_kernel_path() != KernelPath::Avx512 || repacking_turned_off())
              backend_same = backend_same && be.bytes == 0;  // another path, or repacking turned off
            else if (!(dt == DType::BF16 && be.uses_amx))  // BF16 goes to the tile unit where there is one
              backend_same = backend_same && be.bytes == float_panels_bytes(dt, N, K) &&
                             std::memcmp(be.out.data(), out.data(), sizeof(float) * T * N) == 0;
          }
        }
      }
    }
    group.report();
    std::printf("float panels %s: layout decodes to the plain elements: %s; rows equal for every T and split: %s; "
                "backend reads the copy: %s\n",
                dtype_name(dt), layout_ok ? "yes" : "NO", independent ? "yes" : "NO", backend_same ? "yes" : "NO");
    EXPECT(layout_ok);
    EXPECT(independent);
    EXPECT(backend_same);
  }
}

// The AMX-BF16 matmul on the real tile unit, where the CPU has it (test_kernels_amx_emulated checks the
// same loop everywhere): against the reference with inputs and weights rounded to bf16, a row's result
// equal for every T, and the backend reading the panels of a BF16 matrix.
void test_amx(ThreadPool& pool) {
  if (!amx_bf16_available()) {
    std::printf("amx: skipped (this CPU or OS has no AMX-BF16; see test_kernels_amx_emulated)\n");
    return;
  }
  std::printf("amx: self-check %s\n", amx_self_check() ? "passes" : "FAILS");
  EXPECT(amx_self_check());
  test::Rng rng(71);
  Group group{"matmul AMX (bf16) vs reference", 1e-4f, 1e-4f, {}, {}};
  bool independent = true, backend_same = true;
  for (int64_t N : {(int64_t)17, (int64_t)40})
    for (int64_t K : {(int64_t)33, (int64_t)2080}) {
      const Weights W = make_weights(rng, DType::BF16, N, K);
      std::vector<uint8_t> panels(amx_panels_bytes(N, K));
      repack_amx_panels(W.view, panels.data());
      const std::vector<float> x = test::random_floats(rng, (size_t)(64 * K));
      std::vector<float> first((size_t)N);
      for (int T : {1, 5, 26, 64}) {
        std::vector<uint16_t> xb;
        round_rows_bf16(x.data(), T, K, xb);
        std::vector<float> out((size_t)T * N, kNaN), xr((size_t)T * K), ref((size_t)T * N);
        matmul_amx_rows(out.data(), xb.data(), panels.data(), N, K, T, 0, N);
        for (size_t i = 0; i < xr.size(); i++) xr[i] = bf16_to_f32(f32_to_bf16(x[i]));
        matmul_forward_reference(ref.data(), xr.data(), W.view, T);
        group.add("T=" + std::to_string(T) + " N=" + std::to_string(N) + " K=" + std::to_string(K), out, ref);
        if (T == 1) first.assign(out.begin(), out.begin() + N);
        independent = independent && std::memcmp(first.data(), out.data(), sizeof(float) * N) == 0;
        if (T == 26) {
          const BackendMatmul be = backend_matmul(pool, W.view, x, T);
          const char* amx_env = std::getenv("CHIMERA_CPU_AMX");
          const bool amx_on = uses_avx2_loops(active_kernel_path()) && !(amx_env && std::string(amx_env) == "0");
          backend_same = backend_same && be.uses_amx == amx_on &&
                         (!be.uses_amx || std::memcmp(be.out.data(), out.data(), sizeof(float) * T * N) == 0);
        }
      }
    }
  group.report();
  std::printf("amx: rows equal for every T: %s; backend reads the panels: %s\n", independent ? "yes" : "NO",
              backend_same ? "yes" : "NO");
  EXPECT(independent);
  EXPECT(backend_same);
}

// Every finite F16 / BF16 bit pattern through each path's conversion: x = identity picks single weights.
void test_conversion_exact() {
  for (DType dt : {DType::F16, DType::BF16}) {
    const int64_t K = 64, N = 65536 / K;
    std::vector<uint16_t> w(65536);
    for (uint32_t i = 0; i < 65536; i++) {
      const bool special = dt == DType::F16 ? (i & 0x7c00) == 0x7c00 : (i & 0x7f80) == 0x7f80;
      w[i] = special ? 0 : (uint16_t)i;
    }
    const TensorView W{dt, w.data(), N, K};
    std::vector<float> x((size_t)K * K, 0.f), ref((size_t)K * N), out(ref.size());
    for (int64_t t = 0; t < K; t++) x[t * K + t] = 1.f;
    for (int64_t n = 0; n < N; n++) {
      std::vector<float> row((size_t)K);
      row_to_f32(dt, W.row(n), row.data(), (size_t)K);
      for (int64_t t = 0; t < K; t++) ref[t * N + n] = row[t];
    }
    for (KernelPath path : fast_paths()) {
      matmul_rows(path, out.data(), x.data(), W, (int)K, 0, N);
      const std::string label = std::string("convert every ") + dtype_name(dt) + " " + kernel_path_name(path);
      test::compare(label.c_str(), out.data(), ref.data(), out.size(), 0.f, 0.f);
    }
  }
}

void test_dot_row() {
  test::Rng rng(5);
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    const int64_t K = dt == DType::Q8_0 ? 96 : 75, N = 3;
    const Weights W = make_weights(rng, dt, N, K);
    const std::vector<float> x = test::random_floats(rng, (size_t)K);
    for (KernelPath path : fast_paths()) {
      std::vector<float> got, ref;
      for (int64_t n = 0; n < N; n++)
        for (int64_t len : {K, K - 37, (int64_t)0}) {
          got.push_back(dot_row(path, x.data(), W.view, n, len));
          ref.push_back(dot_row(KernelPath::Reference, x.data(), W.view, n, len));
        }
      const std::string label = std::string("dot_row ") + dtype_name(dt) + " " + kernel_path_name(path);
      test::compare(label.c_str(), got.data(), ref.data(), got.size(), 1e-4f, 1e-4f);
    }
  }
}

// ---- attention ----

struct AttnCase {
  int T, n_past, NH, NKV, HS;
  bool random_mask;
};

void run_attention_case(const AttnCase& c, test::Rng& rng, ThreadPool& pool, std::vector<Group>& groups) {
  const int S = c.n_past + c.T, KVD = c.NKV * c.HS, QD = c.NH * c.HS;
  const std::vector<float> q = test::random_floats(rng, (size_t)c.T * QD, -3.f, 3.f);
  const std::vector<float> k = test::random_floats(rng, (size_t)S * KVD), v = test::random_floats(rng, (size_t)S * KVD);
  std::vector<uint8_t> mask((size_t)c.T * S);
  for (auto& m : mask) m = rng.below(2);
  if (c.T > 1)
    for (int j = 0; j < S; j++) mask[(size_t)S + j] = 0;  // row 1 sees nothing
  const uint8_t* mp = c.random_mask ? mask.data() : nullptr;
  std::vector<float> ref((size_t)c.T * QD), out;
  attention_forward_reference(ref.data(), q.data(), k.data(), v.data(), mp, c.T, c.n_past, c.NH, c.NKV, c.HS);
  const std::string name = std::string(c.random_mask ? "masked" : "causal") + " T=" + std::to_string(c.T) +
                           " n_past=" + std::to_string(c.n_past) + " NH/NKV=" + std::to_string(c.NH) + "/" +
                           std::to_string(c.NKV) + " HS=" + std::to_string(c.HS);
  size_t g = 0;
  for (KernelPath path : fast_paths()) {
    out.assign(ref.size(), kNaN);
    attention_rows(path, out.data(), q.data(), k.data(), v.data(), mp, c.T, c.n_past, c.NH, c.NKV, c.HS, 0, c.T);
    groups[g++].add(name, out, ref);
    out.assign(ref.size(), kNaN);  // one task per (row, head): head ranges cut through KV groups
    pool.run(c.T * c.NH, [&](int task, int) {
      const int t = task / c.NH, h = task % c.NH;
      attention_rows(path, out.data(), q.data(), k.data(), v.data(), mp, c.T, c.n_past, c.NH, c.NKV, c.HS, t, t + 1, h,
                     h + 1);
    });
    groups[g++].add(name, out, ref);
  }
  CpuBackend serial(nullptr), pooled(&pool);
  for (CpuBackend* be : {&serial, &pooled}) {
    out.assign(ref.size(), kNaN);
    be->attention(out.data(), q.data(), k.data(), v.data(), mp, c.T, c.n_past, c.NH, c.NKV, c.HS);
    groups[g++].add(name, out, ref);
  }
}

void test_attention(ThreadPool& pool) {
  std::vector<Group> groups;
  for (KernelPath path : fast_paths()) {
    groups.push_back({std::string("attention ") + kernel_path_name(path) + " all rows", 1e-5f, 1e-4f, {}, {}});
    groups.push_back({std::string("attention ") + kernel_path_name(path) + " split (row, head)", 1e-5f, 1e-4f, {}, {}});
  }
  const std::string be = std::string("attention CpuBackend(") + kernel_path_name(active_kernel_path()) + ")";
  groups.push_back({be + " serial", 1e-5f, 1e-4f, {}, {}});
  groups.push_back({be + " 2 threads", 1e-5f, 1e-4f, {}, {}});
  const int heads[][2] = {{8, 4}, {4, 4}, {6, 2}};
  test::Rng rng(7);
  for (bool random_mask : {false, true})
    for (int n_past : {0, 1, 17})
      for (int T : {1, 5, 26})
        for (const auto& h : heads)
          for (int HS : {8, 12, 64}) run_attention_case({T, n_past, h[0], h[1], HS, random_mask}, rng, pool, groups);
  for (const Group& g : groups) g.report();

  // A row that sees nothing outputs zeros (checked on its own, not only as "equal to the reference").
  std::vector<float> q(8, 1.f), kv(16, 1.f), out(8, kNaN);
  const uint8_t none[2] = {0, 0};
  CpuBackend(nullptr).attention(out.data(), q.data(), kv.data(), kv.data(), none, 1, 1, 1, 1, 8);
  for (float o : out) EXPECT(o == 0.f);
  EXPECT_THROWS_CODE(CpuBackend(nullptr).attention(out.data(), q.data(), kv.data(), kv.data(), none, 1, 1, 3, 2, 8),
                     ErrorCode::InvalidArg);
}

// Lossless speculation: a query row's attention must not depend on the rows beside it. Row i of a
// causal batch of T rows sees the same slots as a lone row after n_past + i cached ones, and must give
// the same floats, for every path, head size and visible count (the score blocks of 8 and their tail).
void test_attention_row_independence(ThreadPool& pool) {
  test::Rng rng(11);
  bool same = true;
  for (KernelPath path : fast_paths()) {
    for (int HS : {8, 12, 64}) {
      const int NH = 8, NKV = 2, T = 13, n_past = 6, S = n_past + T, KVD = NKV * HS, QD = NH * HS;
      const std::vector<float> q = test::random_floats(rng, (size_t)T * QD);
      const std::vector<float> k = test::random_floats(rng, (size_t)S * KVD), v = test::random_floats(rng, (size_t)S * KVD);
      std::vector<float> batch((size_t)T * QD), alone((size_t)QD);
      attention_rows(path, batch.data(), q.data(), k.data(), v.data(), nullptr, T, n_past, NH, NKV, HS, 0, T);
      for (int i = 0; i < T; i++) {
        attention_rows(path, alone.data(), q.data() + (size_t)i * QD, k.data(), v.data(), nullptr, 1, n_past + i, NH,
                       NKV, HS, 0, 1);
        same = same && std::memcmp(alone.data(), batch.data() + (size_t)i * QD, sizeof(float) * QD) == 0;
      }
      if (path == active_kernel_path()) {  // and through the backend, split over the pool
        CpuBackend be(&pool);
        be.attention(batch.data(), q.data(), k.data(), v.data(), nullptr, T, n_past, NH, NKV, HS);
        for (int i = 0; i < T; i++) {
          be.attention(alone.data(), q.data() + (size_t)i * QD, k.data(), v.data(), nullptr, 1, n_past + i, NH, NKV, HS);
          same = same && std::memcmp(alone.data(), batch.data() + (size_t)i * QD, sizeof(float) * QD) == 0;
        }
      }
    }
  }
  std::printf("attention: each row of a causal batch %s the row alone, bit for bit\n", same ? "equals" : "DIFFERS FROM");
  EXPECT(same);
}

// ---- rope, rmsnorm, swiglu, embed ----

// The closed formula, written independently of the kernels: pair p rotates by pos * theta^(-2p/dims).
// With freq factors (Llama 3.x rope_freqs), pair p's angle is divided by ff[p].
void rope_formula(std::vector<float>& x, const std::vector<int32_t>& pos, int n_heads, int HS, int dims, double theta,
                  RopeLayout layout, const float* ff = nullptr) {
  for (size_t t = 0; t < pos.size(); t++)
    for (int h = 0; h < n_heads; h++) {
      float* xh = x.data() + (t * n_heads + h) * HS;
      for (int p = 0; p < dims / 2; p++) {
        const double a = pos[t] * std::exp(-(2.0 * p / dims) * std::log(theta)) / (ff ? ff[p] : 1.0);
        const int i0 = layout == RopeLayout::Interleaved ? 2 * p : p;
        const int i1 = layout == RopeLayout::Interleaved ? 2 * p + 1 : p + dims / 2;
        const double re = xh[i0], im = xh[i1];
        xh[i0] = (float)(re * std::cos(a) - im * std::sin(a));
        xh[i1] = (float)(re * std::sin(a) + im * std::cos(a));
      }
    }
}

void test_rope() {
  CpuBackend backend(nullptr);
  const std::vector<int32_t> pos{0, 1, 7, 1000, 100000};
  const int n_heads = 3;
  test::Rng rng(3);
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit})
    for (int HS : {8, 64})
      for (int dims : {HS, HS / 2})
        for (float theta : {10000.f, 500000.f}) {
          const std::vector<float> x = test::random_floats(rng, pos.size() * n_heads * HS);
          std::vector<float> want = x, ref = x, got = x;
          rope_formula(want, pos, n_heads, HS, dims, theta, layout);
          rope_forward_reference(ref.data(), pos.data(), (int)pos.size(), n_heads, HS, dims, theta, layout);
          backend.rope(got.data(), pos.data(), (int)pos.size(), n_heads, HS, dims, theta, layout);
          const std::string label = std::string("rope ") +
                                    (layout == RopeLayout::Interleaved ? "interleaved" : "half-split") +
                                    " HS=" + std::to_string(HS) + " dims=" + std::to_string(dims) +
                                    " theta=" + std::to_string((int)theta);
          test::compare((label + " reference").c_str(), ref.data(), want.data(), want.size(), 1e-5f, 1e-5f);
          test::compare((label + " CpuBackend").c_str(), got.data(), want.data(), want.size(), 1e-5f, 1e-5f);
        }
  // Per-pair frequency divisors (seeded in [1, 8], the range of Llama 3's factors).
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit})
    for (int dims : {16, 8}) {
      const int HS = 16;
      const std::vector<float> x = test::random_floats(rng, pos.size() * n_heads * HS);
      const std::vector<float> ff = test::random_floats(rng, (size_t)dims / 2, 1.f, 8.f);
      std::vector<float> want = x, ref = x, got = x;
      rope_formula(want, pos, n_heads, HS, dims, 500000., layout, ff.data());
      rope_forward_reference(ref.data(), pos.data(), (int)pos.size(), n_heads, HS, dims, 500000.f, layout, ff.data());
      backend.rope(got.data(), pos.data(), (int)pos.size(), n_heads, HS, dims, 500000.f, layout, ff.data());
      const std::string label = std::string("rope freq factors ") +
                                (layout == RopeLayout::Interleaved ? "interleaved" : "half-split") +
                                " dims=" + std::to_string(dims);
      test::compare((label + " reference").c_str(), ref.data(), want.data(), want.size(), 1e-5f, 1e-5f);
      test::compare((label + " CpuBackend").c_str(), got.data(), want.data(), want.size(), 1e-5f, 1e-5f);
    }
  std::vector<float> x(8);
  EXPECT_THROWS_CODE(backend.rope(x.data(), pos.data(), 1, 1, 8, 7, 10000.f, RopeLayout::Interleaved),
                     ErrorCode::InvalidArg);
  EXPECT_THROWS_CODE(rope_forward_reference(x.data(), pos.data(), 1, 1, 8, 10, 10000.f, RopeLayout::HalfSplit),
                     ErrorCode::InvalidArg);
}

void test_elementwise() {
  CpuBackend backend(nullptr);
  test::Rng rng(9);
  for (int C : {1, 7, 64, 2048}) {
    const int T = 3;
    const std::vector<float> x = test::random_floats(rng, (size_t)T * C, -4.f, 4.f), w = test::random_floats(rng, C);
    std::vector<float> ref((size_t)T * C), got(ref.size(), kNaN);
    rmsnorm_forward_reference(ref.data(), x.data(), w.data(), T, C, 1e-5f);
    backend.rmsnorm(got.data(), x.data(), w.data(), T, C, 1e-5f);
    test::compare(("rmsnorm C=" + std::to_string(C)).c_str(), got.data(), ref.data(), ref.size(), 1e-5f, 1e-5f);
  }
  const size_t n = 1003;
  const std::vector<float> gate = test::random_floats(rng, n, -8.f, 8.f), up = test::random_floats(rng, n, -2.f, 2.f);
  std::vector<float> ref(n), got(n, kNaN), sum = gate;
  swiglu_forward_reference(ref.data(), gate.data(), up.data(), (int64_t)n);
  backend.swiglu(got.data(), gate.data(), up.data(), (int64_t)n);
  test::compare("swiglu", got.data(), ref.data(), n, 1e-5f, 1e-5f);
  backend.add(sum.data(), up.data(), (int64_t)n);
  for (size_t i = 0; i < n; i++) ref[i] = gate[i] + up[i];
  test::compare("add", sum.data(), ref.data(), n, 0.f, 0.f);
}

void test_embed_and_memory() {
  CpuBackend backend(nullptr);
  test::Rng rng(4);
  const Weights table = make_weights(rng, DType::F16, 10, 12);
  const int32_t tokens[3] = {9, 0, 4};
  std::vector<float> out(36, kNaN), ref(36);
  backend.embed(out.data(), table.view, tokens, 3);
  for (int t = 0; t < 3; t++) row_to_f32(DType::F16, table.view.row(tokens[t]), ref.data() + 12 * t, 12);
  test::compare("embed F16", out.data(), ref.data(), out.size(), 0.f, 0.f);
  for (int32_t bad : {-1, 10})
    EXPECT_THROWS_CODE(backend.embed(out.data(), table.view, &bad, 1), ErrorCode::InvalidArg);

  for (size_t bytes : {(size_t)0, (size_t)1, (size_t)100, (size_t)1 << 20}) {
    void* p = backend.alloc(bytes);
    EXPECT(p != nullptr && (uintptr_t)p % 64 == 0);
    std::vector<uint8_t> src(bytes + 1, 7), back(bytes + 1, 0);
    backend.copy_to_device(p, src.data(), bytes);
    backend.copy_device(p, p, bytes);
    backend.copy_to_host(back.data(), p, bytes);
    EXPECT(std::memcmp(src.data(), back.data(), bytes) == 0);
    backend.free(p);
  }
  EXPECT_THROWS_CODE(backend.alloc(SIZE_MAX - 8), ErrorCode::OutOfMemory);
}

// ---- thread pool ----

void test_pool_basics(int threads) {
  ThreadPool pool(threads);
  EXPECT(pool.size() == threads);
  // Many tiny jobs back to back, as a decode step issues them.
  const int jobs = 20000;
  std::atomic<int64_t> sum{0};
  std::atomic<int> bad_index{0};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < jobs; i++)
    pool.run(4, [&](int task, int thread) {
      sum += task + 1;
      if (thread < 0 || thread >= threads) bad_index++;
    });
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / jobs;
  std::printf("thread pool (%d threads): %d jobs of 4 tasks, %.2f us per job\n", threads, jobs, us);
  EXPECT(sum.load() == (int64_t)jobs * 10);
  EXPECT(bad_index.load() == 0);

  // The first exception reaches the caller, whatever its type; the pool keeps working.
  EXPECT_THROWS_CODE(pool.run(64, [](int task, int) { if (task == 37) throw_error(ErrorCode::Internal, "task 37"); }),
                     ErrorCode::Internal);
  bool caught = false;
  try {
    pool.run(3, [](int task, int) { if (task == 2) throw std::runtime_error("plain"); });
  } catch (const std::runtime_error& e) {
    caught = std::string(e.what()) == "plain";
  }
  EXPECT(caught);
  std::atomic<int> after{0};
  pool.run(10, [&](int, int) { after++; });
  EXPECT(after.load() == 10);

  // A task may call back into its own pool: the nested job runs inline.
  std::atomic<int> nested{0};
  pool.run(4, [&](int, int) { pool.run(3, [&](int, int) { nested++; }); });
  EXPECT(nested.load() == 12);

  // Workers asleep (past their spin) wake for the next job.
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  std::atomic<int> woke{0};
  pool.run(8, [&](int, int) { woke++; });
  EXPECT(woke.load() == 8);
}

void test_parallel_for(int threads) {
  ThreadPool pool(threads);
  for (int64_t n : {0, 1, 5, 16, 17, 100, 1000, 12345})
    for (int64_t align : {1, 16, 64})
      for (bool serial : {false, true}) {
        std::vector<std::atomic<int>> hits((size_t)n);
        std::atomic<int> misaligned{0}, calls{0};
        pool.parallel_for(n, align, [&](int64_t b, int64_t e, int) {
          calls++;
          if (b % align != 0 || e > n || b >= e) misaligned++;
          for (int64_t i = b; i < e; i++) hits[(size_t)i]++;
        }, serial);
        bool once = true;
        for (auto& h : hits) once = once && h.load() == 1;
        EXPECT(once);
        EXPECT(misaligned.load() == 0);
        EXPECT(calls.load() <= std::max(1, threads));
        if (serial) EXPECT(calls.load() == (n > 0 ? 1 : 0));
      }
}

// Several threads share one pool: their jobs are serialised and each sees only its own tasks.
void test_pool_concurrent_callers() {
  ThreadPool pool(2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; c++)
    callers.emplace_back([&, c] {
      for (int i = 0; i < 500; i++) {
        std::atomic<int> sum{0};
        pool.run(8, [&](int task, int) { sum += task + c; });
        if (sum.load() != 28 + 8 * c) wrong++;
      }
    });
  for (auto& t : callers) t.join();
  EXPECT(wrong.load() == 0);
}

void test_thread_pool() {
  EXPECT(available_cpus() >= 1);
  for (int threads : {1, 2, 3}) {
    test_pool_basics(threads);
    test_parallel_for(threads);
  }
  test_pool_concurrent_callers();
  ThreadPool clamped(0);
  EXPECT(clamped.size() == 1);
}

}  // namespace

int main() {
  std::printf("kernel paths: active %s; tested:", kernel_path_name(active_kernel_path()));
  for (KernelPath p : fast_paths()) std::printf(" %s", kernel_path_name(p));
  std::printf(" (against reference)\n");
  try {
    test_thread_pool();
    ThreadPool pool(2);
    test_matmul(pool);
    test_conversion_exact();
    test_dot_row();
    test_matmul_row_independence(pool);
    test_q8_layouts(pool);
    test_float_panels(pool);
    test_amx(pool);
    test_attention(pool);
    test_attention_row_independence(pool);
    test_rope();
    test_elementwise();
    test_embed_and_memory();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    test::failures()++;
  }
  return test::finish("test_kernels");
}
