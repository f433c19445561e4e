// AVX2 build of the Q4_0 / k-quant dot kernels (quant_dot_kernels.inc); also the path of AVX-512 CPUs
// without VNNI.
#include <cstring>

#include "common/error.h"
#include "common/quant_blocks.h"
#include "cpu/quant_matmul.h"
#include "cpu/simd_avx2.h"

#if CHIMERA_HAVE_AVX2_PATH

#define QDOT_TARGET __attribute__((target("avx2,fma,f16c")))
#define QDOT_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline
#define QDOT_NAMESPACE avx2_dot
#define QDOT_ENTRY low_bit_dot_avx2
#define QDOT_VNNI 0
#include "cpu/quant_dot_kernels.inc"

#else

namespace chimera {
namespace inner {
void low_bit_dot_avx2(DType dt, const uint8_t* row, int64_t K, const Q8Activations& xq, int t0, int nt, float* res) {
  low_bit_dot_portable(dt, row, K, xq, t0, nt, res);
}
}  // namespace inner
}  // namespace chimera

#endif  // CHIMERA_HAVE_AVX2_PATH
