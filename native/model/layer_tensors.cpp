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

const LayerVector kLayerVectors[kLayerVectorCount] = {
    {"attn_q.bias", "self_attn.q_proj.bias", &LayerWeights::bq, LayerVecDim::QD, false},
    {"attn_k.bias", "self_attn.k_proj.bias", &LayerWeights::bk, LayerVecDim::KVD, false},
    {"attn_v.bias", "self_attn.v_proj.bias", &LayerWeights::bv, LayerVecDim::KVD, false},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", &LayerWeights::q_norm, LayerVecDim::HS, true},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", &LayerWeights::k_norm, LayerVecDim::HS, true},
};

}  // namespace chimera
