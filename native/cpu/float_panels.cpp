// The float panel layout (float_panels.h): repacking, element access and the matmul driver over panels.
#include "cpu/float_panels.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

#include "common/dtype.h"
#include "common/error.h"
#include "cpu/kernels_cpu.h"
#include "cpu/kernels_inner.h"

namespace chimera {

namespace {

constexpr int64_t kRows = inner::kPanelRows;
// Above kPanelMaxTileRows input rows, the weights are swept in blocks of about kBlockBytes (kept in L2)
// of kBlockCols columns, each block taken by every group of input rows before the next is read.
constexpr int64_t kBlockBytes = 256 * 1024;
constexpr int64_t kBlockCols = 512;

int64_t elem_size(DType dt) { return dt == DType::F32 ? 4 : 2; }

// The `rows` (1 to 16) rows from src (row stride ldw bytes) as one panel at dst: element (r, k) to
// 16k + r, zeros for the rows past `rows`.
template <typename E>
void repack_panel(const uint8_t* src, int64_t ldw, int64_t K, int rows, uint8_t* dst) {
  E* out = reinterpret_cast<E*>(dst);
  if (rows < kRows) std::memset(dst, 0, sizeof(E) * (size_t)(kRows * K));
  const E* row[kRows];
  for (int r = 0; r < rows; r++) row[r] = reinterpret_cast<const E*>(src + r * ldw);
  if (rows == kRows) {  // the loop the compiler unrolls
    for (int64_t k = 0; k < K; k++)
      for (int r = 0; r < kRows; r++) out[k * kRows + r] = row[r][k];
    return;
  }
  for (int64_t k = 0; k < K; k++)
    for (int r = 0; r < rows; r++) out[k * kRows + r] = row[r][k];
}

#if CHIMERA_HAVE_AVX2_PATH
void tile(DType dt, int nt, int nv, const inner::MatmulTile& a) { inner::native::matmul_panel_tile_avx512(dt, nt, nv, a); }
#endif

// The input rows of one sweep: [t0, t0 + nt) of T, at most kPanelMaxTileRows, as even as the count of
// sweeps allows (16 rows: 8 + 8, not 14 + 2: an 8-row sweep keeps up with memory, and the second, from
// L2, is as fast as the first).
int sweep_rows(int T, int t0) {
  const int sweeps = (T + inner::kPanelMaxTileRows - 1) / inner::kPanelMaxTileRows;
  const int base = T / sweeps, extra = T % sweeps;
  const int index = t0 < extra * (base + 1) ? t0 / (base + 1) : extra + (t0 - extra * (base + 1)) / base;
  return index < extra ? base + 1 : base;
}

}  // namespace

bool float_panels_supported() {
#if CHIMERA_HAVE_AVX2_PATH
  return cpu_supports(KernelPath::Avx512);
#else
  return false;
#endif
}

bool float_panels_dtype(DType dt) { return dt == DType::F32 || dt == DType::F16 || dt == DType::BF16; }

size_t float_panels_bytes(DType dt, int64_t rows, int64_t cols) {
  return (size_t)((rows + kRows - 1) / kRows * kRows * cols * elem_size(dt));
}

void repack_float_panels(const TensorView& W, uint8_t* dst, int64_t n0, int64_t n1) {
  CHIMERA_CHECK(float_panels_dtype(W.dtype) && W.rows >= 0 && n0 >= 0 && n0 <= n1 && n1 <= W.rows &&
                    (n0 % kRows == 0 || n0 == W.rows) && (n1 % kRows == 0 || n1 == W.rows),
                ErrorCode::Internal, "repack_float_panels: ", dtype_name(W.dtype), " (", W.rows, ", ", W.cols,
                ") rows [", n0, ", ", n1, ")");
  const int64_t e = elem_size(W.dtype), ldw = W.cols * e;
  for (int64_t g = n0; g < n1; g += kRows) {
    const int rows = (int)std::min<int64_t>(kRows, W.rows - g);
    if (e == 4) repack_panel<uint32_t>(W.row(g), ldw, W.cols, rows, dst + g * ldw);
    else repack_panel<uint16_t>(W.row(g), ldw, W.cols, rows, dst + g * ldw);
  }
}

float float_panels_element(DType dt, const uint8_t* packed, int64_t rows, int64_t cols, int64_t row, int64_t col) {
  CHIMERA_CHECK(row >= 0 && row < rows && col >= 0 && col < cols, ErrorCode::InvalidArg, "float_panels_element: (",
                row, ", ", col, ") outside (", rows, ", ", cols, ")");
  const int64_t e = elem_size(dt);
  float f;
  row_to_f32(dt, packed + ((row - row % kRows) * cols + col * kRows + row % kRows) * e, &f, 1);
  return f;
}

void matmul_float_panels_rows(DType dt, float* out, const float* x, const uint8_t* packed, int64_t N, int64_t K, int T,
                              int64_t n0, int64_t n1) {
  CHIMERA_CHECK(float_panels_supported() && float_panels_dtype(dt), ErrorCode::Internal,
                "matmul_float_panels_rows needs AVX-512 and F32, F16 or BF16 weights");
  n0 = std::max<int64_t>(n0, 0);
  n1 = std::min<int64_t>(n1, N);
  if (T <= 0 || n0 >= n1) return;
#if CHIMERA_HAVE_AVX2_PATH
  const int64_t e = elem_size(dt), ldw = K * e, panel_bytes = kRows * ldw;
  const int64_t column_bytes = kRows * e;
  const auto panel_at = [&](int64_t p) { return packed + p * panel_bytes; };
  // Whole panels in the range: [pa, pb).
  const int64_t pa = (n0 + kRows - 1) / kRows, pb = std::max(pa, n1 / kRows);
  if (K == 0) {
    for (int t = 0; t < T; t++) std::fill(out + (int64_t)t * N + n0, out + (int64_t)t * N + n1, 0.f);
    return;
  }
  if (pa < pb && T <= inner::kPanelMaxTileRows) {
    // One sweep: every input row takes each panel as it streams in; the next tile's panels are asked
    // into L2 meanwhile.
    const int nv = inner::panel_tile_width(T);
    for (int64_t p = pa; p < pb;) {
      const int width = pb - p >= nv ? nv : 1;
      inner::MatmulTile a{x, K, panel_at(p), panel_bytes, 0, K, out + p * kRows, N, false};
      a.prefetch = width * panel_bytes;
      tile(dt, T, width, a);
      p += width;
    }
  } else if (pa < pb) {
    // Blocks of panels x kBlockCols columns; the first sweep of a block asks the next one into L2. A
    // block holds whole tiles of every sweep (a one-panel tile runs at half speed).
    int64_t widths = 1;
    for (int t0 = 0, nt = 0; t0 < T; t0 += nt) {
      nt = sweep_rows(T, t0);
      widths = std::lcm<int64_t>(widths, inner::panel_tile_width(nt));
    }
    const int64_t fit = kBlockBytes / (kBlockCols * column_bytes);
    const int64_t block_panels = std::max<int64_t>(widths, (fit + widths / 2) / widths * widths);
    for (int64_t b0 = pa; b0 < pb; b0 += block_panels) {
      const int64_t b1 = std::min(pb, b0 + block_panels);
      for (int64_t k0 = 0; k0 < K; k0 += kBlockCols) {
        const int64_t k1 = std::min(K, k0 + kBlockCols);
        const int64_t next = k1 < K ? (k1 - k0) * column_bytes : block_panels * panel_bytes - k0 * column_bytes;
        for (int t0 = 0, nt = 0; t0 < T; t0 += nt) {
          nt = sweep_rows(T, t0);
          const int nv = inner::panel_tile_width(nt);
          for (int64_t p = b0; p < b1;) {
            const int width = b1 - p >= nv ? nv : 1;
            inner::MatmulTile a{x + (int64_t)t0 * K, K, panel_at(p), panel_bytes, k0, k1,
                               out + (int64_t)t0 * N + p * kRows, N, k0 > 0};
            a.prefetch = t0 == 0 ? next : 0;
            tile(dt, nt, width, a);
            p += width;
          }
        }
      }
    }
  }
  // A panel cut by the range (or padded): all 16 rows into a scratch, then the rows in the range.
  const auto partial_panel = [&](int64_t p) {
    thread_local std::vector<float> scratch;
    scratch.resize((size_t)T * kRows);
    for (int t0 = 0, nt = 0; t0 < T; t0 += nt) {
      nt = std::min(T - t0, inner::kPanelMaxTileRows);
      const inner::MatmulTile a{x + (int64_t)t0 * K, K, panel_at(p), panel_bytes, 0, K,
                               scratch.data() + (int64_t)t0 * kRows, kRows, false};
      tile(dt, nt, 1, a);
    }
    const int64_t r0 = std::max(n0, p * kRows), r1 = std::min(n1, p * kRows + kRows);
    for (int t = 0; t < T; t++)
      std::memcpy(out + (int64_t)t * N + r0, scratch.data() + (int64_t)t * kRows + (r0 - p * kRows),
                  sizeof(float) * (size_t)(r1 - r0));
  };
  // Panels cut by the range, or the last one when it is padded.
  const int64_t first = n0 / kRows, last = (n1 - 1) / kRows;
  if (n0 % kRows != 0) partial_panel(first);
  if (n1 % kRows != 0 && (last != first || n0 % kRows == 0)) partial_panel(last);
#else
  (void)out;
  (void)x;
  (void)packed;
  (void)K;
#endif
}

}  // namespace chimera
