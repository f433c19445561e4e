// Fast CPU kernels: the run-time choice of kernel path, the portable inner loops (plain C++ with
// independent accumulators, which GCC/Clang vectorise at -O3 for any CPU), and the drivers shared by
// every path: the blocking of a matmul over weight rows, input rows and K, and the attention loop over
// query rows, KV-head groups and visible slots. The AVX2 inner loops are in kernels_avx2.cpp.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "cpu/kernels_cpu.h"
#include "cpu/quant_matmul.h"
#include "cpu/kernels_inner.h"

namespace chimera {

// ---- kernel path selection ----

const char* kernel_path_name(KernelPath p) {
  switch (p) {
    case KernelPath::Reference: return "reference";
    case KernelPath::Portable: return "portable";
    case KernelPath::Avx2: return "avx2";
    case KernelPath::Avx512: return "avx512";
  }
  return "?";
}

// libgcc's checks also require the OS to save the YMM / ZMM registers (XGETBV).
bool cpu_supports(KernelPath p) {
  if (p == KernelPath::Reference || p == KernelPath::Portable) return true;
#if CHIMERA_HAVE_AVX2_PATH
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  static const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
  return p == KernelPath::Avx2 ? avx2 : avx512;
#else
  return false;
#endif
}

KernelPath active_kernel_path() {
  static const KernelPath path = [] {
    KernelPath best = KernelPath::Portable;
    for (KernelPath p : {KernelPath::Avx2, KernelPath::Avx512})
      if (cpu_supports(p)) best = p;
    const char* env = std::getenv("CHIMERA_CPU_KERNELS");
    std::string v = env ? env : "";
    for (auto& c : v) c = (char)std::tolower((unsigned char)c);
    for (KernelPath p : {KernelPath::Reference, KernelPath::Portable, KernelPath::Avx2, KernelPath::Avx512})
      if (v == kernel_path_name(p) && cpu_supports(p)) return p;
    return best;  // a path this CPU lacks, an unknown value or no value: the best available
  }();
  return path;
}

// ---- portable inner loops ----

namespace inner {
namespace {

inline float bits_f32(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

inline uint32_t f32_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Branch-free half -> float (the method of the FP16 library), so a loop of them vectorises. Exact for
// every half: normals by an exponent-rebias multiply, subnormals by a magic-number subtraction.
inline float half_to_f32_branchless(uint16_t h) {
  const uint32_t w = (uint32_t)h << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = bits_f32((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = bits_f32((two_w >> 17) | (126u << 23)) - 0.5f;
  // Select with a mask, not ?:, which GCC turns into a branch that blocks vectorisation.
  const uint32_t subnormal = 0u - (uint32_t)(two_w < (1u << 27));
  return bits_f32(sign | (f32_bits(denormalized) & subnormal) | (f32_bits(normalized) & ~subnormal));
}

inline float dot_portable(const float* a, const float* b, int64_t n) {
  // 16 independent lanes: the compiler maps them onto SIMD registers, and four 4-wide chains hide the
  // add latency.
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) acc[l] += a[i + l] * b[i + l];
  for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// Elements [k0, k0 + n) of a weight row as floats (k0 and n multiples of 32 for Q8_0).
template <DType DT>
inline void convert_run(const uint8_t* row, int64_t k0, int64_t n, float* out) {
  if constexpr (DT == DType::F32) {
    std::memcpy(out, row + k0 * 4, (size_t)n * 4);
  } else if constexpr (DT == DType::Q8_0) {
    for (int64_t b = 0; b < n / kQ8BlockSize; b++) {
      const uint8_t* blk = step_ptr<DT>(row, k0 + b * kQ8BlockSize);
      uint16_t h;
      std::memcpy(&h, blk, 2);
      const float d = half_to_f32_branchless(h);
      const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
      for (int i = 0; i < kQ8BlockSize; i++) out[b * kQ8BlockSize + i] = d * (float)q[i];
    }
  } else {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(row) + k0;
    for (int64_t i = 0; i < n; i++)
      out[i] = DT == DType::F16 ? half_to_f32_branchless(h[i]) : bits_f32((uint32_t)h[i] << 16);
  }
}

struct PortableKernels {
  // Converts a chunk of each of the NN weight rows once into a small L1 buffer (F32 too: a contiguous
  // copy measured faster than reading rows a large stride apart), then takes the NT x NN dot products
  // against it. Plain loops like these vectorise reliably; a register tile in plain C++ does not.
  template <DType DT, int NT, int NN>
  static void tile(const MatmulTile& a) {
    constexpr int64_t kChunk = 256;  // a multiple of the Q8_0 block; NN KB of floats stay in L1
    constexpr int kStep = step_elems<DT>();
    float buf[NN][kChunk];
    float sums[NT][NN] = {};
    const int64_t kmain = a.k0 + (a.k1 - a.k0) / kStep * kStep;
    for (int64_t c0 = a.k0; c0 < kmain; c0 += kChunk) {
      const int64_t len = std::min(kChunk, kmain - c0);
      for (int n = 0; n < NN; n++) convert_run<DT>(a.w + n * a.ldw, c0, len, buf[n]);
      for (int t = 0; t < NT; t++)
        for (int n = 0; n < NN; n++) sums[t][n] += dot_portable(a.x + t * a.ldx + c0, buf[n], len);
    }
    finish_tile<DT, NT, NN>(a, sums, kmain);
  }
};

}  // namespace

void matmul_tile_portable(DType dt, int nt, int nn, const MatmulTile& a) {
  dispatch_tile<PortableKernels>(dt, nt, nn, a);
}

void attention_scores_portable(const AttentionGroup& g, float* scores) {
  for (int j = 0; j < g.nvis; j++) {
    const float* k = g.k + (int64_t)g.idx[j] * g.ld;
    for (int h = 0; h < g.G; h++)
      scores[(int64_t)h * g.nvis + j] = g.scale * dot_portable(g.q + (int64_t)h * g.HS, k, g.HS);
  }
}

void attention_values_portable(const AttentionGroup& g, const float* probs, float* out) {
  std::fill(out, out + (int64_t)g.G * g.HS, 0.f);
  for (int j = 0; j < g.nvis; j++) {
    const float* v = g.v + (int64_t)g.idx[j] * g.ld;
    for (int h = 0; h < g.G; h++) {
      const float p = probs[(int64_t)h * g.nvis + j];
      float* o = out + (int64_t)h * g.HS;
      for (int d = 0; d < g.HS; d++) o[d] += p * v[d];
    }
  }
}

}  // namespace inner

// ---- matmul driver ----

namespace {

// Up to this many input rows, each weight row tile is streamed once over the full K (decode, small
// drafts and trees), chunk by chunk of kTileK, each chunk taken by every group of 4 input rows while it
// is in L1.
constexpr int kRowStreamMaxT = 8;
// Larger batches are tiled so the operands of the inner loops stay in cache while the weights are still
// read from memory once: a tile of weight rows by kTileK columns (about kTileBytes, in L2) is swept by
// every group of 4 input rows (4 x 8 KB of a K chunk). K chunks are long enough that the per-call cost
// of a register tile (horizontal sums, stores) stays small. Both ways sum a row in the same order:
// each kTileK chunk in its own accumulator, the chunks added in order. So a row's result does not
// depend on T, which lossless speculation needs (a tree row must equal the plain decode step).
constexpr int64_t kTileK = 2048;
constexpr int64_t kTileBytes = 256 * 1024;

// Weight rows per tile: about kTileBytes of weights, 24 to 72 rows, a multiple of 12 so the tile splits
// into whole register tiles of 3 or 4 rows.
int64_t tile_rows(const TensorView& W) {
  const int64_t chunk_bytes = (int64_t)dtype_row_bytes(W.dtype, (size_t)std::min<int64_t>(W.cols, kTileK));
  const int64_t rows = kTileBytes / std::max<int64_t>(chunk_bytes, 1) / 12 * 12;
  return std::max<int64_t>(24, std::min<int64_t>(72, rows));
}

// The path itself when the CPU has it, else the next one down.
KernelPath usable(KernelPath path) {
  if (path == KernelPath::Avx512 && !cpu_supports(path)) path = KernelPath::Avx2;
  if (path == KernelPath::Avx2 && !cpu_supports(path)) path = KernelPath::Portable;
  return path;
}

void tile_call(KernelPath path, DType dt, int nt, int nn, const inner::MatmulTile& a) {
#if CHIMERA_HAVE_AVX2_PATH
  if (path == KernelPath::Avx512 && dt != DType::Q8_0) {
    inner::native::matmul_tile_avx512(dt, nt, nn, a);
    return;
  }
  if (uses_avx2_loops(path)) {
    inner::matmul_tile_avx2(dt, nt, nn, a);
    return;
  }
#endif
  inner::matmul_tile_portable(dt, nt, nn, a);
}

// Input rows per register tile starting at row t0 of T: 4, with a last tile of up to 6 rows where
// the AVX-512 float tile holds them (5 or 6 rows would otherwise cost a second sweep of the weights for
// one or two rows). Above kRowStreamMaxT rows (blocks swept from L2) the AVX-512 float tiles take 6 rows
// each until 8 or fewer are left (7 or 8 then go as 4 + 3 or 4 + 4): fewer sweeps of each block and
// fewer widenings of its weights, which made 12-32 rows 3-12% faster on Zen 5 (two 512-bit FMA pipes).
// The grouping changes no sum: each (input row, weight row) pair has its own accumulator whatever tile
// it is in. (With the weights repacked, the AVX-512 path runs the float panels instead: float_panels.h.)
int tile_rows_at(KernelPath path, DType dt, int T, int t0) {
  const int left = T - t0;
#if CHIMERA_HAVE_AVX2_PATH
  if (path == KernelPath::Avx512 && dt != DType::Q8_0) {
    if (left <= inner::kAvx512TileRows) return left;
    if (T > kRowStreamMaxT) return left <= 8 ? 4 : inner::kAvx512TileRows;
  }
#else
  (void)path;
  (void)dt;
#endif
  return std::min(4, left);
}

// Weight rows per tile for nt input rows. AVX2: as many accumulators as fit the 16 YMM registers with
// the weights and one input vector (4 x 3 measured 1.4x faster than 4 x 2 at T = 26).
// AVX-512: 4 x 4 accumulators of the 32 ZMM registers (Q8_0 runs the AVX2 tile there). With the next
// tile prefetched, four rows at a time read as fast as one for a single input row too.
int tile_width(KernelPath path, DType dt, int nt) {
  if (path == KernelPath::Avx512 && dt != DType::Q8_0) return 4;
  if (uses_avx2_loops(path)) return nt <= 2 ? 4 : 3;
  return 4;  // the portable tile converts each weight chunk once for all nt rows
}

void set_quantised(inner::MatmulTile& a, const Q8Activations& qx, int t0, int64_t K) {
  if (!qx.q) return;
  a.xq = qx.q + (int64_t)t0 * K;
  a.xs = qx.s + (int64_t)t0 * (K / kQ8BlockSize);
}

// out rows [0, T) x columns [b0, b1) over K columns [k0, k1); adds to out unless k0 == 0.
void matmul_block(KernelPath path, float* out, const float* x, const TensorView& W, int T, int64_t b0, int64_t b1,
                  int64_t k0, int64_t k1, const Q8Activations& qx) {
  const int64_t N = W.rows, K = W.cols;
  const int64_t ldw = (int64_t)dtype_row_bytes(W.dtype, (size_t)K);
  for (int t0 = 0, nt = 0; t0 < T; t0 += nt) {
    nt = tile_rows_at(path, W.dtype, T, t0);
    const int nn = tile_width(path, W.dtype, nt);
    inner::MatmulTile a{x + (int64_t)t0 * K, K, nullptr, ldw, k0, k1, nullptr, N, k0 > 0};
    set_quantised(a, qx, t0, K);
    for (int64_t n = b0; n < b1;) {
      const int width = b1 - n >= nn ? nn : 1;
      a.w = W.row(n);
      a.out = out + (int64_t)t0 * N + n;
      a.prefetch = t0 == 0 ? width * ldw : 0;  // the first sweep reads the block from memory
      tile_call(path, W.dtype, nt, width, a);
      n += width;
    }
  }
}

// All of K for each tile of weight rows in turn (the weights stream through once, row by row), with the
// register tile restarted at every kTileK boundary so that the sums equal matmul_block's. The loop
// prefetches the next tile's rows into L2 as it goes: the hardware prefetchers alone left a decode step
// at 60% of this CPU's bandwidth on AVX2 and a 4-row step at 1.5x a 1-row step on AVX-512 (now ~1.0x).
void matmul_stream(KernelPath path, float* out, const float* x, const TensorView& W, int T, int64_t n0, int64_t n1,
                   const Q8Activations& qx) {
  const int64_t N = W.rows, K = W.cols;
  const int64_t ldw = (int64_t)dtype_row_bytes(W.dtype, (size_t)K);
  const int nn = tile_width(path, W.dtype, std::min(T, 4));
  for (int64_t n = n0; n < n1;) {
    const int width = n1 - n >= nn ? nn : 1;
    for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
      for (int t0 = 0, nt = 0; t0 < T; t0 += nt) {
        nt = tile_rows_at(path, W.dtype, T, t0);
        inner::MatmulTile a{x + (int64_t)t0 * K, K, W.row(n), ldw, k0, std::min(K, k0 + kTileK),
                            out + (int64_t)t0 * N + n, N, k0 > 0};
        set_quantised(a, qx, t0, K);
        a.prefetch = t0 == 0 ? width * ldw : 0;
        tile_call(path, W.dtype, nt, width, a);
      }
    }
    n += width;
  }
}

}  // namespace

bool matmul_quantises_x(KernelPath path, const TensorView& W) {
  path = usable(path);
  if (dtype_is_low_bit(W.dtype)) return path != KernelPath::Reference;
  return uses_avx2_loops(path) && W.dtype == DType::Q8_0;
}

void matmul_rows(KernelPath path, float* out, const float* x, const TensorView& W, int T, int64_t n0, int64_t n1,
                 const Q8Activations* xq) {
  CHIMERA_CHECK(W.cols % dtype_block_elems(W.dtype) == 0, ErrorCode::Tensor, dtype_name(W.dtype), " matrix with ",
                W.cols, " columns (not a multiple of ", dtype_block_elems(W.dtype), ")");
  n0 = std::max<int64_t>(n0, 0);
  n1 = std::min<int64_t>(n1, W.rows);
  if (T <= 0 || n0 >= n1) return;
  path = usable(path);
  const int64_t K = W.cols;
  if (path == KernelPath::Reference) return matmul_rows_reference(out, x, W, T, n0, n1);
  if (K == 0) {
    for (int t = 0; t < T; t++) std::fill(out + (int64_t)t * W.rows + n0, out + (int64_t)t * W.rows + n1, 0.f);
    return;
  }
  Q8Activations qx;
  if (matmul_quantises_x(path, W)) {
    if (xq) {
      qx = *xq;
    } else {  // quantised here (callers splitting one matmul over threads pass it in)
      qx = quantize_activations_for(W, x, T);
    }
  }
  if (dtype_is_low_bit(W.dtype)) return matmul_low_bit_rows(path, out, W, T, n0, n1, qx);
  if (T <= kRowStreamMaxT) return matmul_stream(path, out, x, W, T, n0, n1, qx);
  const int64_t rows = tile_rows(W);
  for (int64_t b0 = n0; b0 < n1; b0 += rows) {
    const int64_t b1 = std::min(n1, b0 + rows);
    for (int64_t k0 = 0; k0 < K; k0 += kTileK)
      matmul_block(path, out, x, W, T, b0, b1, k0, std::min(K, k0 + kTileK), qx);
  }
}

void quantize_q8_activations(const float* x, int T, int64_t K, int8_t* q, float* s, int32_t* sum) {
  CHIMERA_CHECK(K % kQ8BlockSize == 0, ErrorCode::Internal, "Q8 activations of ", K, " columns");
  const int64_t blocks = K / kQ8BlockSize;
  for (int64_t b = 0; b < (int64_t)T * blocks; b++) {
    const float* xb = x + b * kQ8BlockSize;
    float amax = 0.f;
    for (int i = 0; i < kQ8BlockSize; i++) amax = std::max(amax, std::fabs(xb[i]));
    // As ggml's quantize_row_q8_0 (x86): q = round(x * 127 / amax), and the block scale kept as F16, so
    // that Q8_0 products equal llama.cpp's.
    const float id = amax > 0.f ? 127.f / amax : 0.f;
    s[b] = fp16_to_f32(f32_to_fp16(amax / 127.f));
    int32_t total = 0;
    for (int i = 0; i < kQ8BlockSize; i++) {
      const int8_t v = (int8_t)std::lrintf(xb[i] * id);
      q[b * kQ8BlockSize + i] = v;
      total += v;
    }
    if (sum) sum[b] = total;
  }
}

Q8Activations quantize_q8_activations(const float* x, int T, int64_t K) {
  thread_local std::vector<int8_t> q;
  thread_local std::vector<float> sc;
  thread_local std::vector<int32_t> sums;
  q.resize((size_t)T * K);
  sc.resize((size_t)T * K / kQ8BlockSize);
  sums.resize((size_t)T * K / kQ8BlockSize);
  quantize_q8_activations(x, T, K, q.data(), sc.data(), sums.data());
  return {q.data(), sc.data(), sums.data()};
}

float dot_row(KernelPath path, const float* x, const TensorView& W, int64_t row, int64_t n) {
  CHIMERA_CHECK(row >= 0 && row < W.rows && n >= 0 && n <= W.cols, ErrorCode::InvalidArg, "dot_row: row ", row,
                " / ", n, " elements outside a (", W.rows, ", ", W.cols, ") matrix");
  path = usable(path);
  if (path == KernelPath::Reference || dtype_is_low_bit(W.dtype)) {  // low-bit rows: decoded, then F32
    std::vector<float> w((size_t)W.cols);
    row_to_f32(W.dtype, W.row(row), w.data(), (size_t)W.cols);
    double s = 0;
    for (int64_t k = 0; k < n; k++) s += (double)x[k] * (double)w[k];
    return (float)s;
  }
  float r = 0.f;
  const inner::MatmulTile a{x, n, W.row(row), (int64_t)dtype_row_bytes(W.dtype, (size_t)W.cols), 0, n, &r, 1, false};
  tile_call(path, W.dtype, 1, 1, a);
  return r;
}

// ---- attention driver ----

namespace {

// The slots query row t may see, in order; returns how many.
int visible_slots(const uint8_t* mask, int t, int S, int n_past, int32_t* idx) {
  int nvis = 0;
  if (mask) {
    const uint8_t* row = mask + (int64_t)t * S;
    for (int j = 0; j < S; j++)
      if (row[j]) idx[nvis++] = j;
  } else {
    for (int j = 0; j <= n_past + t && j < S; j++) idx[nvis++] = j;
  }
  return nvis;
}

// Each of the G rows of scores (G, n) becomes its softmax.
void softmax_rows(float* scores, int G, int n) {
  for (int h = 0; h < G; h++) {
    float* s = scores + (int64_t)h * n;
    const float m = *std::max_element(s, s + n);
    float sum = 0.f;
    for (int j = 0; j < n; j++) {
      s[j] = std::exp(s[j] - m);
      sum += s[j];
    }
    const float inv = 1.f / sum;
    for (int j = 0; j < n; j++) s[j] *= inv;
  }
}

void attention_group(KernelPath path, const inner::AttentionGroup& g, float* scores, float* out) {
#if CHIMERA_HAVE_AVX2_PATH
  if (uses_avx2_loops(path)) {
    inner::attention_scores_avx2(g, scores);
    softmax_rows(scores, g.G, g.nvis);
    inner::attention_values_avx2(g, scores, out);
    return;
  }
#endif
  inner::attention_scores_portable(g, scores);
  softmax_rows(scores, g.G, g.nvis);
  inner::attention_values_portable(g, scores, out);
}

}  // namespace

// The reference path is served by the portable loops here: the backend calls
// attention_forward_reference itself when the reference path is active.
void attention_rows(KernelPath path, float* out, const float* q, const float* k_cache, const float* v_cache,
                    const uint8_t* mask, int T, int n_past, int NH, int NKV, int HS, int t0, int t1, int h0, int h1) {
  CHIMERA_CHECK(NH > 0 && NKV > 0 && NH % NKV == 0 && HS > 0 && T >= 0 && n_past >= 0, ErrorCode::InvalidArg,
                "bad attention shape NH=", NH, " NKV=", NKV, " HS=", HS, " T=", T, " n_past=", n_past);
  path = usable(path);
  if (h1 < 0 || h1 > NH) h1 = NH;
  h0 = std::max(h0, 0);
  t0 = std::max(t0, 0);
  t1 = std::min(t1, T);
  const int S = n_past + T, G = NH / NKV, KVD = NKV * HS;
  // K/V rows of a KV head are read once per query row for all the query heads that share it.
  thread_local std::vector<int32_t> idx;
  thread_local std::vector<float> scores;
  idx.resize((size_t)S);
  scores.resize((size_t)G * S);
  for (int t = t0; t < t1; t++) {
    const int nvis = visible_slots(mask, t, S, n_past, idx.data());
    for (int kvh = h0 / G; kvh * G < h1; kvh++) {
      const int ha = std::max(h0, kvh * G), hb = std::min(h1, kvh * G + G);
      const int64_t off = ((int64_t)t * NH + ha) * HS;
      if (nvis == 0) {  // the row sees nothing: zeros, as the reference
        std::fill(out + off, out + off + (int64_t)(hb - ha) * HS, 0.f);
        continue;
      }
      const inner::AttentionGroup g{q + off, k_cache + (int64_t)kvh * HS, v_cache + (int64_t)kvh * HS, KVD,
                                    idx.data(), nvis, hb - ha, HS, 1.f / std::sqrt((float)HS)};
      attention_group(path, g, scores.data(), out + off);
    }
  }
}

}  // namespace chimera
