// The CPU backend: the Backend table (backend/backend.h) over host memory. Matmul and attention run
// the fast kernels of the active kernel path, split over the thread pool when the work pays for the hand-off;
// the element-wise ops are serial loops (a tiny share of a forward pass). With the reference path
// active, every op runs its *_reference function.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/error.h"
#include "common/host_memory.h"
#include "common/thread_pool.h"
#include "cpu/cpu_backend.h"
#include "cpu/float_panels.h"
#include "cpu/kernels_amx.h"
#include "cpu/kernels_cpu.h"
#include "cpu/q8_0x16.h"
#include "cpu/q8_0x4.h"
#include "sampling/sampler.h"

namespace chimera {

namespace {

// Below this many multiply-adds an op runs on the calling thread: handing it to the pool costs a few
// microseconds, more than a tiny model's whole matmul.
constexpr double kParallelMatmulWork = 32.0 * 1024;
constexpr double kParallelAttentionWork = 32.0 * 1024;
// Row ranges of a split matmul start on a multiple of this (keeps whole register tiles per thread).
constexpr int64_t kMatmulRowAlign = 16;
constexpr int64_t kParallelSwigluElems = 4096;

}  // namespace

CpuBackend::CpuBackend(ThreadPool* pool) : pool_(pool) {}

void* CpuBackend::alloc(size_t bytes) {
  void* p = host_alloc(bytes);
  if (!p) throw_error(ErrorCode::OutOfMemory, "cannot allocate ", bytes, " bytes");
  return p;
}

void CpuBackend::free(void* p) { host_free(p); }

void CpuBackend::copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::copy_device(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);  // cache compaction may move overlapping ranges
}

void CpuBackend::embed(float* out, const TensorView& table, const int32_t* tokens, int T) {
  const int64_t C = table.cols;
  for (int t = 0; t < T; t++) {
    const int32_t id = tokens[t];
    CHIMERA_CHECK(id >= 0 && id < table.rows, ErrorCode::InvalidArg, "token id ", id,
                  " is outside the vocabulary of ", table.rows);
    row_to_f32(table.dtype, table.row(id), out + t * C, (size_t)C);
  }
}

void CpuBackend::rmsnorm(float* out, const float* x, const float* w, int T, int C, float eps) {
  if (active_kernel_path() == KernelPath::Reference) return rmsnorm_forward_reference(out, x, w, T, C, eps);
  for (int t = 0; t < T; t++) {
    const float* xr = x + (int64_t)t * C;
    float* o = out + (int64_t)t * C;
    float lanes[8] = {};  // independent partial sums so the loop vectorises
    int c = 0;
    for (; c + 8 <= C; c += 8)
      for (int l = 0; l < 8; l++) lanes[l] += xr[c + l] * xr[c + l];
    double ss = 0;
    for (float s : lanes) ss += s;
    for (; c < C; c++) ss += (double)xr[c] * xr[c];
    const float inv = (float)(1.0 / std::sqrt(ss / C + (double)eps));
    for (c = 0; c < C; c++) o[c] = xr[c] * inv * w[c];
  }
}

void CpuBackend::matmul(float* out, const float* x, const TensorView& W, int T) {
  float* outs[1] = {out};
  const TensorView* Ws[1] = {&W};
  matmul_group(outs, Ws, 1, x, T);
}

// Output rows [n0, n1) of the part's matrix, on any thread: the plain loops, or the matrix's copy in a
// faster layout (repacked at load), with x in the form that kernel takes.
void CpuBackend::MatmulPart::run(int64_t n0, int64_t n1) const {
  switch (layout) {
    case Layout::Amx: return matmul_amx_rows(out, xb, packed, W->rows, W->cols, T, n0, n1);
    case Layout::Q8x16: return matmul_q8_0x16_rows(out, x, *xq, packed, W->rows, W->cols, T, n0, n1);
    case Layout::Q8x4: return matmul_q8_0x4_rows(out, x, *xq, packed, W->rows, W->cols, T, n0, n1);
    case Layout::FloatPanels: return matmul_float_panels_rows(W->dtype, out, x, packed, W->rows, W->cols, T, n0, n1);
    case Layout::None: return matmul_rows(path, out, x, *W, T, n0, n1, xq);
  }
}

// The matrices of a group (Q, K, V; gate, up) in one pool job: their rows are split over the threads as
// one range, so a decode step pays one dispatch instead of one per matrix and the small K and V
// matrices do not leave a thread idle. Each row is computed as a lone matmul computes it.
void CpuBackend::matmul_group(float* const* outs, const TensorView* const* Ws, int count, const float* x, int T) {
  CHIMERA_CHECK(count >= 1 && count <= 3, ErrorCode::Internal, "matmul_group of ", count, " matrices");
  for (int i = 0; i < count; i++)
    CHIMERA_CHECK(Ws[i]->cols % dtype_block_elems(Ws[i]->dtype) == 0, ErrorCode::Tensor, dtype_name(Ws[i]->dtype),
                  " matrix with ", Ws[i]->cols, " columns (not a multiple of ", dtype_block_elems(Ws[i]->dtype), ")");
  if (T <= 0) return;
  const KernelPath path = active_kernel_path();
  if (path == KernelPath::Reference) {
    for (int i = 0; i < count; i++)
      if (Ws[i]->rows > 0) matmul_forward_reference(outs[i], x, *Ws[i], T);
    return;
  }
  // x once per form a matrix takes it (Q8 blocks, Q8_K, bf16 for AMX): the quantisers keep their
  // buffers per form, so the group's matrices of one form share one copy.
  Q8Activations xq[3];
  const uint16_t* xb = nullptr;
  thread_local std::vector<uint16_t> xb_rows;
  MatmulPart parts[3];
  int64_t total = 0;
  double work = 0;
  for (int i = 0; i < count; i++) {
    const TensorView& W = *Ws[i];
    MatmulPart& part = parts[i];
    part = MatmulPart{Layout::None, path, outs[i], x, &W, T, nullptr, nullptr, nullptr};
    if (matmul_quantises_x(path, W)) {
      for (int j = 0; j < i && !part.xq; j++)
        if (parts[j].xq && dtype_block_elems(Ws[j]->dtype) == dtype_block_elems(W.dtype)) part.xq = parts[j].xq;
      if (!part.xq) {
        xq[i] = quantize_activations_for(W, x, T);
        part.xq = &xq[i];
      }
    }
    const auto packed = repacked_.empty() ? repacked_.end() : repacked_.find(W.data);
    if (packed != repacked_.end() &&
        (packed->second.layout == Layout::Amx || packed->second.layout == Layout::FloatPanels || part.xq)) {
      part.layout = packed->second.layout;
      part.packed = packed->second.data.get();
      if (part.layout == Layout::Amx && !xb) {
        round_rows_bf16(x, T, W.cols, xb_rows);
        xb = xb_rows.data();
      }
      part.xb = xb;
    }
    total += W.rows;
    work += (double)T * (double)W.rows * (double)W.cols;
  }
  if (total <= 0) return;
  if (!pool_ || pool_->size() == 1 || work < kParallelMatmulWork) {
    for (int i = 0; i < count; i++)
      if (Ws[i]->rows > 0) parts[i].run(0, Ws[i]->rows);
    return;
  }
  pool_->parallel_for(total, kMatmulRowAlign, [&](int64_t a, int64_t b, int) {
    int64_t off = 0;
    for (int i = 0; i < count; i++) {
      const int64_t lo = std::max(a, off), hi = std::min(b, off + Ws[i]->rows);
      if (lo < hi) parts[i].run(lo - off, hi - off);
      off += Ws[i]->rows;
    }
  });
}

std::vector<std::pair<const void*, size_t>> CpuBackend::repacked_sources() const {
  std::vector<std::pair<const void*, size_t>> out;
  for (const auto& [data, r] : repacked_) out.emplace_back(data, r.source_bytes);
  return out;
}

size_t CpuBackend::prepare_weights(const ModelWeights& w) {
  if (!uses_avx2_loops(active_kernel_path())) return repacked_bytes_;
  const char* repack_env = std::getenv("CHIMERA_CPU_REPACK");
  const char* amx_env = std::getenv("CHIMERA_CPU_AMX");
  const std::string amx_mode = amx_env ? amx_env : "";
  const bool repack = !(repack_env && std::strcmp(repack_env, "0") == 0);
  const bool amx = amx_mode != "0" && amx_self_check();
  const bool amx_all = amx_mode == "all";
  const bool x16 = active_kernel_path() == KernelPath::Avx512 && q8_0x16_supported();
  const bool panels = repack && active_kernel_path() == KernelPath::Avx512 && float_panels_supported();
  // Every copy of this call lives in one buffer (one mapping from the OS, returned whole when the
  // backend goes): a model of many small matrices then leaves no fragments in the heap when disposed.
  struct Copy {
    const TensorView* W;
    Layout layout;
    size_t bytes, offset;
  };
  std::vector<Copy> copies;
  size_t total = 0;
  auto plan = [&](const TensorView& W) {
    if (W.rows == 0 || repacked_.count(W.data)) return;
    for (const Copy& c : copies)
      if (c.W->data == W.data) return;
    const bool to_q8 = repack && W.dtype == DType::Q8_0;
    const bool to_amx = amx && (W.dtype == DType::BF16 || (amx_all && !dtype_is_quantized(W.dtype)));
    const bool to_panels = !to_amx && panels && float_panels_dtype(W.dtype);
    if (!to_q8 && !to_amx && !to_panels) return;
    const size_t bytes = to_amx      ? amx_panels_bytes(W.rows, W.cols)
                         : to_panels ? float_panels_bytes(W.dtype, W.rows, W.cols)
                                     : W.bytes();
    const Layout layout = to_amx ? Layout::Amx : to_panels ? Layout::FloatPanels : x16 ? Layout::Q8x16 : Layout::Q8x4;
    copies.push_back({&W, layout, bytes, total});
    total += (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  };
  for (const LayerWeights& l : w.layers)
    for (const TensorView* W : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) plan(*W);
  plan(w.output);  // when tied, the embedding lookups still read the plain rows
  if (copies.empty()) return repacked_bytes_;
  std::shared_ptr<uint8_t> buffer(static_cast<uint8_t*>(alloc(total)), [this](uint8_t* p) { free(p); });
  host_prefer_huge_pages(buffer.get(), total);
  for (const Copy& c : copies) {
    const TensorView& W = *c.W;
    uint8_t* dst = buffer.get() + c.offset;
    if (c.layout == Layout::Amx) repack_amx_panels(W, dst);
    else if (c.layout == Layout::FloatPanels && pool_)  // rows split over the pool: 2 GB take ~1 s alone
      pool_->parallel_for(W.rows, kMatmulRowAlign, [&](int64_t a, int64_t b, int) { repack_float_panels(W, dst, a, b); });
    else if (c.layout == Layout::FloatPanels) repack_float_panels(W, dst, 0, W.rows);
    else if (c.layout == Layout::Q8x16) repack_q8_0x16(W, dst);
    else repack_q8_0x4(W, dst);
    repacked_.emplace(W.data, Repacked{std::shared_ptr<uint8_t>(buffer, dst), c.layout, W.bytes()});
    repacked_bytes_ += c.bytes;
    uses_amx_ = uses_amx_ || c.layout == Layout::Amx;
  }
  return repacked_bytes_;
}

// Rotates the first rope_dims of every head by +angle (direction 1: the forward op) or -angle
// (direction -1: its backward, the transposed rotation).
void rope_rotate_cpu(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                     RopeLayout layout, int direction, const float* freq_factors) {
  CHIMERA_CHECK(rope_dims >= 0 && rope_dims <= HS && rope_dims % 2 == 0, ErrorCode::InvalidArg,
                "rope_dims ", rope_dims, " must be even and at most the head size ", HS);
  const int half = rope_dims / 2;
  std::vector<float> cs((size_t)half), sn((size_t)half);
  std::vector<double> freq((size_t)half);  // once per call, not per row
  for (int i = 0; i < half; i++)
    freq[i] = std::pow((double)theta, -2.0 * i / rope_dims) / (freq_factors ? (double)freq_factors[i] : 1.0);
  const bool interleaved = layout == RopeLayout::Interleaved;
  for (int t = 0; t < T; t++) {
    // Angles in double: pos * freq reaches 1e5 radians, where float would lose the phase.
    for (int i = 0; i < half; i++) {
      const double angle = (double)pos[t] * freq[i];
      cs[i] = (float)std::cos(angle);
      sn[i] = (float)(direction * std::sin(angle));
    }
    for (int h = 0; h < n_heads; h++) {
      float* xh = x + ((int64_t)t * n_heads + h) * HS;
      for (int i = 0; i < half; i++) {
        const int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
        const float x0 = xh[i0], x1 = xh[i1];
        xh[i0] = x0 * cs[i] - x1 * sn[i];
        xh[i1] = x0 * sn[i] + x1 * cs[i];
      }
    }
  }
}

void CpuBackend::rope(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                      RopeLayout layout, const float* freq_factors) {
  if (active_kernel_path() == KernelPath::Reference)
    return rope_forward_reference(x, pos, T, n_heads, HS, rope_dims, theta, layout, freq_factors);
  rope_rotate_cpu(x, pos, T, n_heads, HS, rope_dims, theta, layout, 1, freq_factors);
}

void CpuBackend::add_bias(float* x, const float* bias, int T, int N) {
  for (int t = 0; t < T; t++) {
    float* row = x + (int64_t)t * N;
    for (int n = 0; n < N; n++) row[n] += bias[n];
  }
}

void CpuBackend::attention(float* out, const float* q, const float* k_cache, const float* v_cache, const uint8_t* mask,
                           int T, int n_past, int NH, int NKV, int HS, const DeviceSlots*) {
  CHIMERA_CHECK(NH > 0 && NKV > 0 && NH % NKV == 0 && HS > 0 && T >= 0 && n_past >= 0, ErrorCode::InvalidArg,
                "bad attention shape NH=", NH, " NKV=", NKV, " HS=", HS, " T=", T, " n_past=", n_past);
  if (T == 0) return;
  const KernelPath path = active_kernel_path();
  if (path == KernelPath::Reference)
    return attention_forward_reference(out, q, k_cache, v_cache, mask, T, n_past, NH, NKV, HS);
  const double work = (double)T * NH * (n_past + T) * HS;
  const int threads = pool_ ? pool_->size() : 1;
  if (threads == 1 || work < kParallelAttentionWork)
    return attention_rows(path, out, q, k_cache, v_cache, mask, T, n_past, NH, NKV, HS, 0, T, 0, NH);
  // Tasks are (query row, head chunk); chunks follow KV-group boundaries when there are enough groups,
  // so a chunk reads each K/V row once for all its query heads. Splitting heads serves decode (T = 1).
  const int G = NH / NKV;
  int chunks = std::min(NH, threads);
  int per = (NH + chunks - 1) / chunks;
  if (NKV >= chunks) per = (per + G - 1) / G * G;
  chunks = (NH + per - 1) / per;
  pool_->run(T * chunks, [&](int task, int) {
    const int t = task / chunks, h0 = (task % chunks) * per;
    attention_rows(path, out, q, k_cache, v_cache, mask, T, n_past, NH, NKV, HS, t, t + 1, h0,
                   std::min(NH, h0 + per));
  });
}

void CpuBackend::attention_sequences(const AttentionSequence* seqs, int n, int NH, int NKV, int HS) {
  const KernelPath path = active_kernel_path();
  const int threads = pool_ ? pool_->size() : 1;
  if (path == KernelPath::Reference || threads == 1 || n <= 1) return Backend::attention_sequences(seqs, n, NH, NKV, HS);
  // One task per (sequence, query row): every row computed exactly as attention() computes it.
  CHIMERA_CHECK(NH > 0 && NKV > 0 && NH % NKV == 0 && HS > 0, ErrorCode::InvalidArg, "bad attention shape NH=", NH,
                " NKV=", NKV, " HS=", HS);
  thread_local std::vector<std::pair<int, int>> tasks;
  tasks.clear();
  for (int i = 0; i < n; i++) {
    CHIMERA_CHECK(seqs[i].T >= 0 && seqs[i].n_past >= 0, ErrorCode::InvalidArg, "bad attention rows T=", seqs[i].T,
                  " n_past=", seqs[i].n_past);
    for (int t = 0; t < seqs[i].T; t++) tasks.emplace_back(i, t);
  }
  const std::vector<std::pair<int, int>>& list = tasks;
  pool_->run((int)list.size(), [&](int task, int) {
    const AttentionSequence& s = seqs[list[(size_t)task].first];
    const int t = list[(size_t)task].second;
    attention_rows(path, s.out, s.q, s.k_cache, s.v_cache, s.mask, s.T, s.n_past, NH, NKV, HS, t, t + 1, 0, NH);
  });
}

void CpuBackend::swiglu(float* out, const float* gate, const float* up, int64_t n) {
  if (active_kernel_path() == KernelPath::Reference) return swiglu_forward_reference(out, gate, up, n);
  auto part = [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) out[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
  };
  // A decode step's 5632 exponentials take as long as a pool dispatch several times over: split them.
  if (pool_ && pool_->size() > 1 && n >= kParallelSwigluElems) return pool_->parallel_for(n, 64, part);
  part(0, n, 0);
}

void CpuBackend::add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

void CpuBackend::bias_silu_residual(float* out, const float* x, const float* r, const float* bias, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float z = r[i] + bias[i];
    out[i] = x[i] + z / (1.0f + std::exp(-z));
  }
}

void CpuBackend::store_rows(float* base, const float* src, int T, int row_floats, int at, const DeviceSlots*) {
  if (T > 0) std::memmove(base + (int64_t)at * row_floats, src, sizeof(float) * T * row_floats);
}

void CpuBackend::argmax_rows(int32_t* out, const float* x, int R, int V) {
  for (int r = 0; r < R; r++) out[r] = argmax(x + (int64_t)r * V, V);  // the sampler's greedy pick
}

void CpuBackend::top_k_rows(int32_t* ids, float* vals, const float* x, int R, int V, int k, float penalty,
                            const int32_t* recent, int n_recent) {
  CHIMERA_CHECK(k >= 1 && k <= V && n_recent >= 0, ErrorCode::InvalidArg, "top_k_rows: k = ", k, " of ", V,
                ", ", n_recent, " recent ids");
  thread_local std::vector<float> scratch;
  thread_local std::vector<int32_t> order;
  for (int r = 0; r < R; r++)
    top_k_candidates(x + (int64_t)r * V, V, k, penalty, recent ? recent + (int64_t)r * n_recent : nullptr,
                     recent ? n_recent : 0, ids + (int64_t)r * k, vals + (int64_t)r * k, scratch, order);
}

void CpuBackend::gather_rows(float* dst, const float* src, const int32_t* rows, int R, int C) {
  for (int r = 0; r < R; r++) std::memcpy(dst + (int64_t)r * C, src + (int64_t)rows[r] * C, sizeof(float) * C);
}

void CpuBackend::compact_rows(float* base, int64_t block_stride, int blocks, int row_floats, const int32_t* src,
                              int dst_start, int count) {
  // Ascending order is safe: the row written (dst_start + i) is never a source of a later row.
  for (int b = 0; b < blocks; b++)
    for (int i = 0; i < count; i++)
      if (src[i] != dst_start + i)
        std::memcpy(base + b * block_stride + (int64_t)(dst_start + i) * row_floats,
                    base + b * block_stride + (int64_t)src[i] * row_floats, sizeof(float) * row_floats);
}

}  // namespace chimera
