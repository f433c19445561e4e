// AVX-512 VNNI build of the Q4_0 / k-quant dot kernels (quant_dot_kernels.inc): the same 256-bit loops
// with VPDPWSSD for the scale-and-add, and the 32 vector registers of AVX-512VL, which hold 8 input rows'
// accumulators without spilling.
#include <cstring>

#include "common/error.h"
#include "common/quant_blocks.h"
#include "cpu/quant_matmul.h"
#include "cpu/simd_avx2.h"

namespace chimera {
namespace inner {

bool low_bit_vnni_supported() {
#if CHIMERA_HAVE_AVX2_PATH && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = cpu_supports(KernelPath::Avx512) && __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
  return ok;
#else
  return false;
#endif
}

}  // namespace inner
}  // namespace chimera

#if CHIMERA_HAVE_AVX2_PATH

#define QDOT_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma,f16c")))
#define QDOT_INLINE __attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma,f16c"), always_inline)) inline
#define QDOT_NAMESPACE vnni_dot
#define QDOT_ENTRY low_bit_dot_vnni
#define QDOT_VNNI 1
#include "cpu/quant_dot_kernels.inc"

#else

namespace chimera {
namespace inner {
void low_bit_dot_vnni(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, int nt, float* res) {
  low_bit_dot_portable(dt, row, K, xq, t0, nt, res);
}
}  // namespace inner
}  // namespace chimera

#endif  // CHIMERA_HAVE_AVX2_PATH
