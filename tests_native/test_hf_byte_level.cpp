// tokenizer.json files of byte-level BPE: each supported pipeline (Llama 3 and Qwen2 split regexes,
// GPT-2's ByteLevel, SmolLM's digits) is recognised, BOS comes from a TemplateProcessing post-processor,
// "<|...|>" added tokens are control tokens, and pipelines we cannot reproduce are E_UNSUPPORTED.
#include <fstream>
#include <string>
#include <vector>

#include "check.h"
#include "common/error.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

using namespace chimera;
using Ids = std::vector<int32_t>;

namespace {

const char* const kLlama3Regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+)re";
const char* const kQwen2Regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+)re";

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string split_then_byte_level(const std::string& regex) {
  return R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":")" + regex +
         R"("},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]})";
}

const std::string kGpt2Pre = R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true})";
const std::string kSmolPre =
    R"({"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}]})";
const std::string kBosPost =
    R"({"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}]}]})";

// The 256 byte pieces, "Ġt" "he" "Ġthe", and added <|begin_of_text|> (259), <|im_end|> (260, not marked
// special), <think> (261).
std::string tokenizer_json(const std::string& pre, const std::string& post = "null",
                           const std::string& normalizer = "null") {
  std::string vocab;
  for (int b = 0; b < 256; b++) vocab += json_string(byte_level_encode(std::string(1, (char)b))) + ":" + std::to_string(b) + ",";
  vocab += "\"\xC4\xA0t\":256,\"he\":257,\"\xC4\xA0the\":258";
  const auto added = [](int id, const char* text, bool special) {
    return std::string("{\"id\":") + std::to_string(id) + ",\"content\":\"" + text + "\",\"special\":" +
           (special ? "true" : "false") + "}";
  };
  return "{\"added_tokens\":[" + added(259, "<|begin_of_text|>", true) + "," + added(260, "<|im_end|>", false) + "," +
         added(261, "<think>", false) + "],\"normalizer\":" + normalizer + ",\"pre_tokenizer\":" + pre +
         ",\"post_processor\":" + post + R"(,"decoder":{"type":"ByteLevel"},"model":{"type":"BPE","ignore_merges":true,"vocab":{)" +
         vocab + "},\"merges\":[\"\xC4\xA0 t\",\"h e\",[\"\xC4\xA0t\",\"he\"]]}}";
}

TokenizerData read(const test::TempDir& tmp, const std::string& json) {
  const std::string path = tmp.file("tokenizer.json");
  std::ofstream(path, std::ios::trunc) << json;
  return read_hf_tokenizer_json(path);
}

void test_pipelines(const test::TempDir& tmp) {
  TokenizerData d = read(tmp, tokenizer_json(split_then_byte_level(kLlama3Regex), kBosPost, R"({"type":"NFC"})"));
  EXPECT(d.model == "gpt2" && d.pre == "llama-bpe" && d.ignore_merges && d.add_bos && d.bos == 259);
  EXPECT(d.types[259] == TokenType::Control && d.types[260] == TokenType::Control);  // "<|...|>" looks special
  EXPECT(d.types[261] == TokenType::UserDefined);
  const Tokenizer tok(d);
  EXPECT((tok.encode("the the<think>", true, true) == Ids{259, 't', 257, 258, 261}));
  EXPECT(tok.is_eog(260));
  d = read(tmp, tokenizer_json(split_then_byte_level(kQwen2Regex)));
  EXPECT(d.pre == "qwen2" && !d.add_bos && d.bos == -1);
  EXPECT(read(tmp, tokenizer_json(kGpt2Pre)).pre == "gpt-2");
  EXPECT(read(tmp, tokenizer_json(kSmolPre)).pre == "smollm");
}

void test_unsupported(const test::TempDir& tmp) {
  EXPECT_THROWS_CODE(read(tmp, tokenizer_json(split_then_byte_level("\\\\p{L}+"))), ErrorCode::Unsupported);
  EXPECT_THROWS_CODE(read(tmp, tokenizer_json(kGpt2Pre, "null", R"({"type":"Lowercase"})")), ErrorCode::Unsupported);
  EXPECT_THROWS_CODE(read(tmp, tokenizer_json(R"({"type":"ByteLevel","add_prefix_space":true})")),
                     ErrorCode::Unsupported);
  EXPECT_THROWS_CODE(read(tmp, tokenizer_json(R"({"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"ByteLevel"}]})")),
                     ErrorCode::Unsupported);
}

}  // namespace

int main() {
  const test::TempDir tmp("chimera-hf-bl-");
  test_pipelines(tmp);
  test_unsupported(tmp);
  return test::finish("test_hf_byte_level");
}
