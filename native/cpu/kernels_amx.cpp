// AMX-BF16 matmul over weight panels (kernels_amx.h): detection, repacking and the tile loop.
//
// The tile loop also builds, with CHIMERA_AMX_EMULATED, against a software model of the tile unit
// (tests_native/amx_emulation.h) as chimera::emulated::matmul_amx_rows, so its layout and loop are
// checked against the reference on any CPU.
#include "cpu/kernels_amx.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/dtype.h"
#include "common/error.h"

#if defined(CHIMERA_AMX_EMULATED)
#include "amx_emulation.h"
#define CHIMERA_AMX_NAMESPACE emulated
#define CHIMERA_BUILD_AMX_LOOP 1
#define TILE_LOADCONFIG(cfg) amx_emulation::loadconfig(cfg)
#define TILE_RELEASE() amx_emulation::release()
#define TILE_ZERO(t) amx_emulation::zero(t)
#define TILE_LOADD(t, base, stride) amx_emulation::loadd(t, base, stride)
#define TILE_STORED(t, base, stride) amx_emulation::stored(t, base, stride)
#define TILE_DPBF16PS(c, a, b) amx_emulation::dpbf16ps(c, a, b)
#elif defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define CHIMERA_AMX_NATIVE 1
#define CHIMERA_AMX_NAMESPACE native_amx
#define CHIMERA_BUILD_AMX_LOOP 1
#define TILE_LOADCONFIG(cfg) _tile_loadconfig(cfg)
#define TILE_RELEASE() _tile_release()
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_LOADD(t, base, stride) _tile_loadd(t, base, stride)
#define TILE_STORED(t, base, stride) _tile_stored(t, base, stride)
#define TILE_DPBF16PS(c, a, b) _tile_dpbf16ps(c, a, b)
#else
#define CHIMERA_BUILD_AMX_LOOP 0
#endif

namespace chimera {

#if !defined(CHIMERA_AMX_EMULATED)

bool amx_bf16_available() {
#if defined(CHIMERA_AMX_NATIVE)
  static const bool ok = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    // CPUID.(EAX=7, ECX=0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    if (!((d >> 22) & 1) || !((d >> 24) & 1)) return false;
    // Linux 5.16+: the tile data state must be requested (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

void repack_amx_panels(const TensorView& W, uint8_t* dst) {
  const int64_t N = W.rows, K = W.cols, Kp = amx_padded_cols(K);
  std::memset(dst, 0, amx_panels_bytes(N, K));
  std::vector<float> row((size_t)K);
  uint16_t* out = reinterpret_cast<uint16_t*>(dst);
  for (int64_t n = 0; n < N; n++) {
    row_to_f32(W.dtype, W.row(n), row.data(), (size_t)K);
    const int64_t panel = n / 16, r = n % 16;
    for (int64_t k = 0; k < K; k++) {
      const int64_t chunk = k / 32, kk = (k % 32) / 2, e = k % 2;
      // panel, then chunk (1 KB tiles), then tile row kk: 16 weight rows x 2 elements
      out[((panel * (Kp / 32) + chunk) * 16 + kk) * 32 + r * 2 + e] = f32_to_bf16(row[(size_t)k]);
    }
  }
}

void round_rows_bf16(const float* x, int T, int64_t K, std::vector<uint16_t>& xb) {
  const int64_t Tp = amx_padded_rows(T), Kp = amx_padded_cols(K);
  xb.assign((size_t)(Tp * Kp), 0);
  for (int t = 0; t < T; t++)
    for (int64_t k = 0; k < K; k++) xb[(size_t)(t * Kp + k)] = f32_to_bf16(x[t * K + k]);
}

#endif  // !CHIMERA_AMX_EMULATED

#if CHIMERA_BUILD_AMX_LOOP
namespace CHIMERA_AMX_NAMESPACE {

namespace {

// Palette 1: tiles 0..3 the 16 x 16 FP32 sums of (input block a, panel b) for a, b in {0, 1},
// tiles 4, 5 two blocks of 16 input rows x 32 bf16, tiles 6, 7 two weight tiles (16 pair rows x 64 B).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

TileConfig make_config() {
  TileConfig c;
  for (int t = 0; t < 8; t++) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  return c;
}

}  // namespace

#if defined(CHIMERA_AMX_NATIVE)
__attribute__((target("amx-tile,amx-bf16")))
#endif
void matmul_amx_rows(float* out, const uint16_t* xb, const uint8_t* panels, int64_t N, int64_t K, int T, int64_t n0,
                     int64_t n1) {
  n0 = std::max<int64_t>(n0, 0);
  n1 = std::min<int64_t>(n1, N);
  if (T <= 0 || n0 >= n1) return;
  const int64_t Kp = amx_padded_cols(K), chunks = Kp / 32, Tp = amx_padded_rows(T);
  const long x_stride = (long)(Kp * 2);
  const size_t panel_bytes = (size_t)chunks * 1024;
  static const TileConfig config = make_config();
  TILE_LOADCONFIG(&config);
  alignas(64) float sums[16][16];
  auto store = [&](int64_t t0, int64_t p) {  // sums of input rows t0.. and panel p into out
    for (int64_t i = 0; i < 16 && t0 + i < T; i++)
      for (int64_t j = 0; j < 16; j++) {
        const int64_t n = p * 16 + j;
        if (n >= n0 && n < n1) out[(t0 + i) * N + n] = sums[i][j];
      }
  };
  // Panels in pairs, input rows in pairs of 16-row blocks: each weight tile loaded once per 32 rows.
  for (int64_t p = n0 / 16; p * 16 < n1; p += 2) {
    const bool two_panels = (p + 1) * 16 < n1;
    const uint8_t* b0 = panels + (size_t)p * panel_bytes;
    const uint8_t* b1 = b0 + panel_bytes;
    for (int64_t t0 = 0; t0 < Tp; t0 += 32) {
      const bool two_blocks = t0 + 16 < Tp;
      const uint16_t* a0 = xb + t0 * Kp;
      const uint16_t* a1 = a0 + 16 * Kp;
      TILE_ZERO(0);
      TILE_ZERO(1);
      TILE_ZERO(2);
      TILE_ZERO(3);
      for (int64_t c = 0; c < chunks; c++) {
        TILE_LOADD(4, a0 + c * 32, x_stride);
        TILE_LOADD(6, b0 + c * 1024, 64);
        TILE_DPBF16PS(0, 4, 6);
        if (two_panels) {
          TILE_LOADD(7, b1 + c * 1024, 64);
          TILE_DPBF16PS(1, 4, 7);
        }
        if (two_blocks) {
          TILE_LOADD(5, a1 + c * 32, x_stride);
          TILE_DPBF16PS(2, 5, 6);
          if (two_panels) TILE_DPBF16PS(3, 5, 7);
        }
      }
      TILE_STORED(0, sums, 64);
      store(t0, p);
      if (two_panels) {
        TILE_STORED(1, sums, 64);
        store(t0, p + 1);
      }
      if (two_blocks) {
        TILE_STORED(2, sums, 64);
        store(t0 + 16, p);
        if (two_panels) {
          TILE_STORED(3, sums, 64);
          store(t0 + 16, p + 1);
        }
      }
    }
  }
  TILE_RELEASE();
}

}  // namespace CHIMERA_AMX_NAMESPACE
#endif  // CHIMERA_BUILD_AMX_LOOP

#if defined(CHIMERA_AMX_NATIVE)
void matmul_amx_rows(float* out, const uint16_t* xb, const uint8_t* panels, int64_t N, int64_t K, int T, int64_t n0,
                     int64_t n1) {
  native_amx::matmul_amx_rows(out, xb, panels, N, K, T, n0, n1);
}
#elif !defined(CHIMERA_AMX_EMULATED)
void matmul_amx_rows(float*, const uint16_t*, const uint8_t*, int64_t, int64_t, int, int64_t, int64_t) {
  throw_error(ErrorCode::Internal, "matmul_amx_rows: this build has no AMX path");
}
#endif

#if !defined(CHIMERA_AMX_EMULATED)
bool amx_self_check() {
  if (!amx_bf16_available()) return false;
  const int64_t N = 40, K = 100;
  const int T = 17;
  std::vector<uint16_t> w((size_t)(N * K));
  std::vector<float> x((size_t)(T * K));
  uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return (float)((state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
  };
  for (auto& v : w) v = f32_to_bf16(next());
  for (auto& v : x) v = next();
  const TensorView W{DType::BF16, w.data(), N, K};
  std::vector<uint8_t> panels(amx_panels_bytes(N, K));
  repack_amx_panels(W, panels.data());
  std::vector<uint16_t> xb;
  round_rows_bf16(x.data(), T, K, xb);
  std::vector<float> out((size_t)(T * N));
  matmul_amx_rows(out.data(), xb.data(), panels.data(), N, K, T, 0, N);
  for (int t = 0; t < T; t++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double)bf16_to_f32(f32_to_bf16(x[t * K + k])) * bf16_to_f32(w[n * K + k]);
      if (!(std::fabs(out[t * N + n] - s) <= 1e-4 + 1e-3 * std::fabs(s))) return false;
    }
  return true;
}
#endif

}  // namespace chimera
