// GGUF writer for LLaMA models. Metadata types follow llama.cpp's converters exactly (llama.cpp checks
// them strictly): uint32 for sizes and token ids, float32 for eps / RoPE base, bool flags, string[]
// tokens, float32[] scores, int32[] token types.
#include "formats/gguf_writer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "model/layer_tensors.h"
#include "model/model.h"
#include "model/weight_import.h"

namespace chimera {

namespace {

constexpr uint64_t kAlignment = 32;

enum : uint32_t {
  kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9,
};

uint32_t ggml_type_id(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::BF16: return 30;
    case DType::Q8_0: return 8;
    case DType::Q4_0: return 2;
    case DType::Q4_K: return 12;
    case DType::Q5_K: return 13;
    case DType::Q6_K: return 14;
  }
  throw_error(ErrorCode::InvalidArg, "write_gguf: no GGUF type for ", dtype_name(t));
}

// Little-endian serialisation of the header into memory (a few MB at most, for a big vocabulary).
class Buf {
 public:
  std::string bytes;
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void f32(float f) {
    uint32_t v;
    std::memcpy(&v, &f, 4);
    put(v, 4);
  }
  void str(const std::string& s) {
    u64(s.size());
    bytes += s;
  }
  void key(const std::string& k, uint32_t type) {
    str(k);
    u32(type);
    n_kv++;
  }
  void kv_u32(const std::string& k, uint32_t v) { key(k, kU32); u32(v); }
  void kv_f32(const std::string& k, float v) { key(k, kF32); f32(v); }
  void kv_bool(const std::string& k, bool v) { key(k, kBool); bytes += (char)(v ? 1 : 0); }
  void kv_str(const std::string& k, const std::string& v) { key(k, kString); str(v); }
  void array_head(const std::string& k, uint32_t elem, uint64_t n) {
    key(k, kArray);
    u32(elem);
    u64(n);
  }
  uint64_t n_kv = 0;

 private:
  void put(uint64_t v, int n) {
    for (int i = 0; i < n; i++) bytes += (char)(uint8_t)(v >> (8 * i));
  }
};

std::string text_to_sentencepiece(const std::string& piece) {
  std::string out;
  out.reserve(piece.size() + 8);
  for (char c : piece) {
    if (c == ' ') out += "\xE2\x96\x81";  // U+2581
    else out += c;
  }
  return out;
}

uint32_t dim(const char* what, int v) {
  CHIMERA_CHECK(v > 0, ErrorCode::InvalidArg, "write_gguf: ", what, " is ", v, ", expected a positive value");
  return (uint32_t)v;
}

// SentencePiece scores for the file: the tokenizer's own, or, when it merges by explicit ranks, -rank of
// the first merge that produces each piece (what a score-driven tokenizer needs to replay the ranks).
std::vector<float> scores_for_file(const TokenizerData& tok) {
  std::vector<float> scores = tok.scores;
  if (tok.merges.empty()) return scores;
  std::unordered_map<std::string, size_t> id;
  for (size_t i = 0; i < tok.pieces.size(); i++) id.emplace(tok.pieces[i], i);
  std::vector<bool> set(scores.size(), false);
  for (size_t r = 0; r < tok.merges.size(); r++) {
    auto it = id.find(tok.merges[r].first + tok.merges[r].second);
    if (it == id.end() || set[it->second]) continue;
    scores[it->second] = -(float)r;
    set[it->second] = true;
  }
  return scores;
}

void write_all(FILE* f, const void* p, size_t n, bool* ok) {
  if (*ok && n > 0) *ok = std::fwrite(p, 1, n, f) == n;
}

void write_zeros(FILE* f, size_t n, bool* ok) {
  static const char zeros[kAlignment] = {};
  while (n > 0 && *ok) {
    const size_t k = n < kAlignment ? n : kAlignment;
    write_all(f, zeros, k, ok);
    n -= k;
  }
}

// Converts and writes one tensor's rows * cols floats in chunks.
void write_tensor_data(FILE* f, const GgufTensorOut& t, bool* ok) {
  const uint64_t n = (uint64_t)t.rows * (uint64_t)t.cols;
  if (t.dtype == DType::F32) {
    write_all(f, t.data, (size_t)n * 4, ok);
    return;
  }
  if (dtype_is_quantized(t.dtype)) {  // row by row: blocks never cross rows
    std::vector<uint8_t> row(dtype_row_bytes(t.dtype, (size_t)t.cols));
    for (int64_t r = 0; r < t.rows && *ok; r++) {
      row_from_f32(t.dtype, t.data + r * t.cols, row.data(), (size_t)t.cols);
      write_all(f, row.data(), row.size(), ok);
    }
    return;
  }
  constexpr size_t kChunk = 1 << 16;
  std::vector<uint16_t> buf(kChunk);
  for (uint64_t i = 0; i < n && *ok; i += kChunk) {
    const size_t k = (size_t)std::min<uint64_t>(kChunk, n - i);
    for (size_t j = 0; j < k; j++) {
      const float x = t.data[i + j];
      buf[j] = t.dtype == DType::F16 ? f32_to_fp16(x) : f32_to_bf16(x);
    }
    write_all(f, buf.data(), k * 2, ok);
  }
}

}  // namespace

namespace {

// What write_gguf can write, checked before anything is written.
void check_writable(const ModelConfig& cfg, const TokenizerData& tok, const std::vector<GgufTensorOut>& tensors) {
  CHIMERA_CHECK(cfg.architecture == "llama", ErrorCode::Unsupported, "write_gguf: architecture '",
                cfg.architecture, "' cannot be written (only 'llama')");
  CHIMERA_CHECK(cfg.rope_layout == RopeLayout::Interleaved, ErrorCode::Unsupported,
                "write_gguf: GGUF 'llama' models rotate adjacent RoPE pairs; this model uses the half-split "
                "(Hugging Face) layout, so its Q/K rows must be permuted first");
  CHIMERA_CHECK(!cfg.attn_bias && !cfg.qk_norm && !cfg.fused_qkv && !cfg.fused_gate_up &&
                    cfg.rope_freq_factors.empty() && (int64_t)cfg.NH * cfg.HS == cfg.C,
                ErrorCode::Unsupported,
                "write_gguf: only the plain llama layer can be written (no biases, Q/K norms, fused matrices, RoPE "
                "frequency factors or a head size other than width / heads)");
  try {
    validate_config(cfg);
  } catch (const Error& e) {
    throw_error(ErrorCode::InvalidArg, "write_gguf: ", e.what());
  }
  const size_t nv = tok.pieces.size();
  CHIMERA_CHECK(nv > 0 && tok.scores.size() == nv && tok.types.size() == nv, ErrorCode::InvalidArg,
                "write_gguf: the tokenizer has ", nv, " pieces, ", tok.scores.size(), " scores and ",
                tok.types.size(), " token types");
  CHIMERA_CHECK(nv == (size_t)cfg.V, ErrorCode::InvalidArg, "write_gguf: the tokenizer has ", nv,
                " pieces but the config's vocabulary size is ", cfg.V);
  CHIMERA_CHECK(tok.model == "llama", ErrorCode::Unsupported, "write_gguf: tokenizer model '", tok.model,
                "' cannot be written (only SentencePiece 'llama')");
  const std::pair<const char*, int32_t> specials[] = {{"bos", tok.bos}, {"eos", tok.eos}, {"unk", tok.unk}};
  for (const auto& s : specials) {
    CHIMERA_CHECK(s.second >= -1 && s.second < (int64_t)nv, ErrorCode::InvalidArg, "write_gguf: ", s.first,
                  " id ", s.second, " is outside the vocabulary of ", nv);
  }
  std::unordered_set<std::string> names;
  for (const GgufTensorOut& t : tensors) {
    CHIMERA_CHECK(!t.name.empty() && names.insert(t.name).second, ErrorCode::InvalidArg, "write_gguf: tensor name '",
                  t.name, "' is empty or repeated");
    CHIMERA_CHECK(t.rows >= 1 && t.cols >= 1 && t.rows <= (int64_t(1) << 40) / t.cols, ErrorCode::InvalidArg,
                  "write_gguf: tensor ", t.name, " has shape ", t.rows, "x", t.cols);
    CHIMERA_CHECK(t.data != nullptr, ErrorCode::InvalidArg, "write_gguf: tensor ", t.name, " has no data");
    ggml_type_id(t.dtype);
    CHIMERA_CHECK(t.cols % dtype_block_elems(t.dtype) == 0, ErrorCode::InvalidArg, "write_gguf: tensor ", t.name,
                  " has ", t.cols, " columns; ", dtype_name(t.dtype), " needs a multiple of ",
                  dtype_block_elems(t.dtype));
  }
}

// The key/value section: architecture, shapes and the tokenizer.
Buf metadata(const ModelConfig& cfg, const TokenizerData& tok, const std::vector<GgufTensorOut>& tensors) {
  const size_t nv = tok.pieces.size();
  Buf h;
  h.kv_str("general.architecture", "llama");
  h.kv_str("general.name", cfg.name.empty() ? std::string("chimera") : cfg.name);
  bool any_f16 = false, any_bf16 = false;
  for (const GgufTensorOut& t : tensors) {
    any_f16 |= t.dtype == DType::F16;
    any_bf16 |= t.dtype == DType::BF16;
  }
  h.kv_u32("general.file_type", any_f16 ? 1 : any_bf16 ? 32 : 0);  // llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_BF16
  h.kv_u32("llama.context_length", dim("context length", cfg.max_context));
  h.kv_u32("llama.embedding_length", dim("C", cfg.C));
  h.kv_u32("llama.block_count", dim("L", cfg.L));
  h.kv_u32("llama.feed_forward_length", dim("HD", cfg.HD));
  h.kv_u32("llama.rope.dimension_count", dim("rope_dims", cfg.rope_dims));
  h.kv_f32("llama.rope.freq_base", cfg.rope_theta);
  h.kv_u32("llama.attention.head_count", dim("NH", cfg.NH));
  h.kv_u32("llama.attention.head_count_kv", dim("NKV", cfg.NKV));
  h.kv_f32("llama.attention.layer_norm_rms_epsilon", cfg.rms_eps);
  h.kv_u32("llama.vocab_size", dim("V", cfg.V));
  h.kv_str("tokenizer.ggml.model", "llama");
  h.array_head("tokenizer.ggml.tokens", kString, nv);
  for (const std::string& p : tok.pieces) h.str(text_to_sentencepiece(p));
  h.array_head("tokenizer.ggml.scores", kF32, nv);
  for (float s : scores_for_file(tok)) h.f32(s);
  h.array_head("tokenizer.ggml.token_type", kI32, nv);
  for (TokenType t : tok.types) h.u32((uint32_t)(int32_t)t);
  if (tok.bos >= 0) h.kv_u32("tokenizer.ggml.bos_token_id", (uint32_t)tok.bos);
  if (tok.eos >= 0) h.kv_u32("tokenizer.ggml.eos_token_id", (uint32_t)tok.eos);
  if (tok.unk >= 0) h.kv_u32("tokenizer.ggml.unknown_token_id", (uint32_t)tok.unk);
  h.kv_bool("tokenizer.ggml.add_bos_token", tok.add_bos);
  h.kv_bool("tokenizer.ggml.add_eos_token", false);
  h.kv_bool("tokenizer.ggml.add_space_prefix", tok.add_space_prefix);
  return h;
}

// The tensor-info section and where each tensor's data goes in the (aligned) data section.
struct TensorLayout {
  Buf info;
  std::vector<uint64_t> offsets, sizes;
  uint64_t end = 0;  // the data section's aligned size
};

TensorLayout tensor_layout(const std::vector<GgufTensorOut>& tensors) {
  TensorLayout L;
  Buf& info = L.info;
  uint64_t offset = 0;
  for (const GgufTensorOut& t : tensors) {
    info.str(t.name);
    if (t.rows == 1) {
      info.u32(1);
      info.u64((uint64_t)t.cols);
    } else {
      info.u32(2);
      info.u64((uint64_t)t.cols);  // ne[0]: the contiguous dimension
      info.u64((uint64_t)t.rows);
    }
    info.u32(ggml_type_id(t.dtype));
    info.u64(offset);
    L.offsets.push_back(offset);
    L.sizes.push_back((uint64_t)t.rows * (uint64_t)dtype_row_bytes(t.dtype, (size_t)t.cols));
    offset = (offset + L.sizes.back() + kAlignment - 1) / kAlignment * kAlignment;
  }
  L.end = offset;
  return L;
}

}  // namespace

void write_gguf(const std::string& path, const ModelConfig& cfg, const TokenizerData& tok,
                const std::vector<GgufTensorOut>& tensors) {
  check_writable(cfg, tok, tensors);
  const Buf h = metadata(cfg, tok, tensors);
  const TensorLayout L = tensor_layout(tensors);
  Buf head;
  head.bytes = "GGUF";
  head.u32(3);
  head.u64(tensors.size());
  head.u64(h.n_kv);
  const uint64_t header_bytes = head.bytes.size() + h.bytes.size() + L.info.bytes.size();
  const uint64_t data_start = (header_bytes + kAlignment - 1) / kAlignment * kAlignment;

  // ---- file ----
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  CHIMERA_CHECK(f, ErrorCode::NotFound, "write_gguf: cannot write ", tmp, " (missing directory or no permission?)");
  bool ok = true;
  write_all(f, head.bytes.data(), head.bytes.size(), &ok);
  write_all(f, h.bytes.data(), h.bytes.size(), &ok);
  write_all(f, L.info.bytes.data(), L.info.bytes.size(), &ok);
  write_zeros(f, (size_t)(data_start - header_bytes), &ok);
  uint64_t pos = 0;
  for (size_t i = 0; i < tensors.size() && ok; i++) {
    write_zeros(f, (size_t)(L.offsets[i] - pos), &ok);
    write_tensor_data(f, tensors[i], &ok);
    pos = L.offsets[i] + L.sizes[i];
  }
  // The data section ends aligned too, as llama.cpp's writer does.
  write_zeros(f, (size_t)(L.end - pos), &ok);
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw_error(ErrorCode::NotFound, "write_gguf: could not write ", path, " (disk full or no permission?)");
  }
}

std::vector<GgufTensorOut> model_tensors_for_gguf(const ModelWeights& w, const ModelConfig& cfg, DType matrix_dtype) {
  ggml_type_id(matrix_dtype);
  validate_weights(cfg, w);
  const WeightNames names = gguf_weight_names();
  std::vector<GgufTensorOut> out;
  const auto matrix = [&](const std::string& name, const TensorView& v) {
    CHIMERA_CHECK(v.dtype == DType::F32, ErrorCode::InvalidArg, "model_tensors_for_gguf: tensor ", name, " is ",
                  dtype_name(v.dtype), "; only F32 weights can be exported");
    out.push_back({name, matrix_dtype, v.rows, v.cols, static_cast<const float*>(v.data)});
  };
  const auto vec = [&](const std::string& name, const float* p) {
    out.push_back({name, DType::F32, 1, (int64_t)cfg.C, p});
  };
  matrix(names.tok_embd, w.tok_embd);
  for (int l = 0; l < cfg.L; l++) {
    const LayerWeights& lw = w.layers[(size_t)l];
    const std::string p = names.layer_prefix + std::to_string(l);
    for (int i = 0; i < kLayerTensorCount; i++) {
      const LayerTensor& lt = kLayerTensors[i];
      if (lt.is_norm()) vec(p + names.layer_suffix[i], lw.*lt.norm);
      else matrix(p + names.layer_suffix[i], lw.*lt.matrix);
    }
  }
  vec(names.output_norm, w.output_norm);
  if (!cfg.tied_output) matrix(names.output, w.output);
  return out;
}

}  // namespace chimera
