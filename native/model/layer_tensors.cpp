// The decoder layer's tensor table (layer_tensors.h).
#include "model/layer_tensors.h"

namespace chimera {

const LayerTensor kLayerTensors[kLayerTensorCount] = {
    {"attn_norm", "input_layernorm", nullptr, &LayerWeights::attn_norm, LayerDim::C, LayerDim::C},
    {"attn_q", "self_attn.q_proj", &LayerWeights::wq, nullptr, LayerDim::QD, LayerDim::C},
    {"attn_k", "self_attn.k_proj", &LayerWeights::wk, nullptr, LayerDim::KVD, LayerDim::C},
    {"attn_v", "self_attn.v_proj", &LayerWeights::wv, nullptr, LayerDim::KVD, LayerDim::C},
    {"attn_output", "self_attn.o_proj", &LayerWeights::wo, nullptr, LayerDim::C, LayerDim::QD},
    {"ffn_norm", "post_attention_layernorm", nullptr, &LayerWeights::ffn_norm, LayerDim::C, LayerDim::C},
    {"ffn_gate", "mlp.gate_proj", &LayerWeights::w_gate, nullptr, LayerDim::HD, LayerDim::C},
    {"ffn_up", "mlp.up_proj", &LayerWeights::w_up, nullptr, LayerDim::HD, LayerDim::C},
    {"ffn_down", "mlp.down_proj", &LayerWeights::w_down, nullptr, LayerDim::C, LayerDim::HD},
};

}  // namespace chimera
