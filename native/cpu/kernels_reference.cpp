// Reference CPU kernels: plain single-threaded loops that define what each op computes. The fast CPU
// paths and the CUDA kernels are tested against these, so they favour clarity over speed and
// accumulate in double.
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "cpu/kernels_cpu.h"

namespace chimera {

void matmul_forward_reference(float* out, const float* x, const TensorView& W, int T) {
  matmul_rows_reference(out, x, W, T, 0, W.rows);
}

void matmul_rows_reference(float* out, const float* x, const TensorView& W, int T, int64_t n0, int64_t n1) {
  CHIMERA_CHECK(W.cols % dtype_block_elems(W.dtype) == 0, ErrorCode::Tensor, dtype_name(W.dtype), " matrix with ",
                W.cols, " columns (not a multiple of ", dtype_block_elems(W.dtype), ")");
  const int64_t N = W.rows, K = W.cols;
  std::vector<float> w((size_t)K);
  for (int64_t n = n0; n < n1; n++) {
    row_to_f32(W.dtype, W.row(n), w.data(), (size_t)K);
    for (int t = 0; t < T; t++) {
      const float* xt = x + (int64_t)t * K;
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double)xt[k] * (double)w[k];
      out[(int64_t)t * N + n] = (float)s;
    }
  }
}

void rmsnorm_forward_reference(float* out, const float* x, const float* w, int T, int C, float eps) {
  for (int t = 0; t < T; t++) {
    const float* xr = x + (int64_t)t * C;
    float* o = out + (int64_t)t * C;
    double ss = 0;
    for (int c = 0; c < C; c++) ss += (double)xr[c] * (double)xr[c];
    const float inv = (float)(1.0 / std::sqrt(ss / C + (double)eps));
    for (int c = 0; c < C; c++) o[c] = xr[c] * inv * w[c];
  }
}

void rope_forward_reference(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                            RopeLayout layout, const float* freq_factors) {
  CHIMERA_CHECK(rope_dims >= 0 && rope_dims <= HS && rope_dims % 2 == 0, ErrorCode::InvalidArg,
                "rope_dims ", rope_dims, " must be even and at most the head size ", HS);
  const int half = rope_dims / 2;
  for (int t = 0; t < T; t++) {
    for (int h = 0; h < n_heads; h++) {
      float* xh = x + ((int64_t)t * n_heads + h) * HS;
      for (int i = 0; i < half; i++) {
        const double freq =
            std::pow((double)theta, -2.0 * i / rope_dims) / (freq_factors ? (double)freq_factors[i] : 1.0);
        const double angle = (double)pos[t] * freq;
        const double c = std::cos(angle), s = std::sin(angle);
        const int i0 = layout == RopeLayout::Interleaved ? 2 * i : i;
        const int i1 = layout == RopeLayout::Interleaved ? 2 * i + 1 : i + half;
        const double x0 = xh[i0], x1 = xh[i1];
        xh[i0] = (float)(x0 * c - x1 * s);
        xh[i1] = (float)(x0 * s + x1 * c);
      }
    }
  }
}

// One query row and head: softmax over the visible slots of q.k / sqrt(HS), then the weighted sum of V.
static void attention_head_reference(float* o, const float* qv, const float* k, const float* v, const uint8_t* mask_row,
                                     int visible_end, int S, int KVD, int HS, std::vector<double>& scores) {
  const double scale = 1.0 / std::sqrt((double)HS);
  const double none = -std::numeric_limits<double>::infinity();
  double m = none;
  for (int j = 0; j < S; j++) {
    const bool visible = mask_row ? mask_row[j] != 0 : j < visible_end;
    scores[j] = none;
    if (!visible) continue;
    double s = 0;
    for (int d = 0; d < HS; d++) s += (double)qv[d] * (double)k[(int64_t)j * KVD + d];
    scores[j] = s * scale;
    if (scores[j] > m) m = scores[j];
  }
  for (int d = 0; d < HS; d++) o[d] = 0.f;
  if (m == none) return;  // the row sees nothing: output zeros
  double sum = 0;
  for (int j = 0; j < S; j++) {
    scores[j] = scores[j] == none ? 0.0 : std::exp(scores[j] - m);
    sum += scores[j];
  }
  for (int d = 0; d < HS; d++) {
    double acc = 0;
    for (int j = 0; j < S; j++) acc += scores[j] * (double)v[(int64_t)j * KVD + d];
    o[d] = (float)(acc / sum);
  }
}

void attention_forward_reference(float* out, const float* q, const float* k_cache, const float* v_cache,
                                 const uint8_t* mask, int T, int n_past, int NH, int NKV, int HS) {
  CHIMERA_CHECK(NH > 0 && NKV > 0 && NH % NKV == 0 && HS > 0 && T >= 0 && n_past >= 0, ErrorCode::InvalidArg,
                "bad attention shape NH=", NH, " NKV=", NKV, " HS=", HS, " T=", T, " n_past=", n_past);
  const int S = n_past + T, G = NH / NKV, KVD = NKV * HS;
  std::vector<double> scores((size_t)S);
  for (int t = 0; t < T; t++) {
    const uint8_t* mask_row = mask ? mask + (int64_t)t * S : nullptr;
    for (int h = 0; h < NH; h++) {
      const int64_t off = ((int64_t)t * NH + h) * HS;
      const int kv = (h / G) * HS;
      attention_head_reference(out + off, q + off, k_cache + kv, v_cache + kv, mask_row, n_past + t + 1, S, KVD, HS,
                               scores);
    }
  }
}

void swiglu_forward_reference(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const double g = gate[i];
    out[i] = (float)(g / (1.0 + std::exp(-g)) * (double)up[i]);
  }
}

}  // namespace chimera
