// The SwiGLU half of a decoder layer for training, shared by the base and draft trainers: the forward
// keeps what its backward needs. out = x + W_down(silu(W_gate n) * W_up n), n = rmsnorm(x): the math of
// forward()'s SwiGLU block (decoder_layer.cpp; test_base_grad checks that training's forward gives
// forward()'s numbers).
#pragma once
#include <vector>

#include "backend/backend.h"
#include "cpu/cpu_backend.h"
#include "model/layer_tensors.h"

namespace chimera {

struct FfnActs {
  std::vector<float> xn, a, b, s;  // (T, C), (T, HD) x 3
};

// x, out (T, C); out may not alias x.
void ffn_forward_train(CpuBackend& be, const LayerWeights& lw, int C, int HD, float eps, const float* x, int T,
                       float* out, FfnActs& acts);

// dout (T, C): gradient of out. Adds the weight and norm-gain gradients to g and writes the gradient of x
// to dx (T, C), which may alias dout.
void ffn_backward_train(CpuBackend& be, const LayerWeights& lw, int C, int HD, float eps, const float* x, int T,
                        const FfnActs& acts, const float* dout, const LayerGrads& g, float* dx);

}  // namespace chimera
