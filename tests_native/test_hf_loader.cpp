// ctest: the Hugging Face directory loader and tokenizer.json reader, on directories written here
// (config.json, model.safetensors or shards + index, tokenizer.json, tokenizer_config.json): the good
// case, then each way such a directory can be wrong or unsupported. The jest suite covers directories
// written by tools/writers (cross-format logits); this one needs no Node.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "check.h"
#include "common/error.h"
#include "common/json.h"
#include "model/model.h"

using namespace chimera;
namespace fs = std::filesystem;

namespace {

constexpr int kC = 32, kNH = 4, kNKV = 2, kHD = 64, kL = 1;
const std::string kSp = "\xE2\x96\x81";  // U+2581

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(s.data(), (std::streamsize)s.size());
}

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype = "F32";
};

// The tensors of a kL-layer model in HF names (lm_head omitted: tied).
std::vector<Tensor> model_tensors(int V) {
  const int KVD = kC / kNH * kNKV;
  std::vector<Tensor> t = {{"model.embed_tokens.weight", {V, kC}}, {"model.norm.weight", {kC}}};
  for (int l = 0; l < kL; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {kC}});
    t.push_back({p + "self_attn.q_proj.weight", {kC, kC}});
    t.push_back({p + "self_attn.k_proj.weight", {KVD, kC}});
    t.push_back({p + "self_attn.v_proj.weight", {KVD, kC}});
    t.push_back({p + "self_attn.o_proj.weight", {kC, kC}});
    t.push_back({p + "post_attention_layernorm.weight", {kC}});
    t.push_back({p + "mlp.gate_proj.weight", {kHD, kC}});
    t.push_back({p + "mlp.up_proj.weight", {kHD, kC}});
    t.push_back({p + "mlp.down_proj.weight", {kC, kHD}});
  }
  return t;
}

// A safetensors file of random values (1-byte dtypes get 1 byte per element).
void write_safetensors(const fs::path& p, const std::vector<Tensor>& tensors, uint32_t seed) {
  JsonValue header = JsonValue::make_object();
  std::string data;
  test::Rng rng(seed);
  for (const Tensor& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const size_t begin = data.size();
    for (int64_t i = 0; i < n; i++) {
      const float f = rng.uniform(-0.5f, 0.5f);
      data.append(reinterpret_cast<const char*>(&f), t.dtype == "F32" ? 4 : 1);
    }
    JsonValue e = JsonValue::make_object(), shape = JsonValue::make_array();
    for (int64_t d : t.shape) shape.push(JsonValue::make_number((double)d));
    e.set("dtype", JsonValue::make_string(t.dtype));
    e.set("shape", shape);
    e.set("data_offsets", JsonValue::make_array({JsonValue::make_number((double)begin), JsonValue::make_number((double)data.size())}));
    header.set(t.name, e);
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; i++) out[i] = (char)((uint64_t)h.size() >> (8 * i));
  write_text(p, out + h + data);
}

// <unk> <s> </s>, 256 byte pieces, then ▁ a b ▁a ab (264 pieces) with merges "▁ a", "a b".
JsonValue tokenizer_json(bool merges_as_pairs) {
  JsonValue vocab = JsonValue::make_object();
  const auto add = [&](const std::string& p) { vocab.set(p, JsonValue::make_number((double)vocab.size())); };
  for (const char* s : {"<unk>", "<s>", "</s>"}) add(s);
  char buf[8];
  for (int i = 0; i < 256; i++) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", i);
    add(buf);
  }
  for (const std::string& s : {kSp, std::string("a"), std::string("b"), kSp + "a", std::string("ab")}) add(s);
  JsonValue merges = JsonValue::make_array();
  for (const auto& m : {std::make_pair(kSp, std::string("a")), std::make_pair(std::string("a"), std::string("b"))}) {
    merges.push(merges_as_pairs ? JsonValue::make_array({JsonValue::make_string(m.first), JsonValue::make_string(m.second)})
                                : JsonValue::make_string(m.first + " " + m.second));
  }
  JsonValue model = JsonValue::make_object();
  model.set("type", JsonValue::make_string("BPE"));
  model.set("unk_token", JsonValue::make_string("<unk>"));
  model.set("byte_fallback", JsonValue::make_bool(true));
  model.set("vocab", vocab);
  model.set("merges", merges);
  JsonValue added = JsonValue::make_array();
  for (int id = 0; id < 3; id++) {
    JsonValue a = JsonValue::make_object();
    a.set("id", JsonValue::make_number(id));
    a.set("content", JsonValue::make_string(id == 0 ? "<unk>" : id == 1 ? "<s>" : "</s>"));
    a.set("special", JsonValue::make_bool(true));
    added.push(a);
  }
  JsonValue prepend = JsonValue::make_object();
  prepend.set("type", JsonValue::make_string("Prepend"));
  prepend.set("prepend", JsonValue::make_string(kSp));
  JsonValue norm = JsonValue::make_object();
  norm.set("type", JsonValue::make_string("Sequence"));
  norm.set("normalizers", JsonValue::make_array({prepend}));
  JsonValue root = JsonValue::make_object();
  root.set("added_tokens", added);
  root.set("normalizer", norm);
  root.set("model", model);
  return root;
}

std::string config_json(int V, const std::string& extra = "") {
  return "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": " + std::to_string(kC) +
         ", \"num_hidden_layers\": " + std::to_string(kL) + ", \"num_attention_heads\": " + std::to_string(kNH) +
         ", \"num_key_value_heads\": " + std::to_string(kNKV) + ", \"intermediate_size\": " + std::to_string(kHD) +
         ", \"vocab_size\": " + std::to_string(V) + ", \"rms_norm_eps\": 1e-05, \"max_position_embeddings\": 128" +
         extra + "}";
}

// A complete, valid directory; tests then break one thing at a time.
void write_good_dir(const fs::path& d, int V = 266) {
  fs::remove_all(d);
  fs::create_directories(d);
  write_text(d / "config.json", config_json(V, ", \"tie_word_embeddings\": true, \"bos_token_id\": 1"));
  write_safetensors(d / "model.safetensors", model_tensors(V), 1);
  write_text(d / "tokenizer.json", tokenizer_json(false).dump());
  write_text(d / "tokenizer_config.json", "{\"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\"}");
}

void expect_code(const std::string& label, const std::function<void()>& f, ErrorCode code) {
  try {
    f();
    std::fprintf(stderr, "%s: loaded, expected %s\n", label.c_str(), error_code_name(code));
    test::failures()++;
  } catch (const Error& e) {
    if (std::getenv("CHIMERA_TEST_VERBOSE")) std::printf("%-28s -> %s: %s\n", label.c_str(), error_code_name(e.code()), e.what());
    if (e.code() != code) {
      std::fprintf(stderr, "%s: got %s: %s\n", label.c_str(), error_code_name(e.code()), e.what());
      test::failures()++;
    }
  }
}

}  // namespace

static void test_good_dir(const fs::path& d) {
  write_good_dir(d);
  const auto m = load_model(d.string(), LoadOptions());
  const ModelConfig& c = m->config;
  EXPECT(c.format == "hf" && c.C == kC && c.L == kL && c.NKV == kNKV && c.HD == kHD && c.V == 266 && c.HS == 8);
  EXPECT(c.rope_layout == RopeLayout::HalfSplit && c.tied_output && c.max_context == 128 && c.rope_theta == 10000.0f);
  EXPECT(m->weights.output.data == m->weights.tok_embd.data);
  const TokenizerData& t = m->tokenizer.data();
  EXPECT(t.pieces.size() == 266 && t.pieces[259] == " " && t.pieces[262] == " a" && t.types[265] == TokenType::Unused);
  EXPECT(t.types[0] == TokenType::Unknown && t.types[1] == TokenType::Control && t.types[3] == TokenType::Byte);
  EXPECT(t.bos == 1 && t.eos == 2 && t.unk == 0 && t.add_bos && t.add_space_prefix);
  EXPECT(t.merges.size() == 2 && t.merges[0] == std::make_pair(std::string(" "), std::string("a")));
  EXPECT(t.scores[262] == 0.0f && t.scores[263] == -1.0f);
  // Merges as [a, b] pairs (newer tokenizers) read the same.
  write_text(d / "tokenizer.json", tokenizer_json(true).dump());
  EXPECT(read_hf_tokenizer_json((d / "tokenizer.json").string()).merges == t.merges);
}

static void test_sharded(const fs::path& d) {
  write_good_dir(d);
  fs::remove(d / "model.safetensors");
  std::vector<Tensor> all = model_tensors(266), a(all.begin(), all.begin() + 5), b(all.begin() + 5, all.end());
  write_safetensors(d / "model-00001-of-00002.safetensors", a, 2);
  write_safetensors(d / "model-00002-of-00002.safetensors", b, 3);
  const auto index = [&](const std::string& override_first) {
    JsonValue map = JsonValue::make_object();
    for (size_t i = 0; i < all.size(); i++) {
      const std::string f = i < 5 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
      map.set(all[i].name, JsonValue::make_string(i == 0 && !override_first.empty() ? override_first : f));
    }
    JsonValue root = JsonValue::make_object();
    root.set("weight_map", map);
    write_text(d / "model.safetensors.index.json", root.dump());
  };
  index("");
  EXPECT(load_hf_dir(d.string())->config.V == 266);
  index("../model-00001-of-00002.safetensors");
  expect_code("shard path traversal", [&] { load_hf_dir(d.string()); }, ErrorCode::Format);
  index("model-00002-of-00002.safetensors");
  expect_code("tensor not in its shard", [&] { load_hf_dir(d.string()); }, ErrorCode::Tensor);
  index("model-00009-of-00009.safetensors");
  expect_code("missing shard", [&] { load_hf_dir(d.string()); }, ErrorCode::NotFound);
  fs::remove(d / "model.safetensors.index.json");
  expect_code("no weights", [&] { load_hf_dir(d.string()); }, ErrorCode::NotFound);
}

static void test_bad_config(const fs::path& d) {
  const std::pair<const char*, std::string> unsupported[] = {
      {"mistral", "{\"model_type\": \"mistral\", \"hidden_size\": 32}"},
      {"rope_scaling yarn", config_json(266, ", \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 2.0}")},
      {"phi3 longrope", config_json(266, ", \"model_type\": \"phi3\", \"rope_scaling\": {\"type\": \"longrope\"}")},
      {"qwen2 sliding window", config_json(266, ", \"model_type\": \"qwen2\", \"use_sliding_window\": true")},
      {"gelu", config_json(266, ", \"hidden_act\": \"gelu\"")},
      {"attention_bias", config_json(266, ", \"attention_bias\": true")}};
  for (const auto& u : unsupported) {
    write_good_dir(d);
    write_text(d / "config.json", u.second);
    expect_code(u.first, [&] { load_hf_dir(d.string()); }, ErrorCode::Unsupported);
  }
  const std::pair<const char*, std::string> format[] = {
      {"no hidden_size", "{\"model_type\": \"llama\"}"}, {"not JSON", "{\"model_type\": \"llama\""},
      {"string width", config_json(266, "").replace(config_json(266, "").find("32"), 2, "\"32\"")},
      {"kv heads 3", config_json(266, "").replace(config_json(266, "").find("\"num_key_value_heads\": 2"), 24,
                                                  "\"num_key_value_heads\": 3")}};
  for (const auto& f : format) {
    write_good_dir(d);
    write_text(d / "config.json", f.second);
    expect_code(f.first, [&] { load_hf_dir(d.string()); }, ErrorCode::Format);
  }
  // An explicit head_dim (qwen3) is read; these weights were made for 32 / 4 = 8, so q_proj no longer fits.
  write_good_dir(d);
  write_text(d / "config.json", config_json(266, ", \"head_dim\": 16"));
  expect_code("head_dim 16", [&] { load_hf_dir(d.string()); }, ErrorCode::Tensor);
  write_good_dir(d, 100);  // vocab_size 100 < the tokenizer's 264 pieces (and embedding rows follow it)
  expect_code("tokenizer larger than V", [&] { load_hf_dir(d.string()); }, ErrorCode::Format);
}

static void test_bad_tensors(const fs::path& d) {
  write_good_dir(d);
  std::vector<Tensor> t = model_tensors(266);
  t[3].shape = {16, kC};  // q_proj
  write_safetensors(d / "model.safetensors", t, 4);
  expect_code("q_proj shape", [&] { load_hf_dir(d.string()); }, ErrorCode::Tensor);
  t = model_tensors(266);
  t[4].dtype = "I8";  // k_proj
  write_safetensors(d / "model.safetensors", t, 5);
  expect_code("k_proj int8", [&] { load_hf_dir(d.string()); }, ErrorCode::Unsupported);
  t = model_tensors(266);
  t.erase(t.begin() + 2);  // input_layernorm
  write_safetensors(d / "model.safetensors", t, 6);
  expect_code("missing norm", [&] { load_hf_dir(d.string()); }, ErrorCode::Tensor);
}

static void test_bad_tokenizer(const fs::path& d) {
  write_good_dir(d);
  const fs::path tj = d / "tokenizer.json";
  const std::string good = tokenizer_json(false).dump();
  const auto variant = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT(at != std::string::npos);
    write_text(tj, s.replace(at, from.size(), to));
  };
  variant("\"type\":\"BPE\"", "\"type\":\"Unigram\"");
  expect_code("unigram", [&] { load_hf_dir(d.string()); }, ErrorCode::Unsupported);
  variant("\"added_tokens\":", "\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"added_tokens\":");
  expect_code("byte-level", [&] { load_hf_dir(d.string()); }, ErrorCode::Unsupported);
  variant("\"ab\":263", "\"ab\":270");
  expect_code("id gap", [&] { load_hf_dir(d.string()); }, ErrorCode::Format);
  variant("\"ab\":263", "\"ab\":262");
  expect_code("duplicate id", [&] { load_hf_dir(d.string()); }, ErrorCode::Format);
  variant("\"a b\"", "\"a z\"");
  expect_code("merge of unknown piece", [&] { load_hf_dir(d.string()); }, ErrorCode::Format);
  variant("\"a b\"", "\"a  b\"");
  expect_code("merge with two spaces", [&] { load_hf_dir(d.string()); }, ErrorCode::Format);
  variant("\"normalizer\":", "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"prepend_scheme\":\"never\"},\"x\":");
  EXPECT(!read_hf_tokenizer_json(tj.string()).add_space_prefix);
  variant("\"normalizer\":", "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"prepend_scheme\":\"first\"},\"x\":");
  EXPECT(read_hf_tokenizer_json(tj.string()).add_space_prefix);
  fs::remove(tj);
  expect_code("no tokenizer.json", [&] { load_hf_dir(d.string()); }, ErrorCode::NotFound);
  fs::remove(d / "config.json");
  expect_code("no config.json", [&] { load_hf_dir(d.string()); }, ErrorCode::NotFound);
}

int main() {
  const fs::path d = fs::temp_directory_path() / ("chimera_test_hf_" + std::to_string(std::random_device{}()));
  test_good_dir(d);
  test_sharded(d);
  test_bad_config(d);
  test_bad_tensors(d);
  test_bad_tokenizer(d);
  std::error_code ec;
  fs::remove_all(d, ec);
  return test::finish("test_hf_loader");
}
