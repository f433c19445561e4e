// The training operations: backward passes, losses and the optimiser, over host F32 buffers. Only the
// CPU backend implements them (training always runs on the CPU, whatever backend serves inference), so
// they are a table of their own rather than part of Backend, and the trainers take a CpuBackend, which
// is both. Shapes use the letters of shapes.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/model_config.h"
#include "common/weights.h"

namespace chimera {

class TrainOps {
 public:
  virtual ~TrainOps() = default;

  // F32 row-major buffers. "accumulate" = += into the destination (callers zero gradients once per
  // step); "overwritten" = written whole. Results are deterministic; the CPU backend's do not even depend
  // on the thread count (every output element is summed in one fixed order).

  // Forward y (T, N) = x (T, K) W^T. dx (T, K) = dy (T, N) W, overwritten (W any dtype); dW (N, K) +=
  // dy^T x (W must be F32). Either may be null.
  virtual void linear_backward(float* dx, float* dW, const float* dy, const float* x, const TensorView& W,
                               int T) = 0;
  // Forward: Backend::rmsnorm. dx (T, C) overwritten (may alias dy); dw (C) accumulate, may be null.
  virtual void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int T, int C,
                                float eps) = 0;
  // dx (T, n_heads * HS) in place: the inverse (= transposed) rotation of Backend::rope.
  virtual void rope_backward(float* dx, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                             RopeLayout layout) = 0;
  // Attention that keeps its softmax for the backward pass. out (T, NH*HS); probs (NH, T, S); q (T, NH*HS);
  // k, v (S, KVD); mask (T, S), 1 = may attend, or nullptr for causal (row t sees slots < S - T + t + 1).
  // A row that sees nothing outputs zeros and has zero probs. Same output as Backend::attention.
  virtual void attention_forward_train(float* out, float* probs, const float* q, const float* k, const float* v,
                                       const uint8_t* mask, int T, int S, int NH, int NKV, int HS) = 0;
  // dq (T, NH*HS) overwritten; dk, dv (S, KVD) accumulate; dout (T, NH*HS); probs (NH, T, S) as saved.
  virtual void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs,
                                  const float* q, const float* k, const float* v, int T, int S, int NH, int NKV,
                                  int HS) = 0;
  // Forward out = silu(gate) * up. dgate, dup (n) overwritten (may alias the inputs element for element).
  virtual void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                               int64_t n) = 0;
  // Cross-entropy of logits (T, V) against targets (T) (-1 = ignored row). loss_sum += sum of
  // -log softmax[target] over counted rows; counted += their number; top1_correct += rows whose argmax
  // (the first maximum) is the target. dlogits (T, V) overwritten = grad_scale * (softmax - onehot),
  // zero on ignored rows; may be null or equal to logits. Any output pointer may be null.
  virtual void softmax_cross_entropy(float* dlogits, const float* logits, const int32_t* targets, int T, int V,
                                     float grad_scale, double* loss_sum, int* counted, int* top1_correct) = 0;
  // KL(p_teacher || p_student) per row, both softmaxes at `temperature`, over rows with row_mask (T) != 0
  // (null = all rows). loss_sum += the sum; dlogits (T, V) overwritten = grad_scale * (p_student -
  // p_teacher) / temperature, zero on masked rows; may be null or equal to logits.
  virtual void kl_to_teacher(float* dlogits, const float* logits, const float* teacher_logits, const uint8_t* row_mask,
                             int T, int V, float temperature, float grad_scale, double* loss_sum) = 0;
  // loss_sum += sum (x - target)^2 over n; dx (n) overwritten = grad_scale * 2 (x - target), may be null.
  virtual void mse(float* dx, const float* x, const float* target, int64_t n, float grad_scale,
                   double* loss_sum) = 0;
  // sum x^2 over n, in double (for the global gradient norm).
  virtual double sum_squares(const float* x, int64_t n) = 0;
  // x (n) *= s.
  virtual void scale(float* x, float s, int64_t n) = 0;
  // One AdamW step on w, m, v (n) with gradient g (n): bias-corrected moments, decoupled weight decay
  // (w -= lr * weight_decay * w). step counts from 1.
  virtual void adamw_step(float* w, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                          float beta2, float eps, float weight_decay, int step) = 0;
};

}  // namespace chimera
