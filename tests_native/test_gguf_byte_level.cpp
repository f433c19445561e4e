// GGUF files with a byte-level (tokenizer.ggml.model = gpt2) tokenizer: the keys llama.cpp's converter
// writes are read (pre-tokenizer, merges, token types, eot, chat template, add_bos default), encoding
// uses them, and malformed or unsupported tokenizer metadata is a typed error, never a crash.
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "check.h"
#include "common/error.h"
#include "gguf_builder.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

using namespace chimera;
using Ids = std::vector<int32_t>;

namespace {

constexpr int kC = 16, kNH = 2, kHD = 32;

struct Keys {
  std::string pre = "llama-bpe";
  bool merges = true;
  std::vector<std::string> extra_merges;
  int64_t eot = -1;  // -1: no key
  std::string chat_template;
};

// 256 byte pieces, "Ġt" "he" "Ġthe", <|begin_of_text|> (259), <|eot_id|> (260), <x> user-defined (261).
std::vector<uint8_t> build(const Keys& k) {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; b++) pieces.push_back(byte_level_encode(std::string(1, (char)b)));
  for (const char* p : {"\xC4\xA0t", "he", "\xC4\xA0the", "<|begin_of_text|>", "<|eot_id|>", "<x>"})
    pieces.push_back(p);
  std::vector<int32_t> types(pieces.size(), 1);
  types[259] = types[260] = 3;
  types[261] = 4;
  test::GgufBuilder g;
  g.kv_string("general.architecture", "llama");
  g.kv_u32("llama.embedding_length", kC);
  g.kv_u32("llama.block_count", 1);
  g.kv_u32("llama.feed_forward_length", kHD);
  g.kv_u32("llama.attention.head_count", kNH);
  g.kv_u32("llama.context_length", 64);
  g.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.kv_string("tokenizer.ggml.model", "gpt2");
  if (!k.pre.empty()) g.kv_string("tokenizer.ggml.pre", k.pre);
  g.kv_strings("tokenizer.ggml.tokens", pieces);
  g.kv_i32s("tokenizer.ggml.token_type", types);
  std::vector<std::string> merges = {"\xC4\xA0 t", "h e", "\xC4\xA0t he"};
  merges.insert(merges.end(), k.extra_merges.begin(), k.extra_merges.end());
  if (k.merges) g.kv_strings("tokenizer.ggml.merges", merges);
  g.kv_u32("tokenizer.ggml.bos_token_id", 259);
  g.kv_u32("tokenizer.ggml.eos_token_id", 259);
  if (k.eot >= 0) g.kv_u32("tokenizer.ggml.eot_token_id", (uint32_t)k.eot);
  if (!k.chat_template.empty()) g.kv_string("tokenizer.chat_template", k.chat_template);
  test::Rng rng(5);
  const auto mat = [&](const std::string& name, uint64_t rows, uint64_t cols) {
    g.tensor(name, {cols, rows}, test::kGgmlF32, test::encode_floats(test::kGgmlF32, test::random_floats(rng, rows * cols)));
  };
  const auto norm = [&](const std::string& name) {
    g.tensor(name, {kC}, test::kGgmlF32, test::encode_floats(test::kGgmlF32, std::vector<float>(kC, 1.0f)));
  };
  mat("token_embd.weight", pieces.size(), kC);
  norm("blk.0.attn_norm.weight");
  for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output"}) mat(std::string("blk.0.") + m + ".weight", kC, kC);
  norm("blk.0.ffn_norm.weight");
  mat("blk.0.ffn_gate.weight", kHD, kC);
  mat("blk.0.ffn_up.weight", kHD, kC);
  mat("blk.0.ffn_down.weight", kC, kHD);
  norm("output_norm.weight");
  return g.build();
}

std::string write(const test::TempDir& tmp, const Keys& k) {
  const std::string path = tmp.file("bl.gguf");
  const std::vector<uint8_t> b = build(k);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(b.data()), b.size());
  return path;
}

void test_reads_byte_level(const test::TempDir& tmp) {
  Keys k;
  k.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}";
  const auto m = load_gguf(write(tmp, k));
  const Tokenizer& tok = m->tokenizer;
  EXPECT(tok.byte_level() && tok.data().pre == "llama-bpe");
  EXPECT(tok.add_bos());  // llama.cpp's default for Llama 3 vocabularies
  EXPECT(tok.data().chat_template == k.chat_template);
  EXPECT(tok.eot() == 260 && tok.is_eog(259) && tok.is_eog(260) && !tok.is_eog(261));
  // "the the": "the" has no merge path from "t"+"he" without the space, " the" merges fully.
  EXPECT((tok.encode("the the", true, true) == Ids{259, 't', 256 + 1, 256 + 2}));
  EXPECT((tok.encode("<|eot_id|><x>", false, true, true) == Ids{260, 261}));
  EXPECT(tok.decode(tok.encode(" the<x>\xF0\x9F\x98\x80", false, true)) == " the<x>\xF0\x9F\x98\x80");
}

void test_bad_metadata(const test::TempDir& tmp) {
  Keys k;
  k.pre = "deepseek-llm";
  EXPECT_THROWS_CODE(load_gguf(write(tmp, k)), ErrorCode::Unsupported);
  k = Keys();
  k.pre = "";
  EXPECT_THROWS_CODE(load_gguf(write(tmp, k)), ErrorCode::Unsupported);
  k = Keys();
  k.merges = false;
  EXPECT_THROWS_CODE(load_gguf(write(tmp, k)), ErrorCode::Format);
  k = Keys();
  k.extra_merges = {"nospace"};
  EXPECT_THROWS_CODE(load_gguf(write(tmp, k)), ErrorCode::Format);
  k = Keys();
  k.extra_merges = {"ab "};
  EXPECT_THROWS_CODE(load_gguf(write(tmp, k)), ErrorCode::Format);
  k = Keys();
  k.eot = 100000;
  EXPECT_THROWS_CODE(load_gguf(write(tmp, k)), ErrorCode::Format);
  // Merges naming pieces the vocabulary lacks can never apply: ignored, as llama.cpp does.
  k = Keys();
  k.extra_merges = {"zz qq"};
  EXPECT(load_gguf(write(tmp, k))->tokenizer.encode("the", false, true).size() == 2);
}

}  // namespace

int main() {
  const test::TempDir tmp("chimera-gguf-bl-");
  test_reads_byte_level(tmp);
  test_bad_metadata(tmp);
  return test::finish("test_gguf_byte_level");
}
