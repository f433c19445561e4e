// Each CUDA op against its CPU twin (CpuBackend) on seeded random inputs, with the tolerance stated at
// each check and the worst element printed; plus the property that makes speculative decoding on the
// GPU lossless: a row's matmul and attention results do not depend on the other rows of the batch
// (bit for bit). Skips (77) when the build has no CUDA backend or no GPU is present.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/gpu_backend.h"
#include "check.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"

using namespace chimera;
using test::Rng;

namespace {

struct DevBuf {
  Backend& be;
  void* p;
  size_t bytes;
  DevBuf(Backend& b, size_t n) : be(b), p(b.alloc(n)), bytes(n) {}
  ~DevBuf() { be.free(p); }
  float* f() const { return static_cast<float*>(p); }
  int32_t* i() const { return static_cast<int32_t*>(p); }
  uint8_t* u() const { return static_cast<uint8_t*>(p); }
};

template <typename T>
std::unique_ptr<DevBuf> upload(Backend& be, const std::vector<T>& v) {
  auto d = std::make_unique<DevBuf>(be, v.size() * sizeof(T) + 16);
  be.copy_to_device(d->p, v.data(), v.size() * sizeof(T));
  return d;
}

std::vector<float> download(Backend& be, const float* p, size_t n) {
  std::vector<float> v(n);
  be.copy_to_host(v.data(), p, n * sizeof(float));
  return v;
}

// A weight matrix in `dtype` holding the values of `f32` (rounded), with its F32 rounding for the CPU.
struct Matrix {
  DType dtype;
  std::vector<uint8_t> bytes;
  int64_t rows, cols;
  TensorView view() const { return TensorView{dtype, bytes.data(), rows, cols}; }
};

Matrix make_matrix(Rng& rng, DType dtype, int64_t rows, int64_t cols, float scale) {
  Matrix m{dtype, {}, rows, cols};
  const size_t n = (size_t)rows * cols;
  if (dtype == DType::F32) {
    std::vector<float> v = test::random_floats(rng, n, -scale, scale);
    m.bytes.resize(n * 4);
    std::memcpy(m.bytes.data(), v.data(), n * 4);
  } else if (dtype == DType::Q8_0) {
    const size_t blocks = n / 32;
    m.bytes.resize(blocks * 34);
    for (size_t b = 0; b < blocks; b++) {
      const uint16_t d = f32_to_fp16(scale / 127.f);
      std::memcpy(m.bytes.data() + b * 34, &d, 2);
      for (int j = 0; j < 32; j++) m.bytes[b * 34 + 2 + j] = (uint8_t)(int8_t)(rng.below(255) - 127);
    }
  } else {
    m.bytes.resize(n * 2);
    for (size_t i = 0; i < n; i++) {
      const float x = rng.uniform(-scale, scale);
      const uint16_t h = dtype == DType::F16 ? f32_to_fp16(x) : f32_to_bf16(x);
      std::memcpy(m.bytes.data() + i * 2, &h, 2);
    }
  }
  return m;
}

bool bitwise_equal(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

void test_embed(Backend& cpu, Backend& gpu, Rng& rng) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    const int V = 97, C = 160, T = 9;
    Matrix table = make_matrix(rng, dt, V, C, 1.f);
    std::vector<int32_t> tokens(T);
    for (int& t : tokens) t = rng.below(V);
    std::vector<float> ref((size_t)T * C);
    cpu.embed(ref.data(), table.view(), tokens.data(), T);
    auto dt_tokens = upload(gpu, tokens);
    DevBuf out(gpu, ref.size() * 4);
    gpu.embed(out.f(), table.view(), dt_tokens->i(), T);
    const std::string label = std::string("embed ") + dtype_name(dt);
    // Exact for F32/F16/BF16; Q8_0 becomes F16 on the device (2^-11 relative).
    test::compare(label.c_str(), download(gpu, out.f(), ref.size()).data(), ref.data(), ref.size(), 0,
                  dt == DType::Q8_0 ? 1e-3f : 0.f);
  }
}

void test_rmsnorm(Backend& cpu, Backend& gpu, Rng& rng) {
  for (int C : {64, 288, 2048}) {
    const int T = 5;
    std::vector<float> x = test::random_floats(rng, (size_t)T * C, -3, 3), w = test::random_floats(rng, C);
    std::vector<float> ref(x.size());
    cpu.rmsnorm(ref.data(), x.data(), w.data(), T, C, 1e-5f);
    auto dx = upload(gpu, x);
    DevBuf out(gpu, x.size() * 4);
    gpu.rmsnorm(out.f(), dx->f(), w.data(), T, C, 1e-5f);
    const std::string label = "rmsnorm C=" + std::to_string(C);
    test::compare(label.c_str(), download(gpu, out.f(), x.size()).data(), ref.data(), x.size(), 1e-5f, 1e-5f);
  }
}

void test_rope(Backend& cpu, Backend& gpu, Rng& rng) {
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit}) {
    const int T = 7, NH = 4, HS = 64;
    std::vector<float> x = test::random_floats(rng, (size_t)T * NH * HS);
    std::vector<int32_t> pos = {0, 1, 17, 500, 4095, 30000, 100000};
    std::vector<float> ref = x;
    cpu.rope(ref.data(), pos.data(), T, NH, HS, HS, 10000.f, layout);
    auto dx = upload(gpu, x);
    auto dpos = upload(gpu, pos);
    gpu.rope(dx->f(), dpos->i(), T, NH, HS, HS, 10000.f, layout);
    const char* label = layout == RopeLayout::Interleaved ? "rope interleaved" : "rope half-split";
    test::compare(label, download(gpu, dx->f(), x.size()).data(), ref.data(), x.size(), 1e-5f, 1e-5f);
    // Llama 3.x per-pair frequency divisors (a host weight vector, as the model passes them).
    const std::vector<float> ff = test::random_floats(rng, HS / 2, 1.f, 8.f);
    std::vector<float> ref_ff = x;
    cpu.rope(ref_ff.data(), pos.data(), T, NH, HS, HS, 500000.f, layout, ff.data());
    auto dx2 = upload(gpu, x);
    gpu.rope(dx2->f(), dpos->i(), T, NH, HS, HS, 500000.f, layout, ff.data());
    const std::string label_ff = std::string(label) + " freq factors";
    test::compare(label_ff.c_str(), download(gpu, dx2->f(), x.size()).data(), ref_ff.data(), x.size(), 1e-5f, 1e-5f);
  }
}

// qwen2's Q/K/V biases and qwen3's per-head Q/K norm (rmsnorm in place over T * NH rows of HS).
void test_arch_ops(Backend& cpu, Backend& gpu, Rng& rng) {
  const int T = 5, N = 96;
  std::vector<float> x = test::random_floats(rng, (size_t)T * N), bias = test::random_floats(rng, N);
  std::vector<float> ref = x;
  cpu.add_bias(ref.data(), bias.data(), T, N);
  auto dx = upload(gpu, x);
  gpu.add_bias(dx->f(), bias.data(), T, N);
  test::compare("add_bias", download(gpu, dx->f(), x.size()).data(), ref.data(), x.size(), 0.f, 0.f);
  const int NH = 6, HS = 16;  // T * NH rows of HS = T * N values
  std::vector<float> w = test::random_floats(rng, HS), ref_n = x;
  cpu.rmsnorm(ref_n.data(), ref_n.data(), w.data(), T * NH, HS, 1e-6f);
  auto dn = upload(gpu, x);
  gpu.rmsnorm(dn->f(), dn->f(), w.data(), T * NH, HS, 1e-6f);
  test::compare("per-head rmsnorm in place", download(gpu, dn->f(), x.size()).data(), ref_n.data(), x.size(), 1e-5f,
                1e-5f);
}

void test_matmul(Backend& cpu, Backend& gpu, Rng& rng) {
  struct Shape { int N, K; };
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    for (Shape s : {Shape{64, 128}, Shape{48, 2048}, Shape{37, 50}, Shape{1024, 288}}) {
      if (dt == DType::Q8_0 && s.K % 32) continue;
      Matrix W = make_matrix(rng, dt, s.N, s.K, 0.5f);
      const int Tmax = 70;
      std::vector<float> x = test::random_floats(rng, (size_t)Tmax * s.K);
      auto dx = upload(gpu, x);
      DevBuf out(gpu, (size_t)Tmax * s.N * 4);
      std::vector<float> row0_T1;
      for (int T : {1, 5, 26, 64, 70}) {
        std::vector<float> ref((size_t)T * s.N);
        cpu.matmul(ref.data(), x.data(), W.view(), T);
        gpu.matmul(out.f(), dx->f(), W.view(), T);
        std::vector<float> got = download(gpu, out.f(), ref.size());
        // Tensor-core paths round x to the weight type: error ~ eps_type * sqrt(K) * |x||w|.
        const bool half_x = (dt != DType::F32) && s.N % 16 == 0 && s.K % 16 == 0;
        const float eps = !half_x ? 2e-6f : (dt == DType::F16 ? 1e-3f : 8e-3f);
        const float atol = eps * std::sqrt((float)s.K) * 0.5f * 2.f;
        const std::string label = std::string("matmul ") + dtype_name(dt) + " N=" + std::to_string(s.N) +
                                  " K=" + std::to_string(s.K) + " T=" + std::to_string(T);
        test::compare(label.c_str(), got.data(), ref.data(), ref.size(), atol, 1e-3f);
        if (T == 1) row0_T1.assign(got.begin(), got.begin() + s.N);
        else EXPECT(bitwise_equal(got.data(), row0_T1.data(), s.N));  // row 0 does not depend on T
      }
    }
  }
}

// Q, K, V-like groups in one launch, and the residual form out += x W^T, against the CPU; a row of a
// group does not depend on T either.
void test_matmul_group(Backend& cpu, Backend& gpu, Rng& rng) {
  for (DType dt : {DType::BF16, DType::F16, DType::F32}) {
    const int K = 512, Tmax = 40;
    std::vector<Matrix> Ms;
    for (int N : {1024, 128, 128}) Ms.push_back(make_matrix(rng, dt, N, K, 0.5f));
    std::vector<float> x = test::random_floats(rng, (size_t)Tmax * K);
    auto dx = upload(gpu, x);
    std::vector<std::unique_ptr<DevBuf>> outs;
    for (const Matrix& m : Ms) outs.push_back(std::make_unique<DevBuf>(gpu, (size_t)Tmax * m.rows * 4));
    std::vector<TensorView> views;
    for (const Matrix& m : Ms) views.push_back(m.view());
    const TensorView* Ws[3] = {&views[0], &views[1], &views[2]};
    float* douts[3] = {outs[0]->f(), outs[1]->f(), outs[2]->f()};
    std::vector<float> row0;
    for (int T : {1, 26, 40}) {
      gpu.matmul_group(douts, Ws, 3, dx->f(), T);
      for (int i = 0; i < 3; i++) {
        std::vector<float> ref((size_t)T * Ms[i].rows);
        cpu.matmul(ref.data(), x.data(), views[i], T);
        std::vector<float> got = download(gpu, douts[i], ref.size());
        const float eps = dt == DType::F32 ? 2e-6f : (dt == DType::F16 ? 1e-3f : 8e-3f);
        const std::string label = std::string("matmul_group ") + dtype_name(dt) + " #" + std::to_string(i) +
                                  " T=" + std::to_string(T);
        test::compare(label.c_str(), got.data(), ref.data(), ref.size(), eps * std::sqrt((float)K), 1e-3f);
        if (i == 0) {
          if (T == 1) row0.assign(got.begin(), got.begin() + Ms[0].rows);
          else EXPECT(bitwise_equal(got.data(), row0.data(), Ms[0].rows));
        }
      }
    }
    // out += x W^T
    const int T = 9;
    std::vector<float> base = test::random_floats(rng, (size_t)T * Ms[1].rows);
    std::vector<float> ref = base, prod((size_t)T * Ms[1].rows);
    cpu.matmul(prod.data(), x.data(), views[1], T);
    cpu.add(ref.data(), prod.data(), (int64_t)prod.size());
    auto dout = upload(gpu, base);
    DevBuf scratch(gpu, prod.size() * 4);
    gpu.matmul_add(dout->f(), dx->f(), views[1], T, scratch.f());
    const float eps = dt == DType::F32 ? 2e-6f : (dt == DType::F16 ? 1e-3f : 8e-3f);
    const std::string label = std::string("matmul_add ") + dtype_name(dt);
    test::compare(label.c_str(), download(gpu, dout->f(), ref.size()).data(), ref.data(), ref.size(),
                  eps * std::sqrt((float)K), 1e-3f);
  }
}

void test_attention(Backend& cpu, Backend& gpu, Rng& rng) {
  const int NH = 8, NKV = 2, HS = 64, KVD = NKV * HS;
  for (int n_past : {0, 37, 300, 700}) {
    for (int T : {1, 7, 26}) {
      for (bool masked : {false, true}) {
        const int S = n_past + T;
        std::vector<float> q = test::random_floats(rng, (size_t)T * NH * HS, -2, 2);
        std::vector<float> k = test::random_floats(rng, (size_t)S * KVD), v = test::random_floats(rng, (size_t)S * KVD);
        std::vector<uint8_t> mask;
        if (masked) {  // prefix visible, a random set of earlier tree nodes plus self, one row sees nothing
          mask.assign((size_t)T * S, 0);
          for (int t = 0; t < T; t++) {
            for (int j = 0; j < n_past; j++) mask[(size_t)t * S + j] = rng.below(10) != 0;
            for (int j = 0; j < t; j++) mask[(size_t)t * S + n_past + j] = rng.below(2);
            mask[(size_t)t * S + n_past + t] = 1;
          }
          if (T > 3) std::memset(mask.data() + (size_t)2 * S, 0, S);
        }
        std::vector<float> ref((size_t)T * NH * HS);
        cpu.attention(ref.data(), q.data(), k.data(), v.data(), masked ? mask.data() : nullptr, T, n_past, NH, NKV, HS);
        auto dq = upload(gpu, q), dk = upload(gpu, k), dv = upload(gpu, v);
        std::unique_ptr<DevBuf> dm = masked ? upload(gpu, mask) : nullptr;
        DevBuf out(gpu, ref.size() * 4);
        gpu.attention(out.f(), dq->f(), dk->f(), dv->f(), masked ? dm->u() : nullptr, T, n_past, NH, NKV, HS);
        const std::string label = std::string("attention ") + (masked ? "masked" : "causal") +
                                  " n_past=" + std::to_string(n_past) + " T=" + std::to_string(T);
        test::compare(label.c_str(), download(gpu, out.f(), ref.size()).data(), ref.data(), ref.size(), 2e-5f, 1e-4f);
      }
    }
  }
  // A tree row equals plain decoding bit for bit: the row at depth d sees the prefix and its ancestors,
  // which hold the same K/V as the consecutive slots of a plain decode at the same position.
  const int n_past = 333, T = 6;
  const std::vector<int> parent = {-1, 0, 0, 1, 3, 2};  // node 4 = root -> 1 -> 3 -> 4 (depth 3)
  std::vector<float> k = test::random_floats(rng, (size_t)(n_past + T) * KVD);
  std::vector<float> v = test::random_floats(rng, (size_t)(n_past + T) * KVD);
  std::vector<float> q = test::random_floats(rng, (size_t)T * NH * HS, -2, 2);
  std::vector<uint8_t> mask((size_t)T * (n_past + T), 0);
  for (int t = 0; t < T; t++) {
    std::memset(mask.data() + (size_t)t * (n_past + T), 1, n_past);
    for (int a = t; a >= 0; a = parent[a]) mask[(size_t)t * (n_past + T) + n_past + a] = 1;
  }
  auto dq = upload(gpu, q), dk = upload(gpu, k), dv = upload(gpu, v), dm = upload(gpu, mask);
  DevBuf out(gpu, q.size() * 4);
  gpu.attention(out.f(), dq->f(), dk->f(), dv->f(), dm->u(), T, n_past, NH, NKV, HS);
  std::vector<float> tree = download(gpu, out.f(), q.size());
  // Plain: the path root, 1, 3, 4 in consecutive slots, query of node 4 at the last one.
  const std::vector<int> path = {0, 1, 3, 4};
  std::vector<float> k2(k.begin(), k.begin() + (size_t)n_past * KVD), v2(v.begin(), v.begin() + (size_t)n_past * KVD);
  for (int node : path) {
    k2.insert(k2.end(), k.begin() + (size_t)(n_past + node) * KVD, k.begin() + (size_t)(n_past + node + 1) * KVD);
    v2.insert(v2.end(), v.begin() + (size_t)(n_past + node) * KVD, v.begin() + (size_t)(n_past + node + 1) * KVD);
  }
  std::vector<float> q4(q.begin() + (size_t)4 * NH * HS, q.begin() + (size_t)5 * NH * HS);
  auto dq4 = upload(gpu, q4), dk2 = upload(gpu, k2), dv2 = upload(gpu, v2);
  DevBuf out2(gpu, q4.size() * 4);
  gpu.attention(out2.f(), dq4->f(), dk2->f(), dv2->f(), nullptr, 1, n_past + 3, NH, NKV, HS);
  std::vector<float> plain = download(gpu, out2.f(), q4.size());
  const bool same = bitwise_equal(plain.data(), tree.data() + (size_t)4 * NH * HS, q4.size());
  std::printf("attention tree row == plain decode row, bit for bit: %s\n", same ? "ok" : "FAIL");
  EXPECT(same);
}

void test_elementwise(Backend& cpu, Backend& gpu, Rng& rng) {
  const int64_t n = 5000;
  std::vector<float> a = test::random_floats(rng, n, -6, 6), b = test::random_floats(rng, n, -6, 6),
                     c = test::random_floats(rng, n);
  auto da = upload(gpu, a), db = upload(gpu, b), dc = upload(gpu, c);
  DevBuf out(gpu, n * 4);
  std::vector<float> ref(n);
  cpu.swiglu(ref.data(), a.data(), b.data(), n);
  gpu.swiglu(out.f(), da->f(), db->f(), n);
  test::compare("swiglu", download(gpu, out.f(), n).data(), ref.data(), n, 1e-6f, 1e-5f);
  ref = a;
  cpu.add(ref.data(), b.data(), n);
  gpu.add(da->f(), db->f(), n);
  test::compare("add", download(gpu, da->f(), n).data(), ref.data(), n, 0.f, 0.f);
  std::vector<float> x = download(gpu, da->f(), n);
  cpu.bias_silu_residual(ref.data(), x.data(), b.data(), c.data(), n);
  gpu.bias_silu_residual(out.f(), da->f(), db->f(), c.data(), n);
  test::compare("bias_silu_residual", download(gpu, out.f(), n).data(), ref.data(), n, 1e-6f, 1e-5f);
}

void test_rows(Backend& cpu, Backend& gpu, Rng& rng) {
  const int C = 96, S = 40;
  std::vector<float> src = test::random_floats(rng, (size_t)S * C);
  std::vector<int32_t> rows = {5, 0, 39, 5, 17};
  std::vector<float> ref(rows.size() * C);
  cpu.gather_rows(ref.data(), src.data(), rows.data(), (int)rows.size(), C);
  auto ds = upload(gpu, src), dr = upload(gpu, rows);
  DevBuf out(gpu, ref.size() * 4);
  gpu.gather_rows(out.f(), ds->f(), dr->i(), (int)rows.size(), C);
  test::compare("gather_rows", download(gpu, out.f(), ref.size()).data(), ref.data(), ref.size(), 0.f, 0.f);
  // compact: three blocks of S rows; keep rows 20, 22, 23, 30 at 20.. (22 -> 21 while 23 -> 22 reads it).
  const int blocks = 3;
  std::vector<float> base = test::random_floats(rng, (size_t)blocks * S * C);
  std::vector<int32_t> keep = {20, 22, 23, 30};
  std::vector<float> cref = base;
  cpu.compact_rows(cref.data(), (int64_t)S * C, blocks, C, keep.data(), 20, (int)keep.size());
  auto db = upload(gpu, base);
  gpu.compact_rows(db->f(), (int64_t)S * C, blocks, C, keep.data(), 20, (int)keep.size());
  test::compare("compact_rows", download(gpu, db->f(), base.size()).data(), cref.data(), base.size(), 0.f, 0.f);
}

void test_argmax(Backend& cpu, Backend& gpu, Rng& rng) {
  const int R = 7, V = 32000;
  std::vector<float> x = test::random_floats(rng, (size_t)R * V, -5, 5);
  x[(size_t)2 * V + 100] = 9.f;  // a tie: the lower index wins
  x[(size_t)2 * V + 31000] = 9.f;
  for (int i = 0; i < V; i++) x[(size_t)5 * V + i] = -1.f;  // all equal: index 0
  std::vector<int32_t> want(R), got(R);
  cpu.argmax_rows(want.data(), x.data(), R, V);
  auto dx = upload(gpu, x);
  DevBuf out(gpu, R * sizeof(int32_t));
  gpu.argmax_rows(out.i(), dx->f(), R, V);
  gpu.copy_to_host(got.data(), out.p, R * sizeof(int32_t));
  std::printf("argmax_rows: %s\n", got == want ? "ok (exact)" : "FAIL");
  EXPECT(got == want);
  EXPECT(want[2] == 100 && want[5] == 0);
}

// Top-k candidates after the penalty (device sampling): ids and values exactly the CPU twin's, with
// ties (values on a coarse grid), duplicated and out-of-range ids in the windows, the bitmap path
// (V = 32000) and the list path (V above 262144).
void test_top_k(Backend& cpu, Backend& gpu, Rng& rng) {
  bool all = true;
  for (int V : {1000, 32000, 300000}) {
    const int R = 5, W = 12;
    std::vector<float> x = test::random_floats(rng, (size_t)R * V, -4, 4);
    for (float& v : x) v = std::round(v * 8) / 8;
    std::vector<int32_t> recent((size_t)R * W);
    for (auto& id : recent) id = rng.below(V + 10) - 5;  // some outside 0..V-1
    recent[3] = recent[4];                             // a duplicate: penalised once
    for (int k : {1, 7, 40, 128})
      for (float penalty : {1.0f, 1.7f}) {
        std::vector<int32_t> want_i((size_t)R * k), got_i((size_t)R * k);
        std::vector<float> want_v((size_t)R * k), got_v((size_t)R * k);
        cpu.top_k_rows(want_i.data(), want_v.data(), x.data(), R, V, k, penalty, recent.data(), W);
        auto dx = upload(gpu, x);
        DevBuf dr(gpu, recent.size() * sizeof(int32_t)), di(gpu, want_i.size() * sizeof(int32_t)),
            dv(gpu, want_v.size() * sizeof(float));
        gpu.copy_to_device(dr.p, recent.data(), recent.size() * sizeof(int32_t));
        gpu.top_k_rows(di.i(), dv.f(), dx->f(), R, V, k, penalty, dr.i(), W);
        gpu.copy_to_host(got_i.data(), di.p, got_i.size() * sizeof(int32_t));
        gpu.copy_to_host(got_v.data(), dv.p, got_v.size() * sizeof(float));
        const bool ok = got_i == want_i && got_v == want_v;
        if (!ok) std::printf("top_k_rows V=%d k=%d penalty=%.1f: FAIL\n", V, k, penalty);
        all = all && ok;
      }
  }
  std::printf("top_k_rows: %s\n", all ? "ok (exact, 24 cases)" : "FAIL");
  EXPECT(all);
}

}  // namespace

int main() {
  std::string why;
  if (!gpu_available(0, &why)) {
    std::printf("test_cuda_ops: skipped (%s)\n", why.c_str());
    return test::kSkip;
  }
  // The CPU twins on the portable path: its Q8_0 matmul keeps x in F32 (the AVX2 path rounds x to Q8
  // blocks, a different approximation from the GPU's), so every tolerance above is against F32 x.
#ifdef _WIN32
  if (!std::getenv("CHIMERA_CPU_KERNELS")) _putenv_s("CHIMERA_CPU_KERNELS", "portable");
#else
  setenv("CHIMERA_CPU_KERNELS", "portable", 0);
#endif
  try {
    ThreadPool pool(2);
    CpuBackend cpu(&pool);
    std::unique_ptr<Backend> gpu = create_gpu_backend(0);
    Rng rng(20261126);
    test_embed(cpu, *gpu, rng);
    test_rmsnorm(cpu, *gpu, rng);
    test_rope(cpu, *gpu, rng);
    test_arch_ops(cpu, *gpu, rng);
    test_matmul(cpu, *gpu, rng);
    test_matmul_group(cpu, *gpu, rng);
    test_attention(cpu, *gpu, rng);
    test_elementwise(cpu, *gpu, rng);
    test_rows(cpu, *gpu, rng);
    test_argmax(cpu, *gpu, rng);
    test_top_k(cpu, *gpu, rng);
  } catch (const Error& e) {
    std::fprintf(stderr, "test_cuda_ops: %s: %s\n", error_code_name(e.code()), e.what());
    return 1;
  }
  return test::finish("test_cuda_ops");
}
