// Training blocks shared by the base and draft trainers (train_blocks.h).
#include "train/train_blocks.h"

#include <cstring>

namespace chimera {

void ffn_forward_train(CpuBackend& be, const LayerWeights& lw, int C, int HD, float eps, const float* x, int T,
                       float* out, FfnActs& A) {
  A.xn.resize((size_t)T * C);
  A.a.resize((size_t)T * HD);
  A.b.resize((size_t)T * HD);
  A.s.resize((size_t)T * HD);
  be.rmsnorm(A.xn.data(), x, lw.ffn_norm, T, C, eps);
  be.matmul(A.a.data(), A.xn.data(), lw.w_gate, T);
  be.matmul(A.b.data(), A.xn.data(), lw.w_up, T);
  be.swiglu(A.s.data(), A.a.data(), A.b.data(), (int64_t)T * HD);
  be.matmul(out, A.s.data(), lw.w_down, T);
  be.add(out, x, (int64_t)T * C);
}

void ffn_backward_train(CpuBackend& be, const LayerWeights& lw, int C, int HD, float eps, const float* x, int T,
                        const FfnActs& A, const float* dout, const LayerGrads& g, float* dx) {
  std::vector<float> ds((size_t)T * HD), da((size_t)T * HD), db((size_t)T * HD), dn((size_t)T * C),
      tmp((size_t)T * C);
  be.linear_backward(ds.data(), g[kFfnDown], dout, A.s.data(), lw.w_down, T);
  be.swiglu_backward(da.data(), db.data(), ds.data(), A.a.data(), A.b.data(), (int64_t)T * HD);
  be.linear_backward(dn.data(), g[kFfnGate], da.data(), A.xn.data(), lw.w_gate, T);
  be.linear_backward(tmp.data(), g[kFfnUp], db.data(), A.xn.data(), lw.w_up, T);
  be.add(dn.data(), tmp.data(), (int64_t)T * C);
  be.rmsnorm_backward(tmp.data(), g[kFfnNorm], dn.data(), x, lw.ffn_norm, T, C, eps);
  if (dx != dout) std::memcpy(dx, dout, sizeof(float) * (size_t)T * C);  // the residual path
  be.add(dx, tmp.data(), (int64_t)T * C);
}

}  // namespace chimera
