// Hugging Face directories of the model_config.h architectures (Llama, Qwen2, Qwen3, Phi-3):
// config.json, model.safetensors (or a sharded set named by model.safetensors.index.json),
// tokenizer.json and tokenizer_config.json. HF checkpoints rotate
// RoPE over the two halves of each head (NeoX style), so they load with RopeLayout::HalfSplit.
#include <climits>
#include <cmath>
#include <filesystem>
#include <map>

#include "common/error.h"
#include "common/json.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "tokenizer/piece_text.h"

namespace chimera {

namespace {

namespace fs = std::filesystem;

std::string join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

JsonDocument read_json(const std::string& path) { return Json::parse(read_text_file(path), path); }

int int_field(const Json& cfg, const char* key, const std::string& file, const int* fallback = nullptr) {
  const Json* v = cfg.find(key);
  if (v == nullptr || v->is_null()) {
    CHIMERA_CHECK(fallback != nullptr, ErrorCode::Format, file, ": required field ", key, " is missing");
    return *fallback;
  }
  const int64_t n = v->integer((file + " " + key).c_str());
  CHIMERA_CHECK(n >= 0 && n <= INT_MAX, ErrorCode::Format, file, ": ", key, " = ", n, " is out of range");
  return (int)n;
}

double float_field(const Json& cfg, const char* key, double fallback, const std::string& file) {
  const Json* v = cfg.find(key);
  return v == nullptr || v->is_null() ? fallback : v->number((file + " " + key).c_str());
}

bool bool_field(const Json& cfg, const char* key, bool fallback, const std::string& file) {
  const Json* v = cfg.find(key);
  return v == nullptr || v->is_null() ? fallback : v->boolean((file + " " + key).c_str());
}

// transformers' model_type / architectures entry of each family.
struct HfArch {
  const char* model_type;
  const char* class_name;
  const char* arch;
};
constexpr HfArch kHfArchs[] = {{"llama", "LlamaForCausalLM", "llama"},
                               {"qwen2", "Qwen2ForCausalLM", "qwen2"},
                               {"qwen3", "Qwen3ForCausalLM", "qwen3"},
                               {"phi3", "Phi3ForCausalLM", "phi3"}};

std::string architecture_of(const Json& cfg, const std::string& file) {
  const Json* type = cfg.find("model_type");
  std::string seen = type && type->is_string() ? std::string(type->string()) : "";
  for (const HfArch& a : kHfArchs)
    if (seen == a.model_type) return a.arch;
  if (const Json* archs = cfg.find("architectures"); archs && archs->is_array()) {
    for (const Json& x : archs->array()) {
      if (!x.is_string()) continue;
      for (const HfArch& a : kHfArchs)
        if (x.string() == a.class_name) return a.arch;
      if (seen.empty()) seen = std::string(x.string());
    }
  }
  throw_error(ErrorCode::Unsupported, file, ": model type '", seen,
              "' is not supported (llama, qwen2, qwen3, phi3: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
              "Phi3ForCausalLM)");
}

void check_variants(const Json& cfg, const std::string& arch, const std::string& file) {
  const Json* act = cfg.find("hidden_act");
  CHIMERA_CHECK(act == nullptr || !act->is_string() || act->string() == "silu", ErrorCode::Unsupported, file,
                ": hidden_act '", act ? act->string() : std::string_view(), "' is not supported (only silu)");
  // qwen2 always has Q/K/V biases; attention_bias elsewhere also adds an output bias, which we lack.
  CHIMERA_CHECK(!bool_field(cfg, "attention_bias", false, file) && !bool_field(cfg, "mlp_bias", false, file),
                ErrorCode::Unsupported, file, ": projection biases (attention_bias / mlp_bias) are not supported");
  CHIMERA_CHECK(!(arch == "qwen2" || arch == "qwen3") || !bool_field(cfg, "use_sliding_window", false, file),
                ErrorCode::Unsupported, file, ": sliding-window attention (use_sliding_window) is not supported");
}

// Per-pair divisors of the RoPE angle for Llama 3.x's "llama3" scaling, as llama.cpp's converter
// computes them into rope_freqs.weight (and as transformers scales inv_freq): long wavelengths are
// slowed by `factor`, short ones kept, the band between blended smoothly.
std::vector<float> llama3_rope_factors(const Json& s, double theta, int rope_dims, const std::string& file) {
  const double factor = float_field(s, "factor", 8.0, file);
  const double low = float_field(s, "low_freq_factor", 1.0, file);
  const double high = float_field(s, "high_freq_factor", 4.0, file);
  const double old_ctx = float_field(s, "original_max_position_embeddings", 8192.0, file);
  CHIMERA_CHECK(factor > 0 && low > 0 && high > low && old_ctx > 0, ErrorCode::Format, file,
                ": llama3 rope_scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0");
  const double pi = 3.14159265358979323846;
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  std::vector<float> out;
  for (int i = 0; i < rope_dims / 2; i++) {
    const double freq = 1.0 / std::pow(theta, 2.0 * i / rope_dims);
    const double wavelen = 2 * pi / freq;
    double f = 1.0;
    if (wavelen > low_wavelen) {
      f = factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      f = 1.0 / ((1 - smooth) / factor + smooth);
    }
    out.push_back((float)f);
  }
  return out;
}

// rope_scaling: null, "linear" (every angle / factor) or "llama3"; anything else is refused.
void read_rope_scaling(const Json& j, ModelConfig& cfg, const std::string& file) {
  const Json* s = j.find("rope_scaling");
  if (s == nullptr || s->is_null()) return;
  const Json* t = s->find("rope_type");
  if (t == nullptr) t = s->find("type");
  const std::string type = t && t->is_string() ? std::string(t->string()) : "";
  if (type == "default") return;
  if (type == "llama3") {
    cfg.rope_freq_factors = llama3_rope_factors(*s, cfg.rope_theta, cfg.rope_dims, file);
    return;
  }
  CHIMERA_CHECK(type == "linear", ErrorCode::Unsupported, file, ": rope_scaling type '", type,
                "' is not supported (linear and llama3 are; for Phi-3 use a 4k model without longrope)");
  const double factor = float_field(*s, "factor", 1.0, file);
  CHIMERA_CHECK(std::isfinite(factor) && factor > 0, ErrorCode::Format, file, ": rope_scaling factor ", factor,
                " must be positive");
  cfg.rope_freq_factors.assign((size_t)cfg.rope_dims / 2, (float)factor);
}

ModelConfig read_config(const Json& j, const std::string& dir, const std::string& file) {
  ModelConfig cfg;
  cfg.architecture = architecture_of(j, file);
  check_variants(j, cfg.architecture, file);
  cfg.name = fs::path(dir).filename().string();
  if (cfg.name.empty()) cfg.name = fs::path(dir).parent_path().filename().string();  // "dir/" form
  cfg.format = "hf";
  cfg.C = int_field(j, "hidden_size", file);
  cfg.L = int_field(j, "num_hidden_layers", file);
  cfg.NH = int_field(j, "num_attention_heads", file);
  cfg.NKV = int_field(j, "num_key_value_heads", file, &cfg.NH);
  cfg.HD = int_field(j, "intermediate_size", file);
  cfg.V = int_field(j, "vocab_size", file);
  const int default_ctx = 2048;  // transformers' LlamaConfig default
  cfg.max_context = int_field(j, "max_position_embeddings", file, &default_ctx);
  const int derived_hs = cfg.NH > 0 ? cfg.C / cfg.NH : 0;
  cfg.HS = int_field(j, "head_dim", file, &derived_hs);
  const double rotary = float_field(j, "partial_rotary_factor", 1.0, file);
  CHIMERA_CHECK(rotary > 0 && rotary <= 1, ErrorCode::Format, file, ": partial_rotary_factor ", rotary,
                " must be in (0, 1]");
  cfg.rope_dims = (int)(cfg.HS * rotary);
  cfg.rms_eps = (float)float_field(j, "rms_norm_eps", cfg.architecture == "phi3" ? 1e-5 : 1e-6, file);
  cfg.rope_theta = (float)float_field(j, "rope_theta", 10000.0, file);
  cfg.rope_layout = RopeLayout::HalfSplit;
  cfg.tied_output = bool_field(j, "tie_word_embeddings", false, file);
  cfg.attn_bias = cfg.architecture == "qwen2";
  cfg.qk_norm = cfg.architecture == "qwen3";
  cfg.fused_qkv = cfg.fused_gate_up = cfg.architecture == "phi3";
  read_rope_scaling(j, cfg, file);
  return cfg;
}

// A shard name from the index must be a plain file name inside the model directory.
void check_shard_name(const std::string& name, const std::string& index_path) {
  CHIMERA_CHECK(!name.empty() && name.find('/') == std::string::npos && name.find('\\') == std::string::npos &&
                    name != "." && name != "..",
                ErrorCode::Format, index_path, ": shard name '", name, "' is not a plain file name");
}

// Maps each shard once; returns a name -> tensor table over all of them.
std::map<std::string, const RawTensor*> open_shards(const std::string& dir,
                                                    std::vector<std::unique_ptr<SafetensorsFile>>& shards) {
  const std::string single = join(dir, "model.safetensors");
  const std::string index_path = join(dir, "model.safetensors.index.json");
  std::map<std::string, const RawTensor*> table;
  if (fs::exists(single)) {
    shards.push_back(std::make_unique<SafetensorsFile>(single));
    for (const RawTensor& t : shards.back()->tensors()) table[t.name] = &t;
    return table;
  }
  CHIMERA_CHECK(fs::exists(index_path), ErrorCode::NotFound, dir,
                " has neither model.safetensors nor model.safetensors.index.json (only safetensors checkpoints are "
                "supported, not pytorch_model.bin)");
  const JsonDocument index = read_json(index_path);
  const Json* map = index.find("weight_map");
  CHIMERA_CHECK(map != nullptr, ErrorCode::Format, index_path, ": weight_map is missing");
  std::map<std::string, SafetensorsFile*> by_file;
  for (const auto& kv : map->object((index_path + " weight_map").c_str())) {
    const std::string shard(kv.second.string((index_path + " weight_map entry").c_str()));
    const std::string name(kv.first);
    check_shard_name(shard, index_path);
    auto it = by_file.find(shard);
    if (it == by_file.end()) {
      shards.push_back(std::make_unique<SafetensorsFile>(join(dir, shard)));
      it = by_file.emplace(shard, shards.back().get()).first;
    }
    const RawTensor* t = it->second->tensor(name);
    CHIMERA_CHECK(t != nullptr, ErrorCode::Tensor, index_path, ": tensor ", name, " should be in ", shard,
                  ", which does not have it");
    table[name] = t;
  }
  return table;
}

// Looks up a token's id by its text in tokenizer_config.json's bos_token / eos_token (string or object).
bool special_from_tokenizer_config(const Json& tc, const char* key, const TokenizerData& d, int32_t* id) {
  const Json* v = tc.find(key);
  if (v == nullptr) return false;
  const Json* content = v->is_object() ? v->find("content") : v;
  if (content == nullptr || !content->is_string()) return false;
  // SentencePiece pieces were stored with spaces for "▁"; byte-level special pieces are stored as written.
  const std::string text = d.model == "gpt2" ? std::string(content->string())
                                              : sentencepiece_to_text(std::string(content->string()));
  for (size_t i = 0; i < d.pieces.size(); i++) {
    if (d.pieces[i] == text) { *id = (int32_t)i; return true; }
  }
  return false;
}

// config.json's bos_token_id / eos_token_id (an int, or a list whose first entry is used).
bool special_from_config(const Json& cfg, const char* key, int32_t n, int32_t* id) {
  const Json* v = cfg.find(key);
  if (v != nullptr && v->is_array() && !v->array().empty()) v = &v->array()[0];
  if (v == nullptr || !v->is_number()) return false;
  const int64_t x = v->integer(key);
  if (x < 0 || x >= n) return false;
  *id = (int32_t)x;
  return true;
}

// tokenizer_config.json's chat_template: a string, or a list of {name, template} where "default" is used.
std::string chat_template(const Json& tc) {
  const Json* t = tc.is_object() ? tc.find("chat_template") : nullptr;
  if (t == nullptr) return "";
  if (t->is_string()) return std::string(t->string());
  if (!t->is_array()) return "";
  for (const Json& e : t->array()) {
    const Json* name = e.is_object() ? e.find("name") : nullptr;
    const Json* text = e.is_object() ? e.find("template") : nullptr;
    if (name && name->is_string() && name->string() == "default" && text && text->is_string())
      return std::string(text->string());
  }
  return "";
}

TokenizerData read_tokenizer(const std::string& dir, const Json& config, int V) {
  const std::string tok_path = join(dir, "tokenizer.json");
  CHIMERA_CHECK(fs::exists(tok_path), ErrorCode::NotFound, dir,
                " has no tokenizer.json (a SentencePiece tokenizer.model alone is not supported)");
  TokenizerData d = read_hf_tokenizer_json(tok_path);
  const int32_t n = (int32_t)d.pieces.size();
  CHIMERA_CHECK(n <= V, ErrorCode::Format, tok_path, ": the tokenizer has ", n,
                " tokens, more than the model's vocab_size ", V);
  const std::string tc_path = join(dir, "tokenizer_config.json");
  JsonDocument tc;  // null when absent
  if (fs::exists(tc_path)) tc = read_json(tc_path);
  if (!special_from_tokenizer_config(tc, "bos_token", d, &d.bos)) special_from_config(config, "bos_token_id", n, &d.bos);
  if (!special_from_tokenizer_config(tc, "eos_token", d, &d.eos)) special_from_config(config, "eos_token_id", n, &d.eos);
  d.add_bos = bool_field(tc, "add_bos_token", d.add_bos, tc_path);
  d.chat_template = chat_template(tc);
  // Embedding rows past the tokenizer's vocabulary (padding) get placeholder pieces the encoder never emits.
  for (int32_t i = n; i < V; i++) {
    d.pieces.push_back("<chimera:unused:" + std::to_string(i) + ">");
    d.scores.push_back(0.0f);
    d.types.push_back(TokenType::Unused);
  }
  return d;
}

}  // namespace

std::unique_ptr<Model> load_hf_dir(const std::string& dir) {
  const std::string config_path = join(dir, "config.json");
  CHIMERA_CHECK(fs::exists(config_path), ErrorCode::NotFound, dir,
                " has no config.json, so it is not a Hugging Face model directory");
  const JsonDocument config = read_json(config_path);
  auto m = std::make_unique<Model>();
  m->path = dir;
  m->config = read_config(config, dir, config_path);
  ModelConfig& cfg = m->config;
  validate_config(cfg);
  std::vector<std::unique_ptr<SafetensorsFile>> shards;
  const auto table = open_shards(dir, shards);
  for (const auto& s : shards) m->storage.mapped_files.push_back(s->file());
  const TensorLookup lookup = [&table](const std::string& name) -> const RawTensor* {
    const auto it = table.find(name);
    return it == table.end() ? nullptr : it->second;
  };
  import_weights(cfg, hf_weight_names(), lookup, cfg.tied_output, dir, m->storage, m->weights);
  validate_weights(cfg, m->weights);
  m->tokenizer = Tokenizer(read_tokenizer(dir, config, cfg.V));
  return m;
}

}  // namespace chimera
