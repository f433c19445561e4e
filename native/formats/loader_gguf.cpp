// GGUF models of the architectures in model_config.h: hyper-parameters from the <arch>.* keys, the
// tokenizer (SentencePiece `llama` or byte-level `gpt2`) from the tokenizer.ggml.* keys, and weights
// straight from the mapping (see gguf_file.h for the container).
#include <climits>
#include <cmath>
#include <filesystem>

#include "common/error.h"
#include "formats/gguf_file.h"
#include "model/model.h"
#include "model/weight_import.h"
#include "tokenizer/piece_text.h"

namespace chimera {

namespace {

int to_dim(const GgufFile& g, const std::string& key, int64_t v) {
  CHIMERA_CHECK(v >= 0 && v <= INT_MAX, ErrorCode::Format, g.file()->path(), ": metadata ", key, " = ", v,
                " is out of range");
  return (int)v;
}

int required_int(const GgufFile& g, const std::string& key) {
  int64_t v = 0;
  CHIMERA_CHECK(g.get_int(key, &v), ErrorCode::Format, g.file()->path(), ": required metadata ", key,
                " is missing; re-convert the model with a current llama.cpp");
  return to_dim(g, key, v);
}

int optional_int(const GgufFile& g, const std::string& key, int fallback) {
  int64_t v = 0;
  return g.get_int(key, &v) ? to_dim(g, key, v) : fallback;
}

// Features of these architectures that this engine does not implement: refusing is better than
// silently computing something else.
void reject_variants(const GgufFile& g, const ModelConfig& cfg) {
  const std::string& path = g.file()->path();
  const std::string a = cfg.architecture + ".";
  CHIMERA_CHECK(optional_int(g, a + "expert_count", 0) == 0, ErrorCode::Unsupported, path,
                ": mixture-of-experts models are not supported");
  std::string scaling;
  CHIMERA_CHECK(!g.get_string(a + "rope.scaling.type", &scaling) || scaling == "none" || scaling == "linear",
                ErrorCode::Unsupported, path, ": RoPE scaling '", scaling,
                "' is not supported (none, linear, and Llama 3's rope_freqs are)");
  CHIMERA_CHECK(g.tensor("rope_factors_long.weight") == nullptr && g.tensor("rope_factors_short.weight") == nullptr,
                ErrorCode::Unsupported, path,
                ": long-context RoPE factors (rope_factors_long/short, Phi-3 128k 'longrope') are not supported; use "
                "a 4k model");
  const int value_len = optional_int(g, a + "attention.value_length", cfg.HS);
  CHIMERA_CHECK(value_len == cfg.HS, ErrorCode::Unsupported, path, ": value head size ", value_len,
                " differs from the key head size ", cfg.HS, ", which is not supported");
}

// Which optional parts the file's layers have, from the architecture and from the tensors themselves
// (llama.cpp also loads them whenever present, e.g. biases in a `llama` file).
void read_layer_parts(const GgufFile& g, ModelConfig& cfg) {
  const std::string& arch = cfg.architecture;
  cfg.rope_layout = arch == "llama" ? RopeLayout::Interleaved  // the converter permutes Q/K into adjacent pairs
                                    : RopeLayout::HalfSplit;   // qwen2, qwen3, phi3: NeoX rotation, unpermuted
  cfg.attn_bias = arch == "qwen2" || g.tensor("blk.0.attn_q.bias") != nullptr;
  cfg.qk_norm = arch == "qwen3" || g.tensor("blk.0.attn_q_norm.weight") != nullptr;
  cfg.fused_qkv = g.tensor("blk.0.attn_qkv.weight") != nullptr;
  cfg.fused_gate_up = arch == "phi3" && g.tensor("blk.0.ffn_gate.weight") == nullptr;
}

ModelConfig read_config(const GgufFile& g) {
  const std::string& path = g.file()->path();
  ModelConfig cfg;
  CHIMERA_CHECK(g.get_string("general.architecture", &cfg.architecture), ErrorCode::Format, path,
                ": general.architecture is missing");
  CHIMERA_CHECK(is_known_architecture(cfg.architecture), ErrorCode::Unsupported, path, ": architecture '",
                cfg.architecture, "' is not supported (llama, qwen2, qwen3, phi3)");
  if (!g.get_string("general.name", &cfg.name)) cfg.name = std::filesystem::path(path).stem().string();
  cfg.format = "gguf";
  const std::string a = cfg.architecture + ".";
  cfg.C = required_int(g, a + "embedding_length");
  cfg.L = required_int(g, a + "block_count");
  cfg.HD = required_int(g, a + "feed_forward_length");
  cfg.NH = required_int(g, a + "attention.head_count");
  cfg.NKV = optional_int(g, a + "attention.head_count_kv", cfg.NH);
  cfg.max_context = required_int(g, a + "context_length");
  cfg.HS = optional_int(g, a + "attention.key_length", cfg.NH > 0 ? cfg.C / cfg.NH : 0);
  cfg.rope_dims = optional_int(g, a + "rope.dimension_count", cfg.HS);
  cfg.V = optional_int(g, a + "vocab_size", 0);  // 0: resolved from the tokenizer or the embedding
  double v = 0;
  CHIMERA_CHECK(g.get_float(a + "attention.layer_norm_rms_epsilon", &v), ErrorCode::Format, path,
                ": required metadata ", a, "attention.layer_norm_rms_epsilon is missing");
  cfg.rms_eps = (float)v;
  cfg.rope_theta = g.get_float(a + "rope.freq_base", &v) ? (float)v : 10000.0f;
  read_layer_parts(g, cfg);
  reject_variants(g, cfg);
  return cfg;
}

// RoPE frequency scaling as llama.cpp applies it: the rope_freqs tensor (Llama 3.x; the converter
// computes the "llama3" factors) divides each pair's angle, and linear scaling divides every angle by
// rope.scaling.factor. Both become one factor per pair.
void read_rope_scaling(const GgufFile& g, WeightStorage& storage, ModelConfig& cfg) {
  const std::string& path = g.file()->path();
  const int pairs = cfg.rope_dims / 2;
  std::string type;
  double linear = 1.0;
  if (g.get_string(cfg.architecture + ".rope.scaling.type", &type) && type == "linear") {
    CHIMERA_CHECK(g.get_float(cfg.architecture + ".rope.scaling.factor", &linear) && std::isfinite(linear) &&
                      linear > 0,
                  ErrorCode::Format, path, ": linear RoPE scaling needs a positive rope.scaling.factor");
  }
  const RawTensor* rf = g.tensor("rope_freqs.weight");
  if (rf == nullptr && linear == 1.0) return;
  cfg.rope_freq_factors.assign((size_t)pairs, 1.0f);
  if (rf != nullptr) {
    const float* f = import_vector_f32(storage, *rf, pairs);  // (rope_dims / 2)
    cfg.rope_freq_factors.assign(f, f + pairs);
  }
  for (float& f : cfg.rope_freq_factors) {
    f = (float)(f * linear);
    CHIMERA_CHECK(std::isfinite(f) && f > 0, ErrorCode::Format, path, ": RoPE frequency factor ", f,
                  " is not a positive number");
  }
}

// A special-token id key: absent -> fallback (when in range, else -1); present -> must be in range.
int32_t token_id(const GgufFile& g, const std::string& key, int32_t fallback, size_t n) {
  int64_t v = 0;
  if (!g.get_int(key, &v)) return fallback >= 0 && (size_t)fallback < n ? fallback : -1;
  CHIMERA_CHECK(v >= 0 && (uint64_t)v < n, ErrorCode::Format, g.file()->path(), ": ", key, " = ", v,
                " is outside the vocabulary of ", n, " tokens");
  return (int32_t)v;
}

// tokenizer.ggml.merges ("left right" in the byte alphabet) of a byte-level vocabulary.
void read_merges(const GgufFile& g, TokenizerData& d) {
  const std::string& path = g.file()->path();
  const GgufKV* kv = g.find("tokenizer.ggml.merges");
  CHIMERA_CHECK(kv != nullptr, ErrorCode::Format, path, ": a gpt2 tokenizer needs tokenizer.ggml.merges");
  std::vector<std::string> merges = g.string_array(*kv);
  d.merges.reserve(merges.size());
  for (const std::string& m : merges) {
    const size_t sp = m.find(' ', 1);  // the alphabet has no space, so the first one separates
    CHIMERA_CHECK(sp != std::string::npos && sp + 1 < m.size(), ErrorCode::Format, path, ": merge '", m,
                  "' is not two pieces separated by a space");
    d.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
}

void read_token_types(const GgufFile& g, TokenizerData& d) {
  const std::string& path = g.file()->path();
  const size_t n = d.pieces.size();
  d.types.assign(n, TokenType::Normal);
  if (const GgufKV* t = g.find("tokenizer.ggml.token_type")) {
    CHIMERA_CHECK(t->count == n, ErrorCode::Format, path, ": tokenizer.ggml.token_type has ", t->count, " entries for ",
                  n, " tokens");
    const std::vector<int64_t> types = g.int_array(*t);
    for (size_t i = 0; i < n; i++) {
      CHIMERA_CHECK(types[i] >= 0 && types[i] <= 6, ErrorCode::Format, path, ": token ", i, " has unknown type ",
                    types[i]);
      d.types[i] = types[i] == 0 ? TokenType::Normal : (TokenType)types[i];  // 0 = llama.cpp's "undefined"
    }
  } else if (d.model == "llama") {
    for (size_t i = 0; i < n; i++) {
      if (is_byte_piece(d.pieces[i])) d.types[i] = TokenType::Byte;
    }
  }
}

TokenizerData read_tokenizer(const GgufFile& g) {
  const std::string& path = g.file()->path();
  const GgufKV* tokens = g.find("tokenizer.ggml.tokens");
  TokenizerData d;
  CHIMERA_CHECK(tokens != nullptr && g.get_string("tokenizer.ggml.model", &d.model), ErrorCode::Format, path,
                ": the file has no tokenizer (tokenizer.ggml.model / tokenizer.ggml.tokens); re-convert it with its "
                "tokenizer");
  CHIMERA_CHECK(d.model == "llama" || d.model == "gpt2", ErrorCode::Unsupported, path, ": tokenizer model '", d.model,
                "' is not supported (only SentencePiece 'llama' and byte-level BPE 'gpt2' tokenizers are)");
  const bool spm = d.model == "llama";
  d.pieces = g.string_array(*tokens);
  if (spm) {
    for (std::string& p : d.pieces) p = sentencepiece_to_text(p);
  }
  const size_t n = d.pieces.size();
  CHIMERA_CHECK(n > 0, ErrorCode::Format, path, ": tokenizer.ggml.tokens is empty");
  // Array lengths are checked before decoding, so a bogus count never sizes an allocation.
  d.scores.assign(n, 0.0f);
  if (const GgufKV* s = g.find("tokenizer.ggml.scores")) {
    CHIMERA_CHECK(s->count == n, ErrorCode::Format, path, ": tokenizer.ggml.scores has ", s->count, " entries for ", n,
                  " tokens");
    d.scores = g.float_array(*s);
  }
  read_token_types(g, d);
  // SentencePiece files predate some keys, so llama.cpp's defaults fill in; byte-level ones have no defaults.
  d.bos = token_id(g, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, n);
  d.eos = token_id(g, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, n);
  d.unk = token_id(g, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n);
  d.eot = token_id(g, "tokenizer.ggml.eot_token_id", -1, n);
  d.eom = token_id(g, "tokenizer.ggml.eom_token_id", -1, n);
  g.get_string("tokenizer.chat_template", &d.chat_template);
  if (spm) {
    if (!g.get_bool("tokenizer.ggml.add_bos_token", &d.add_bos)) d.add_bos = true;
    if (!g.get_bool("tokenizer.ggml.add_space_prefix", &d.add_space_prefix)) d.add_space_prefix = true;
    return d;
  }
  CHIMERA_CHECK(g.get_string("tokenizer.ggml.pre", &d.pre), ErrorCode::Unsupported, path,
                ": a gpt2 tokenizer without tokenizer.ggml.pre is not supported; re-convert it with a current llama.cpp");
  const PreTokenizer pre = pre_tokenizer_from_name(d.pre);  // E_UNSUPPORTED for unknown names
  // As llama.cpp: Llama 3 vocabularies take a whole-piece word as is and add BOS unless told otherwise.
  d.ignore_merges = pre == PreTokenizer::Llama3;
  if (!g.get_bool("tokenizer.ggml.add_bos_token", &d.add_bos)) d.add_bos = pre == PreTokenizer::Llama3;
  d.add_space_prefix = false;
  read_merges(g, d);
  return d;
}

}  // namespace

std::unique_ptr<Model> load_gguf(const std::string& path) {
  GgufFile g(path);
  auto m = std::make_unique<Model>();
  m->path = path;
  m->config = read_config(g);
  TokenizerData tok = read_tokenizer(g);
  ModelConfig& cfg = m->config;
  if (cfg.V == 0) cfg.V = (int)tok.pieces.size();
  CHIMERA_CHECK(tok.pieces.size() == (size_t)cfg.V, ErrorCode::Format, path, ": the tokenizer has ",
                tok.pieces.size(), " tokens but ", cfg.architecture, ".vocab_size is ", cfg.V);
  validate_config(cfg);
  m->storage.mapped_files.push_back(g.file());
  read_rope_scaling(g, m->storage, cfg);
  const TensorLookup lookup = [&g](const std::string& name) { return g.tensor(name); };
  import_weights(cfg, gguf_weight_names(), lookup, false, path, m->storage, m->weights);
  validate_weights(cfg, m->weights);
  m->tokenizer = Tokenizer(std::move(tok));
  return m;
}

}  // namespace chimera
