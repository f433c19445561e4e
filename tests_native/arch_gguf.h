// Test helper: a tiny random GGUF of each architecture chimera runs, laid out as llama.cpp's converter
// writes it (the C++ twin of tools/writers/arch-model.js, for native tests that must run without Node):
//   "llama3"  a `llama` model with rope.freq_base 500000 and rope_freqs.weight (per-pair divisors)
//   "qwen2"   Q/K/V biases, tied output;   "qwen3"  per-head Q/K norms, head size 2 x C / NH
//   "phi3"    fused attn_qkv and ffn_up = [gate; up]
// Widths: C 64, 2 layers, 4 heads, 2 KV heads, FFN 128, a 264-token SentencePiece-style vocabulary.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include "check.h"
#include "gguf_builder.h"

namespace test {

struct ArchShape {
  int C = 64, L = 2, NH = 4, NKV = 2, HS = 16, HD = 128, V = 264;
};

inline ArchShape arch_shape(const std::string& arch) {
  ArchShape s;
  if (arch == "qwen3") s.HS = 32;
  return s;
}

inline void arch_metadata(GgufBuilder& g, const std::string& gguf_arch, const ArchShape& s, float theta) {
  const std::string a = gguf_arch + ".";
  g.kv_string("general.architecture", gguf_arch);
  g.kv_u32(a + "embedding_length", s.C);
  g.kv_u32(a + "block_count", s.L);
  g.kv_u32(a + "feed_forward_length", s.HD);
  g.kv_u32(a + "attention.head_count", s.NH);
  g.kv_u32(a + "attention.head_count_kv", s.NKV);
  if (s.HS * s.NH != s.C) g.kv_u32(a + "attention.key_length", s.HS);
  g.kv_u32(a + "rope.dimension_count", s.HS);
  g.kv_f32(a + "rope.freq_base", theta);
  g.kv_u32(a + "context_length", 256);
  g.kv_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  const std::vector<std::string> pieces = test::tiny_sentencepiece_pieces();
  const int V = (int)pieces.size();
  g.kv_string("tokenizer.ggml.model", "llama");
  g.kv_strings("tokenizer.ggml.tokens", pieces);
  std::vector<int32_t> types(V, 1);
  types[0] = 2, types[1] = types[2] = 3;
  for (int i = 3; i < 259; i++) types[i] = 6;
  g.kv_i32s("tokenizer.ggml.token_type", types);
  g.kv_f32s("tokenizer.ggml.scores", std::vector<float>(V, 0.0f));
}

// The file's bytes; matrices in ggml `type` (F32, F16 or Q8_0), vectors F32.
inline std::vector<uint8_t> make_arch_gguf(const std::string& arch, uint32_t type, uint32_t seed = 5) {
  const ArchShape s = arch_shape(arch);
  const int QD = s.NH * s.HS, KVD = s.NKV * s.HS;
  GgufBuilder g;
  const bool llama = arch == "llama" || arch == "llama3";
  arch_metadata(g, llama ? "llama" : arch, s, arch == "llama3" ? 500000.f : 10000.f);
  Rng rng(seed);
  const auto matrix = [&](const std::string& name, uint64_t rows, uint64_t cols, float scale) {
    g.tensor(name, {cols, rows}, type, encode_floats(type, random_floats(rng, rows * cols, -scale, scale)));
  };
  const auto vec = [&](const std::string& name, uint64_t n, float lo, float hi) {
    g.tensor(name, {n}, kGgmlF32, encode_floats(kGgmlF32, random_floats(rng, n, lo, hi)));
  };
  matrix("token_embd.weight", s.V, s.C, 1.f);
  for (int l = 0; l < s.L; l++) {
    const std::string p = "blk." + std::to_string(l) + ".";
    vec(p + "attn_norm.weight", s.C, 0.8f, 1.2f);
    if (arch == "phi3") {
      matrix(p + "attn_qkv.weight", QD + 2 * KVD, s.C, 0.35f);
    } else {
      matrix(p + "attn_q.weight", QD, s.C, 0.35f);
      matrix(p + "attn_k.weight", KVD, s.C, 0.35f);
      matrix(p + "attn_v.weight", KVD, s.C, 0.35f);
    }
    if (arch == "qwen2") {
      vec(p + "attn_q.bias", QD, -0.5f, 0.5f);
      vec(p + "attn_k.bias", KVD, -0.5f, 0.5f);
      vec(p + "attn_v.bias", KVD, -0.5f, 0.5f);
    }
    if (arch == "qwen3") {
      vec(p + "attn_q_norm.weight", s.HS, 0.5f, 1.5f);
      vec(p + "attn_k_norm.weight", s.HS, 0.5f, 1.5f);
    }
    matrix(p + "attn_output.weight", s.C, QD, 0.35f);
    vec(p + "ffn_norm.weight", s.C, 0.8f, 1.2f);
    if (arch == "phi3") {
      matrix(p + "ffn_up.weight", 2 * s.HD, s.C, 0.35f);
    } else {
      matrix(p + "ffn_gate.weight", s.HD, s.C, 0.35f);
      matrix(p + "ffn_up.weight", s.HD, s.C, 0.35f);
    }
    matrix(p + "ffn_down.weight", s.C, s.HD, 0.35f);
  }
  vec("output_norm.weight", s.C, 0.8f, 1.2f);
  if (arch != "qwen2") matrix("output.weight", s.V, s.C, 0.35f);
  if (arch == "llama3") vec("rope_freqs.weight", s.HS / 2, 1.f, 8.f);
  return g.build();
}

}  // namespace test
